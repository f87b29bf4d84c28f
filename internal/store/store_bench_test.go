package store

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// Benchmarks of the store at benchBlocks (100k) blocks, numbers in
// docs/STORAGE.md:
//
//	go test -run '^$' -bench BenchmarkStore ./internal/store

// connect returns the update the chain makes when b extends the tip.
func connect(b *chain.Block) *chain.Update {
	return &chain.Update{Hash: b.Hash(), Height: b.Header.Height, TipChanged: true, Connected: []*chain.Block{b}}
}

// appendCommits appends blocks in commits of batch blocks, one update per
// block as the chain makes them.
func appendCommits(s *Store, blocks []*chain.Block, batch int) error {
	for i := 0; i < len(blocks); i += batch {
		part := blocks[i:min(i+batch, len(blocks))]
		c := Commit{Blocks: part}
		for _, b := range part {
			c.Updates = append(c.Updates, connect(b))
		}
		if err := s.Commit(c); err != nil {
			return err
		}
	}
	return nil
}

func BenchmarkStore(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a chain of 100k blocks")
	}
	f := bigFixture(b)
	params := f.params

	// base is a closed store of the main chain and the fork's blocks but
	// its last (side blocks); each benchmark works on a copy.
	base, err := os.MkdirTemp("", "p2pchain-storebench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(base) })
	basePath := filepath.Join(base, "chain")
	{
		s, err := Open(basePath, params)
		if err != nil {
			b.Fatal(err)
		}
		if err := appendCommits(s, f.main, 512); err != nil {
			b.Fatal(err)
		}
		if err := s.Commit(Commit{Blocks: f.fork[:forkDepth]}); err != nil {
			b.Fatal(err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
	open := func(b *testing.B) *Store {
		path := filepath.Join(b.TempDir(), "chain")
		if err := copyTree(basePath, path); err != nil {
			b.Fatal(err)
		}
		s, err := Open(path, params)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}

	b.Run("AppendBatch512", func(b *testing.B) {
		var size int64
		for b.Loop() {
			path := filepath.Join(b.TempDir(), "chain")
			s, err := Open(path, params)
			if err != nil {
				b.Fatal(err)
			}
			if err := appendCommits(s, f.main, 512); err != nil {
				b.Fatal(err)
			}
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
			size = dirSize(path)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(f.main)), "ns/block")
		b.ReportMetric(float64(size)/1e6, "MB")
	})
	b.Run("AppendOne", func(b *testing.B) {
		s := open(b)
		for i := 0; b.Loop(); i++ {
			k := i % len(f.extra)
			if k == 0 && i > 0 { // out of blocks: disconnect them, untimed
				b.StopTimer()
				u := &chain.Update{Hash: f.main[len(f.main)-1].Hash(), Height: uint64(len(f.main)), TipChanged: true}
				for j := len(f.extra) - 1; j >= 0; j-- {
					u.Disconnected = append(u.Disconnected, f.extra[j])
				}
				if err := s.Commit(Commit{Updates: []*chain.Update{u}}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			blk := f.extra[k]
			if err := s.Commit(Commit{Blocks: []*chain.Block{blk}, Updates: []*chain.Update{connect(blk)}}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AddPending", func(b *testing.B) {
		s := open(b)
		rs := makeReadings(params, "bench", 3, 0)
		for i := 0; b.Loop(); i++ {
			if err := s.AddPending(rs[i%len(rs)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ByHeight", func(b *testing.B) {
		s := open(b)
		rng := rand.New(rand.NewPCG(1, 2))
		for b.Loop() {
			if _, err := s.BlockAtHeight(1 + rng.Uint64N(uint64(len(f.main)))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ByHash", func(b *testing.B) {
		s := open(b)
		rng := rand.New(rand.NewPCG(1, 2))
		hashes := make([]chain.Hash, len(f.main))
		for i, blk := range f.main {
			hashes[i] = blk.Hash()
		}
		for b.Loop() {
			if _, err := s.BlockByHash(hashes[rng.IntN(len(hashes))]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Reorg100", func(b *testing.B) {
		s := open(b)
		tip := f.fork[forkDepth]
		for i := 0; b.Loop(); i++ {
			c := Commit{Updates: []*chain.Update{f.back}}
			if i%2 == 0 {
				c = Commit{Blocks: []*chain.Block{tip}, Updates: []*chain.Update{f.reorg}}
			}
			if err := s.Commit(c); err != nil {
				b.Fatal(err)
			}
		}
	})
	// OpenLoad is a node's restart until it can serve: open a store that a
	// node just closed (a fresh copy each time, so any work the engine left
	// for the next open is counted) and load it.
	b.Run("OpenLoad", func(b *testing.B) {
		var opening, loading time.Duration
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			path := filepath.Join(b.TempDir(), "chain")
			if err := copyTree(basePath, path); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			t0 := time.Now()
			s, err := Open(path, params)
			if err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			st, err := s.Load()
			if err != nil {
				b.Fatal(err)
			}
			opening += t1.Sub(t0)
			loading += time.Since(t1)
			if len(st.Main) != len(f.main) || len(st.Side) != forkDepth {
				b.Fatalf("loaded %d main and %d side blocks", len(st.Main), len(st.Side))
			}
			b.StopTimer() // Close waits for the compactions Open started
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(opening.Milliseconds())/float64(b.N), "open-ms")
		b.ReportMetric(float64(loading.Milliseconds())/float64(b.N), "load-ms")
	})
}

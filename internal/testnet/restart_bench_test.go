package testnet

// Restart of a node with a long chain (issue 3: "serving again in about a
// second"), split into its steps so that the time can be placed:
//
//	go test -run '^$' -bench Restart -benchtime 3x ./internal/testnet
//
// The store of 100k blocks is built once and kept under os.TempDir(), keyed
// by restartBenchVersion, because building it takes longer than the
// benchmark (signing 250k readings); delete the directory, or bump the
// version when the block encoding or the store layout changes, to rebuild
// it. A cached store that no longer opens or loads is rebuilt by itself.

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/p2p"
	"github.com/p2pchain/p2pchain/internal/store"
)

// restartBenchVersion names the cached store's shape; change it whenever the
// store built by buildRestartStore would differ.
const restartBenchVersion = "v2"

const (
	restartBlocks  = 100_000 // main chain
	restartSide    = 4       // side branch, forking 5 blocks below the tip (within the final depth)
	restartPending = 100     // pending readings
)

func restartParams() chain.Params { return chain.TestParams("restart-bench") }

func restartKey() ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
}

// restartStore returns the path of a closed store holding restartBlocks
// main-chain blocks (1 to 4 readings each), a side branch and pending
// readings, building it if the cache has none.
func restartStore(b *testing.B) string {
	b.Helper()
	dir := filepath.Join(os.TempDir(), "p2pchain-restart-bench-"+restartBenchVersion)
	path := filepath.Join(dir, "chain")
	if err := checkRestartStore(path); err == nil {
		return path
	} else if !errors.Is(err, os.ErrNotExist) {
		b.Logf("rebuilding the cached store %s: %v", path, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		b.Fatal(err)
	}
	tmp, err := os.MkdirTemp(os.TempDir(), "p2pchain-restart-bench-build-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	start := time.Now()
	if err := buildRestartStore(filepath.Join(tmp, "chain")); err != nil {
		b.Fatal(err)
	}
	b.Logf("built a store of %d blocks in %v, cached in %s", restartBlocks, time.Since(start).Round(time.Millisecond), dir)
	if err := os.Rename(tmp, dir); err != nil {
		// Another run may have built it meanwhile.
		if cerr := checkRestartStore(path); cerr != nil {
			b.Fatalf("cache the store: %v", err)
		}
	}
	return path
}

// checkRestartStore reports whether path holds the complete store.
func checkRestartStore(path string) error {
	if _, err := os.Stat(path); err != nil {
		return err
	}
	s, err := store.Open(path, restartParams())
	if err != nil {
		return err
	}
	defer s.Close()
	st, err := s.Load()
	if err != nil {
		return err
	}
	if len(st.Main) != restartBlocks || len(st.Side) != restartSide || len(st.Pending) != restartPending {
		return fmt.Errorf("holds %d main blocks, %d side, %d pending; want %d, %d, %d",
			len(st.Main), len(st.Side), len(st.Pending), restartBlocks, restartSide, restartPending)
	}
	return nil
}

func buildRestartStore(path string) error {
	params, key := restartParams(), restartKey()
	s, err := store.Open(path, params)
	if err != nil {
		return err
	}
	c, err := chain.New(params)
	if err != nil {
		return err
	}
	at := func(i int) time.Time { return time.UnixMilli(params.GenesisTime).Add(time.Duration(i) * time.Second) }
	readings := func(i, n int, tag string) ([]chain.Reading, error) {
		var rs []chain.Reading
		for j := 0; j < n; j++ {
			r, err := chain.NewReading(key, fmt.Sprintf("%s-%d", tag, (i+j)%500), chain.MinBPM+(i+j)%200, at(i))
			if err != nil {
				return nil, err
			}
			rs = append(rs, r)
		}
		return rs, nil
	}

	var main []*chain.Block
	var commit store.Commit
	for i := 1; i <= restartBlocks; i++ {
		rs, err := readings(i, 1+i%4, "patient")
		if err != nil {
			return err
		}
		blk := c.NewBlock(rs, at(i))
		if err := chain.Solve(context.Background(), &blk.Header); err != nil {
			return err
		}
		// The blocks are valid by construction; Restore skips re-checking
		// 250k signatures.
		u, err := c.Restore(blk, at(i))
		if err != nil {
			return fmt.Errorf("block %d: %w", i, err)
		}
		main = append(main, blk)
		commit.Blocks, commit.Updates = append(commit.Blocks, blk), append(commit.Updates, u)
		if len(commit.Blocks) == 512 || i == restartBlocks {
			if err := s.Commit(commit); err != nil {
				return err
			}
			commit = store.Commit{}
		}
	}

	// A side branch with less work than the main chain.
	parent := main[restartBlocks-6]
	for i := 0; i < restartSide; i++ {
		h := parent.Header.Height + 1
		rs, err := readings(int(h), 1, "side")
		if err != nil {
			return err
		}
		blk := &chain.Block{Readings: rs}
		blk.Header = chain.Header{Version: chain.HeaderVersion, Height: h, Parent: parent.Hash(),
			Time: parent.Header.Time + 500, Root: blk.ReadingsRoot(), Count: uint32(len(blk.Readings)), Difficulty: params.Difficulty}
		if err := chain.Solve(context.Background(), &blk.Header); err != nil {
			return err
		}
		if _, err := c.AddBlock(blk, at(restartBlocks)); err != nil {
			return fmt.Errorf("side block at %d: %w", h, err)
		}
		commit.Blocks = append(commit.Blocks, blk)
		parent = blk
	}
	if commit.PendingAdd, err = readings(restartBlocks+1, restartPending, "pending"); err != nil {
		return err
	}
	if err := s.Commit(commit); err != nil {
		return err
	}
	return s.Close()
}

// BenchmarkRestart measures what a node does at start with a chain of 100k
// blocks (+4 side blocks, 100 pending readings), warm page cache:
//
//   - Open: store.Open + Close (the engine opens its files, reads the meta records);
//   - Load: store.Open + Load + Close (every block read, decoded, hashed and linked);
//   - Restore: node.New from a State already loaded (the in-memory chain and
//     indexes rebuilt; no I/O);
//   - Node: store.Open + Load + node.New(WithStore) + Close, the whole restart of
//     the node's state;
//   - Serving: the same plus p2p.New, listening on loopback and ready to
//     answer peers, then Close of both.
func BenchmarkRestart(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a store of 100k blocks")
	}
	path := restartStore(b)
	params, key := restartParams(), restartKey()

	open := func(b *testing.B) *store.Store {
		s, err := store.Open(path, params)
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	load := func(b *testing.B, s *store.Store) node.State {
		st, err := s.Load()
		if err != nil {
			b.Fatal(err)
		}
		return node.State{Main: st.Main, Side: st.Side, Pending: st.Pending}
	}
	newNode := func(b *testing.B, s *store.Store, st node.State) *node.Node {
		n, err := node.New(params, key, node.WithStore(s, st))
		if err != nil {
			b.Fatal(err)
		}
		if h := n.Status().Height; h != restartBlocks {
			b.Fatalf("restored node at height %d, want %d", h, restartBlocks)
		}
		return n
	}
	closeStore := func(b *testing.B, s *store.Store) {
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
	perBlock := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/restartBlocks, "ns/block")
	}

	b.Run("Open", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			closeStore(b, open(b))
		}
	})
	b.Run("Load", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s := open(b)
			load(b, s)
			closeStore(b, s)
		}
		perBlock(b)
	})
	b.Run("Restore", func(b *testing.B) {
		s := open(b)
		st := load(b, s)
		b.ReportAllocs()
		for b.Loop() {
			newNode(b, s, st)
		}
		perBlock(b)
		closeStore(b, s)
	})
	b.Run("Node", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s := open(b)
			newNode(b, s, load(b, s))
			closeStore(b, s)
		}
		perBlock(b)
	})
	b.Run("Serving", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s := open(b)
			n := newNode(b, s, load(b, s))
			h, err := p2p.New(context.Background(), n, p2p.WithKey(key))
			if err != nil {
				b.Fatal(err)
			}
			if err := h.Close(); err != nil {
				b.Fatal(err)
			}
			closeStore(b, s)
		}
		perBlock(b)
	})
}

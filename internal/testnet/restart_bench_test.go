package testnet

// Restart of a node with a long chain (issue 3: "serving again in about a
// second"; issue 10: memory and restart time that do not grow with the
// chain), split into its steps so that the time can be placed:
//
//	go test -run '^$' -bench Restart -benchtime 3x ./internal/testnet
//
// and the footprint of a restart, the time to a node that serves, its live
// heap and the process's resident memory (run alone, so that the resident
// memory is the restart's; P2PCHAIN_RESTART_BLOCKS=1000000 for a chain of
// 1M blocks, one reading each, built once in about five minutes):
//
//	go test -run '^$' -bench 'Restart/Footprint' -benchtime 20x ./internal/testnet
//
// The store is built once and kept under os.TempDir(), keyed by
// restartBenchVersion and its length, because building it takes longer than the
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
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/p2p"
	"github.com/p2pchain/p2pchain/internal/store"
)

// restartBenchVersion names the cached store's shape; change it whenever the
// store built by buildRestartStore would differ.
const restartBenchVersion = "v3"

const (
	restartSide    = 4   // side branch, forking 5 blocks below the tip (within the final depth)
	restartPending = 100 // pending readings
)

// restartBlocks is the length of the main chain: 100k, or
// $P2PCHAIN_RESTART_BLOCKS.
var restartBlocks = func() int {
	if n, err := strconv.Atoi(os.Getenv("P2PCHAIN_RESTART_BLOCKS")); err == nil && n > 10 {
		return n
	}
	return 100_000
}()

// restartReadings is how many readings block i holds: 1 to 4 on the 100k
// chain, 1 on longer ones (whose signing would take too long).
func restartReadings(i int) int {
	if restartBlocks > 100_000 {
		return 1
	}
	return 1 + i%4
}

func restartParams() chain.Params { return chain.TestParams("restart-bench") }

func restartKey() ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
}

// restartStore returns the path of a closed store holding restartBlocks
// main-chain blocks (1 to 4 readings each), a side branch and pending
// readings, building it if the cache has none.
func restartStore(b *testing.B) string {
	b.Helper()
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("p2pchain-restart-bench-%s-%d", restartBenchVersion, restartBlocks))
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
	st, err := s.LoadRecent()
	if err != nil {
		return err
	}
	if st.Final == nil || st.Final.Header.Height+uint64(len(st.Main)) != uint64(restartBlocks) ||
		len(st.Side) != restartSide || len(st.Pending) != restartPending {
		return fmt.Errorf("holds a main chain to %d (final block recorded: %v), %d side blocks, %d pending; want %d, %d, %d",
			s.Height(), st.Final != nil, len(st.Side), len(st.Pending), restartBlocks, restartSide, restartPending)
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
	c.SetArchive(s) // compacted after each commit, as a node does
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

	var tail []*chain.Block // the newest blocks
	var commit store.Commit
	for i := 1; i <= restartBlocks; i++ {
		rs, err := readings(i, restartReadings(i), "patient")
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
		if tail = append(tail, blk); len(tail) > 16 {
			tail = tail[1:]
		}
		commit.Blocks, commit.Updates = append(commit.Blocks, blk), append(commit.Updates, u)
		if len(commit.Blocks) == 2048 || i == restartBlocks {
			if err := s.Commit(commit); err != nil {
				return err
			}
			c.Compact()
			commit = store.Commit{}
		}
	}

	// A side branch with less work than the main chain.
	parent := tail[len(tail)-6]
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
//     answer peers, then Close of both;
//   - Footprint/Recent: Serving as a node starts since issue 10
//     (store.LoadRecent: the final block, the blocks above it and the side
//     blocks; the chain reads older blocks back from the store), with the
//     time's percentiles, the live heap and the resident memory after it;
//     Footprint/Load the same with the whole chain read (store.Load), as
//     before.
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
		if h := n.Status().Height; h != uint64(restartBlocks) {
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
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(restartBlocks), "ns/block")
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
	b.Run("Footprint", func(b *testing.B) {
		b.Run("Recent", func(b *testing.B) { footprint(b, path, false) })
		b.Run("Load", func(b *testing.B) { footprint(b, path, true) })
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

// footprint restarts a node on the store at path as `p2pchain node` does
// (store.Open, the state read, node.New, p2p.New listening), until it
// serves peers, and reports the time it took (p50, p95, p99 over the
// iterations), the live heap after a collection, and the process's
// resident memory with the freed pages given back to the system. full
// reads the whole chain (store.Load) instead of the part that can still
// change (store.LoadRecent), as nodes did before issue 10.
func footprint(b *testing.B, path string, full bool) {
	params, key := restartParams(), restartKey()
	var took []time.Duration
	var heap, rss uint64
	for b.Loop() {
		start := time.Now()
		s, err := store.Open(path, params)
		if err != nil {
			b.Fatal(err)
		}
		var st *store.State
		if full {
			st, err = s.Load()
		} else {
			st, err = s.LoadRecent()
		}
		if err != nil {
			b.Fatal(err)
		}
		n, err := node.New(params, key, node.WithStore(s, *st))
		if err != nil {
			b.Fatal(err)
		}
		h, err := p2p.New(context.Background(), n, p2p.WithKey(key))
		if err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
		if got := n.Status().Height; got != uint64(restartBlocks) {
			b.Fatalf("restarted at height %d, want %d", got, restartBlocks)
		}
		st = nil
		runtime.GC()
		debug.FreeOSMemory()
		heap = max(heap, liveHeap())
		if r, _, err := ProcessMemory(os.Getpid()); err == nil {
			rss = max(rss, r)
		}
		runtime.KeepAlive(n)
		if err := h.Close(); err != nil {
			b.Fatal(err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
	slices.Sort(took)
	pct := func(p float64) float64 {
		return float64(took[min(len(took)-1, int(p*float64(len(took))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.95), "p95-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(heap)/(1<<20), "heap-MB")
	b.ReportMetric(float64(rss)/(1<<20), "rss-MB")
}

// liveHeap returns the bytes of live heap objects (after a collection).
func liveHeap() uint64 {
	m := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(m)
	return m[0].Value.Uint64()
}

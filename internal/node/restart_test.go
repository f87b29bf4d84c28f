package node_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/store"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// TestRestartFromFinal: a node restarted on a long chain resumes from the
// final block its store recorded, reading only the blocks above it, and
// still serves everything below through the store: sync of old blocks,
// locators, blocks by height and hash, reading lookups, and the rules (a
// block forking from an old block is refused, a new block is accepted).
func TestRestartFromFinal(t *testing.T) {
	const blocks = 3000
	params := chain.TestParams("restart")
	path := filepath.Join(t.TempDir(), "chain")
	var mu sync.Mutex
	clock := time.UnixMilli(params.GenesisTime).Add(time.Hour)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	open := func() (*store.Store, *store.State) {
		st, err := store.Open(path, params)
		if err != nil {
			t.Fatal(err)
		}
		state, err := st.LoadRecent()
		if err != nil {
			t.Fatal(err)
		}
		return st, state
	}
	var logged testnet.LogBuffer // what the node logs: no damage is reported below
	start := func(st *store.Store, s *store.State) *node.Node {
		n, err := node.New(params, key(9), node.WithClock(now), node.WithStore(st, *s),
			node.WithLogger(slog.New(slog.NewTextHandler(&logged, nil))))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	st, state := open()
	if state.Final != nil {
		t.Fatal("a new store recorded a final block")
	}
	n := start(st, state)
	b := newBuilder(t, params)
	var all []*chain.Block
	for i := range blocks {
		all = append(all, b.block(chain.Hash{}, fmt.Sprintf("s%d", i%50)))
	}
	ctx := context.Background()
	for i := 0; i < len(all); i += 500 {
		if _, err := n.AddBlocks(ctx, all[i:min(i+500, len(all))]); err != nil {
			t.Fatal(err)
		}
	}
	// Time makes all but the newest MaxReorgDepth blocks final; the next
	// block's commit records it.
	mu.Lock()
	clock = clock.Add(params.FinalAge)
	mu.Unlock()
	tipBlock := b.block(chain.Hash{}, "last")
	if err := n.AddBlock(ctx, tipBlock); err != nil {
		t.Fatal(err)
	}
	all = append(all, tipBlock)
	wantFinal := uint64(len(all)) - uint64(params.MaxReorgDepth)
	if n.FinalHeight() != wantFinal {
		t.Fatalf("final height %d, want %d", n.FinalHeight(), wantFinal)
	}
	status, locator, known := n.Status(), n.Locator(chain.Hash{}), n.KnownBlocks()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st, state = open()
	defer st.Close()
	if state.Final == nil || state.Final.Header.Height != wantFinal || len(state.Main) != int(params.MaxReorgDepth) {
		t.Fatalf("LoadRecent: final %v, %d main blocks; want the block at %d and %d above it",
			state.Final != nil, len(state.Main), wantFinal, params.MaxReorgDepth)
	}
	r := start(st, state)
	if got := r.Status(); got.Tip != status.Tip || got.Height != status.Height || got.Work.Cmp(status.Work) != 0 {
		t.Fatalf("restarted at %d %s, want %d %s", got.Height, got.Tip.Short(), status.Height, status.Tip.Short())
	}
	if r.FinalHeight() != wantFinal || r.KnownBlocks() != known {
		t.Fatalf("restarted: final %d, %d blocks known; want %d, %d", r.FinalHeight(), r.KnownBlocks(), wantFinal, known)
	}
	if got := r.Locator(chain.Hash{}); !slices.Equal(got, locator) {
		t.Fatalf("locator of %d hashes, want %d", len(got), len(locator))
	}
	// Sync of old blocks: from genesis, and from a locator into the middle.
	for _, from := range []int{0, 1234, len(all) - 10} {
		loc := []chain.Hash{params.Genesis().Hash()}
		if from > 0 {
			loc = r.Locator(all[from-1].Hash())
		}
		got, err := r.BlocksAfter(loc, 500, 8<<20)
		if err != nil {
			t.Fatalf("BlocksAfter(from %d): %v", from, err)
		}
		if want := min(500, len(all)-from); len(got) != want {
			t.Fatalf("BlocksAfter(from %d): %d blocks, want %d", from, len(got), want)
		}
		for i, blk := range got {
			if blk.Hash() != all[from+i].Hash() {
				t.Fatalf("BlocksAfter(from %d): block %d is not height %d", from, i, from+i+1)
			}
		}
	}
	for _, h := range []int{1, 999, len(all) - 1} {
		blk := all[h-1]
		if got, ok, _ := r.BlockByHeight(uint64(h)); !ok || got.Block.Hash() != blk.Hash() {
			t.Fatalf("BlockByHeight(%d)", h)
		}
		if info, ok, _ := r.BlockByHash(blk.Hash()); !ok || !info.Main || info.Block.Hash() != blk.Hash() {
			t.Fatalf("Block(%s) at %d", blk.Hash().Short(), h)
		}
		if !r.IsMainChain(blk.Hash()) {
			t.Fatalf("block %d not on the main chain", h)
		}
		id := blk.Readings[0].ID()
		if rs, ok, _ := r.LocateReading(id); !ok || rs.Height != uint64(h) || rs.Reading.ID() != id || rs.Final != (uint64(h) <= wantFinal) {
			t.Fatalf("reading of block %d: %+v, %v", h, rs, ok)
		}
	}
	// Pages of the blocks list, bodies and headers, across the base
	// (bodies and headers read back) and down to genesis.
	hashAt := func(h uint64) chain.Hash {
		if h == 0 {
			return params.Genesis().Hash()
		}
		return all[h-1].Hash()
	}
	for _, from := range []uint64{uint64(len(all)) + 5, wantFinal + 3, 1500, 40} {
		blocks, err := r.Blocks(from, 100)
		if err != nil {
			t.Fatal(err)
		}
		headers, err := r.Headers(from, 100)
		if err != nil {
			t.Fatal(err)
		}
		top := min(from, uint64(len(all)))
		if want := int(min(100, top+1)); len(blocks) != want || len(headers) != want {
			t.Fatalf("from %d: %d blocks and %d headers, want %d", from, len(blocks), len(headers), want)
		}
		for i := range blocks {
			if h := top - uint64(i); blocks[i].Hash() != hashAt(h) || headers[i].Hash() != hashAt(h) {
				t.Fatalf("from %d: entry %d is not the block at %d", from, i, h)
			}
		}
	}
	for _, h := range []int{2, 1500, len(all)} {
		id := all[h-1].Readings[0].ID()
		if info, ok, _ := r.LocateReading(id); !ok || info.Pending || info.Height != uint64(h) || info.Block != all[h-1].Hash() || info.Reading.ID() != id {
			t.Fatalf("LocateReading of block %d's reading: %+v, %v", h, info, ok)
		}
	}
	// A hash it never held is not found, and no damage: Chain.Header asks
	// the store for it below the base.
	if _, ok := r.Header(chain.Hash{7}); ok {
		t.Fatal("Header found a hash never stored")
	}
	if l := logged.String(); strings.Contains(l, "level=ERROR") {
		t.Fatalf("the node logged an error:\n%s", l)
	}
	// The rules see the blocks the node did not load.
	old := all[100]
	fork := &chain.Block{Header: chain.Header{Version: chain.HeaderVersion, Height: old.Header.Height + 1, Parent: old.Hash(),
		Time: old.Header.Time + 1, Root: (&chain.Block{}).ReadingsRoot(), Difficulty: params.Difficulty}}
	if err := chain.Solve(ctx, &fork.Header); err != nil {
		t.Fatal(err)
	}
	if err := r.AddBlock(ctx, fork); !errors.Is(err, chain.ErrForkTooDeep) {
		t.Fatalf("a block forking from block %d: %v", old.Header.Height, err)
	}
	if err := r.AddBlock(ctx, all[7]); err != nil && !errors.Is(err, chain.ErrDuplicateBlock) {
		t.Fatalf("an old block again: %v", err)
	}
	if err := r.AddBlock(ctx, b.block(chain.Hash{}, "after")); err != nil {
		t.Fatalf("a new block after the restart: %v", err)
	}
}

// startStored opens the store at path and starts a node on what it loads
// (LoadRecent), as a restart does.
func startStored(tb testing.TB, path string, params chain.Params, opts ...node.Option) (*node.Node, *store.Store) {
	tb.Helper()
	st, err := store.Open(path, params)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := st.LoadRecent()
	if err != nil {
		st.Close()
		tb.Fatal(err)
	}
	n, err := node.New(params, key(9), append(opts, node.WithStore(st, *s))...)
	if err != nil {
		st.Close()
		tb.Fatal(err)
	}
	return n, st
}

// TestReadsBesideCommits: the block and reading lookups that read bodies
// back from the store after releasing the node's lock (chain.Ref) give
// whole, consistent answers while blocks are added and older ones become
// final and leave memory. Run with -race.
func TestReadsBesideCommits(t *testing.T) {
	const blocks = 400
	params := chain.TestParams("reads-beside")
	params.MaxReorgDepth, params.FinalAge = 5, 0
	n, st := startStored(t, filepath.Join(t.TempDir(), "chain"), params)
	defer st.Close()
	b := newBuilder(t, params)
	all := make([]*chain.Block, blocks)
	for i := range all {
		all[i] = b.block(chain.Hash{}, fmt.Sprintf("s%d", i%7), "x")
	}

	var added atomic.Int64 // blocks added so far
	var old atomic.Int64   // lookups of blocks whose bodies had left memory
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for r := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				have := added.Load()
				page, err := n.Blocks(math.MaxUint64, 50)
				if err != nil {
					errs <- fmt.Errorf("reader %d: blocks: %w", r, err)
					return
				}
				headers, err := n.Headers(math.MaxUint64, 50)
				if err != nil {
					errs <- fmt.Errorf("reader %d: headers: %w", r, err)
					return
				}
				// Whole pages (the chain had at least have blocks above
				// genesis before they were asked for), linked, each block
				// the one added at its height.
				full := int(min(50, have+1))
				if len(page) < full || len(headers) < full {
					errs <- fmt.Errorf("reader %d: pages of %d blocks and %d headers with %d blocks added", r, len(page), len(headers), have)
					return
				}
				for j, blk := range page {
					h := blk.Header.Height
					if j > 0 && page[j-1].Header.Parent != blk.Hash() || h > 0 && blk.Hash() != all[h-1].Hash() {
						errs <- fmt.Errorf("reader %d: page of %d blocks wrong at %d (height %d)", r, len(page), j, h)
						return
					}
				}
				for j, hdr := range headers {
					if j > 0 && headers[j-1].Parent != hdr.Hash() || hdr.Height > 0 && hdr.Hash() != all[hdr.Height-1].Hash() {
						errs <- fmt.Errorf("reader %d: page of %d headers wrong at %d (height %d)", r, len(headers), j, hdr.Height)
						return
					}
				}
				if have == 0 {
					continue
				}
				h := uint64(i)%uint64(have) + 1
				want := all[h-1]
				if info, ok, _ := n.LocateReading(want.Readings[1].ID()); !ok || info.Height != h || info.Block != want.Hash() {
					errs <- fmt.Errorf("reader %d: reading of block %d: %+v, %v", r, h, info, ok)
					return
				}
				if info, ok, _ := n.BlockByHeight(h); !ok || info.Block.Hash() != want.Hash() || !info.Main {
					errs <- fmt.Errorf("reader %d: block at %d: %v", r, h, ok)
					return
				}
				if h+chain.KeepBodies < uint64(have) {
					old.Add(1)
				}
			}
		})
	}
	ctx := context.Background()
	for i, blk := range all {
		if err := n.AddBlock(ctx, blk); err != nil {
			t.Fatal(err)
		}
		added.Store(int64(i + 1))
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if f := n.FinalHeight(); f != blocks-uint64(params.MaxReorgDepth) {
		t.Errorf("final height %d, want %d: the old blocks never left memory", f, blocks-params.MaxReorgDepth)
	}
	if old.Load() < 10 {
		t.Errorf("%d lookups of blocks read back from the store while blocks were added: too few to tell", old.Load())
	}
}

package node_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/store"
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
	start := func(st *store.Store, s *store.State) *node.Node {
		n, err := node.New(params, key(9), node.WithClock(now),
			node.WithStore(st, node.State{Main: s.Main, Side: s.Side, Pending: s.Pending, Final: s.Final}))
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
		if got, ok := r.BlockAt(uint64(h)); !ok || got.Hash() != blk.Hash() {
			t.Fatalf("BlockAt(%d)", h)
		}
		if info, ok := r.BlockByHash(blk.Hash()); !ok || !info.Main || info.Block.Hash() != blk.Hash() {
			t.Fatalf("Block(%s) at %d", blk.Hash().Short(), h)
		}
		if !r.IsMainChain(blk.Hash()) {
			t.Fatalf("block %d not on the main chain", h)
		}
		id := blk.Readings[0].ID()
		if rs, ok := r.FindReading(id); !ok || rs.Height != uint64(h) || rs.Reading.ID() != id || rs.Final != (uint64(h) <= wantFinal) {
			t.Fatalf("reading of block %d: %+v, %v", h, rs, ok)
		}
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

package store

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// TestLoadRecent: a store whose commits carry the chain's final height
// loads from the final block: the blocks above it and the side blocks,
// found through the side index a new store keeps, or by looking at every
// block record in a store written without it (which LoadRecent then
// indexes), and through the index again after a reopen; each time the
// result is Load's, cut at the final block, and a chain resumed from it
// is the chain that wrote it. The store answers the chain's archive
// lookups of the height index.
//
//	g ── 1 ── … ── 38 ── 39 ── 40                 side after the reorganisation
//	                └── s39 ── s40 ── s41          main; final 38
func TestLoadRecent(t *testing.T) {
	p := chain.TestParams("recent")
	p.MaxReorgDepth, p.FinalAge = 3, 0
	path := filepath.Join(t.TempDir(), "chain")
	s, err := Open(path, p)
	if err != nil {
		t.Fatal(err)
	}
	c, err := chain.New(p)
	if err != nil {
		t.Fatal(err)
	}
	var clock time.Time
	add := func(b *chain.Block) *chain.Update {
		t.Helper()
		clock = time.UnixMilli(max(clock.Add(time.Minute).UnixMilli(), b.Header.Time))
		u, err := c.AddBlock(b, clock)
		if err != nil {
			t.Fatalf("AddBlock %d: %v", b.Header.Height, err)
		}
		if err := s.Commit(Commit{Blocks: []*chain.Block{b}, Updates: []*chain.Update{u}}); err != nil {
			t.Fatal(err)
		}
		return u
	}
	mine := func(parent *chain.Block, tag string, i int) *chain.Block {
		t.Helper()
		rs := makeReadings(p, tag, i, parent.Header.Time-p.GenesisTime+1)
		b := &chain.Block{Readings: rs}
		b.Header = chain.Header{Version: chain.HeaderVersion, Height: parent.Header.Height + 1, Parent: parent.Hash(),
			Time: parent.Header.Time + 1000, Root: b.ReadingsRoot(), Count: uint32(len(rs)), Difficulty: p.Difficulty}
		if err := chain.Solve(context.Background(), &b.Header); err != nil {
			t.Fatal(err)
		}
		return b
	}
	var main []*chain.Block
	parent := p.Genesis()
	for i := range 40 {
		parent = mine(parent, "m", i)
		add(parent)
		main = append(main, parent)
	}
	parent = main[37]
	for i := range 3 {
		parent = mine(parent, "s", i)
		add(parent)
	}
	if c.Height() != 41 || c.FinalHeight() != 38 || c.IsMain(main[39].Hash()) {
		t.Fatalf("chain at %d, final %d", c.Height(), c.FinalHeight())
	}
	wantSide := []chain.Hash{main[38].Hash(), main[39].Hash()}

	check := func(st *State) {
		t.Helper()
		full, err := s.Load()
		if err != nil {
			t.Fatal(err)
		}
		if st.Final == nil || st.Final.Hash() != main[37].Hash() {
			t.Fatal("LoadRecent: not the final block")
		}
		if !slices.EqualFunc(st.Main, full.Main[38:], func(a, b *chain.Block) bool { return a.Hash() == b.Hash() }) {
			t.Fatalf("LoadRecent: %d main blocks, not Load's above the final block", len(st.Main))
		}
		var side []chain.Hash
		for _, b := range st.Side {
			side = append(side, b.Hash())
		}
		if !slices.Equal(side, wantSide) && !slices.Equal(side, []chain.Hash{wantSide[1], wantSide[0]}) {
			t.Fatalf("LoadRecent: %d side blocks, want the 2 the reorganisation left", len(side))
		}
		// A chain resumed from it is the chain that wrote it.
		r, err := chain.New(p)
		if err != nil {
			t.Fatal(err)
		}
		r.SetArchive(s)
		if err := r.Resume(st.Final); err != nil {
			t.Fatal(err)
		}
		for _, b := range append(slices.Clone(st.Main), st.Side...) {
			if _, err := r.Restore(b, clock); err != nil {
				t.Fatalf("Restore %d: %v", b.Header.Height, err)
			}
		}
		if r.TipHash() != c.TipHash() || r.FinalHeight() != c.FinalHeight() || r.Len() != c.Len() {
			t.Fatalf("resumed: tip %s, final %d, %d blocks", r.TipHash().Short(), r.FinalHeight(), r.Len())
		}
		if b, ok := r.BlockAt(5); !ok || b.Hash() != main[4].Hash() {
			t.Fatal("resumed: block 5 not read back")
		}
	}

	// A new store keeps the side index from the start.
	st, err := s.LoadRecent()
	if err != nil {
		t.Fatal(err)
	}
	check(st)
	// A store written before the side index: LoadRecent looks at every
	// block record, then indexes the side blocks.
	lower, upper := prefixBounds(prefixSide)
	if err := s.db.DeleteRange(lower, upper, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Delete(keySideIndex, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if st, err = s.LoadRecent(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.lookup(keySideIndex); err != nil {
		t.Fatalf("LoadRecent did not index the side blocks: %v", err)
	}
	check(st)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(path, p); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err = s.LoadRecent()
	if err != nil {
		t.Fatal(err)
	}
	check(st)

	// The archive's lookups.
	for h, b := range main[:38] {
		if got, ok := s.MainHash(uint64(h + 1)); !ok || got != b.Hash() {
			t.Fatalf("MainHash(%d)", h+1)
		}
		if got, ok := s.MainHeight(b.Hash()); !ok || got != uint64(h+1) {
			t.Fatalf("MainHeight of block %d: %d, %v", h+1, got, ok)
		}
	}
	if got := s.MainHashes(3, 5); len(got) != 5 || got[0] != main[2].Hash() || got[4] != main[6].Hash() {
		t.Fatalf("MainHashes(3, 5): %d hashes", len(got))
	}
	if got := s.MainHashes(40, 5); len(got) != 2 || got[1] != c.TipHash() {
		t.Fatalf("MainHashes to the tip: %d hashes", len(got))
	}
	if _, ok := s.MainHeight(main[39].Hash()); ok {
		t.Fatal("MainHeight of a side block")
	}
	if _, ok := s.MainHeight(chain.Hash{1}); ok {
		t.Fatal("MainHeight of an unknown block")
	}
	if _, ok := s.MainHash(42); ok {
		t.Fatal("MainHash above the tip")
	}
}

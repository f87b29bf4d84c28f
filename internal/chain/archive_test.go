package chain_test

import (
	"slices"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// archivedChains returns a chain of n blocks (one reading each) with a
// side branch of two blocks forking two blocks below the tip, built twice:
// ref keeps everything in memory, c has an archive and is compacted, so
// that it keeps entries only from the final height up. With a final depth
// of 3 and no final age, c's final height is n-3.
//
//	g ── 1 ── … ── n-3 ── n-2 ── n-1 ── n      main; final n-3
//	                        └── s1 ── s2        side
func archivedChains(t *testing.T) (ref, c *chain.Chain, a *mapArchive, blocks, side []*chain.Block, rs []chain.Reading) {
	t.Helper()
	p := testParams(0)
	p.FinalAge = 0
	p.MaxReorgDepth = 3
	n := chain.KeepBodies + 40
	rs = poolReadings(n + 2)
	ref = mustChain(t, p)
	blocks = growChain(t, ref, n, func(i int) []chain.Reading { return rs[i : i+1] })
	now := time.UnixMilli(ref.Tip().Header.Time).Add(time.Hour) // past the tie window
	parent := blocks[n-3]
	for i := range 2 {
		b := solve(t, blockOn(parent, p, rs[n+i:n+i+1], parent.Header.Time+1))
		mustAdd(t, ref, b, now)
		side = append(side, b)
		parent = b
	}

	c = mustChain(t, p)
	for _, b := range blocks {
		mustAdd(t, c, b, time.UnixMilli(b.Header.Time))
	}
	for _, b := range side {
		mustAdd(t, c, b, now)
	}
	a = newMapArchive(c)
	c.SetArchive(a)
	c.Compact()
	if c.FinalHeight() != uint64(n-3) || ref.FinalHeight() != uint64(n-3) {
		t.Fatalf("final heights %d and %d, want %d", c.FinalHeight(), ref.FinalHeight(), n-3)
	}
	return ref, c, a, blocks, side, rs
}

// sameLookups checks that got answers every lookup as want does, for the
// blocks and readings given and for unknown ones.
func sameLookups(t *testing.T, want, got *chain.Chain, blocks, side []*chain.Block, rs []chain.Reading) {
	t.Helper()
	if got.Genesis() != want.Genesis() || got.TipHash() != want.TipHash() || got.Height() != want.Height() ||
		got.FinalHeight() != want.FinalHeight() || got.Len() != want.Len() {
		t.Fatalf("genesis, tip, height, final or length differ: %d/%d blocks, final %d/%d",
			got.Len(), want.Len(), got.FinalHeight(), want.FinalHeight())
	}
	for h := uint64(0); h <= want.Height()+1; h++ {
		wh, wok := want.HashAt(h)
		gh, gok := got.HashAt(h)
		wb, _ := want.BlockAt(h)
		gb, _ := got.BlockAt(h)
		if wh != gh || wok != gok || (wb == nil) != (gb == nil) || (wb != nil && wb.Hash() != gb.Hash()) {
			t.Fatalf("height %d: HashAt or BlockAt differ", h)
		}
	}
	hashes := []chain.Hash{want.Genesis(), {7}}
	for _, b := range append(slices.Clone(blocks), side...) {
		hashes = append(hashes, b.Hash())
	}
	for _, h := range hashes {
		wh, wok := want.Header(h)
		gh, gok := got.Header(h)
		wb, wbok := want.Block(h)
		gb, gbok := got.Block(h)
		if wh != gh || wok != gok || wbok != gbok || (wb != nil && wb.Hash() != gb.Hash()) ||
			want.HasBlock(h) != got.HasBlock(h) || want.IsMain(h) != got.IsMain(h) {
			t.Fatalf("block %s: Header, Block, HasBlock or IsMain differ", h.Short())
		}
		if wl, gl := want.LocatorFrom(h), got.LocatorFrom(h); !slices.Equal(wl, gl) {
			t.Fatalf("LocatorFrom(%s): %d hashes, want %d", h.Short(), len(gl), len(wl))
		}
		for _, max := range []int{1, 5, 1000} {
			wbs, werr := want.BlocksAfter([]chain.Hash{h, {9}}, max, 1<<20)
			gbs, gerr := got.BlocksAfter([]chain.Hash{h, {9}}, max, 1<<20)
			if (werr == nil) != (gerr == nil) || len(wbs) != len(gbs) {
				t.Fatalf("BlocksAfter(%s, %d): %d blocks, %v; want %d, %v", h.Short(), max, len(gbs), gerr, len(wbs), werr)
			}
			for i := range wbs {
				if wbs[i].Hash() != gbs[i].Hash() {
					t.Fatalf("BlocksAfter(%s): block %d differs", h.Short(), i)
				}
			}
		}
	}
	if !slices.Equal(want.Locator(), got.Locator()) {
		t.Fatal("Locator differs")
	}
	for i := range rs {
		id := readingID(&rs[i])
		wr, wb, wok := want.FindReading(id)
		gr, gb, gok := got.FindReading(id)
		if wok != gok || wr != gr || (wb != nil && wb.Hash() != gb.Hash()) || want.HasReading(id) != got.HasReading(id) {
			t.Fatalf("reading %d: FindReading or HasReading differ (%v, want %v)", i, gok, wok)
		}
	}
}

// TestCompactedLookups: a chain that let its final blocks go to an archive
// answers every lookup about them as a chain that holds everything, and its
// rules see them: a final block again is a duplicate, a block on an old
// final parent forks too deep, a checkpoint against an old block fails.
func TestCompactedLookups(t *testing.T) {
	ref, c, a, blocks, side, rs := archivedChains(t)
	before := a.reads
	sameLookups(t, ref, c, blocks, side, rs)
	if a.reads == before {
		t.Fatal("nothing was read from the archive")
	}
	// The rules, on both chains alike.
	now := time.UnixMilli(ref.Tip().Header.Time).Add(time.Hour)
	for _, x := range []*chain.Chain{ref, c} {
		_, err := x.AddBlock(blocks[2], now)
		checkCode(t, err, chain.ErrDuplicateBlock)
		_, err = x.AddBlock(solve(t, blockOn(blocks[3], x.Params(), nil, blocks[3].Header.Time+1)), now)
		checkCode(t, err, chain.ErrForkTooDeep)
		_, err = x.AddBlock(solve(t, blockOn(blocks[len(blocks)-1], x.Params(), rs[5:6], now.UnixMilli())), now)
		checkCode(t, err, chain.ErrDuplicateReading)
		checkCode(t, x.SetCheckpoint(chain.Checkpoint{Height: 4, Hash: blocks[4].Hash()}), chain.ErrCheckpoint)
		if err := x.SetCheckpoint(chain.Checkpoint{Height: 4, Hash: blocks[3].Hash()}); err != nil {
			t.Fatalf("a checkpoint on an old main block: %v", err)
		}
	}
	// The chain keeps growing and compacting alike.
	fresh := poolReadings(len(rs) + 10)[len(rs):]
	more := growChain(t, c, 10, func(i int) []chain.Reading { return fresh[i : i+1] })
	for _, b := range more {
		mustAdd(t, ref, b, time.UnixMilli(b.Header.Time))
		a.add(b)
	}
	c.Compact()
	sameLookups(t, ref, c, append(blocks, more...), side, append(rs, fresh...))
}

// TestResume: a chain resumed from its final block, with the blocks above
// it and the side branch restored, answers as the chain that made them.
func TestResume(t *testing.T) {
	ref, c, a, blocks, side, rs := archivedChains(t)
	r := mustChain(t, ref.Params())
	final, _ := ref.BlockAt(ref.FinalHeight())
	if err := r.Resume(final); err == nil {
		t.Fatal("Resume without an archive")
	}
	r.SetArchive(a)
	if err := r.Resume(side[0]); err == nil {
		t.Fatal("Resume from a block the archive holds elsewhere")
	}
	if err := r.Resume(final); err != nil {
		t.Fatal(err)
	}
	restart := time.UnixMilli(ref.Tip().Header.Time).Add(time.Hour)
	for _, b := range append(slices.Clone(blocks[final.Header.Height:]), side...) {
		if _, err := r.Restore(b, restart); err != nil {
			t.Fatalf("Restore(height %d): %v", b.Header.Height, err)
		}
	}
	if err := r.Resume(final); err == nil {
		t.Fatal("Resume of a chain that holds blocks")
	}
	sameLookups(t, c, r, blocks, side, rs)
	// Resuming keeps what was final final, time or not.
	if got, _ := r.Status(), r.FinalHeight(); got.Height != ref.Height() || r.FinalHeight() != ref.FinalHeight() {
		t.Fatalf("resumed at height %d, final %d", got.Height, r.FinalHeight())
	}
}

// TestCompactKeepsSideForks: when time makes blocks final above a side
// branch's fork point before the next block prunes the branch, Compact
// keeps the entries from the fork point up, so that the branch still
// leads to the main chain; once a block prunes it they go.
func TestCompactKeepsSideForks(t *testing.T) {
	p := testParams(0)
	p.MaxReorgDepth = 2
	p.FinalAge = time.Minute
	c := mustChain(t, p)
	blocks := growChain(t, c, 20, nil)
	side := solve(t, blockOn(blocks[9], p, nil, blocks[9].Header.Time+1)) // forks at height 10
	mustAdd(t, c, side, time.UnixMilli(c.Tip().Header.Time+3000))
	a := newMapArchive(c)
	c.SetArchive(a)
	now := time.UnixMilli(c.Tip().Header.Time).Add(time.Hour)
	c.Advance(now) // final above the fork point; no block yet to prune the branch
	c.Compact()
	if c.FinalHeight() != 18 || !c.HasBlock(side.Hash()) {
		t.Fatalf("final height %d, side block known %v; want 18, true", c.FinalHeight(), c.HasBlock(side.Hash()))
	}
	loc := c.LocatorFrom(side.Hash())
	if loc[0] != side.Hash() || loc[1] != blocks[9].Hash() {
		t.Fatal("the side branch does not lead to its fork point")
	}
	if _, err := c.AddBlock(solve(t, blockOn(side, p, nil, side.Header.Time+1)), now); err == nil {
		t.Fatal("a side branch below the final height grew")
	}
	// The next block prunes the branch; the entries below the final
	// block go with the next compaction.
	next := mine(t, c, nil, now)
	u := mustAdd(t, c, next, now)
	a.add(next)
	if !slices.Contains(u.Pruned, side.Hash()) {
		t.Fatal("the dead side branch was not pruned")
	}
	before := c.Len()
	c.Compact()
	if c.Len() != before || !c.IsMain(blocks[3].Hash()) || c.HasBlock(side.Hash()) {
		t.Fatal("lookups changed with the compaction")
	}
	if h, ok := c.HashAt(5); !ok || h != blocks[4].Hash() {
		t.Fatal("HashAt(5) after the compaction")
	}
}

package chain_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// growChain adds n blocks to c's tip, each holding the readings rs(i) (nil:
// empty blocks), at one-second steps after the tip.
func growChain(t testing.TB, c *chain.Chain, n int, rs func(i int) []chain.Reading) []*chain.Block {
	t.Helper()
	var out []*chain.Block
	for i := 0; i < n; i++ {
		now := time.UnixMilli(c.Tip().Header.Time + 1000)
		var readings []chain.Reading
		if rs != nil {
			readings = rs(i)
		}
		b := mine(t, c, readings, now)
		mustAdd(t, c, b, now)
		out = append(out, b)
	}
	return out
}

func TestLocator(t *testing.T) {
	p := testParams(0)
	c := mustChain(t, p)
	heights := map[chain.Hash]uint64{c.Genesis(): 0}
	grown := 0
	for _, height := range []int{0, 1, 2, 9, 10, 11, 12, 20, 100, 1000, 5000} {
		for _, b := range growChain(t, c, height-grown, nil) {
			heights[b.Hash()] = b.Header.Height
		}
		grown = height
		t.Run(fmt.Sprint(height), func(t *testing.T) {
			loc := c.Locator()
			if len(loc) == 0 || len(loc) > chain.MaxLocator {
				t.Fatalf("locator of %d hashes", len(loc))
			}
			if loc[0] != c.TipHash() || loc[len(loc)-1] != c.Genesis() {
				t.Fatal("locator does not run from the tip to the genesis")
			}
			var hs []uint64
			for _, h := range loc {
				ht, ok := heights[h]
				if !ok || !c.IsMain(h) {
					t.Fatalf("locator hash %s is not a main-chain block", h.Short())
				}
				hs = append(hs, ht)
			}
			// The first ten (or all, if fewer) are consecutive.
			for i := 1; i < len(hs) && i < 10; i++ {
				if hs[i] != hs[i-1]-1 {
					t.Fatalf("heights %v: entry %d is not consecutive", hs, i)
				}
			}
			if height >= 9 && len(hs) < 10 {
				t.Fatalf("heights %v: fewer than 10 entries", hs)
			}
			// Then the gaps double, except the last one, clamped to genesis.
			for i := 10; i < len(hs); i++ {
				gap, prev := hs[i-1]-hs[i], hs[i-2]-hs[i-1]
				if hs[i] >= hs[i-1] || gap > 2*prev || (i < len(hs)-1 && gap != 2*prev) {
					t.Fatalf("heights %v: gap %d after %d at entry %d", hs, gap, prev, i)
				}
			}
			// Logarithmic size: ten, then one per doubling, then genesis.
			maxLen := 1
			if height > 0 {
				maxLen = min(height+1, 10+bitLen(height)+1)
			}
			if len(hs) > maxLen {
				t.Fatalf("%d entries for height %d, want at most %d", len(hs), height, maxLen)
			}
		})
	}
}

func bitLen(n int) int {
	b := 0
	for ; n > 0; n >>= 1 {
		b++
	}
	return b
}

// forkedChains returns a chain a (20 blocks) and a chain b that shares its
// first 8 blocks and then follows its own branch of 7 blocks. The fork is
// deeper than the default final depth: the chains use deepParams.
func forkedChains(t *testing.T) (a, b *chain.Chain, aBlocks, bBlocks []*chain.Block) {
	t.Helper()
	p := deepParams()
	a, b = mustChain(t, p), mustChain(t, p)
	rs := poolReadings(60)
	common := growChain(t, a, 8, func(i int) []chain.Reading { return rs[i : i+1] })
	for _, blk := range common {
		mustAdd(t, b, blk, at(p, 1e9))
	}
	aOwn := growChain(t, a, 12, func(i int) []chain.Reading { return rs[10+2*i : 11+2*i+i%2] })
	bOwn := growChain(t, b, 7, func(i int) []chain.Reading { return rs[40+i : 41+i] })
	return a, b, append(common, aOwn...), append(common, bOwn...)
}

func TestBlocksAfter(t *testing.T) {
	a, b, aBlocks, bBlocks := forkedChains(t)
	if a.Height() != 20 || b.Height() != 15 || aBlocks[8].Hash() == bBlocks[8].Hash() {
		t.Fatal("fixture is not forked at height 8")
	}
	const big = 1 << 30
	same := func(got, want []*chain.Block) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("got %d blocks, want %d", len(got), len(want))
		}
		for i := range got {
			if got[i].Hash() != want[i].Hash() {
				t.Fatalf("block %d: got height %d, want %d", i, got[i].Header.Height, want[i].Header.Height)
			}
		}
	}
	// From b's locator, a sends everything after the fork point (height 8).
	got, err := a.BlocksAfter(b.Locator(), big, big)
	if err != nil {
		t.Fatal(err)
	}
	same(got, aBlocks[8:])
	// Still so when a knows b's branch as a side branch: only the main chain counts.
	for _, blk := range bBlocks[8:] {
		mustAdd(t, a, blk, at(a.Params(), 1e9))
	}
	if a.Height() != 20 || a.IsMain(bBlocks[8].Hash()) {
		t.Fatal("b's shorter branch became main")
	}
	got, err = a.BlocksAfter(b.Locator(), big, big)
	if err != nil {
		t.Fatal(err)
	}
	same(got, aBlocks[8:])
	// b catches up: applying the answer makes b's tip a's.
	for _, blk := range got {
		mustAdd(t, b, blk, at(a.Params(), 1e9))
	}
	if b.TipHash() != a.TipHash() {
		t.Fatal("b did not reach a's tip from the blocks sent")
	}
	// Limits: the count, then the bytes beyond the first block.
	loc := []chain.Hash{aBlocks[4].Hash(), a.Genesis()} // a's block at height 5
	got, _ = a.BlocksAfter(loc, 3, big)
	same(got, aBlocks[5:8])
	got, _ = a.BlocksAfter(loc, 0, big)
	same(got, nil)
	size := aBlocks[5].EncodedSize() + aBlocks[6].EncodedSize()
	got, _ = a.BlocksAfter(loc, big, size)
	same(got, aBlocks[5:7])
	got, _ = a.BlocksAfter(loc, big, size-1)
	same(got, aBlocks[5:6])
	got, _ = a.BlocksAfter(loc, big, 1) // one block even if it alone is larger
	same(got, aBlocks[5:6])
	got, _ = a.BlocksAfter(loc, big, 0)
	same(got, aBlocks[5:6])
	// The first locator hash on the main chain counts, even if later ones are higher.
	got, _ = a.BlocksAfter([]chain.Hash{{0xee}, aBlocks[17].Hash(), aBlocks[2].Hash()}, big, big)
	same(got, aBlocks[18:])
	// Up to date: nothing to send.
	got, err = a.BlocksAfter(a.Locator(), big, big)
	if err != nil || len(got) != 0 {
		t.Fatalf("from its own tip: %d blocks, %v", len(got), err)
	}
	// Genesis only: the whole chain.
	got, _ = a.BlocksAfter([]chain.Hash{a.Genesis()}, big, big)
	same(got, aBlocks)
	// Nothing in common: another network, unknown or side-branch hashes, none.
	other := mustChain(t, chain.TestParams("other"))
	growChain(t, other, 3, nil)
	for name, loc := range map[string][]chain.Hash{
		"other network": other.Locator(),
		"unknown":       {{1}, {2}},
		"side branch":   {bBlocks[14].Hash(), bBlocks[12].Hash(), bBlocks[9].Hash()},
		"empty":         nil,
	} {
		_, err := a.BlocksAfter(loc, big, big)
		checkCode(t, err, chain.ErrBadGenesis)
		if !chain.IsPeerFault(err) {
			t.Errorf("%s: not a peer fault", name)
		}
	}
}

// TestLocatorFromSideBranch: a locator started at a side-branch block walks
// that branch's ancestors, so a peer whose main chain is that branch
// continues exactly after it (what a sync of a long fork needs).
func TestLocatorFromSideBranch(t *testing.T) {
	p := deepParams() // the side branch forks 35 blocks down
	c, d := mustChain(t, p), mustChain(t, p)
	common := growChain(t, c, 5, nil)
	for _, b := range common {
		mustAdd(t, d, b, at(p, 1e9))
	}
	growChain(t, c, 35, nil) // c's main chain: 40 blocks
	rs := poolReadings(40)
	side := growChain(t, d, 20, func(i int) []chain.Reading { return rs[i : i+1] })
	for _, b := range side {
		mustAdd(t, c, b, at(p, 1e9)) // a side branch for c: less work
	}
	sideTip := side[len(side)-1].Hash()
	if c.TipHash() == sideTip || c.Height() != 40 {
		t.Fatal("side branch took over")
	}
	loc := c.LocatorFrom(sideTip)
	if loc[0] != sideTip || loc[len(loc)-1] != c.Genesis() {
		t.Fatalf("locator from %s: starts %s, ends %s", sideTip.Short(), loc[0].Short(), loc[len(loc)-1].Short())
	}
	for i, h := range loc {
		if !d.IsMain(h) {
			t.Errorf("locator entry %d (%s) is not an ancestor of the side tip", i, h.Short())
		}
	}
	if got := c.LocatorFrom(chain.Hash{0xff}); got[0] != c.TipHash() {
		t.Error("an unknown start does not fall back to the tip")
	}
	// d continues after the side tip, with nothing resent.
	more := growChain(t, d, 10, func(i int) []chain.Reading { return rs[20+i : 21+i] })
	got, err := d.BlocksAfter(loc, 512, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(more) || got[0].Hash() != more[0].Hash() {
		t.Fatalf("BlocksAfter from the side tip returned %d blocks, want the %d new ones", len(got), len(more))
	}
}

// TestRestore: a chain rebuilt from stored blocks with Restore, side branch
// included, has the same tip and readings as the original; Restore refuses
// blocks that do not link.
func TestRestore(t *testing.T) {
	p := deepParams() // as forkedChains
	a, b, aBlocks, bBlocks := forkedChains(t)
	_ = b
	for _, blk := range bBlocks[8:] { // b's own branch becomes a side branch of a
		mustAdd(t, a, blk, at(p, 1e9))
	}
	r := mustChain(t, p)
	for _, blk := range append(aBlocks, bBlocks[8:]...) {
		if _, err := r.Restore(blk, at(p, 1e9)); err != nil {
			t.Fatal(err)
		}
	}
	if r.TipHash() != a.TipHash() || r.Len() != a.Len() {
		t.Fatalf("restored tip %s (%d blocks), want %s (%d)", r.TipHash().Short(), r.Len(), a.TipHash().Short(), a.Len())
	}
	for _, id := range mainIDs(a) {
		if !r.HasReading(id) {
			t.Fatalf("restored chain lacks reading %s", id.Short())
		}
	}
	orphan := *aBlocks[3]
	orphan.Header.Parent = chain.Hash{9}
	_, err := mustChain(t, p).Restore(&orphan, at(p, 1e9))
	checkCode(t, err, chain.ErrUnknownParent)
	_, err = r.Restore(aBlocks[0], at(p, 1e9))
	checkCode(t, err, chain.ErrDuplicateBlock)
}

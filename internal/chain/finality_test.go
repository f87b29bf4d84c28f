package chain_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// mainChain returns the main-chain blocks of c, genesis first.
func mainChain(c *chain.Chain) []*chain.Block {
	var out []*chain.Block
	for h := uint64(0); h <= c.Height(); h++ {
		b, _ := c.BlockAt(h)
		out = append(out, b)
	}
	return out
}

// sibling returns an unsolved block on parent with a nonce of its own, so
// that siblings with the same readings differ.
func sibling(parent *chain.Block, p chain.Params, rs []chain.Reading, nonce uint64) *chain.Block {
	b := blockOn(parent, p, rs, parent.Header.Time+1000)
	b.Header.Nonce = nonce
	return b
}

// checkUnchanged asserts that c's main chain is still main.
func checkUnchanged(t *testing.T, c *chain.Chain, main []*chain.Block) {
	t.Helper()
	if c.Height() != uint64(len(main)-1) {
		t.Fatalf("height %d, want %d", c.Height(), len(main)-1)
	}
	for h, b := range main {
		if got, _ := c.BlockAt(uint64(h)); got.Hash() != b.Hash() {
			t.Fatalf("main chain changed at height %d", h)
		}
	}
}

// TestFinalHeight: a main-chain block is final once it has at least
// MaxReorgDepth blocks on top of it and has been on the main chain for
// FinalAge, by the clock passed to Process, Advance or Restore. The final
// height never goes down.
func TestFinalHeight(t *testing.T) {
	// Depth alone: FinalAge 0.
	p := testParams(0)
	p.FinalAge = 0
	c := mustChain(t, p)
	for h := 0; h <= 20; h++ {
		want := uint64(max(0, h-chain.DefaultMaxReorgDepth))
		if c.Height() != uint64(h) || c.FinalHeight() != want {
			t.Fatalf("height %d: FinalHeight %d, want %d", c.Height(), c.FinalHeight(), want)
		}
		growChain(t, c, 1, nil)
	}

	// Depth and age: growChain adds block i at genesis + i s, so none is a
	// minute old until the clock says so.
	p = testParams(0)
	if p.FinalAge != chain.DefaultFinalAge || chain.DefaultFinalAge != time.Minute {
		t.Fatalf("FinalAge %v, want the default of a minute", p.FinalAge)
	}
	c = mustChain(t, p)
	blocks := growChain(t, c, 20, nil)
	if c.FinalHeight() != 0 {
		t.Fatalf("blocks of at most 20 s are final: FinalHeight %d", c.FinalHeight())
	}
	since := func(i int) time.Time { return time.UnixMilli(blocks[i-1].Header.Time) } // when block i joined
	for _, step := range []struct {
		now  time.Time
		want uint64
	}{
		{since(4).Add(time.Minute - time.Millisecond), 3},
		{since(4).Add(time.Minute), 4},
		{since(20).Add(time.Hour), 14}, // depth bounds it
		{since(1), 14},                 // never down
	} {
		if got := c.Advance(step.now); got != step.want || c.FinalHeight() != step.want {
			t.Fatalf("Advance(%v): %d, want %d", step.now.Sub(since(1)), got, step.want)
		}
	}

	// Restored blocks join the main chain at the time of the restart: a node
	// that was down holds nothing final until it has been up a FinalAge.
	r := mustChain(t, p)
	restart := since(20).Add(24 * time.Hour)
	for _, b := range blocks {
		if _, err := r.Restore(b, restart); err != nil {
			t.Fatal(err)
		}
	}
	if r.FinalHeight() != 0 || r.Advance(restart.Add(time.Minute-1)) != 0 || r.Advance(restart.Add(time.Minute)) != 14 {
		t.Fatalf("restored chain: FinalHeight %d", r.FinalHeight())
	}
}

// TestForkTooDeep: on a main chain of 10 blocks with the default depth of 6,
// blocks 0 to 4 are final. A block whose parent is a main-chain block below
// the final height would disconnect a final block: it is refused with
// ErrForkTooDeep, not the sender's fault, and neither stored nor relayed.
// A branch forking at the final height may still win, disconnecting exactly
// MaxReorgDepth blocks.
//
//	g ── 1 ── 2 ── 3 ── 4 ── 5 ── … ── 10     main; FinalHeight 4
//	          └── x (refused)  └── 5' ── … ── 11'   wins: 6 blocks leave
func TestForkTooDeep(t *testing.T) {
	p := testParams(0)
	p.FinalAge = 0 // depth alone; TestFinalNeverLeaves has the age
	c := mustChain(t, p)
	growChain(t, c, 10, nil)
	main := mainChain(c)
	late := time.UnixMilli(c.Tip().Header.Time).Add(time.Hour) // no tie is won
	if c.Advance(late) != 4 {
		t.Fatalf("FinalHeight %d, want 4", c.FinalHeight())
	}
	rs := poolReadings(20)
	var sides []chain.Hash
	for parent := 0; parent < 10; parent++ {
		b := sibling(main[parent], p, rs[parent:parent+1], 1)
		lenBefore := c.Len()
		u, err := c.AddBlock(b, late)
		if parent < 4 {
			checkCode(t, err, chain.ErrForkTooDeep)
			if chain.IsPeerFault(err) || u != nil {
				t.Fatalf("parent at %d: a fork too deep is a peer fault or gives an update", parent)
			}
			if c.Len() != lenBefore || c.HasBlock(b.Hash()) {
				t.Fatalf("parent at %d: the refused block was stored", parent)
			}
		} else {
			checkCode(t, err, 0)
			if u.TipChanged || c.Len() != lenBefore+1 {
				t.Fatalf("parent at %d: update %+v", parent, u)
			}
			sides = append(sides, b.Hash())
		}
		if n, _ := c.SideLen(); n != len(sides) {
			t.Fatalf("parent at %d: %d side blocks, want %d", parent, n, len(sides))
		}
		checkUnchanged(t, c, main)
	}

	// A branch with more work that forks below the final height never
	// wins: its first block is refused, so the rest have no parent.
	deep := []*chain.Block{main[2]}
	for i := range 12 {
		deep = append(deep, sibling(deep[len(deep)-1], p, nil, 2))
		_, err := c.AddBlock(deep[i+1], late)
		if i == 0 {
			checkCode(t, err, chain.ErrForkTooDeep)
		} else {
			checkCode(t, err, chain.ErrUnknownParent)
		}
	}
	checkUnchanged(t, c, main)

	// A branch from the highest final block wins by work: it disconnects
	// exactly MaxReorgDepth blocks. The old blocks then fork below the new
	// final height and are pruned at once, with every side block.
	branch := []*chain.Block{main[4]}
	var u *chain.Update
	for i := range 7 {
		branch = append(branch, sibling(branch[len(branch)-1], p, nil, 3))
		var err error
		u, err = c.AddBlock(branch[i+1], late)
		checkCode(t, err, 0)
		if i < 6 && u.TipChanged {
			t.Fatalf("branch block %d took the tip early", i+1)
		}
	}
	if !u.TipChanged || c.TipHash() != branch[7].Hash() || len(u.Disconnected) != chain.DefaultMaxReorgDepth || c.FinalHeight() != 5 {
		t.Fatalf("reorganisation: tip changed %v, %d disconnected, final %d", u.TipChanged, len(u.Disconnected), c.FinalHeight())
	}
	want := append(hashesOf(main[5:]), sides...)
	got := slices.Clone(u.Pruned)
	slices.SortFunc(got, cmpHash)
	slices.SortFunc(want, cmpHash)
	if !slices.Equal(got, want) {
		t.Fatalf("pruned %d blocks, want the 6 old main blocks and the %d side blocks", len(got), len(sides))
	}
	if n, bytes := c.SideLen(); n != 0 || bytes != 0 || c.Len() != 12 {
		t.Fatalf("after the reorganisation: %d side blocks (%d bytes), %d blocks", n, bytes, c.Len())
	}
	for _, h := range want {
		if c.HasBlock(h) {
			t.Fatalf("pruned block %s still known", h.Short())
		}
	}
}

// TestFinalNeverLeaves: with FinalAge, the final height can rise while no
// tip moves (Advance), above a side branch that the next tip change would
// prune. That branch may not grow: its next block forks below the final
// height, so it is refused, and no final block ever leaves the main chain.
//
//	g ── a1 ── a2 ── a3 ── a4      final height 0, then 2 a minute later
//	      └── s2 ── s3 ── s4 ── s5   s3 refused: it would disconnect a2
func TestFinalNeverLeaves(t *testing.T) {
	p := testParams(0)
	p.MaxReorgDepth = 2
	c := mustChain(t, p)
	t0 := at(p, 10_000)
	a := []*chain.Block{c.Tip()}
	for i := 1; i <= 4; i++ {
		a = append(a, sibling(a[i-1], p, nil, 0))
		mustAdd(t, c, a[i], t0)
	}
	s2 := sibling(a[1], p, nil, 1)
	mustAdd(t, c, s2, t0)
	if c.FinalHeight() != 0 {
		t.Fatalf("FinalHeight %d before any block is a minute old", c.FinalHeight())
	}
	later := t0.Add(2 * time.Minute)
	if c.Advance(later) != 2 || !c.HasBlock(s2.Hash()) {
		t.Fatalf("FinalHeight %d, s2 known %v; want 2, and s2 kept until a tip change", c.FinalHeight(), c.HasBlock(s2.Hash()))
	}
	s3 := sibling(s2, p, nil, 1)
	_, err := c.AddBlock(s3, later)
	checkCode(t, err, chain.ErrForkTooDeep)
	if c.HasBlock(s3.Hash()) || !c.IsMain(a[2].Hash()) {
		t.Fatal("the stale branch grew")
	}
	// The next tip change prunes it.
	a5 := sibling(a[4], p, nil, 0)
	if u := mustAdd(t, c, a5, later); !slices.Equal(u.Pruned, []chain.Hash{s2.Hash()}) || c.HasBlock(s2.Hash()) {
		t.Fatalf("pruned %d blocks, want s2", len(u.Pruned))
	}
}

// TestPruneSideBranches: side branches are dropped once their fork point
// falls below the final height, children before parents, and the update
// lists them for the owner to delete; the tree is then the main chain alone.
func TestPruneSideBranches(t *testing.T) {
	p := testParams(0)
	p.FinalAge = 0 // depth alone
	c := mustChain(t, p)
	growChain(t, c, 8, nil)
	main := mainChain(c)
	late := time.UnixMilli(c.Tip().Header.Time).Add(time.Hour)
	// A side block on each main block from the final height (2) up, and
	// on the one from height 3 a child of its own.
	forkAt := map[chain.Hash]uint64{}
	for h := c.FinalHeight(); h < 8; h++ {
		b := sibling(main[h], p, nil, 7)
		mustAdd(t, c, b, late)
		forkAt[b.Hash()] = h
		if h == 3 {
			child := sibling(b, p, nil, 8)
			mustAdd(t, c, child, late)
			forkAt[child.Hash()] = h
		}
	}
	if n, _ := c.SideLen(); n != 7 {
		t.Fatalf("%d side blocks, want 7", n)
	}
	for c.Height() < 20 {
		now := time.UnixMilli(c.Tip().Header.Time + 1000)
		u := mustAdd(t, c, mine(t, c, nil, now), now)
		var want []chain.Hash
		for h, at := range forkAt {
			if at < c.FinalHeight() {
				want = append(want, h)
				delete(forkAt, h)
			}
		}
		got := slices.Clone(u.Pruned)
		slices.SortFunc(got, cmpHash)
		slices.SortFunc(want, cmpHash)
		if !slices.Equal(got, want) {
			t.Fatalf("at height %d (final %d): pruned %d blocks, want %d", c.Height(), c.FinalHeight(), len(got), len(want))
		}
		for i, h := range u.Pruned {
			if c.HasBlock(h) {
				t.Fatalf("pruned block %s still known", h.Short())
			}
			// Children first: no block is pruned after its parent.
			if b, ok := blockByHash(main, h); ok && slices.Contains(u.Pruned[:i], b.Header.Parent) {
				t.Fatal("a parent was pruned before its child")
			}
		}
		if n, _ := c.SideLen(); n != len(forkAt) || c.Len() != int(c.Height())+1+n {
			t.Fatalf("at height %d: %d side blocks, %d blocks", c.Height(), n, c.Len())
		}
	}
	if n, bytes := c.SideLen(); n != 0 || bytes != 0 {
		t.Fatalf("side branches left: %d blocks, %d bytes", n, bytes)
	}
}

func blockByHash(bs []*chain.Block, h chain.Hash) (*chain.Block, bool) {
	for _, b := range bs {
		if b.Hash() == h {
			return b, true
		}
	}
	return nil, false
}

// TestSideCaps: an attacker at difficulty 0 mines siblings within the final
// depth, of the tip (equal work) and of its parent (less work). The side
// branches stay within MaxSideBlocks and MaxSideBytes: when full, a sibling
// with more work than the weakest leaf evicts it (Update.Pruned) and any
// other is refused with ErrTooManyForks, not a peer fault. The main chain
// never moves. 2,000 siblings of 150 readings fill the bytes cap; empty
// siblings fill the blocks cap (only 200 beyond it: at the cap each side
// block costs a scan of every side block).
func TestSideCaps(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		siblings int
		readings int
	}{{"bytes", 2000, 150}, {"blocks", chain.MaxSideBlocks + 200, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			if testing.Short() && tc.siblings > 2000 {
				t.Skip("fills the blocks cap")
			}
			p := testParams(0)
			p.MaxReadings = 200
			c := mustChain(t, p)
			cache := chain.NewSigCache(1000)
			c.SetSigCache(cache) // each reading is verified once
			growChain(t, c, 3, nil)
			main := mainChain(c)
			rs := poolReadings(tc.readings)
			late := time.UnixMilli(c.Tip().Header.Time).Add(time.Hour)
			rng := rand.New(rand.NewPCG(1, 2))
			var refused, evicted, full int
			for i := range tc.siblings {
				parent := main[1+rng.IntN(2)] // height 2: less work than the tip; height 3: a tie
				b := sibling(parent, p, rs, uint64(10+i))
				u, err := c.AddBlock(b, late)
				switch {
				case errors.Is(err, chain.ErrTooManyForks):
					checkCode(t, err, chain.ErrTooManyForks)
					if chain.IsPeerFault(err) || c.HasBlock(b.Hash()) {
						t.Fatal("a refused sibling blames the sender or was stored")
					}
					refused++
				case err != nil:
					t.Fatalf("sibling %d: %v", i, err)
				default:
					evicted += len(u.Pruned)
					for _, h := range u.Pruned {
						if c.HasBlock(h) {
							t.Fatalf("evicted block %s still known", h.Short())
						}
					}
				}
				n, bytes := c.SideLen()
				if n > chain.MaxSideBlocks || bytes > chain.MaxSideBytes {
					t.Fatalf("after %d siblings: %d side blocks, %d bytes", i+1, n, bytes)
				}
				if n == chain.MaxSideBlocks || bytes+b.EncodedSize() > chain.MaxSideBytes {
					full++
				}
				if c.Len() != len(main)+n || c.TipHash() != main[3].Hash() {
					t.Fatalf("after %d siblings: %d blocks, tip %s", i+1, c.Len(), c.TipHash().Short())
				}
			}
			checkUnchanged(t, c, main)
			if refused == 0 || evicted == 0 || full == 0 {
				t.Fatalf("%d refused, %d evicted, full %d times: the caps were not exercised", refused, evicted, full)
			}
			if got := cache.Added(); got != uint64(tc.readings) {
				t.Fatalf("%d signatures verified, want each of the %d readings once", got, tc.readings)
			}
			n, bytes := c.SideLen()
			t.Logf("%d side blocks, %d bytes; %d refused, %d evicted", n, bytes, refused, evicted)
		})
	}
}

// TestTieRule: a block with the same work as the tip takes its place only
// if it has the lower hash and arrives less than TieWindow after the tip
// became the tip. One that does not win offers the readings the main chain
// lacks (Update.Adopted), so that the next block ends the tie with them.
//
//	g ── a1 {r0 r1}       the tip since t0
//	 └── b1 {r1 r2}       a sibling, at t0 + after
func TestTieRule(t *testing.T) {
	p := testParams(0)
	rs := poolReadings(3)
	g := p.Genesis()
	a1 := sibling(g, p, rs[0:2], 0)
	// Siblings with the hash below and above a1's.
	var lower, higher *chain.Block
	for n := uint64(1); lower == nil || higher == nil; n++ {
		b := sibling(g, p, rs[1:3], n)
		if hashLess(b.Hash(), a1.Hash()) {
			lower = cmpOr(lower, b)
		} else {
			higher = cmpOr(higher, b)
		}
	}
	t0 := at(p, 10_000)
	for _, row := range []struct {
		name  string
		b     *chain.Block
		after time.Duration
		wins  bool
	}{
		{"lower hash at once", lower, 0, true},
		{"lower hash within the window", lower, chain.TieWindow - time.Millisecond, true},
		{"lower hash at the window's end", lower, chain.TieWindow, false},
		{"lower hash an hour later", lower, time.Hour, false},
		{"lower hash with a clock behind", lower, -time.Second, true},
		{"higher hash at once", higher, 0, false},
		{"higher hash within the window", higher, time.Second, false},
	} {
		t.Run(row.name, func(t *testing.T) {
			c := mustChain(t, p)
			mustAdd(t, c, a1, t0)
			u := mustAdd(t, c, row.b, t0.Add(row.after))
			if u.TipChanged != row.wins || (c.TipHash() == row.b.Hash()) != row.wins {
				t.Fatalf("TipChanged %v, want %v", u.TipChanged, row.wins)
			}
			if row.wins {
				if !slices.Equal(hashesOf(u.Disconnected), []chain.Hash{a1.Hash()}) ||
					!slices.Equal(hashesOf(u.Connected), []chain.Hash{row.b.Hash()}) ||
					!slices.Equal(ids(u.Returned), ids(rs[0:1])) || len(u.Adopted) != 0 {
					t.Fatalf("winning tie: %+v", u)
				}
				return
			}
			// r1 is on the main chain already; r2 is not.
			if len(u.Connected)+len(u.Disconnected)+len(u.Returned) != 0 || !slices.Equal(ids(u.Adopted), ids(rs[2:3])) {
				t.Fatalf("losing tie: %+v, adopted %d", u, len(u.Adopted))
			}
			if n, _ := c.SideLen(); n != 1 || !c.HasBlock(row.b.Hash()) {
				t.Fatal("the losing sibling is not kept as a side block")
			}
		})
	}

	// A restored block never displaces a tip of equal work.
	c := mustChain(t, p)
	mustAdd(t, c, a1, t0)
	if u, err := c.Restore(lower, t0); err != nil || u.TipChanged {
		t.Fatalf("restored tie: %v, %+v", err, u)
	}

	// The window restarts with each new tip: a1, then lower 1 s later, then
	// a lower one still 1.5 s after that (2.5 s after a1).
	var lowest *chain.Block
	for n := uint64(1000); lowest == nil; n++ {
		if b := sibling(g, p, nil, n); hashLess(b.Hash(), lower.Hash()) {
			lowest = b
		}
	}
	c = mustChain(t, p)
	mustAdd(t, c, a1, t0)
	mustAdd(t, c, lower, t0.Add(time.Second))
	if u := mustAdd(t, c, lowest, t0.Add(2500*time.Millisecond)); !u.TipChanged || c.TipHash() != lowest.Hash() {
		t.Fatal("the window did not restart with the new tip")
	}

	// Blocks mined at the same moment resolve alike: two nodes that get a1
	// and lower in opposite orders, within the window, agree on lower. A
	// sibling that comes later does not displace an established tip, so the
	// nodes agree again only with the next block.
	for _, gap := range []time.Duration{300 * time.Millisecond, 5 * time.Second} {
		x, y := mustChain(t, p), mustChain(t, p)
		mustAdd(t, x, a1, t0)
		mustAdd(t, x, lower, t0.Add(gap))
		mustAdd(t, y, lower, t0)
		mustAdd(t, y, a1, t0.Add(gap))
		if gap < chain.TieWindow && (x.TipHash() != lower.Hash() || y.TipHash() != lower.Hash()) {
			t.Fatalf("gap %v: the nodes disagree", gap)
		}
		if gap >= chain.TieWindow && (x.TipHash() != a1.Hash() || y.TipHash() != lower.Hash()) {
			t.Fatalf("gap %v: a late sibling displaced the tip", gap)
		}
		next := sibling(a1, p, nil, 1)
		for _, c := range []*chain.Chain{x, y} {
			mustAdd(t, c, next, t0.Add(time.Minute))
			if c.TipHash() != next.Hash() {
				t.Fatalf("gap %v: the next block did not end the tie", gap)
			}
		}
	}
}

// cmpOr returns a if it is set, else b.
func cmpOr(a, b *chain.Block) *chain.Block {
	if a != nil {
		return a
	}
	return b
}

// TestTieBranch: the tie rule applies to branches too. A two-block branch
// that ties the main chain within the window and has the lower tip hash
// reorganises; the readings the main chain lacks from a whole losing branch
// are adopted.
func TestTieBranch(t *testing.T) {
	p := testParams(0)
	rs := poolReadings(4)
	g := p.Genesis()
	t0 := at(p, 10_000)
	a1 := sibling(g, p, rs[0:1], 0)
	a2 := sibling(a1, p, nil, 0)
	b1 := sibling(g, p, rs[1:2], 1)
	for _, late := range []bool{false, true} {
		t.Run(fmt.Sprintf("late %v", late), func(t *testing.T) {
			var b2 *chain.Block
			for n := uint64(1); b2 == nil; n++ {
				// The lower hash: it wins if it is in time.
				if b := sibling(b1, p, rs[2:4], n); hashLess(b.Hash(), a2.Hash()) {
					b2 = b
				}
			}
			c := mustChain(t, p)
			mustAdd(t, c, a1, t0)
			mustAdd(t, c, a2, t0)
			mustAdd(t, c, b1, t0)
			after := time.Second
			if late {
				after = chain.TieWindow
			}
			u := mustAdd(t, c, b2, t0.Add(after))
			if late {
				got := ids(u.Adopted)
				want := ids(rs[1:4])
				slices.SortFunc(got, cmpHash)
				slices.SortFunc(want, cmpHash)
				if u.TipChanged || !slices.Equal(got, want) {
					t.Fatalf("late branch: tip changed %v, adopted %d readings, want r1 r2 r3", u.TipChanged, len(got))
				}
				return
			}
			if !u.TipChanged || len(u.Disconnected) != 2 || !slices.Equal(ids(u.Returned), ids(rs[0:1])) || len(u.Adopted) != 0 {
				t.Fatalf("branch in time: %+v", u)
			}
		})
	}
}

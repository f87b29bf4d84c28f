package chain_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// TestReorgUpdate checks the Update of a reorganisation by hand:
//
//	g ── a1 ── a2            a1{r0} a2{r1 r2}
//	 └── b1 ── b2 ── b3      b1{} b2{r2} b3{r3}
//
// When b3 arrives, a2 and a1 leave (tip first), b1 to b3 join (lowest
// first), and r0 and r1 return to the pending set; r2 does not, as b2 holds it.
func TestReorgUpdate(t *testing.T) {
	p := testParams(0)
	rs := poolReadings(5)
	now := at(p, time.Hour.Milliseconds())
	c, onB := mustChain(t, p), mustChain(t, p)
	a1 := mine(t, c, rs[0:1], at(p, 1000))
	mustAdd(t, c, a1, now)
	a2 := mine(t, c, rs[1:3], at(p, 2000))
	mustAdd(t, c, a2, now)
	b1 := mine(t, onB, nil, at(p, 1500))
	mustAdd(t, onB, b1, now)
	// b2 ties with a2 on work; pick its time so that its hash is the higher
	// one and a2 stays the tip.
	var b2 *chain.Block
	for ms := int64(1600); b2 == nil || hashLess(b2.Hash(), a2.Hash()); ms++ {
		b2 = mine(t, onB, rs[2:3], at(p, ms))
	}
	mustAdd(t, onB, b2, now)
	b3 := mine(t, onB, rs[3:4], at(p, 3000))
	bs := []*chain.Block{b1, b2, b3}

	// b2 ties a2, and every reading of the b-branch (r2) is on the main
	// chain: nothing to adopt.
	for _, b := range bs[:2] {
		if u := mustAdd(t, c, b, now); u.TipChanged || len(u.Connected)+len(u.Disconnected)+len(u.Returned)+len(u.Adopted) != 0 {
			t.Fatalf("side block at %d moved the tip: %+v", b.Header.Height, u)
		}
	}
	if c.TipHash() != a2.Hash() {
		t.Fatal("at equal work the higher hash took the tip")
	}
	u := mustAdd(t, c, b3, now)
	if !u.TipChanged || u.Hash != b3.Hash() || u.Height != 3 || c.TipHash() != b3.Hash() || c.Height() != 3 {
		t.Fatalf("update %+v", u)
	}
	if got := hashesOf(u.Disconnected); !slices.Equal(got, []chain.Hash{a2.Hash(), a1.Hash()}) {
		t.Fatalf("Disconnected %v, want a2 a1", got)
	}
	if got := hashesOf(u.Connected); !slices.Equal(got, hashesOf(bs)) {
		t.Fatalf("Connected %v, want b1 b2 b3", got)
	}
	got, want := ids(u.Returned), ids(rs[0:2])
	slices.SortFunc(got, cmpHash)
	slices.SortFunc(want, cmpHash)
	if !slices.Equal(got, want) {
		t.Fatalf("Returned %v, want r0 and r1", got)
	}
	for i, r := range rs[:4] {
		wantIn := i >= 2
		if c.HasReading(readingID(&r)) != wantIn {
			t.Errorf("HasReading(r%d) = %v", i, !wantIn)
		}
		if _, blk, ok := c.FindReading(readingID(&r)); ok != wantIn || (ok && blk != bs[i-1]) {
			t.Errorf("FindReading(r%d): %v", i, ok)
		}
	}
	if c.IsMain(a1.Hash()) || !c.HasBlock(a1.Hash()) || c.Len() != 6 {
		t.Fatal("a1 should be known, off the main chain")
	}
	// And back: a3 and a4 on the a-branch win again and return r3, not r2.
	// a3 ties with b3: again the higher hash, so that a4 makes the switch.
	var a3 *chain.Block
	for ms, onA := int64(4000), mustChainAt(t, p, a1, a2); a3 == nil || hashLess(a3.Hash(), b3.Hash()); ms++ {
		a3 = mine(t, onA, nil, at(p, ms))
	}
	// a3 ties b3 without winning: the main chain lacks r0 and r1 of the
	// a-branch, which the owner is offered to mine.
	u = mustAdd(t, c, a3, now)
	if u.TipChanged {
		t.Fatal("a3 took the tip at equal work with a higher hash")
	}
	got, want = ids(u.Adopted), ids(rs[0:2])
	slices.SortFunc(got, cmpHash)
	slices.SortFunc(want, cmpHash)
	if !slices.Equal(got, want) {
		t.Fatalf("Adopted %v, want r0 and r1", got)
	}
	onA := mustChainAt(t, p, a1, a2, a3)
	a4 := mine(t, onA, rs[4:5], at(p, 5000))
	u = mustAdd(t, c, a4, now)
	if !slices.Equal(hashesOf(u.Disconnected), []chain.Hash{b3.Hash(), b2.Hash(), b1.Hash()}) ||
		!slices.Equal(hashesOf(u.Connected), []chain.Hash{a1.Hash(), a2.Hash(), a3.Hash(), a4.Hash()}) ||
		!slices.Equal(ids(u.Returned), ids(rs[3:4])) {
		t.Fatalf("reorganising back: %+v", u)
	}
}

// mustChainAt returns a chain of p holding the blocks, in order.
func mustChainAt(t *testing.T, p chain.Params, blocks ...*chain.Block) *chain.Chain {
	t.Helper()
	c := mustChain(t, p)
	for _, b := range blocks {
		mustAdd(t, c, b, at(p, 1e9))
	}
	return c
}

func minHash(a, b chain.Hash) chain.Hash {
	if hashLess(b, a) {
		return b
	}
	return a
}

func hashesOf(bs []*chain.Block) []chain.Hash {
	out := make([]chain.Hash, len(bs))
	for i, b := range bs {
		out[i] = b.Hash()
	}
	return out
}

// propReadings are signed once and shared by the property tests.
var propReadings = sync.OnceValue(func() []chain.Reading {
	p := testParams(0)
	rs := make([]chain.Reading, 600)
	for i := range rs {
		rs[i] = sign(testKey(i%5), fmt.Sprintf("subject-%d", i%37), uint16(40+i%200), p.GenesisTime+int64(i)*1000)
	}
	return rs
})

// treeBlock is a generated block and what the test knows about it.
type treeBlock struct {
	b      *chain.Block
	hash   chain.Hash
	parent int // index in the tree; -1 for genesis
	height uint64
	valid  bool                // its branch holds no reading twice
	ids    map[chain.Hash]bool // reading ids of the block and its ancestors
}

// genTree makes a random tree of n blocks above the genesis. Readings are
// drawn from a small set, so competing branches often share some; now and
// then a block repeats a reading of its own ancestry and is invalid, and so
// are its descendants.
func genTree(rng *rand.Rand, p chain.Params, readings []chain.Reading, n int) []*treeBlock {
	g := p.Genesis()
	tree := []*treeBlock{{b: g, hash: g.Hash(), parent: -1, valid: true, ids: map[chain.Hash]bool{}}}
	for i := 1; i <= n; i++ {
		pi := len(tree) - 1 - rng.IntN(min(len(tree), 3)) // mostly near the newest: long branches
		if rng.IntN(3) == 0 {
			pi = rng.IntN(len(tree))
		}
		parent := tree[pi]
		var rs []chain.Reading
		blockIDs := map[chain.Hash]bool{}
		dup := false
		for want, tries := rng.IntN(4), 0; len(rs) < want && tries < 20; tries++ {
			r := readings[rng.IntN(len(readings))]
			id := readingID(&r)
			if blockIDs[id] || (parent.ids[id] && rng.IntN(10) != 0) {
				continue
			}
			dup = dup || parent.ids[id]
			blockIDs[id] = true
			rs = append(rs, r)
		}
		all := map[chain.Hash]bool{}
		for id := range parent.ids {
			all[id] = true
		}
		for j := range rs {
			all[readingID(&rs[j])] = true
		}
		b := blockOn(parent.b, p, rs, parent.b.Header.Time+int64(rng.IntN(3))*int64(rng.IntN(30_000)))
		b.Header.Nonce = uint64(i) // no two blocks alike
		tree = append(tree, &treeBlock{b: b, hash: b.Hash(), parent: pi, height: b.Header.Height,
			valid: parent.valid && !dup, ids: all})
	}
	return tree
}

// tieWindow is TieWindow as the protocol documents it.
const tieWindow = 2 * time.Second

// better is the fork-choice rule between blocks that arrive at the same
// moment, written for the test: more work (all blocks have the same
// difficulty, so more height), then the lower hash.
func better(a, b *treeBlock) bool {
	if a.height != b.height {
		return a.height > b.height
	}
	return hashLess(a.hash, b.hash)
}

// tipModel is the fork-choice rule with arrival times, written for the test
// from the protocol's text: a block with more work becomes the tip; one of
// equal work only if it has the lower hash and arrives less than the tie
// window after the tip became the tip.
type tipModel struct {
	tip   *treeBlock
	since time.Time
}

func (m *tipModel) offer(x *treeBlock, now time.Time) bool {
	if x.height > m.tip.height || (x.height == m.tip.height && now.Sub(m.since) < tieWindow && hashLess(x.hash, m.tip.hash)) {
		m.tip, m.since = x, now
		return true
	}
	return false
}

// TestForkChoiceConverges feeds the blocks of random trees to fresh chains in
// random orders, parking blocks whose parent is not known yet as sync would.
// The tip is what the rule says at every step (feedTree). When every block
// arrives within the tie window (one instant), every order ends on the same
// tip: the most work, then the lowest hash. When arrivals are spread over
// seconds, an established tip keeps a tie, so orders may end on different
// tips, but always on one with the most work.
func TestForkChoiceConverges(t *testing.T) {
	t.Parallel()
	if chain.TieWindow != tieWindow {
		t.Fatalf("TieWindow = %v, the protocol says %v", chain.TieWindow, tieWindow)
	}
	p := deepParams() // random trees fork deep; finality has its own tests
	readings := propReadings()[:30]
	base := at(p, 1e10)
	seeds, orders := 50, 4
	if testing.Short() {
		seeds = 10
	}
	total := map[bool]*tieStats{false: {}, true: {}}
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(uint64(seed), 0xf0c))
		tree := genTree(rng, p, readings, 5+rng.IntN(26))
		want := tree[0]
		nValid := 0
		for _, tb := range tree {
			if tb.valid {
				nValid++
				if better(tb, want) {
					want = tb
				}
			}
		}
		for order := range orders {
			for _, spread := range []bool{false, true} {
				name := fmt.Sprintf("seed %d order %d spread %v", seed, order, spread)
				now := base
				clock := func() time.Time { return now } // one instant
				if spread {
					clock = func() time.Time {
						// Gaps around the tie window: some ties fall inside it,
						// some outside.
						now = now.Add([]time.Duration{0, 500 * time.Millisecond, 1999 * time.Millisecond, tieWindow, 5 * time.Second}[rng.IntN(5)])
						return now
					}
				}
				c, st := feedTree(t, name, mustChain(t, p), tree, rng.Perm(len(tree)-1), clock)
				total[spread].won += st.won
				total[spread].kept += st.kept
				if c.Height() != want.height {
					t.Fatalf("%s: tip at height %d, want %d", name, c.Height(), want.height)
				}
				if !spread && c.TipHash() != want.hash {
					t.Fatalf("%s: tip %s, want %s", name, c.TipHash().Short(), want.hash.Short())
				}
				if c.Len() != nValid {
					t.Fatalf("%s: %d blocks known, want the %d valid ones", name, c.Len(), nValid)
				}
				// The main chain is the tip's branch.
				tip := byHashOf(tree, c.TipHash())
				for x := tip; x != nil; x = parentOf(tree, x) {
					if b, ok := c.BlockAt(x.height); !ok || b.Hash() != x.hash {
						t.Fatalf("%s: main chain differs at height %d", name, x.height)
					}
				}
				checkMainReadings(t, c, readings)
			}
		}
	}
	// The runs mean little unless ties went both ways.
	if total[false].won == 0 || total[false].kept != 0 || total[true].won == 0 || total[true].kept == 0 {
		t.Fatalf("ties won/kept: one instant %+v, spread %+v", *total[false], *total[true])
	}
	t.Logf("ties won/kept: one instant %+v, spread %+v", *total[false], *total[true])
}

func byHashOf(tree []*treeBlock, h chain.Hash) *treeBlock {
	for _, tb := range tree {
		if tb.hash == h {
			return tb
		}
	}
	return nil
}

func parentOf(tree []*treeBlock, x *treeBlock) *treeBlock {
	if x.parent < 0 {
		return nil
	}
	return tree[x.parent]
}

// checkMainReadings asserts that c's main chain holds no reading twice and
// that the reading index agrees with the blocks.
func checkMainReadings(t *testing.T, c *chain.Chain, readings []chain.Reading) {
	t.Helper()
	in := map[chain.Hash]bool{}
	for _, id := range mainIDs(c) {
		if in[id] {
			t.Fatalf("reading %s twice in the main chain", id.Short())
		}
		in[id] = true
	}
	for i := range readings {
		id := readingID(&readings[i])
		if c.HasReading(id) != in[id] {
			t.Fatalf("HasReading(%s) = %v, main chain holds it: %v", id.Short(), !in[id], in[id])
		}
		if r, b, ok := c.FindReading(id); ok != in[id] || (ok && (r != readings[i] || !c.IsMain(b.Hash()) || !slices.Contains(b.Readings, r))) {
			t.Fatalf("FindReading(%s) wrong", id.Short())
		}
	}
}

// feedTree adds the tree's blocks (but the genesis) to c in the given order,
// each arrival (with the parked blocks it lets in) at the time clock gives,
// and checks every step: valid blocks are accepted and invalid ones refused
// with ErrDuplicateReading; the tip is the one tipModel says; a tie that does
// not win offers the readings the main chain lacks (Update.Adopted); and the
// updates, replayed on a model of the main chain, keep it equal to c's.
func feedTree(t *testing.T, name string, c *chain.Chain, tree []*treeBlock, perm []int, clock func() time.Time) (*chain.Chain, tieStats) {
	t.Helper()
	byHash := map[chain.Hash]*treeBlock{}
	for _, tb := range tree {
		byHash[tb.hash] = tb
	}
	model := []*treeBlock{tree[0]}
	tm := &tipModel{tip: tree[0]}
	orphans := map[chain.Hash][]*treeBlock{}
	var stats tieStats
	for _, i := range perm {
		now := clock()
		queue := []*treeBlock{tree[i+1]}
		for len(queue) > 0 {
			x := queue[0]
			queue = queue[1:]
			u, err := c.AddBlock(x.b, now)
			if errors.Is(err, chain.ErrUnknownParent) {
				orphans[x.b.Header.Parent] = append(orphans[x.b.Header.Parent], x)
				continue
			}
			if err != nil {
				if x.valid || chain.CodeOf(err) != chain.ErrDuplicateReading {
					t.Fatalf("%s: block at %d (valid %v) refused: %v", name, x.height, x.valid, err)
				}
				continue // its descendants stay orphans
			}
			if !x.valid {
				t.Fatalf("%s: block at %d repeating an ancestor's reading accepted", name, x.height)
			}
			queue = append(queue, orphans[x.hash]...)
			delete(orphans, x.hash)
			old := model[len(model)-1]
			wins := tm.offer(x, now)
			if x.height == old.height && hashLess(x.hash, old.hash) {
				if wins {
					stats.won++
				} else {
					stats.kept++
				}
			}
			model = replay(t, name, model, u, byHash)
			if u.TipChanged != wins || c.TipHash() != tm.tip.hash || model[len(model)-1] != tm.tip || c.Height() != tm.tip.height {
				t.Fatalf("%s: tip %s (changed %v), the rule says %s", name, c.TipHash().Short(), u.TipChanged, tm.tip.hash.Short())
			}
			// Adopted: only for a tie that lost, the branch's readings above
			// the fork point that the main chain lacks.
			var want []chain.Hash
			if !wins && x.height == old.height {
				for y := x; model[y.height] != y; y = parentOf(tree, y) {
					for j := range y.b.Readings {
						if id := readingID(&y.b.Readings[j]); !old.ids[id] {
							want = append(want, id)
						}
					}
				}
			}
			got := ids(u.Adopted)
			slices.SortFunc(got, cmpHash)
			slices.SortFunc(want, cmpHash)
			if !slices.Equal(got, want) {
				t.Fatalf("%s: block at %d: adopted %d readings, want %d", name, x.height, len(got), len(want))
			}
		}
	}
	return c, stats
}

// tieStats counts the blocks of equal work and a lower hash than the tip
// that took the tip (within the tie window) or did not (after it).
type tieStats struct{ won, kept int }

// replay applies u to model, a main chain, checking that u is consistent.
func replay(t *testing.T, name string, model []*treeBlock, u *chain.Update, byHash map[chain.Hash]*treeBlock) []*treeBlock {
	t.Helper()
	if !u.TipChanged {
		if len(u.Disconnected)+len(u.Connected)+len(u.Returned) != 0 {
			t.Fatalf("%s: update without a tip change lists blocks", name)
		}
		return model
	}
	var gone []chain.Reading
	for _, b := range u.Disconnected {
		if top := model[len(model)-1]; top.hash != b.Hash() {
			t.Fatalf("%s: disconnected %s, main-chain tip is %s", name, b.Hash().Short(), top.hash.Short())
		}
		model = model[:len(model)-1]
		gone = append(gone, b.Readings...)
	}
	for _, b := range u.Connected {
		tb := byHash[b.Hash()]
		if tb == nil || tb.b.Header.Parent != model[len(model)-1].hash {
			t.Fatalf("%s: connected block %s does not extend the main chain", name, b.Hash().Short())
		}
		model = append(model, tb)
	}
	if len(u.Connected) == 0 || u.Connected[len(u.Connected)-1].Hash() != u.Hash {
		t.Fatalf("%s: the added block is not the last connected", name)
	}
	// Returned: the readings of the disconnected blocks not in the new chain.
	tip := model[len(model)-1]
	var want []chain.Hash
	for i := range gone {
		if id := readingID(&gone[i]); !tip.ids[id] {
			want = append(want, id)
		}
	}
	got := ids(u.Returned)
	slices.SortFunc(got, cmpHash)
	slices.SortFunc(want, cmpHash)
	if !slices.Equal(got, want) {
		t.Fatalf("%s: returned %d readings, want %d", name, len(got), len(want))
	}
	return model
}

func cmpHash(a, b chain.Hash) int {
	switch {
	case hashLess(a, b):
		return -1
	case hashLess(b, a):
		return 1
	}
	return 0
}

// simNode is one node of the no-reading-lost simulation.
type simNode struct {
	c       *chain.Chain
	pool    *chain.Pool
	skew    time.Duration
	inbox   []*chain.Block
	orphans map[chain.Hash][]*chain.Block
	given   map[chain.Hash]bool // readings this node acknowledged
	finals  []chain.Hash        // main-chain blocks seen final, by height
}

// TestNoReadingLost runs small networks of nodes, each with a chain and a
// pool: readings are submitted to random nodes, nodes mine their pending
// readings on their own tips and blocks reach the others late and out of
// order, so the network forks and reorganises. Throughout, every reading a
// node acknowledged is either pending at that node or in its main chain,
// never both and never neither. At the end, once every node has every block
// (the nodes then agree on the work of the tip, and on the tip itself but for
// ties the tie window kept apart) and the pending readings are mined, every
// reading acknowledged anywhere is in the final main chain exactly once.
//
// The forks of these runs go deeper than the default final depth, which
// would strand nodes on their branches: the runs use a final depth beyond
// any fork. TestNoReadingLostFinal runs them with a short one.
func TestNoReadingLost(t *testing.T) {
	t.Parallel()
	seeds, steps := 20, 220
	if testing.Short() {
		seeds = 5
	}
	var total simStats
	for seed := range seeds {
		total.add(simulate(t, uint64(seed), steps, 1000))
	}
	// The property means little if the runs never reorganised.
	if total.reorgs < seeds || total.returned == 0 || total.adopted == 0 {
		t.Fatalf("only %+v in %d runs", total, seeds)
	}
	t.Logf("%+v", total)
}

// TestNoReadingLostFinal runs the simulation with a final depth of 3: nodes
// refuse forks deeper than that (ErrForkTooDeep, not the sender's fault) and
// prune side branches that fall below it, so they may never agree again.
// Each node still keeps every reading it acknowledged: pending, or in its
// own main chain, and in it once it has mined what is pending.
func TestNoReadingLostFinal(t *testing.T) {
	t.Parallel()
	seeds, steps := 20, 220
	if testing.Short() {
		seeds = 5
	}
	var total simStats
	for seed := range seeds {
		total.add(simulate(t, uint64(seed), steps, 3))
	}
	if total.reorgs == 0 || total.tooDeep == 0 || total.pruned == 0 {
		t.Fatalf("only %+v in %d runs", total, seeds)
	}
	t.Logf("%+v", total)
}

// simStats counts what happened in simulations.
type simStats struct {
	reorgs, returned, adopted, tooDeep, pruned int
}

func (s *simStats) add(o simStats) {
	s.reorgs += o.reorgs
	s.returned += o.returned
	s.adopted += o.adopted
	s.tooDeep += o.tooDeep
	s.pruned += o.pruned
}

// simulate runs one network. With depth at least the longest fork, every
// node ends with every block and the nodes converge; with a short depth
// (final), only each node's own bookkeeping is checked.
func simulate(t *testing.T, seed uint64, steps int, depth uint32) (st simStats) {
	rng := rand.New(rand.NewPCG(seed, 0x10057))
	p := testParams(0)
	p.MaxReadings = 4
	p.MaxReorgDepth = depth
	final := depth < 100
	all := propReadings()
	name := fmt.Sprintf("seed %d depth %d", seed, depth)
	nodes := make([]*simNode, 3+rng.IntN(3))
	for i := range nodes {
		nodes[i] = &simNode{
			c:       mustChain(t, p),
			pool:    chain.NewPool(3 + rng.IntN(20)),
			skew:    time.Duration(rng.IntN(60_001)-30_000) * time.Millisecond,
			orphans: map[chain.Hash][]*chain.Block{},
			given:   map[chain.Hash]bool{},
		}
	}
	clock := at(p, 1e9) // every reading's time is before this
	submitted := map[chain.Hash]bool{}
	var offered []chain.Reading

	check := func(n *simNode, when string) {
		for id := range n.given {
			if inPool, inMain := n.pool.Has(id), n.c.HasReading(id); inPool == inMain {
				t.Fatalf("%s %s: acknowledged reading %s pending %v, in main chain %v", name, when, id.Short(), inPool, inMain)
			}
		}
		for _, r := range n.pool.All() {
			if n.c.HasReading(readingID(&r)) {
				t.Fatalf("%s %s: pending reading already in the main chain", name, when)
			}
		}
	}
	apply := func(n *simNode, u *chain.Update) {
		n.pool.Apply(u)
		if len(u.Disconnected) > 0 {
			st.reorgs++
			st.returned += len(u.Returned)
		}
		st.adopted += len(u.Adopted)
		st.pruned += len(u.Pruned)
		for _, h := range u.Pruned {
			if n.c.HasBlock(h) {
				t.Fatalf("%s: pruned block %s still known", name, h.Short())
			}
		}
		// A final block never leaves the main chain.
		for h, want := range n.finals {
			if b, ok := n.c.BlockAt(uint64(h)); !ok || b.Hash() != want {
				t.Fatalf("%s: the final block at height %d left the main chain", name, h)
			}
		}
		for h := uint64(len(n.finals)); h <= n.c.FinalHeight(); h++ {
			b, _ := n.c.BlockAt(h)
			n.finals = append(n.finals, b.Hash())
		}
		check(n, "after AddBlock")
	}
	submit := func(n *simNode, r chain.Reading, now time.Time) {
		if err := chain.CheckReading(&r, p, now.UnixMilli(), nil); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		id := readingID(&r)
		if n.c.HasReading(id) {
			n.given[id] = true // already confirmed here
			return
		}
		switch err := n.pool.Add(r); chain.CodeOf(err) {
		case 0, chain.ErrKnownReading:
			n.given[id], submitted[id] = true, true
		case chain.ErrPoolFull:
			if chain.IsPeerFault(err) {
				t.Fatalf("%s: full pool blames the sender", name)
			}
		default:
			t.Fatalf("%s: Add: %v", name, err)
		}
	}
	receive := func(n *simNode, b *chain.Block, now time.Time) {
		queue := []*chain.Block{b}
		for len(queue) > 0 {
			x := queue[0]
			queue = queue[1:]
			u, err := n.c.AddBlock(x, now)
			switch {
			case errors.Is(err, chain.ErrUnknownParent):
				n.orphans[x.Header.Parent] = append(n.orphans[x.Header.Parent], x)
				continue
			case final && errors.Is(err, chain.ErrForkTooDeep):
				if chain.IsPeerFault(err) {
					t.Fatalf("%s: a fork too deep blames the sender", name)
				}
				st.tooDeep++
				continue // its descendants stay orphans
			case err != nil:
				t.Fatalf("%s: AddBlock of a peer's block: %v", name, err)
			}
			apply(n, u)
			h := x.Hash()
			queue = append(queue, n.orphans[h]...)
			delete(n.orphans, h)
		}
	}
	mineOn := func(n *simNode, max int, now time.Time) *chain.Block {
		b := mine(t, n.c, n.pool.Take(max), now)
		u, err := n.c.AddBlock(b, now)
		if err != nil {
			t.Fatalf("%s: AddBlock of an own block: %v", name, err)
		}
		apply(n, u)
		return b
	}

	for range steps {
		clock = clock.Add(time.Duration(rng.IntN(3000)) * time.Millisecond)
		n := nodes[rng.IntN(len(nodes))]
		now := clock.Add(n.skew)
		switch x := rng.IntN(100); {
		case x < 30: // a client submits a reading, now and then to two nodes or again
			var r chain.Reading
			if len(offered) > 0 && rng.IntN(8) == 0 {
				r = offered[rng.IntN(len(offered))]
			} else if len(offered) < len(all) {
				r = all[len(offered)]
				offered = append(offered, r)
			} else {
				continue
			}
			submit(n, r, now)
			if rng.IntN(4) == 0 {
				o := nodes[rng.IntN(len(nodes))]
				submit(o, r, clock.Add(o.skew))
			}
		case x < 50: // n mines a block and announces it
			b := mineOn(n, rng.IntN(p.MaxReadings+1), now)
			for _, o := range nodes {
				if o != n {
					o.inbox = append(o.inbox, b)
				}
			}
		default: // one late block reaches n
			if len(n.inbox) > 0 {
				i := rng.IntN(len(n.inbox))
				b := n.inbox[i]
				n.inbox = slices.Delete(n.inbox, i, i+1)
				receive(n, b, now)
			}
		}
	}

	// Every node gets every block, in a random order.
	clock = clock.Add(time.Minute)
	for _, n := range nodes {
		rng.Shuffle(len(n.inbox), func(i, j int) { n.inbox[i], n.inbox[j] = n.inbox[j], n.inbox[i] })
		for _, b := range n.inbox {
			receive(n, b, clock.Add(n.skew))
		}
		n.inbox = nil
		if !final && len(n.orphans) != 0 {
			t.Fatalf("%s: blocks still without parent after full delivery", name)
		}
	}
	if final {
		// Each node mines what it holds pending on its own chain: then every
		// reading it acknowledged is in its main chain, once.
		for i, n := range nodes {
			for round := 0; n.pool.Len() > 0; round++ {
				if round > len(submitted) {
					t.Fatalf("%s: node %d: pending readings do not drain", name, i)
				}
				clock = clock.Add(time.Second)
				mineOn(n, p.MaxReadings, clock.Add(n.skew))
			}
			count := map[chain.Hash]int{}
			for _, id := range mainIDs(n.c) {
				count[id]++
			}
			for id := range n.given {
				if count[id] != 1 {
					t.Fatalf("%s: node %d: acknowledged reading %s is %d times in its main chain", name, i, id.Short(), count[id])
				}
			}
		}
		return st
	}
	// The nodes know the same blocks and agree on the tip's work; tips of
	// equal work may differ where the tie window kept each node's own.
	for i, n := range nodes {
		if n.c.Height() != nodes[0].c.Height() || n.c.Len() != nodes[0].c.Len() {
			t.Fatalf("%s: node %d at height %d with %d blocks, node 0 at %d with %d",
				name, i, n.c.Height(), n.c.Len(), nodes[0].c.Height(), nodes[0].c.Len())
		}
	}
	// Mine what is still pending, until no pool holds any and the nodes
	// agree on the tip. Each block has more work than any tip, so it ends a
	// tie; the node whose tip it displaces gets its readings back.
	for round := 0; ; round++ {
		i := slices.IndexFunc(nodes, func(n *simNode) bool { return n.pool.Len() > 0 })
		if i < 0 && !slices.ContainsFunc(nodes, func(n *simNode) bool { return n.c.TipHash() != nodes[0].c.TipHash() }) {
			break
		}
		if round > len(submitted)+1 {
			t.Fatalf("%s: pending readings do not drain", name)
		}
		i = max(i, 0)
		clock = clock.Add(time.Second)
		b := mineOn(nodes[i], p.MaxReadings, clock.Add(nodes[i].skew))
		for _, o := range nodes {
			if o != nodes[i] {
				receive(o, b, clock.Add(o.skew))
			}
			if o.c.TipHash() != b.Hash() {
				t.Fatalf("%s: final block did not become the tip", name)
			}
		}
	}
	// Every acknowledged reading is in the final main chain, exactly once.
	count := map[chain.Hash]int{}
	for _, id := range mainIDs(nodes[0].c) {
		count[id]++
	}
	for id := range submitted {
		if count[id] != 1 {
			t.Fatalf("%s: reading %s is %d times in the final main chain", name, id.Short(), count[id])
		}
	}
	for id, k := range count {
		if !submitted[id] || k != 1 {
			t.Fatalf("%s: main chain holds %s %d times (acknowledged: %v)", name, id.Short(), k, submitted[id])
		}
	}
	return st
}

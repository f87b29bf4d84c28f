package chain_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// TestCheckpoint: a node told to require block x4 at height 4 refuses any
// other block there (ErrCheckpoint, not a peer fault) and holds nothing
// final until its main chain reaches the checkpoint, so a branch it was led
// onto first is left, however deep, for the one through the checkpoint.
//
//	g ── y1 ── y2 ── y3 ── (y4 refused)
//	 └── x1 ── x2 ── x3 ── x4 ── x5 ── x6     x4 is the checkpoint
func TestCheckpoint(t *testing.T) {
	p := testParams(0)
	p.FinalAge = 0
	p.MaxReorgDepth = 2
	xs := growChain(t, mustChain(t, p), 6, nil)
	ys := []*chain.Block{p.Genesis()}
	for i := 1; i <= 4; i++ {
		ys = append(ys, sibling(ys[i-1], p, nil, 5))
	}
	c := mustChain(t, p)
	if err := c.SetCheckpoint(chain.Checkpoint{Height: 0, Hash: c.Genesis()}); err == nil {
		t.Fatal("a checkpoint at height 0 was set")
	}
	if err := c.SetCheckpoint(chain.Checkpoint{Height: 4, Hash: xs[3].Hash()}); err != nil {
		t.Fatal(err)
	}
	now := at(p, time.Hour.Milliseconds())
	for _, y := range ys[1:4] {
		mustAdd(t, c, y, now)
	}
	_, err := c.AddBlock(ys[4], now)
	checkCode(t, err, chain.ErrCheckpoint)
	if chain.IsPeerFault(err) || c.HasBlock(ys[4].Hash()) {
		t.Fatal("the block off the checkpoint blames the sender or was stored")
	}
	if c.FinalHeight() != 0 || c.Advance(now.Add(time.Hour)) != 0 {
		t.Fatalf("FinalHeight %d below the checkpoint, want 0", c.FinalHeight())
	}
	// The branch through the checkpoint wins, disconnecting more than
	// MaxReorgDepth blocks: none of them was final.
	now = now.Add(time.Minute) // no tie is won
	var u *chain.Update
	for _, x := range xs {
		u = mustAdd(t, c, x, now)
		if x == xs[3] && len(u.Disconnected) != 3 {
			t.Fatalf("x4 disconnected %d blocks, want y3 y2 y1", len(u.Disconnected))
		}
	}
	if c.TipHash() != xs[5].Hash() || c.FinalHeight() != 4 {
		t.Fatalf("tip at %d, FinalHeight %d; want x6 and 4", c.Height(), c.FinalHeight())
	}
	// A checkpoint the main chain contradicts is refused.
	checkCode(t, c.SetCheckpoint(chain.Checkpoint{Height: 2, Hash: ys[2].Hash()}), chain.ErrCheckpoint)
	if err := c.SetCheckpoint(chain.Checkpoint{Height: 2, Hash: xs[1].Hash()}); err != nil {
		t.Fatalf("a checkpoint on the main chain: %v", err)
	}
}

// mapArchive is an Archive over maps, as a store would hold the chain: the
// blocks by hash, and apart from them the height index and the reading
// index of the main chain.
type mapArchive struct {
	blocks   map[chain.Hash]*chain.Block
	main     []chain.Hash              // main-chain hash by height
	readings map[chain.Hash]chain.Hash // reading id -> main-chain block
	reads    int
}

func newMapArchive(c *chain.Chain) *mapArchive {
	a := &mapArchive{blocks: map[chain.Hash]*chain.Block{}, readings: map[chain.Hash]chain.Hash{}}
	a.main = append(a.main, c.Genesis())
	for h := uint64(1); h <= c.Height(); h++ {
		b, _ := c.BlockAt(h)
		a.add(b)
	}
	return a
}

// add records b as the next main-chain block, as a commit does.
func (a *mapArchive) add(b *chain.Block) {
	a.blocks[b.Hash()] = b
	a.main = append(a.main[:b.Header.Height], b.Hash())
	for i := range b.Readings {
		a.readings[readingID(&b.Readings[i])] = b.Hash()
	}
}

func (a *mapArchive) MainHash(height uint64) (chain.Hash, bool) {
	if height >= uint64(len(a.main)) {
		return chain.Hash{}, false
	}
	return a.main[height], true
}

func (a *mapArchive) MainHashes(from uint64, max int) []chain.Hash {
	if from >= uint64(len(a.main)) {
		return nil
	}
	return slices.Clone(a.main[from:min(uint64(len(a.main)), from+uint64(max))])
}

func (a *mapArchive) MainHeight(h chain.Hash) (uint64, bool) {
	for i, m := range a.main {
		if m == h {
			return uint64(i), true
		}
	}
	return 0, false
}

var errLost = errors.New("disk damaged")

func (a *mapArchive) BlockByHash(h chain.Hash) (*chain.Block, error) {
	a.reads++
	if b, ok := a.blocks[h]; ok {
		return b, nil
	}
	return nil, errLost
}

func (a *mapArchive) HeaderByHash(h chain.Hash) (chain.Header, error) {
	b, err := a.BlockByHash(h)
	if err != nil {
		return chain.Header{}, err
	}
	return b.Header, nil
}

func (a *mapArchive) ReadingBlock(id chain.Hash) (chain.Hash, bool) {
	h, ok := a.readings[id]
	return h, ok
}

// TestArchive: with an archive, Compact drops the bodies of all but the
// newest KeepBodies main-chain blocks and the reading index of final
// blocks; both are read back on demand, and the rules still see every
// reading. A body the archive lost is not found, with the reason.
func TestArchive(t *testing.T) {
	p := testParams(0)
	p.FinalAge = 0
	p.MaxReorgDepth = 2
	c := mustChain(t, p)
	n := chain.KeepBodies + 8
	rs := poolReadings(n + 1)
	blocks := growChain(t, c, n, func(i int) []chain.Reading { return rs[i : i+1] })
	a := newMapArchive(c)
	c.SetArchive(a)
	c.Compact()
	if c.FinalHeight() != uint64(n-2) {
		t.Fatalf("FinalHeight %d, want %d", c.FinalHeight(), n-2)
	}
	// Old blocks come from the archive, the newest from memory.
	if b, ok := c.BlockAt(3); !ok || b != blocks[2] || a.reads != 1 {
		t.Fatalf("old block 3: ok %v, %d reads", ok, a.reads)
	}
	if b, ok := c.BlockAt(uint64(n)); !ok || b != blocks[n-1] || a.reads != 1 {
		t.Fatalf("the tip was read from the archive (%d reads)", a.reads)
	}
	// A final block's reading is found through the archive's index.
	if r, b, ok := c.FindReading(readingID(&rs[1])); !ok || r != rs[1] || b != blocks[1] {
		t.Fatal("a reading of a final block is not found")
	}
	if !c.HasReading(readingID(&rs[1])) || c.HasReading(readingID(&rs[n])) {
		t.Fatal("HasReading does not see through the archive")
	}
	if h, ok := c.Header(blocks[0].Hash()); !ok || h != blocks[0].Header {
		t.Fatal("Header of an old block")
	}
	// A reading of a final block is still known to the rules.
	now := time.UnixMilli(c.Tip().Header.Time + 1000)
	_, err := c.AddBlock(mine(t, c, rs[2:3], now), now)
	checkCode(t, err, chain.ErrDuplicateReading)

	// A body the archive lost.
	delete(a.blocks, blocks[1].Hash())
	if _, ok := c.BlockAt(2); ok {
		t.Fatal("a lost body was found")
	}
	if _, err := c.LoadBlock(blocks[1].Hash()); !errors.Is(err, errLost) {
		t.Fatalf("LoadBlock of a lost body: %v", err)
	}
	if _, err := c.LoadBlock(chain.Hash{7}); !errors.Is(err, chain.ErrNotKnown) {
		t.Fatalf("LoadBlock of an unknown hash: %v", err)
	}
	// Serving stops before a lost body, and fails if it is the first.
	if got, err := c.BlocksAfter([]chain.Hash{c.Genesis()}, 100, 1<<20); err != nil || len(got) != 1 {
		t.Fatalf("BlocksAfter up to a lost body: %d blocks, %v; want block 1 alone", len(got), err)
	}
	if _, err := c.BlocksAfter([]chain.Hash{blocks[0].Hash()}, 100, 1<<20); !errors.Is(err, errLost) {
		t.Fatalf("BlocksAfter starting at a lost body: %v", err)
	}
}

// TestArchiveDeepReorg: while the final age holds finality back, a
// reorganisation may disconnect blocks whose bodies Compact dropped: they
// are read back from the archive first, and if that fails the chain does
// not change.
func TestArchiveDeepReorg(t *testing.T) {
	p := testParams(0)
	p.FinalAge = 24 * time.Hour
	p.MaxReorgDepth = 2
	c := mustChain(t, p)
	n := chain.KeepBodies + 8
	rs := poolReadings(2 * n)
	blocks := growChain(t, c, n, func(i int) []chain.Reading { return rs[i : i+1] })
	a := newMapArchive(c)
	c.SetArchive(a)
	c.Compact()
	if c.FinalHeight() != 0 {
		t.Fatalf("FinalHeight %d, want 0 within the final age", c.FinalHeight())
	}
	// A better branch from block 1.
	var branch []*chain.Block
	parent := blocks[0]
	for i := 0; i < n; i++ {
		b := solve(t, blockOn(parent, p, rs[n+i:n+i+1], parent.Header.Time+1))
		branch = append(branch, b)
		parent = b
	}
	now := time.UnixMilli(c.Tip().Header.Time).Add(10 * time.Minute) // past the tie window: the tip stays on equal work
	for _, b := range branch[:n-1] {
		if u := mustAdd(t, c, b, now); u.TipChanged {
			t.Fatalf("branch block %d changed the tip early", b.Header.Height)
		}
	}
	lost := blocks[3]
	delete(a.blocks, lost.Hash())
	if _, err := c.AddBlock(branch[n-1], now); !errors.Is(err, errLost) {
		t.Fatalf("reorganisation over a lost body: %v", err)
	}
	if c.TipHash() != blocks[n-1].Hash() || c.HasBlock(branch[n-1].Hash()) {
		t.Fatal("a failed reorganisation changed the chain")
	}
	a.blocks[lost.Hash()] = lost
	u := mustAdd(t, c, branch[n-1], now)
	if len(u.Disconnected) != n-1 || len(u.Connected) != n {
		t.Fatalf("reorganisation: %d disconnected, %d connected", len(u.Disconnected), len(u.Connected))
	}
	for i, b := range u.Disconnected {
		if b == nil || b.Hash() != blocks[n-1-i].Hash() {
			t.Fatalf("disconnected block %d is not block %d", i, n-i)
		}
	}
	if len(u.Returned) != n-1 {
		t.Fatalf("%d readings returned, want %d", len(u.Returned), n-1)
	}
}

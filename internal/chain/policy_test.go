package chain_test

import (
	"errors"
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

// TestBodySource: with a BodySource, the chain drops the bodies of final
// blocks and reads them back on demand; headers and the reading index stay
// in memory. A body the source cannot give is not found, with the reason.
func TestBodySource(t *testing.T) {
	p := testParams(0)
	p.FinalAge = 0
	p.MaxReorgDepth = 2
	c := mustChain(t, p)
	rs := poolReadings(10)
	blocks := growChain(t, c, 8, func(i int) []chain.Reading { return rs[i : i+1] })
	stored := map[chain.Hash]*chain.Block{}
	for _, b := range blocks {
		stored[b.Hash()] = b
	}
	reads := 0
	broken := errors.New("disk damaged")
	c.SetBodySource(func(h chain.Hash) (*chain.Block, error) {
		reads++
		if b, ok := stored[h]; ok {
			return b, nil
		}
		return nil, broken
	})
	if c.FinalHeight() != 6 {
		t.Fatalf("FinalHeight %d, want 6", c.FinalHeight())
	}
	// Final blocks come from the source, the others from memory.
	if b, ok := c.BlockAt(3); !ok || b != blocks[2] || reads != 1 {
		t.Fatalf("final block 3: ok %v, %d reads", ok, reads)
	}
	if b, ok := c.BlockAt(8); !ok || b != blocks[7] || reads != 1 {
		t.Fatalf("block 8, not final, was read from the source (%d reads)", reads)
	}
	if r, b, ok := c.FindReading(readingID(&rs[1])); !ok || r != rs[1] || b != blocks[1] {
		t.Fatal("a reading of a final block is not found")
	}
	if h, ok := c.Header(blocks[0].Hash()); !ok || h != blocks[0].Header || reads != 2 {
		t.Fatalf("Header read a body (%d reads)", reads)
	}
	// A reading of a final block is still known to the rules.
	now := time.UnixMilli(c.Tip().Header.Time + 1000)
	_, err := c.AddBlock(mine(t, c, rs[2:3], now), now)
	checkCode(t, err, chain.ErrDuplicateReading)

	// A body the source lost.
	delete(stored, blocks[1].Hash())
	if _, ok := c.BlockAt(2); ok {
		t.Fatal("a lost body was found")
	}
	if _, ok := c.Block(blocks[1].Hash()); ok {
		t.Fatal("a lost body was found by hash")
	}
	if _, err := c.LoadBlock(blocks[1].Hash()); !errors.Is(err, broken) {
		t.Fatalf("LoadBlock of a lost body: %v", err)
	}
	if _, err := c.LoadBlock(chain.Hash{7}); !errors.Is(err, chain.ErrNotKnown) {
		t.Fatalf("LoadBlock of an unknown hash: %v", err)
	}
	if _, err := c.BlocksAfter([]chain.Hash{c.Genesis()}, 100, 1<<20); !errors.Is(err, broken) {
		t.Fatalf("BlocksAfter over a lost body: %v", err)
	}
	if !c.HasBlock(blocks[1].Hash()) || !c.HasReading(readingID(&rs[1])) {
		t.Fatal("the lost body's block or reading left the index")
	}
}

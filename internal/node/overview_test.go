package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
)

// TestOverviewIsOneMoment: while the miner commits block after block, every
// Overview accounts for each submitted reading exactly once: in a block up
// to the height it shows, or in its pending count. Read one by one, a block
// committed between the height and the count lost its readings from both.
func TestOverviewIsOneMoment(t *testing.T) {
	// The miner and the reader must overlap for the check to mean anything;
	// on a loaded machine the miner may finish first, so try again.
	for try := 1; ; try++ {
		heights := checkOverviews(t)
		if heights >= 10 {
			return
		}
		if try == 5 {
			t.Fatalf("in 5 runs the overviews saw at most %d heights; the test needs the miner and the reader to overlap", heights)
		}
	}
}

// checkOverviews mines a node's pending readings while reading overviews,
// checks each one against the chain mined, and returns how many heights
// they saw.
func checkOverviews(t *testing.T) int {
	const readings = 240
	params := chain.TestParams("overview")
	params.MaxReadings = 2
	params.Difficulty = 10 // a millisecond or so a block: the reader sees many heights
	n, err := node.New(params, key(9))
	if err != nil {
		t.Fatal(err)
	}
	for i := range readings {
		if _, err := n.Submit(fmt.Sprintf("s%d", i), 60+i%100); err != nil {
			t.Fatal(err)
		}
	}
	var seen []node.Overview
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(ctx, nil) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		o := n.Overview()
		seen = append(seen, o)
		if o.Pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s, %d readings still pending", o.Pending)
		}
	}
	cancel()
	<-done

	inBlocks := []int{0} // readings in blocks up to each height
	for h := uint64(1); ; h++ {
		info, ok, _ := n.BlockByHeight(h)
		b := info.Block
		if !ok {
			break
		}
		inBlocks = append(inBlocks, inBlocks[h-1]+len(b.Readings))
	}
	heights := map[uint64]bool{}
	for _, o := range seen {
		heights[o.Height] = true
		if o.Height >= uint64(len(inBlocks)) {
			t.Fatalf("overview at height %d; the chain has %d blocks", o.Height, len(inBlocks)-1)
		}
		if got := inBlocks[o.Height] + o.Pending; got != readings {
			t.Fatalf("overview at height %d shows %d pending: %d readings accounted for, want %d", o.Height, o.Pending, got, readings)
		}
		if b, _, _ := n.BlockByHeight(o.Height); o.Height > 0 && (b.Block.Hash() != o.Tip || b.Block.Header.Time != o.TipTime) {
			t.Fatalf("overview at height %d: tip %s time %d, the block there is %s time %d", o.Height, o.Tip.Short(), o.TipTime, b.Block.Hash().Short(), b.Block.Header.Time)
		}
	}
	return len(heights)
}

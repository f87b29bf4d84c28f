package node

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// TestSubmittedForgottenAfterJump: readings submitted here are remembered
// until final (for their time to finality and their rebroadcast). When the final height jumps by more than the 64 blocks
// whose readings are reported (a sync, a clock moved on), the readings of
// the older blocks are forgotten too. Before, they stayed for good, and
// once the map held maxSubmitted, a new reading submitted here was not
// remembered at all.
func TestSubmittedForgottenAfterJump(t *testing.T) {
	params := chain.TestParams("submitted-jump")
	var mu sync.Mutex
	now := time.UnixMilli(params.GenesisTime).Add(time.Hour)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	n, err := New(params, writerKey(1), WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	var mine []chain.Reading
	for i := range 2 {
		r, err := n.SubmitAt(fmt.Sprintf("own%d", i), 70, now.Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		mine = append(mine, r)
	}
	pending, err := n.SubmitAt("still-pending", 71, now.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}

	// Another node's chain of 100 blocks: block 1 holds the two readings.
	c, err := chain.New(params)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []*chain.Block
	for i := range 100 {
		at := now.Add(-50*time.Second + time.Duration(i)*time.Millisecond)
		rs := mine
		if i > 0 {
			r, err := chain.NewReading(writerKey(2), fmt.Sprintf("other%d", i), 70, at)
			if err != nil {
				t.Fatal(err)
			}
			rs = []chain.Reading{r}
		}
		blk := c.NewBlock(rs, at)
		if err := chain.Solve(context.Background(), &blk.Header); err != nil {
			t.Fatal(err)
		}
		if _, err := c.AddBlock(blk, at); err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, blk)
	}
	if added, err := n.AddBlocks(context.Background(), blocks); err != nil || added != len(blocks) {
		t.Fatalf("added %d of %d: %v", added, len(blocks), err)
	}
	mu.Lock()
	now = now.Add(2 * params.FinalAge) // every block old enough: final jumps by depth alone
	mu.Unlock()
	n.mu.Lock()
	n.finalLocked(n.now())
	final, left := n.finalSeen, len(n.submitted)
	_, kept := n.submitted[pending.ID()]
	n.mu.Unlock()
	if final <= 65 {
		t.Fatalf("final height %d: the test needs a jump of more than 64 blocks", final)
	}
	if left != 1 || !kept {
		t.Fatalf("after a jump to final height %d, %d readings submitted here are remembered (the pending one: %v); want only the pending one",
			final, left, kept)
	}
}

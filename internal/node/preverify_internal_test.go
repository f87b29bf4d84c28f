package node

import (
	"context"
	"fmt"
	"testing"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// A sync verifies a batch's signatures ahead while the batch before it is
// still being verified and added: Preverify takes that batch's last block as
// the parent, which the chain does not hold yet. Without it, or with a block
// the batch does not follow, nothing is verified ahead (the blocks are
// checked in full when added), and the batches add all the same.
func TestPreverifyFollowsParent(t *testing.T) {
	params := chain.TestParams("preverify")
	src, err := New(params, writerKey(1))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var blocks []*chain.Block
	for i := range 6 {
		if err := src.SubmitReading(signed(t, params, fmt.Sprintf("p%d", i))); err != nil {
			t.Fatal(err)
		}
		b := nextBlock(t, src)
		if _, err := src.AddBlocks(ctx, []*chain.Block{b}); err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, b)
	}
	first, second := blocks[:3], blocks[3:]

	n, err := New(params, writerKey(2))
	if err != nil {
		t.Fatal(err)
	}
	verified := func() uint64 { return n.sigs.Added() }

	n.Preverify(ctx, second, nil) // its parent is unknown to the chain
	if got := verified(); got != 0 {
		t.Fatalf("a batch whose parent the chain lacks, no parent given: %d signatures verified, want 0", got)
	}
	n.Preverify(ctx, second, first[1]) // not the block it follows
	if got := verified(); got != 0 {
		t.Fatalf("a batch given a parent it does not follow: %d signatures verified, want 0", got)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	n.Preverify(done, first, nil) // the sync dropped the batch
	if got := verified(); got != 0 {
		t.Fatalf("a batch the sync dropped: %d signatures verified, want 0", got)
	}
	n.Preverify(ctx, first, nil) // follows genesis, which the chain holds
	if got := verified(); got != 3 {
		t.Fatalf("the first batch: %d signatures verified, want 3", got)
	}
	n.Preverify(ctx, second, first[2])
	if got := verified(); got != 6 {
		t.Fatalf("the next batch, given the previous batch's last block: %d signatures verified in all, want 6", got)
	}

	for _, batch := range [][]*chain.Block{first, second} {
		if added, err := n.AddBlocks(ctx, batch); err != nil || added != len(batch) {
			t.Fatalf("AddBlocks: %d added, %v", added, err)
		}
	}
	if h := n.Status().Height; h != 6 {
		t.Fatalf("height %d after both batches, want 6", h)
	}
}

// A block the chain holds costs no signature, on the sync's verification
// ahead too: a peer that once made the node store a branch could
// otherwise serve it again and again (its batches add nothing), and each
// time cost the node every signature the cache has let go of meanwhile.
func TestPreverifySkipsKnownBlocks(t *testing.T) {
	params := chain.TestParams("preverify-known")
	src, err := New(params, writerKey(1))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var blocks []*chain.Block
	for i := range 6 {
		for j := range 10 {
			if err := src.SubmitReading(signed(t, params, fmt.Sprintf("k%d-%d", i, j))); err != nil {
				t.Fatal(err)
			}
		}
		b := nextBlock(t, src)
		if _, err := src.AddBlocks(ctx, []*chain.Block{b}); err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, b)
	}
	n, err := New(params, writerKey(2))
	if err != nil {
		t.Fatal(err)
	}
	if added, err := n.AddBlocks(ctx, blocks[:4]); err != nil || added != 4 {
		t.Fatalf("AddBlocks: %d added, %v", added, err)
	}
	// The cache lets go of their signatures (other readings pushed them
	// out): a fresh one.
	n.sigs = chain.NewSigCache(SigCacheSize)
	n.chain.SetSigCache(n.sigs)
	verified := func() uint64 { return n.sigs.Added() }

	n.Preverify(ctx, blocks[:4], nil)
	n.Preverify(ctx, blocks[2:4], blocks[1])
	if got := verified(); got != 0 {
		t.Fatalf("batches of blocks the chain holds: %d signatures verified ahead, want 0", got)
	}
	n.Preverify(ctx, blocks[2:], blocks[1]) // two known, then two new
	if got := verified(); got != 20 {
		t.Fatalf("two known blocks, then two new ones of 10 readings: %d signatures verified, want 20", got)
	}
	if added, err := n.AddBlocks(ctx, blocks[2:]); err != nil || added != 2 {
		t.Fatalf("AddBlocks: %d added, %v", added, err)
	}
}

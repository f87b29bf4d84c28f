package node_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
)

// signed returns a block on parent (the genesis if nil) with readings of
// the given subjects, its proof of work solved after edit changed it.
func signed(t *testing.T, params chain.Params, parent *chain.Block, edit func(*chain.Block), subjects ...string) *chain.Block {
	t.Helper()
	if parent == nil {
		parent = params.Genesis()
	}
	at := time.UnixMilli(parent.Header.Time).Add(time.Second)
	var rs []chain.Reading
	for i, s := range subjects {
		r, err := chain.NewReading(key(2), s, 60+i, at)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	b := &chain.Block{Readings: rs, Header: chain.Header{Version: chain.HeaderVersion, Height: parent.Header.Height + 1,
		Parent: parent.Hash(), Time: at.UnixMilli(), Count: uint32(len(rs)), Difficulty: params.Difficulty}}
	if edit != nil {
		edit(b)
	}
	b.Header.Root = b.ReadingsRoot()
	if err := chain.Solve(context.Background(), &b.Header); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRefusedBlockIsRecognised: a block refused on a rule its hash decides
// (a bad signature, a reading already in its ancestry, a bad height) is
// refused again on its hash, with the same rule error, before any of its
// signatures is verified; a block refused on its body before the readings
// root was checked is not remembered, so an attacker who pairs an honest
// header with a tampered body cannot make the node refuse the honest block.
func TestRefusedBlockIsRecognised(t *testing.T) {
	params := chain.TestParams("refused-memo")
	n, err := node.New(params, key(9))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b1 := signed(t, params, nil, nil, "a", "b")
	if err := n.AddBlock(ctx, b1); err != nil {
		t.Fatal(err)
	}

	badSig := signed(t, params, b1, func(b *chain.Block) { b.Readings[1].Sig[5] ^= 1 }, "c", "d")
	recycled := signed(t, params, b1, func(b *chain.Block) { b.Readings[0] = b1.Readings[0] }, "e", "f")
	badHeight := signed(t, params, b1, func(b *chain.Block) { b.Header.Height = 7 }, "g")
	for _, tc := range []struct {
		name string
		blk  *chain.Block
		code chain.ErrorCode
	}{{"bad signature", badSig, chain.ErrBadSignature}, {"reading in the ancestry", recycled, chain.ErrDuplicateReading},
		{"bad height", badHeight, chain.ErrBadHeight}} {
		err := n.AddBlock(ctx, tc.blk)
		if !errors.Is(err, tc.code) || strings.Contains(err.Error(), "refused before") {
			t.Fatalf("%s, first: %v; want %v", tc.name, err, tc.code)
		}
		verified := n.SignaturesVerified()
		err = n.AddBlock(ctx, tc.blk)
		if !errors.Is(err, tc.code) || !chain.IsPeerFault(err) || !strings.Contains(err.Error(), "refused before") {
			t.Fatalf("%s, again: %v; want %v, refused before", tc.name, err, tc.code)
		}
		if _, err := n.AddBlocks(ctx, []*chain.Block{tc.blk}); !errors.Is(err, tc.code) {
			t.Fatalf("%s, in a sync batch: %v; want %v", tc.name, err, tc.code)
		}
		if got := n.SignaturesVerified(); got != verified {
			t.Fatalf("%s: %d signatures verified again", tc.name, got-verified)
		}
	}

	// An honest block, its body tampered under the same header: refused on
	// rule 6 (the root), not remembered; the honest body is then taken.
	honest := signed(t, params, b1, nil, "h", "i")
	tampered := &chain.Block{Header: honest.Header, Readings: []chain.Reading{honest.Readings[1], honest.Readings[0]}}
	if err := n.AddBlock(ctx, tampered); !errors.Is(err, chain.ErrBadRoot) {
		t.Fatalf("tampered body: %v, want %v", err, chain.ErrBadRoot)
	}
	short := &chain.Block{Header: honest.Header, Readings: honest.Readings[:1]}
	if err := n.AddBlock(ctx, short); !errors.Is(err, chain.ErrBadCount) {
		t.Fatalf("body short of a reading: %v, want %v", err, chain.ErrBadCount)
	}
	twice := &chain.Block{Header: honest.Header, Readings: []chain.Reading{honest.Readings[0], honest.Readings[0]}}
	if err := n.AddBlock(ctx, twice); !errors.Is(err, chain.ErrDuplicateReading) {
		t.Fatalf("a reading twice: %v, want %v", err, chain.ErrDuplicateReading)
	}
	if err := n.AddBlock(ctx, honest); err != nil {
		t.Fatalf("the honest block after tampered copies of it: %v", err)
	}
}

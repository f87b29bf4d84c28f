package node_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/bft"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/receipt"
	"github.com/p2pchain/p2pchain/internal/store"
)

// A node on a real store makes receipts of main-chain readings that check
// offline, reaching its tip, also for readings of final blocks whose
// headers the chain left to the store; a pending reading has none yet, an
// unknown one none at all.
func TestReceiptFromNode(t *testing.T) {
	params := chain.TestParams("receipts")
	params.Difficulty = 4
	params.MaxReorgDepth, params.FinalAge = 1, 0 // blocks turn final at once: old headers come from the store
	b := newBuilder(t, params)
	var blocks []*chain.Block
	for i := 0; i < 150; i++ { // more than two chunks of headers above the first block
		blocks = append(blocks, b.block(chain.Hash{}, "alice", "bob", "carol"))
	}
	path := filepath.Join(t.TempDir(), "chain")
	clock := node.WithClock(func() time.Time { return time.UnixMilli(params.GenesisTime).Add(time.Hour) })
	st, err := store.Open(path, params)
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(params, key(9), node.WithStore(st, node.State{}), clock)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.AddBlocks(context.Background(), blocks); err != nil {
		t.Fatal(err)
	}
	tip := blocks[len(blocks)-1]
	checkReceipts(t, n, blocks, tip)
	// Restarted from its final block, the node reads every header below
	// it from the store.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if st, err = store.Open(path, params); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s, err := st.LoadRecent()
	if err != nil || s.Final == nil {
		t.Fatalf("LoadRecent: %v", err)
	}
	if n, err = node.New(params, key(9), node.WithStore(st, node.State{Main: s.Main, Final: s.Final}), clock); err != nil {
		t.Fatal(err)
	}
	checkReceipts(t, n, blocks, tip)

	pending, err := n.Submit("dave", 70)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Receipt(pending.ID()); !errors.Is(err, node.ErrReadingPending) {
		t.Fatalf("pending reading: %v", err)
	}
	if _, err := n.Receipt(chain.Hash{1}); !errors.Is(err, node.ErrReadingNotFound) {
		t.Fatalf("unknown reading: %v", err)
	}
}

// checkReceipts makes receipts of readings of a few blocks and checks them.
func checkReceipts(t *testing.T, n *node.Node, blocks []*chain.Block, tip *chain.Block) {
	t.Helper()
	for _, c := range []struct{ block, reading int }{{2, 1}, {len(blocks) / 2, 2}, {len(blocks) - 1, 0}} {
		rd := blocks[c.block].Readings[c.reading]
		r, err := n.Receipt(rd.ID())
		if err != nil {
			t.Fatal(err)
		}
		data, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		back, err := receipt.Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		trust := tip.Hash()
		res, err := receipt.Check(back, &trust)
		if err != nil {
			t.Fatalf("block %d: %v", c.block+1, err)
		}
		if res.ReadingID != rd.ID() || res.Height != uint64(c.block+1) || res.Tip != tip.Hash() ||
			res.Depth != uint64(len(blocks)-c.block) || !res.Trusted || res.Final {
			t.Fatalf("block %d: %+v", c.block+1, res)
		}
	}
}

// On an authority network the receipt carries its block's seal and the
// authority set of its height, and says the reading is final.
func TestReceiptOnAuthorityNetwork(t *testing.T) {
	keys := []ed25519.PrivateKey{key(21), key(22), key(23), key(24)}
	net := authorityNetwork(t, keys)
	n, st := openAuthorityNode(t, net, filepath.Join(t.TempDir(), "store"))
	defer st.Close()
	ctx := context.Background()
	g, _, _ := n.BlockByHeight(0)
	genesis := g.Block
	b1 := nextBlock(t, net, genesis, 70)
	b1.Seal = seal(net, b1, keys[:3], []int{0, 1, 2})
	b2 := nextBlock(t, net, b1, 71, bft.Change{Op: bft.OpAdd, Height: 4, Key: bft.KeyOf(key(25))})
	b2.Seal = seal(net, b2, keys[1:], []int{1, 2, 3})
	b3 := nextBlock(t, net, b2, 72)
	b3.Seal = seal(net, b3, keys[:3], []int{0, 1, 2})
	for _, b := range []*chain.Block{b1, b2, b3} {
		if err := n.AddBlock(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	r, err := n.Receipt(b2.Readings[0].ID())
	if err != nil {
		t.Fatal(err)
	}
	res, err := receipt.Check(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Final || res.Signers != 3 || res.Authorities != 4 || res.Height != 2 || res.TipHeight != 3 ||
		res.Network != net.Params.Genesis().Hash() || res.SetHash != n.AuthoritySet(2).Hash() {
		t.Fatalf("%+v", res)
	}
}

package node_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
)

func key(i byte) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte{'k', i})
	return ed25519.NewKeyFromSeed(seed[:])
}

// builder makes blocks on its own copy of a chain, one second apart.
type builder struct {
	t      testing.TB
	params chain.Params
	c      *chain.Chain
	tick   int64
}

func newBuilder(t testing.TB, params chain.Params) *builder {
	c, err := chain.New(params)
	if err != nil {
		t.Fatal(err)
	}
	return &builder{t: t, params: params, c: c}
}

// block mines a block on parent (the builder's tip if zero) holding one
// reading per subject, in order.
func (b *builder) block(parent chain.Hash, subjects ...string) *chain.Block {
	b.t.Helper()
	b.tick++
	at := time.UnixMilli(b.params.GenesisTime).Add(time.Duration(b.tick) * time.Second)
	var rs []chain.Reading
	for i, s := range subjects {
		r, err := chain.NewReading(key(1), s, 60+int(b.tick)%100+i, at)
		if err != nil {
			b.t.Fatal(err)
		}
		rs = append(rs, r)
	}
	blk := b.c.NewBlock(rs, at)
	if !parent.IsZero() {
		p, ok := b.c.Block(parent)
		if !ok {
			b.t.Fatalf("unknown parent %s", parent.Short())
		}
		blk.Header.Parent, blk.Header.Height = parent, p.Header.Height+1
	}
	if err := chain.Solve(context.Background(), &blk.Header); err != nil {
		b.t.Fatal(err)
	}
	if _, err := b.c.AddBlock(blk, at); err != nil {
		b.t.Fatal(err)
	}
	return blk
}

// full makes a block on the builder's tip with params.MaxReadings
// readings, one per subject: the largest block a node reads back.
func (b *builder) full() *chain.Block {
	b.t.Helper()
	b.tick++
	at := time.UnixMilli(b.params.GenesisTime).Add(time.Duration(b.tick) * time.Second)
	rs := make([]chain.Reading, b.params.MaxReadings)
	for i := range rs {
		r, err := chain.NewReading(key(1), fmt.Sprintf("subject-%d", i), chain.MinBPM+i%(chain.MaxBPM-chain.MinBPM), at)
		if err != nil {
			b.t.Fatal(err)
		}
		rs[i] = r
	}
	blk := b.c.NewBlock(rs, at)
	if err := chain.Solve(context.Background(), &blk.Header); err != nil {
		b.t.Fatal(err)
	}
	if _, err := b.c.AddBlock(blk, at); err != nil {
		b.t.Fatal(err)
	}
	return blk
}

func newNode(t *testing.T, params chain.Params, blocks ...*chain.Block) *node.Node {
	t.Helper()
	n, err := node.New(params, key(9))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.AddBlocks(context.Background(), blocks); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestBlockLookups(t *testing.T) {
	params := chain.TestParams("query")
	b := newBuilder(t, params)
	b1 := b.block(chain.Hash{}, "alice")
	b2 := b.block(chain.Hash{}, "bob")
	b3 := b.block(chain.Hash{}, "carol")
	// A side block on genesis: less work than the main chain.
	side := b.block(params.Genesis().Hash(), "dave")
	n := newNode(t, params, b1, b2, b3, side)

	for _, tc := range []struct {
		blk   *chain.Block
		main  bool
		confs uint64
	}{{b1, true, 3}, {b3, true, 1}, {side, false, 0}} {
		info, ok, _ := n.BlockByHash(tc.blk.Hash())
		if !ok || info.Block != tc.blk || info.Main != tc.main || info.Tip != 3 || info.Confirmations() != tc.confs {
			t.Errorf("BlockByHash(block %d) = %+v, %v; want main %v, %d confirmations", tc.blk.Header.Height, info, ok, tc.main, tc.confs)
		}
	}
	if _, ok, err := n.BlockByHash(chain.Hash{1}); ok || err != nil {
		t.Error("BlockByHash found an unknown hash")
	}
	if info, ok, _ := n.BlockByHeight(2); !ok || info.Block != b2 || !info.Main || info.Confirmations() != 2 {
		t.Errorf("BlockByHeight(2) = %+v, %v", info, ok)
	}
	if info, ok, _ := n.BlockByHeight(0); !ok || info.Block.Hash() != params.Genesis().Hash() || info.Confirmations() != 4 {
		t.Errorf("BlockByHeight(0) = %+v, %v; want genesis with 4 confirmations", info, ok)
	}
	if _, ok, err := n.BlockByHeight(4); ok || err != nil {
		t.Error("BlockByHeight found a block above the tip")
	}
	if got := n.TipBlock(); got != b3 {
		t.Errorf("TipBlock at height %d, want 3", got.Header.Height)
	}
	if got := n.KnownBlocks(); got != 5 {
		t.Errorf("KnownBlocks = %d, want 5 (genesis, 3 main, 1 side)", got)
	}
}

func TestLocateReadingAndPendingOf(t *testing.T) {
	params := chain.TestParams("query")
	b := newBuilder(t, params)
	b1 := b.block(chain.Hash{}, "alice", "bob")
	b2 := b.block(chain.Hash{})
	n := newNode(t, params, b1, b2)

	id := b1.Readings[1].ID()
	info, ok, _ := n.LocateReading(id)
	if !ok || info.Pending || info.Height != 1 || info.Block != b1.Hash() || info.Reading.Subject != "bob" || info.Confirmations() != 2 {
		t.Errorf("LocateReading(mined) = %+v, %v; want bob in block 1 with 2 confirmations", info, ok)
	}
	var pending []chain.Reading
	for i, s := range []string{"alice", "bob", "alice", "alice"} {
		r, err := n.Submit(s, 70+i)
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, r)
	}
	info, ok, _ = n.LocateReading(pending[0].ID())
	if !ok || !info.Pending || info.Confirmations() != 0 || info.Reading.ID() != pending[0].ID() {
		t.Errorf("LocateReading(pending) = %+v, %v", info, ok)
	}
	if _, ok, err := n.LocateReading(chain.Hash{7}); ok || err != nil {
		t.Errorf("LocateReading(unknown id) = %v, %v; want false, nil", ok, err)
	}

	got := n.PendingOf("alice", 10)
	want := []chain.Reading{pending[3], pending[2], pending[0]}
	if len(got) != len(want) {
		t.Fatalf("PendingOf(alice) = %d readings, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].ID() != want[i].ID() {
			t.Errorf("PendingOf(alice)[%d] is not the %d-th newest", i, i)
		}
	}
	if got := n.PendingOf("alice", 2); len(got) != 2 || got[0].ID() != pending[3].ID() || got[1].ID() != pending[2].ID() {
		t.Errorf("PendingOf(alice, 2) = %d readings, want the 2 newest", len(got))
	}
	if got := n.PendingOf("nobody", 10); len(got) != 0 {
		t.Errorf("PendingOf(nobody) = %d readings", len(got))
	}
}

// TestSubjectReadingsPaging pages through a subject's readings with every
// page size and checks the concatenation against a brute-force list.
func TestSubjectReadingsPaging(t *testing.T) {
	params := chain.TestParams("query")
	b := newBuilder(t, params)
	layout := [][]string{
		{"a", "b", "a"},
		{},
		{"b"},
		{"a"},
		{"a", "a", "a", "b"},
		{"c"},
	}
	var blocks []*chain.Block
	for _, subjects := range layout {
		blocks = append(blocks, b.block(chain.Hash{}, subjects...))
	}
	for _, stored := range []bool{false, true} {
		t.Run(fmt.Sprintf("store=%v", stored), func(t *testing.T) {
			n := newNode(t, params, blocks...)
			if stored { // read from the store's subject index
				n = newStoredNode(t, params, blocks...)
			}
			checkSubjectPaging(t, n, layout, blocks)
		})
	}
}

func checkSubjectPaging(t *testing.T, n *node.Node, layout [][]string, blocks []*chain.Block) {
	tip := uint64(len(blocks))

	// want lists subject's readings newest first, as "height/index".
	want := func(subject string, below uint64) []string {
		var out []string
		for h := int(below); h >= 1; h-- {
			subjects := layout[h-1]
			for i := len(subjects) - 1; i >= 0; i-- {
				if subjects[i] == subject {
					out = append(out, fmt.Sprintf("%d/%d", h, i))
				}
			}
		}
		return out
	}
	for _, subject := range []string{"a", "b", "c", "nobody"} {
		for limit := 1; limit <= 8; limit++ {
			var got []string
			from, pages := node.StartAt(tip), 0
			for {
				page, err := n.SubjectReadings(subject, from, limit)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				if len(page.Readings) > limit {
					t.Fatalf("%s limit %d: page of %d", subject, limit, len(page.Readings))
				}
				if page.Tip != tip {
					t.Fatalf("page tip %d, want %d", page.Tip, tip)
				}
				for _, r := range page.Readings {
					blk := blocks[r.Height-1]
					idx := -1
					for i := range blk.Readings {
						if blk.Readings[i].ID() == r.Reading.ID() {
							idx = i
						}
					}
					if r.Reading.Subject != subject || r.Block != blk.Hash() || r.Confirmations() != tip-r.Height+1 || r.Pending {
						t.Fatalf("%s: bad reading %+v", subject, r)
					}
					got = append(got, fmt.Sprintf("%d/%d", r.Height, idx))
				}
				if !page.More {
					break
				}
				if pages > 20 {
					t.Fatal("paging does not end")
				}
				from = page.Next
			}
			if w := want(subject, tip); fmt.Sprint(got) != fmt.Sprint(w) {
				t.Errorf("%s limit %d: got %v, want %v", subject, limit, got, w)
			}
		}
	}

	// Starting mid-chain, and above the tip.
	page, err := n.SubjectReadings("a", node.StartAt(4), 100)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(page.Readings); got != len(want("a", 4)) || page.More || page.Readings[0].Height != 4 {
		t.Errorf("from height 4: %d readings (more %v), want %d starting at height 4", got, page.More, len(want("a", 4)))
	}
	if page, err = n.SubjectReadings("c", node.StartAt(1000), 1); err != nil {
		t.Fatal(err)
	}
	if len(page.Readings) != 1 || page.Readings[0].Height != 6 {
		t.Errorf("from above the tip: %+v, want c's reading at height 6", page.Readings)
	}
	// Limit 0 examines nothing and keeps the position.
	if page, err = n.SubjectReadings("a", node.StartAt(3), 0); err != nil {
		t.Fatal(err)
	}
	if len(page.Readings) != 0 || !page.More || page.Next != node.StartAt(3) {
		t.Errorf("limit 0: %+v", page)
	}
}

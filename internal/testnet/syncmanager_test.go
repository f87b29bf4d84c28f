package testnet

import (
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/p2p"
)

// TestSyncProgressAndAnnounce: a fresh node B catches up on ~2,000 blocks
// from A; its progress ends with done == total, and at the end of the sync
// it announces its new tip by gossip, so C, connected only to B and polling
// once an hour, gets the tip in the time of one more sync.
//
//	A (2000 blocks) ── B (fresh) ── C (fresh, poll 1 h)
func TestSyncProgressAndAnnounce(t *testing.T) {
	ctx := testCtx(t, 120*time.Second)
	params := chain.TestParams("announce")
	const n = 2000
	key, _ := p2p.GenerateKey()
	blocks, err := BuildChain(params, key, n, 1)
	if err != nil {
		t.Fatal(err)
	}
	a := startN(t, ctx, 1, Config{Params: params, NoMiner: true})[0]
	for i := 0; i < n; i += 500 {
		if _, err := a.Node.AddBlocks(ctx, blocks[i:min(i+500, n)]); err != nil {
			t.Fatal(err)
		}
	}
	b := startN(t, ctx, 1, Config{Params: params, NoMiner: true})[0]
	c := startN(t, ctx, 1, Config{Params: params, NoMiner: true, SyncInterval: time.Hour})[0]
	if err := c.Connect(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := WaitMesh(ctx, []*Peer{b, c}, 1); err != nil {
		t.Fatal("B and C never formed a gossip mesh")
	}
	if err := b.Connect(ctx, a); err != nil {
		t.Fatal(err)
	}
	tip := blocks[n-1].Hash()
	if err := WaitFor(ctx, func() bool { return b.Node.Status().Tip == tip }); err != nil {
		t.Fatalf("B at height %d, want %d", b.Node.Status().Height, n)
	}
	if err := WaitFor(ctx, func() bool { return !b.Host.Sync().Syncing }); err != nil {
		t.Fatal("B still syncing")
	}
	last := b.Host.LastSync()
	if last.Result != "done" || last.Done != last.Total || last.Done == 0 || last.Peer != a.Host.ID() {
		t.Errorf("B's last sync %+v: want done from A with done == total", last)
	}
	if err := WaitFor(ctx, func() bool { return c.Node.Status().Tip == tip }); err != nil {
		t.Fatalf("C at height %d, never got the tip B announced", c.Node.Status().Height)
	}
	// The tip is in C's chain a moment before its sync is booked as ended.
	if err := WaitFor(ctx, func() bool { return c.Host.LastSync().Peer == b.Host.ID() }); err != nil {
		t.Fatalf("C's sync from B never ended: now %+v, last %+v", c.Host.Sync(), c.Host.LastSync())
	}
	if last := c.Host.LastSync(); last.Done != last.Total {
		t.Errorf("C's last sync %+v: want done == total", last)
	}
	if tr := b.Host.Traffic(); tr.GossipOut == 0 {
		t.Error("B announced nothing by gossip")
	}
}

// TestResumeKnownBranch: a node that already holds the first part of a
// peer's better branch as a side branch (an earlier sync of it ended before
// the branch overtook its main chain) resumes along that branch: batches of
// blocks it already has there are no lie, and the peer is not struck.
//
//	genesis ── 700 blocks (X's main chain)
//	   └────── 1300 blocks (Y's chain; X holds the first 512)
func TestResumeKnownBranch(t *testing.T) {
	ctx := testCtx(t, 120*time.Second)
	params := chain.TestParams("resume")
	params.MaxReorgDepth = 2000 // a reorganisation of 700 blocks is allowed here
	ka, _ := p2p.GenerateKey()
	kb, _ := p2p.GenerateKey()
	better, err := BuildChain(params, ka, 1300, 1)
	if err != nil {
		t.Fatal(err)
	}
	worse, err := BuildChain(params, kb, 700, 1)
	if err != nil {
		t.Fatal(err)
	}
	peers := startN(t, ctx, 2, Config{Params: params, NoMiner: true})
	x, y := peers[0], peers[1]
	for _, add := range []struct {
		p      *Peer
		blocks []*chain.Block
	}{{x, worse}, {x, better[:p2p.MaxBatch]}, {y, better}} {
		for i := 0; i < len(add.blocks); i += 500 {
			if _, err := add.p.Node.AddBlocks(ctx, add.blocks[i:min(i+500, len(add.blocks))]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if x.Node.Status().Tip != worse[len(worse)-1].Hash() {
		t.Fatal("X is not on its own chain")
	}
	if err := x.Connect(ctx, y); err != nil {
		t.Fatal(err)
	}
	if err := WaitFor(ctx, func() bool { return x.Node.Status().Tip == better[len(better)-1].Hash() }); err != nil {
		t.Fatalf("X at height %d, not on Y's chain", x.Node.Status().Height)
	}
	for _, p := range x.Host.Peers() {
		if p.ID == y.Host.ID() && p.Strikes != 0 {
			t.Errorf("Y has %d strikes for leading X along a branch it had", p.Strikes)
		}
	}
}

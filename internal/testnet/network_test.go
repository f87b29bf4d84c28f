package testnet

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/p2p"
)

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func startN(t *testing.T, ctx context.Context, n int, cfg Config) []*Peer {
	t.Helper()
	peers, err := StartN(ctx, n, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { CloseAll(peers) })
	return peers
}

// waitHeight waits until p's tip is at least height.
func waitHeight(t *testing.T, ctx context.Context, p *Peer, height uint64) {
	t.Helper()
	if err := WaitFor(ctx, func() bool { return p.Node.Status().Height >= height }); err != nil {
		t.Fatalf("peer %s stuck at height %d, want %d: %v", p.Host.ID(), p.Node.Status().Height, height, err)
	}
}

// TestLinePropagation: in the topology 1-2-3, a reading entered at one end
// reaches the other end through the middle node, in both directions.
func TestLinePropagation(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	params := chain.TestParams("line")
	params.Difficulty = 8 // real proof of work, still fast
	peers := startN(t, ctx, 3, Config{Params: params})
	if err := Line(ctx, peers); err != nil {
		t.Fatal(err)
	}
	if got := len(peers[0].Host.Peers()); got != 1 {
		t.Fatalf("node 1 has %d peers, want only node 2", got)
	}
	// Wait for the GossipSub mesh (one heartbeat): a block published before
	// a peer is grafted reaches it only through the next sync.
	if err := WaitMesh(ctx, []*Peer{peers[0], peers[2]}, 1); err != nil {
		t.Fatal(err)
	}
	if err := WaitMesh(ctx, peers[1:2], 2); err != nil {
		t.Fatal(err)
	}

	r1, err := peers[0].Node.Submit("alice", 70)
	if err != nil {
		t.Fatal(err)
	}
	waitHeight(t, ctx, peers[2], 1)
	if st, ok, _ := peers[2].Node.LocateReading(r1.ID()); !ok || st.Pending || st.Height != 1 {
		t.Fatalf("node 3 has reading %v at %+v, want in block 1", ok, st)
	}

	r3, err := peers[2].Node.Submit("bob", 80)
	if err != nil {
		t.Fatal(err)
	}
	waitHeight(t, ctx, peers[0], 2)
	if st, ok, _ := peers[0].Node.LocateReading(r3.ID()); !ok || st.Height != 2 {
		t.Fatalf("node 1 has reading %v at %+v, want in block 2", ok, st)
	}
	if err := WaitConverged(ctx, peers); err != nil {
		t.Fatal(err)
	}
	// Node 3 learnt block 1 by gossip, not by sync.
	if tr := peers[2].Host.Traffic(); tr.GossipIn == 0 {
		t.Errorf("node 3 received no gossip: %+v", tr)
	}
}

// TestLateJoinerSyncs: a node that joins after 1,000 blocks were made catches
// up on all of them from the peer it dials.
func TestLateJoinerSyncs(t *testing.T) {
	ctx := testCtx(t, 120*time.Second)
	params := chain.TestParams("late")
	key, _ := p2p.GenerateKey()
	blocks, err := BuildChain(params, key, 1000, 2)
	if err != nil {
		t.Fatal(err)
	}
	peers := startN(t, ctx, 2, Config{Params: params})
	for _, b := range blocks {
		if err := peers[0].Node.AddBlock(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := peers[1].Connect(ctx, peers[0]); err != nil {
		t.Fatal(err)
	}
	waitHeight(t, ctx, peers[1], 1000)
	if got, want := peers[1].Node.Status().Tip, blocks[999].Hash(); got != want {
		t.Fatalf("late joiner tip %s, want %s", got.Short(), want.Short())
	}
	if tr := peers[1].Host.Traffic(); tr.SyncIn == 0 {
		t.Errorf("late joiner moved no sync bytes: %+v", tr)
	}
	// Every reading of the source chain is now in the joiner's chain.
	for _, b := range blocks {
		for _, r := range b.Readings {
			if st, ok, _ := peers[1].Node.LocateReading(r.ID()); !ok || st.Height != b.Header.Height {
				t.Fatalf("reading of block %d missing or misplaced: %v %+v", b.Header.Height, ok, st)
			}
		}
	}
}

// TestForksConverge: two nodes mine separately, then connect. They end on
// the same tip, and every reading submitted to either is in it exactly once.
func TestForksConverge(t *testing.T) {
	ctx := testCtx(t, 90*time.Second)
	params := chain.TestParams("forks")
	params.Difficulty = 4
	peers := startN(t, ctx, 2, Config{Params: params, SyncInterval: time.Second})
	var submitted []chain.Hash
	for i, p := range peers {
		for j := 0; j < 5+i*3; j++ { // different lengths, so one fork must lose
			r, err := p.Node.Submit(fmt.Sprintf("node%d", i), 60+j)
			if err != nil {
				t.Fatal(err)
			}
			submitted = append(submitted, r.ID())
			waitHeight(t, ctx, p, uint64(j+1)) // one block per reading: long forks
		}
	}
	a, b := peers[0].Node.Status(), peers[1].Node.Status()
	if a.Tip == b.Tip || a.Height != 5 || b.Height != 8 {
		t.Fatalf("want two separate forks of 5 and 8 blocks, got %d and %d", a.Height, b.Height)
	}
	if err := peers[0].Connect(ctx, peers[1]); err != nil {
		t.Fatal(err)
	}
	if err := WaitConverged(ctx, peers); err != nil {
		t.Fatal(err)
	}
	for _, p := range peers {
		st := p.Node.Status()
		seen := map[chain.Hash]int{}
		blocks, err := p.Node.Blocks(st.Height, int(st.Height)+1)
		if err != nil {
			t.Fatal(err)
		}
		for _, blk := range blocks {
			for _, r := range blk.Readings {
				seen[r.ID()]++
			}
		}
		for _, id := range submitted {
			if seen[id] != 1 {
				t.Errorf("node %s: reading %s is in the chain %d times, want once", p.Host.ID(), id.Short(), seen[id])
			}
		}
		if len(seen) != len(submitted) {
			t.Errorf("chain holds %d readings, %d were submitted", len(seen), len(submitted))
		}
	}
}

// TestOtherGenesisRefused: a node of another network is disconnected after
// the handshake, which the dial reports, and cannot connect again.
func TestOtherGenesisRefused(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	a := startN(t, ctx, 1, Config{Params: chain.TestParams("net-a")})[0]
	b := startN(t, ctx, 1, Config{Params: chain.TestParams("net-b")})[0]
	// The transport connects; the handshake refuses, and the dial says so.
	if err := b.Connect(ctx, a); !errors.Is(err, p2p.ErrRefused) || !strings.Contains(err.Error(), "another network") {
		t.Fatalf("connect to a node of another network: %v", err)
	}
	err := WaitFor(ctx, func() bool { return len(a.Host.Peers()) == 0 && len(b.Host.Peers()) == 0 })
	if err != nil {
		t.Fatalf("nodes on different genesis still connected: %v", err)
	}
	err = b.Connect(ctx, a)
	if err == nil {
		t.Fatal("second connect to a refused peer succeeded")
	}
	if !errors.Is(err, p2p.ErrRefused) {
		t.Fatalf("second connect: %v, want a refusal", err)
	}
	if a.Node.Status().Height != 0 || b.Node.Status().Height != 0 {
		t.Fatal("chains changed")
	}
}

// TestLongForkSync: a node whose own branch is long must fetch more than one
// batch of the peer's better branch before it overtakes its own; sync goes on
// along the side branch until the reorganisation happens.
func TestLongForkSync(t *testing.T) {
	ctx := testCtx(t, 120*time.Second)
	params := chain.TestParams("longfork")
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
	for i, blocks := range [][]*chain.Block{better, worse} {
		for _, b := range blocks {
			if err := peers[i].Node.AddBlock(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := peers[1].Connect(ctx, peers[0]); err != nil {
		t.Fatal(err)
	}
	if err := WaitFor(ctx, func() bool { return peers[1].Node.Status().Tip == better[len(better)-1].Hash() }); err != nil {
		t.Fatalf("the node on the 700-block fork is at height %d, not on the 1300-block chain", peers[1].Node.Status().Height)
	}
	// Its own readings went back to pending: none lost.
	if got := peers[1].Node.Pending(); got != 700 {
		t.Fatalf("%d readings pending after the reorganisation, want the 700 of the abandoned fork", got)
	}
}

// Halves cuts nodes 0..n/2-1 from n/2..n-1, and CrossLinks keeps the links
// between them.
func TestHalvesCrossLinks(t *testing.T) {
	a, b := Halves(5)
	if fmt.Sprint(a, b) != "[0 1] [2 3 4]" {
		t.Errorf("Halves(5) = %v %v", a, b)
	}
	links := Topology{Kind: "ring"}.Links(4, nil) // 1-0 2-1 3-2 3-0
	if got := fmt.Sprint(CrossLinks(4, links)); got != "[[2 1] [3 0]]" {
		t.Errorf("CrossLinks(ring of 4) = %s", got)
	}
	if got := len(CrossLinks(4, Topology{Kind: "full"}.Links(4, nil))); got != 4 {
		t.Errorf("%d links cross the cut of a full network of 4, want 4", got)
	}
}

// A load's confirmed count is of the readings in node 0's main chain now:
// a reorganisation that takes their block out takes them out of the count.
// Before, a reading seen once in a main-chain block counted for good.
func TestLoadConfirmedFollowsReorganisation(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	params := chain.TestParams("loadreorg")
	params.Difficulty = 0
	net, err := StartNetwork(ctx, NetworkConfig{Nodes: 1, Params: params, Dir: t.TempDir(), NoMiner: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { net.Close() })
	n0 := net.Peers[0].Node
	l := &Load{net: net, done: make(chan struct{})}
	var rs []chain.Reading
	for k := range 3 {
		r, err := n0.Submit("load", 60+k)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
		l.submitted++
		l.unconfirmed = append(l.unconfirmed, r.ID())
	}
	if got := l.Stats().Confirmed; got != 0 {
		t.Fatalf("%d confirmed while pending, want 0", got)
	}
	// A block of node 0's holding the three: on its main chain.
	c, err := chain.New(params)
	if err != nil {
		t.Fatal(err)
	}
	b := c.NewBlock(rs, time.Now())
	if err := n0.AddBlock(ctx, b); err != nil {
		t.Fatal(err)
	}
	if got := l.Stats().Confirmed; got != 3 {
		t.Fatalf("%d confirmed with the block on the main chain, want 3", got)
	}
	// A longer branch without them: the block leaves the main chain, its
	// readings go back to pending (no miner takes them again here).
	_, key, _ := ed25519.GenerateKey(nil)
	longer, err := BuildChain(params, key, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range longer {
		if err := n0.AddBlock(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	if tip := n0.Status().Tip; tip != longer[1].Hash() {
		t.Fatalf("node 0's tip %s, want the longer branch's %s", tip.Short(), longer[1].Hash().Short())
	}
	if got := l.Stats().Confirmed; got != 0 {
		t.Errorf("%d confirmed after the reorganisation took their block out, want 0", got)
	}
	// Back on a main chain, in a block on the new tip: counted again.
	c2, err := chain.New(params)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range longer {
		if _, err := c2.AddBlock(x, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	b2 := c2.NewBlock(rs, time.Now())
	if err := n0.AddBlock(ctx, b2); err != nil {
		t.Fatal(err)
	}
	if got := l.Stats().Confirmed; got != 3 {
		t.Errorf("%d confirmed once a block of the new main chain holds them, want 3", got)
	}
}

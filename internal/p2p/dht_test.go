package p2p_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// TestDHTFiveNodes: five nodes in a chain of bootstraps (node i knows only
// node i-1, node 0 knows nobody), DHT on. Through the rendezvous every node
// finds the others and ends connected to at least two of them, the ends of
// the chain included, and all converge on the same tip.
func TestDHTFiveNodes(t *testing.T) {
	ctx := discCtx(t, 60*time.Second)
	params := chain.TestParams("dht-five")
	cfg := testnet.Config{Params: params, DHT: true, RendezvousInterval: 300 * time.Millisecond, SyncInterval: time.Second}
	var peers []*testnet.Peer
	for i := range 5 {
		c := cfg
		c.Log = discLogger(t, fmt.Sprint(i))
		if i > 0 {
			c.Bootstrap = []string{peers[i-1].Host.TCPAddr().String()}
		}
		peers = append(peers, discStart(t, ctx, c))
	}
	start := time.Now()
	err := testnet.WaitFor(ctx, func() bool {
		for _, p := range peers {
			if len(p.Host.Peers()) < 2 || p.Host.DiscoveryStats().DHTFound == 0 {
				return false
			}
		}
		return true
	})
	for i, p := range peers {
		t.Logf("node %d: %d peers, %+v", i, len(p.Host.Peers()), p.Host.DiscoveryStats())
	}
	if err != nil {
		t.Fatalf("nodes did not find each other through the DHT: %v", err)
	}
	t.Logf("every node has two peers or more after %v", time.Since(start).Round(time.Millisecond))

	if err := testnet.WaitMesh(ctx, peers, 1); err != nil {
		t.Fatal(err)
	}
	for i, p := range []*testnet.Peer{peers[0], peers[4], peers[2]} {
		if _, err := p.Node.Submit(fmt.Sprintf("patient-%d", i), 60+i); err != nil {
			t.Fatal(err)
		}
	}
	if err := testnet.WaitConverged(ctx, peers); err != nil {
		t.Fatal(err)
	}
	if h := peers[0].Node.Status().Height; h == 0 {
		t.Fatal("converged on genesis: the readings were not mined")
	}
}

package p2p_test

import (
	"strings"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/p2p"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// TestBootstrapBadAddr: New refuses a bootstrap address that is not a full
// peer multiaddr, and says what a good one looks like.
func TestBootstrapBadAddr(t *testing.T) {
	ctx := discCtx(t, 20*time.Second)
	key := discKey(t)
	n, err := node.New(chain.TestParams("bad-boot"), key)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := p2p.PeerID(key)
	for _, bad := range []string{
		"",
		"localhost:4001",
		"/ip4/127.0.0.1/tcp/4001",               // no peer ID
		"/p2p/" + id.String(),                   // no network address
		"/ip4/127.0.0.1/tcp/4001/p2p/not-an-id", // bad peer ID
		"/ip4/300.0.0.1/tcp/4001/p2p/" + id.String(), // bad IP
	} {
		h, err := p2p.New(ctx, n, p2p.WithKey(key), p2p.WithBootstrap(bad))
		if err == nil {
			_ = h.Close()
			t.Errorf("bootstrap %q accepted", bad)
			continue
		}
		if !strings.Contains(err.Error(), "want a full multiaddr such as /ip4/") {
			t.Errorf("bootstrap %q: error %q does not show a good address", bad, err)
		}
	}
}

// TestBootstrapReconnect: a node keeps its bootstrap peer. When the peer
// restarts (same key, same ports), the node dials it again by itself.
func TestBootstrapReconnect(t *testing.T) {
	ctx := discCtx(t, 45*time.Second)
	params := chain.TestParams("boot-reconnect")
	bootKey := discKey(t)
	boot := discStart(t, ctx, testnet.Config{Params: params, Key: bootKey, Log: discLogger(t, "boot")})
	addr := boot.Host.TCPAddr().String()
	listen := discListenAddrs(t, boot)
	n := discStart(t, ctx, testnet.Config{Params: params, Bootstrap: []string{addr}, Log: discLogger(t, "node")})
	discWaitFor(t, ctx, "node connects to its bootstrap peer", func() bool { return discHandshaken(n, boot) })

	if err := boot.Close(); err != nil {
		t.Fatal(err)
	}
	discWaitFor(t, ctx, "node sees the bootstrap peer go", func() bool { return len(n.Host.Peers()) == 0 })
	// The node dials again while the peer is down (and gets no answer).
	dials := n.Host.DiscoveryStats().Dials
	discWaitFor(t, ctx, "node redials", func() bool { return n.Host.DiscoveryStats().Dials > dials })
	start := time.Now()
	boot = discStart(t, ctx, testnet.Config{Params: params, Key: bootKey, Listen: listen, Log: discLogger(t, "boot2")})
	discWaitFor(t, ctx, "node reconnects to the restarted bootstrap peer", func() bool { return discHandshaken(n, boot) })
	t.Logf("reconnected %v after the restart; discovery %+v", time.Since(start).Round(time.Millisecond), n.Host.DiscoveryStats())
	// The restarted peer (no bootstrap of its own) and the node share blocks.
	both := []*testnet.Peer{boot, n}
	if err := testnet.WaitMesh(ctx, both, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := boot.Node.Submit("alice", 72); err != nil {
		t.Fatal(err)
	}
	if err := testnet.WaitConverged(ctx, both); err != nil {
		t.Fatal(err)
	}
}

// TestConnLimitsInvalid: water marks out of order are an error from New.
func TestConnLimitsInvalid(t *testing.T) {
	ctx := discCtx(t, 10*time.Second)
	n, err := node.New(chain.TestParams("limits"), discKey(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, lim := range [][2]int{{0, 10}, {10, 5}, {-1, -1}} {
		h, err := p2p.New(ctx, n, p2p.WithConnLimits(lim[0], lim[1]))
		if err == nil {
			_ = h.Close()
			t.Errorf("limits %v accepted", lim)
		} else if !strings.Contains(err.Error(), "low <= high") {
			t.Errorf("limits %v: unclear error %q", lim, err)
		}
	}
}

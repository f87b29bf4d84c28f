package p2p

import (
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-msgio"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// TestStallersBackedOff: two peers claim a far better chain than anyone's
// and never answer a blocks request; an honest peer holds 20 blocks. Each
// staller holds the victim's one sync slot for the stall timeout (shortened
// here; blocksTimeout is left at its 60 s), is backed off, and the victim
// syncs from the honest peer. A staller that disconnects and comes back
// under the same ID keeps its back-off.
func TestStallersBackedOff(t *testing.T) {
	ctx := testContext(t, 45*time.Second)
	params := chain.TestParams("stall")
	v := startVictim(t, ctx, params, withLimits(func(l *limits) { l.stallTimeout = 2 * time.Second }))
	honest := startVictim(t, ctx, params)
	if _, err := honest.node.AddBlocks(ctx, buildBlocks(t, params, 20, 1, 8)); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	stall := func(s network.Stream) {
		r := msgio.NewVarintReaderSize(s, maxRequestSize)
		if _, err := r.ReadMsg(); err == nil {
			<-stop // never answer
		}
		_ = s.Reset()
	}
	stallers := []host.Host{rawHost(t), rawHost(t)}
	t.Cleanup(func() { close(stop) }) // before the hosts close
	for _, a := range stallers {
		a.SetStreamHandler(StatusProtocol, lyingStatus)
		a.SetStreamHandler(BlocksProtocol, stall)
		connectRaw(t, ctx, a, v)
	}
	if err := v.Connect(ctx, honest.TCPAddr().String()); err != nil {
		t.Fatal(err)
	}
	want := honest.node.Status()
	waitUntil(t, ctx, "the victim syncs from the honest peer", func() bool { return v.node.Status().Tip == want.Tip })

	// The stallers claim more than the honest chain: they were tried, and
	// are backed off.
	waitUntil(t, ctx, "both stallers are backed off", func() bool {
		for _, a := range stallers {
			if v.peers.stats(a.ID()).backoff.IsZero() {
				return false
			}
		}
		return true
	})
	if slices.Contains([]peer.ID{stallers[0].ID(), stallers[1].ID()}, v.Sync().Peer) && v.Sync().Syncing {
		t.Fatalf("the victim syncs from a staller again: %+v", v.Sync())
	}

	// One comes back: its back-off is the one it left with.
	back := stallers[0]
	before := v.peers.stats(back.ID())
	if err := back.Network().ClosePeer(v.ID()); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ctx, "the victim drops the staller's state", func() bool { return !v.connected(back.ID()) && v.peers.len() == 2 })
	connectRaw(t, ctx, back, v)
	waitUntil(t, ctx, "the victim has the staller's status again", func() bool {
		_, ok := v.peers.status(back.ID())
		return ok
	})
	if after := v.peers.stats(back.ID()); !after.backoff.Equal(before.backoff) {
		t.Fatalf("after reconnecting the staller's back-off is %v, want the %v it left with", after.backoff, before.backoff)
	}
}

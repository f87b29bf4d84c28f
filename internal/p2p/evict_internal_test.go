package p2p

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	libp2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2pchain/p2pchain/internal/chain"
)

func TestChooseEviction(t *testing.T) {
	g := func(s string) netip.Prefix { return netip.MustParsePrefix(s) }
	a, b, c := g("10.1.0.0/16"), g("10.2.0.0/16"), g("10.3.0.0/16")
	p := func(id string, group netip.Prefix, age time.Duration, useful bool) inboundPeer {
		return inboundPeer{id: peer.ID(id), group: group, age: age, conns: 1, useful: useful}
	}
	for _, tc := range []struct {
		name  string
		peers []inboundPeer
		want  string // "" : none
	}{
		{"a newcomer from another group stays; the newest of the largest leaves", []inboundPeer{
			p("a1", a, 50*time.Second, false), p("a2", a, 40*time.Second, false), p("a3", a, 30*time.Second, false),
			p("a4", a, 20*time.Second, false), p("new", b, time.Second, false)}, "a4"},
		{"a newcomer from the largest group leaves", []inboundPeer{
			p("a1", a, 50*time.Second, false), p("b1", b, 40*time.Second, false), p("a2", a, 30*time.Second, false),
			p("b2", b, 20*time.Second, false), p("a3", a, time.Second, false)}, "a3"},
		{"all alone: the newest leaves, as a refusal would", []inboundPeer{
			p("a1", a, 50*time.Second, false), p("b1", b, 40*time.Second, false), p("c1", c, 30*time.Second, false),
			p("new", g("10.4.0.0/16"), time.Second, false)}, "new"},
		{"useful peers and the older half stay", []inboundPeer{
			p("a1", a, 50*time.Second, true), p("a2", a, 40*time.Second, true), p("a3", a, 30*time.Second, false),
			p("a4", a, 20*time.Second, true), p("b1", b, 10*time.Second, false), p("b2", b, 5*time.Second, false),
			p("b3", b, 3*time.Second, false), p("new", c, time.Second, false)}, "b3"},
		{"all useful: none leaves", []inboundPeer{
			p("a1", a, 50*time.Second, true), p("new", b, time.Second, true)}, ""},
		{"the one that is not useful leaves", []inboundPeer{
			p("a1", a, 50*time.Second, true), p("a2", a, 50*time.Second, false)}, "a2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			i := choose(tc.peers)
			got := ""
			if i >= 0 {
				got = string(tc.peers[i].id)
			}
			if got != tc.want {
				t.Errorf("evicts %q, want %q", got, tc.want)
			}
		})
	}
}

func TestAddrGroup(t *testing.T) {
	for addr, want := range map[string]string{
		"/ip4/203.0.113.7/tcp/1":                "203.0.0.0/16",
		"/ip4/127.1.0.1/udp/1/quic-v1":          "127.1.0.0/16",
		"/ip6/2001:db8:1:2::1/tcp/1":            "2001:db8::/32",
		"/ip6/::ffff:198.51.100.1/tcp/1":        "198.51.0.0/16",
		"/dns4/example.com/tcp/1":               "invalid Prefix",
		"/ip6/2001:db8:ffff:2::1/udp/1/quic-v1": "2001:db8::/32",
	} {
		if got := addrGroup(ma.StringCast(addr)).String(); got != want {
			t.Errorf("addrGroup(%s) = %s, want %s", addr, got, want)
		}
	}
}

// sourceHost is a bare libp2p host whose TCP connections come from the
// loopback address src, closed at the end of the test.
func sourceHost(t *testing.T, src string) host.Host {
	t.Helper()
	dialer := func(ma.Multiaddr) (tcp.ContextDialer, error) {
		return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}, nil
	}
	h, err := libp2p.New(libp2p.NoListenAddrs, libp2p.NoTransports,
		libp2p.Transport(tcp.NewTCPTransport, tcp.DisableReuseport(), tcp.WithDialerForAddr(dialer)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// TestInboundEviction: identities from one address group (127.0.0.0/16)
// fill the node's inbound slots; a newcomer from another group
// (127.1.0.1) connects and stays, one of them evicted for it; further
// identities from the first group are the ones evicted, not the newcomer.
// With the cap alone, the newcomer was refused.
func TestInboundEviction(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	const high = 4
	v := startVictim(t, ctx, chain.TestParams("evict"), WithConnLimits(2, high))
	connected := func(h host.Host) bool { return v.host.Network().Connectedness(h.ID()) == network.Connected }
	var strangers []host.Host
	for range high {
		s := rawHost(t)
		connectRaw(t, ctx, s, v)
		strangers = append(strangers, s)
		time.Sleep(20 * time.Millisecond) // distinct ages
	}
	waitUntil(t, ctx, "the strangers connected", func() bool { return len(v.host.Network().Peers()) == high })
	newcomer := sourceHost(t, "127.1.0.1")
	if err := newcomer.Connect(ctx, peer.AddrInfo{ID: v.ID(), Addrs: v.host.Addrs()}); err != nil {
		t.Fatalf("the newcomer from another address group could not connect: %v", err)
	}
	waitUntil(t, ctx, "one eviction", func() bool { return v.Traffic().Evicted == 1 })
	if !connected(newcomer) {
		t.Fatal("the newcomer from another address group was evicted")
	}
	if connected(strangers[high-1]) {
		t.Error("the newest stranger of the largest group was not the one evicted")
	}
	for i := range 3 {
		s := rawHost(t)
		_ = s.Connect(ctx, peer.AddrInfo{ID: v.ID(), Addrs: v.host.Addrs()}) // it may be evicted before Connect returns
		waitUntil(t, ctx, "another eviction", func() bool { return v.Traffic().Evicted == uint64(2+i) })
		if !connected(newcomer) {
			t.Fatalf("stranger %d: the newcomer was evicted for it", i)
		}
		if connected(s) {
			t.Errorf("stranger %d: stays, the newest of the largest group", i)
		}
		if n := len(v.host.Network().Peers()); n > high {
			t.Errorf("stranger %d: %d peers connected, want at most %d", i, n, high)
		}
	}
	for _, s := range strangers[:high/2] {
		if !connected(s) {
			t.Error("an older stranger (of the longest-connected half) was evicted")
		}
	}
}

// TestSyncedPeerKept: three identities connect to the node from its
// address group, then a peer from the same group, from which the node
// syncs blocks: the peer is tagged for it. Newcomers from another group
// then connect one by one: without the tag (and the gossip mesh
// protection, taken off here) the peer would be the newest of the largest
// group among those not kept for their age, and evicted; with it, each
// newcomer is.
func TestSyncedPeerKept(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	params := chain.TestParams("evict-synced")
	const high = 4
	v := startVictim(t, ctx, params, WithConnLimits(1, high))
	for range high - 1 {
		connectRaw(t, ctx, rawHost(t), v)
		time.Sleep(20 * time.Millisecond) // distinct ages
	}
	honest := startVictim(t, ctx, params)
	if _, err := honest.node.AddBlocks(ctx, buildBlocks(t, params, 5, 1, 8)); err != nil {
		t.Fatal(err)
	}
	if err := honest.host.Connect(ctx, peer.AddrInfo{ID: v.ID(), Addrs: v.host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ctx, "the node synced from the peer", func() bool { return v.node.Status().Height == 5 })
	waitUntil(t, ctx, "the peer tagged", func() bool {
		ti := v.host.ConnManager().GetTagInfo(honest.ID())
		return ti != nil && ti.Tags[syncedTag] == syncedTagValue
	})
	// Only the tag keeps it: not its place in the gossip mesh.
	g := v.node.Status().Genesis
	for _, topic := range []string{BlocksTopic(g), ConsensusTopic(g), ReadingsTopic(g)} {
		v.host.ConnManager().Unprotect(honest.ID(), "pubsub:"+topic)
	}
	if v.host.ConnManager().IsProtected(honest.ID(), "") {
		t.Fatal("the peer is still protected")
	}
	for i := range 3 {
		s := sourceHost(t, "127.1.0.1")
		_ = s.Connect(ctx, peer.AddrInfo{ID: v.ID(), Addrs: v.host.Addrs()})
		waitUntil(t, ctx, "an eviction", func() bool { return v.Traffic().Evicted == uint64(1+i) })
		if v.host.Network().Connectedness(honest.ID()) != network.Connected {
			t.Fatalf("newcomer %d: the peer that synced blocks to the node was evicted", i)
		}
	}
}

// TestInboundEvictionCountsConns: two identities from one address group
// open six connections each (the resource manager lets one peer hold 8),
// as many as the cap with the spare slots (high+InboundSpare). Counting
// peers, the guard saw two, fewer than high, evicted none, and a newcomer
// from another group was refused; counting connections, it evicts and the
// newcomer connects and stays.
func TestInboundEvictionCountsConns(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	const high = 4
	v := startVictim(t, ctx, chain.TestParams("evict-conns"), WithConnLimits(2, high))
	target := peer.AddrInfo{ID: v.ID(), Addrs: v.host.Addrs()}
	for range 2 {
		key, _, err := libp2pcrypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		for range (high + InboundSpare) / 2 {
			// Hosts of one key: each dials its own connection.
			h, err := libp2p.New(libp2p.Identity(key), libp2p.NoListenAddrs)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = h.Close() })
			_ = h.Connect(ctx, target) // it may be evicted before Connect returns
		}
		time.Sleep(20 * time.Millisecond) // distinct ages
	}
	newcomer := sourceHost(t, "127.1.0.1")
	if err := newcomer.Connect(ctx, target); err != nil {
		t.Fatalf("the newcomer from another address group could not connect: %v", err)
	}
	waitUntil(t, ctx, "the guard's look", func() bool { return inboundConns(v.host) <= high })
	if v.host.Network().Connectedness(newcomer.ID()) != network.Connected {
		t.Fatal("the newcomer from another address group was evicted")
	}
	if n := inboundConns(v.host); n > high {
		t.Errorf("%d inbound connections, want at most %d", n, high)
	}
}

// TestDeliveryTagNotKept: a peer that relays a block first is tagged by
// GossipSub (its decaying delivery tag, kept up to 150 minutes), but that
// costs an identity nothing: it relays what the network already has, and
// every identity that sends a copy while the first is being validated is
// tagged too. So that tag does not keep a peer from the inbound guard:
// here the relaying peer is the newest of the largest group and leaves
// for a newcomer from another group. Before, it was kept, and the
// newcomer left: identities that relayed a block held every slot.
func TestDeliveryTagNotKept(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	params := chain.TestParams("evict-delivery")
	const high = 4
	v := startVictim(t, ctx, params, WithConnLimits(1, high))
	for range high - 1 {
		connectRaw(t, ctx, rawHost(t), v)
		time.Sleep(20 * time.Millisecond) // distinct ages
	}
	g, topic := gossiper(t, ctx, v)
	b := buildBlocks(t, params, 1, 1, 8)[0]
	data, err := b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for !v.node.IsMainChain(b.Hash()) {
		if err := topic.Publish(ctx, data); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitUntil(t, ctx, "the relaying peer tagged", func() bool {
		ti := v.host.ConnManager().GetTagInfo(g.ID())
		return ti != nil && ti.Value > 0
	})
	if v.host.ConnManager().IsProtected(g.ID(), "") {
		t.Fatal("the relaying peer is protected")
	}
	newcomer := sourceHost(t, "127.1.0.1")
	_ = newcomer.Connect(ctx, peer.AddrInfo{ID: v.ID(), Addrs: v.host.Addrs()})
	waitUntil(t, ctx, "an eviction", func() bool { return v.Traffic().Evicted == 1 })
	if v.host.Network().Connectedness(newcomer.ID()) != network.Connected {
		t.Error("the newcomer from another group was evicted")
	}
	if v.host.Network().Connectedness(g.ID()) == network.Connected {
		t.Error("the peer kept for its delivery tag alone")
	}
}

// TestInboundEvictionDialledPeer: two peers the node dialled (as
// discovery does peers it found) open inbound connections of their own
// besides, six each: as many as the cap with the spare slots. The guard
// left every peer with a connection the node opened alone, and did not
// count its inbound ones: they held every slot, and a newcomer was
// refused. They are counted now, and closed first: the peers keep the
// node's connections, the newcomer connects.
func TestInboundEvictionDialledPeer(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	const high = 4
	v := startVictim(t, ctx, chain.TestParams("evict-dialled"), WithConnLimits(2, high))
	target := peer.AddrInfo{ID: v.ID(), Addrs: v.host.Addrs()}
	var dialled []host.Host
	for range 2 {
		key, _, err := libp2pcrypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		a, err := libp2p.New(libp2p.Identity(key), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = a.Close() })
		if err := v.host.Connect(ctx, peer.AddrInfo{ID: a.ID(), Addrs: a.Addrs()}); err != nil {
			t.Fatal(err)
		}
		dialled = append(dialled, a)
		for range (high + InboundSpare) / 2 {
			// Hosts of its key: each dials its own connection.
			h, err := libp2p.New(libp2p.Identity(key), libp2p.NoListenAddrs)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = h.Close() })
			_ = h.Connect(ctx, target) // it may be closed before Connect returns
		}
	}
	newcomer := sourceHost(t, "127.1.0.1")
	if err := newcomer.Connect(ctx, target); err != nil {
		t.Fatalf("the newcomer could not connect: %v", err)
	}
	waitUntil(t, ctx, "the guard's look", func() bool { return inboundConns(v.host) <= high })
	if v.host.Network().Connectedness(newcomer.ID()) != network.Connected {
		t.Fatal("the newcomer was evicted")
	}
	for _, a := range dialled {
		if v.host.Network().Connectedness(a.ID()) != network.Connected {
			t.Error("a peer the node dialled lost its connection")
		}
	}
	if n := inboundConns(v.host); n > high {
		t.Errorf("%d inbound connections, want at most %d", n, high)
	}
}

// TestSyncedTagKeepsFew: peers tagged for syncing blocks to the node are
// kept by the inbound guard, at most maxSyncedKept of them, the longest
// connected among equal tags; and the tag decays, one a minute.
func TestSyncedTagKeepsFew(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	const n = maxSyncedKept + 2
	v := startVictim(t, ctx, chain.TestParams("evict-synced-few"), WithConnLimits(1, 64))
	var ids []peer.ID
	for range n {
		s := rawHost(t)
		connectRaw(t, ctx, s, v)
		v.markSynced(s.ID())
		ids = append(ids, s.ID())
		time.Sleep(10 * time.Millisecond) // distinct ages
	}
	waitUntil(t, ctx, "the tags", func() bool {
		for _, id := range ids {
			if ti := v.host.ConnManager().GetTagInfo(id); ti == nil || ti.Tags[syncedTag] != syncedTagValue {
				return false
			}
		}
		return true
	})
	peers, _ := v.inbound.peers(time.Now())
	kept := map[peer.ID]bool{}
	for _, p := range peers {
		if p.useful {
			kept[p.id] = true
		}
	}
	if len(kept) != maxSyncedKept {
		t.Fatalf("%d peers kept for the synced tag, want %d", len(kept), maxSyncedKept)
	}
	for _, id := range ids[maxSyncedKept:] {
		if kept[id] {
			t.Errorf("a newest tagged peer is kept over a longer connected one")
		}
	}
	if v.syncedTag == nil || v.syncedTag.Interval() != syncedTagDecay {
		t.Errorf("the synced tag does not decay every %v", syncedTagDecay)
	}
}

// inboundConns counts h's inbound connections, as the inbound guard does.
func inboundConns(h host.Host) int {
	n := 0
	for _, c := range h.Network().Conns() {
		if c.Stat().Direction == network.DirInbound {
			n++
		}
	}
	return n
}

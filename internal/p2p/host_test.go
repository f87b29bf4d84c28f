package p2p_test

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/p2p"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// freePort returns a port that is free for TCP and UDP on 127.0.0.1 (as
// far as one can know before using it).
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		_ = l.Close()
		if err == nil {
			_ = u.Close()
			return port
		}
	}
	t.Fatal("no port free for both TCP and UDP")
	return 0
}

// TestPortInUse: a host asked to listen on a port that another host holds,
// for TCP, for QUIC or both, does not start: its error wraps ErrPortInUse,
// names the port and the transport, and says what to do. The first host
// goes on working.
func TestPortInUse(t *testing.T) {
	ctx := discCtx(t, 30*time.Second)
	params := chain.TestParams("port-in-use")
	newHost := func(listen ...string) (*p2p.Host, error) {
		n, err := node.New(params, discKey(t))
		if err != nil {
			t.Fatal(err)
		}
		return p2p.New(ctx, n, p2p.WithListenAddrs(listen...))
	}
	for _, tc := range []struct {
		name  string
		first func(port int) []string
		kinds string
	}{
		{"tcp and quic", func(port int) []string { return p2p.ListenAddrs("127.0.0.1", port) }, "TCP and QUIC over UDP"},
		{"tcp", func(port int) []string { return p2p.ListenAddrs("127.0.0.1", port)[:1] }, "TCP"},
		{"quic", func(port int) []string { return p2p.ListenAddrs("127.0.0.1", port)[1:] }, "QUIC over UDP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := freePort(t)
			first, err := newHost(tc.first(port)...)
			if err != nil {
				t.Fatal(err)
			}
			defer first.Close()
			second, err := newHost(p2p.ListenAddrs("127.0.0.1", port)...)
			if err == nil {
				second.Close()
				t.Fatalf("a second host started on port %d, held by the first for %s", port, tc.name)
			}
			want := fmt.Sprintf("port %d (%s) is in use: another node may be running there; pick another with -l", port, tc.kinds)
			if !errors.Is(err, p2p.ErrPortInUse) || err.Error() != want {
				t.Fatalf("second host: %v (ErrPortInUse: %v)\nwant: %s", err, errors.Is(err, p2p.ErrPortInUse), want)
			}
			// The first host still answers on its port.
			n, err := node.New(params, discKey(t))
			if err != nil {
				t.Fatal(err)
			}
			dialer, err := p2p.New(ctx, n)
			if err != nil {
				t.Fatal(err)
			}
			defer dialer.Close()
			addr := first.Addrs()[0].String()
			if err := dialer.Connect(ctx, addr); err != nil {
				t.Fatalf("dial the first host at %s: %v", addr, err)
			}
		})
	}
}

// TestMeshPeersGoDown: the gossip mesh count follows peers that leave, not
// only those that join.
func TestMeshPeersGoDown(t *testing.T) {
	ctx := discCtx(t, 45*time.Second)
	cfg := testnet.Config{Params: chain.TestParams("mesh-down"), NoMiner: true}
	hub := discStart(t, ctx, cfg)
	a := discStart(t, ctx, cfg)
	b := discStart(t, ctx, cfg)
	for _, p := range []*testnet.Peer{a, b} {
		if err := p.Connect(ctx, hub); err != nil {
			t.Fatal(err)
		}
	}
	meshIs := func(what string, want int) {
		t.Helper()
		if err := testnet.WaitFor(ctx, func() bool { return hub.Host.MeshPeers() == want }); err != nil {
			t.Fatalf("%s: the hub's mesh has %d peers, want %d", what, hub.Host.MeshPeers(), want)
		}
	}
	meshIs("both connected", 2)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	meshIs("a stopped", 1)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	meshIs("b stopped", 0)
}

// TestIdentifyVersions: the host announces its agent (WithUserAgent) and
// protocol version through Identify.
func TestIdentifyVersions(t *testing.T) {
	ctx := discCtx(t, 30*time.Second)
	params := chain.TestParams("identify")
	for _, tc := range []struct {
		opts  []p2p.Option
		agent string
	}{
		{nil, p2p.DefaultUserAgent},
		{[]p2p.Option{p2p.WithUserAgent("p2pchain/9.9.9")}, "p2pchain/9.9.9"},
	} {
		p := discStart(t, ctx, testnet.Config{Params: params, NoMiner: true, HostOptions: tc.opts})
		raw, err := libp2p.New(libp2p.NoListenAddrs)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		info, err := peer.AddrInfoFromP2pAddr(p.Host.TCPAddr())
		if err != nil {
			t.Fatal(err)
		}
		if err := raw.Connect(ctx, *info); err != nil {
			t.Fatal(err)
		}
		var agent, proto any
		err = testnet.WaitFor(ctx, func() bool {
			agent, _ = raw.Peerstore().Get(info.ID, "AgentVersion")
			proto, _ = raw.Peerstore().Get(info.ID, "ProtocolVersion")
			return agent != nil && proto != nil
		})
		if err != nil || agent != tc.agent || proto != fmt.Sprintf("p2pchain/%d", chain.HeaderVersion) {
			t.Errorf("Identify: agent %q, protocol %q (%v); want %q, p2pchain/%d", agent, proto, err, tc.agent, chain.HeaderVersion)
		}
	}
}

// TestConnectToWhatIsNoNode: a dial the user asked for (node -d, POST
// /api/v1/peers) says what went wrong when the other end is no p2pchain
// node, or closes the connection at once, instead of "connected" after
// waiting out the handshake's 10 s.
func TestConnectToWhatIsNoNode(t *testing.T) {
	ctx := discCtx(t, 30*time.Second)
	p := discStart(t, ctx, testnet.Config{Params: chain.TestParams("connect-no-node"), NoMiner: true})
	for _, closing := range []bool{false, true} {
		raw, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		if closing { // a host at its limit, or refusing us: it closes what connects
			raw.Network().Notify(&network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) { go c.Close() }})
		}
		addr := fmt.Sprintf("%s/p2p/%s", raw.Addrs()[0], raw.ID())
		err = p.Host.Connect(ctx, addr)
		switch {
		case !closing && (err == nil || !strings.Contains(err.Error(), "not a p2pchain node")):
			t.Errorf("a host without the status protocol: Connect = %v, want it named not a p2pchain node", err)
		case closing && err == nil:
			// Gone before the handshake (or before identify told its
			// protocols): any error but "connected".
			t.Errorf("a host that closes the connection: Connect = nil, want an error")
		}
		t.Logf("closing %v: %v", closing, err)
	}
}

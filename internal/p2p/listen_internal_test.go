package p2p

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// TestNotListening: the check New makes after go-libp2p started (which
// only logs an address it could not listen on) finds exactly the addresses
// with a port that the host does not listen on, and listenFailure tells a
// port in use from a free one.
func TestNotListening(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	v := startVictim(t, ctx, chain.TestParams("listen-check"), WithListenAddrs(ListenAddrs("127.0.0.1", port)...))
	addr := func(s string, args ...any) ma.Multiaddr { return ma.StringCast(fmt.Sprintf(s, args...)) }
	other := addr("/ip4/127.0.0.1/tcp/%d", port+1)
	got := notListening(v.host, []ma.Multiaddr{
		addr("/ip4/127.0.0.1/tcp/%d", port), addr("/ip4/127.0.0.1/udp/%d/quic-v1", port),
		addr("/ip4/127.0.0.1/tcp/0"), other,
	})
	if len(got) != 1 || !got[0].Equal(other) {
		t.Fatalf("not listening: %v, want only %s", got, other)
	}
	if err := listenFailure([]ma.Multiaddr{addr("/ip4/127.0.0.1/udp/%d/quic-v1", port)}); !errors.Is(err, ErrPortInUse) {
		t.Errorf("the host's QUIC port: %v, want ErrPortInUse", err)
	}
	if err := listenFailure([]ma.Multiaddr{addr("/ip4/192.0.2.1/tcp/%d", port)}); err == nil || errors.Is(err, ErrPortInUse) {
		t.Errorf("an address not on this machine: %v, want a plain error", err)
	}
}

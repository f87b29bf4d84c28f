package p2p

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
)

// discHost starts a host on 127.0.0.1 serving a fresh chain of the named
// test network, and closes it at the end of the test.
func discHost(t *testing.T, ctx context.Context, network string, opts ...Option) *Host {
	t.Helper()
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(chain.TestParams(network), key)
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(ctx, n, append([]Option{WithKey(key)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func discWait(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestBootstrapPeerRefusedNotRedialled: a bootstrap peer is protected from
// the connection manager, and once the gater refuses it (it sent an invalid
// block, say) it is not dialled again.
func TestBootstrapPeerRefusedNotRedialled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b := discHost(t, ctx, "refused")
	a := discHost(t, ctx, "refused", WithBootstrap(b.TCPAddr().String()))
	discWait(t, ctx, "connect to the bootstrap peer", func() bool {
		return a.host.Network().Connectedness(b.ID()) == network.Connected
	})
	if !a.host.ConnManager().IsProtected(b.ID(), "bootstrap") {
		t.Error("bootstrap peer not protected from the connection manager")
	}
	a.refuse(b.ID(), "test: sent an invalid block")
	discWait(t, ctx, "the keeper of the refused peer ends", func() bool {
		a.disc.mu.Lock()
		defer a.disc.mu.Unlock()
		_, kept := a.disc.kept[b.ID()]
		return !kept
	})
	if n := a.disc.dials.Load(); n != 1 {
		t.Fatalf("%d dials of the bootstrap peer, want only the first", n)
	}
	if a.host.Network().Connectedness(b.ID()) == network.Connected {
		t.Fatal("still connected to a refused peer")
	}
}

func TestParseBootstrap(t *testing.T) {
	self, _ := PeerID(KeyFromSeed(1))
	other, _ := PeerID(KeyFromSeed(2))
	got, err := parseBootstrap([]string{
		"/ip4/127.0.0.1/tcp/1000/p2p/" + self.String(), // left out
		"/ip4/127.0.0.1/tcp/2000/p2p/" + other.String(),
		" /ip4/127.0.0.1/udp/2000/quic-v1/p2p/" + other.String() + " ", // merged
	}, self)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != other || len(got[0].Addrs) != 2 {
		t.Fatalf("got %v, want one peer with two addresses", got)
	}
	// Every bad address is reported, not only the first.
	_, err = parseBootstrap([]string{"x", "/ip4/127.0.0.1/tcp/1"}, self)
	if err == nil || !discContainsAll(err.Error(), `"x"`, `"/ip4/127.0.0.1/tcp/1"`) {
		t.Fatalf("error %v does not name both bad addresses", err)
	}
}

func discContainsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func TestRedialBackoff(t *testing.T) {
	var d time.Duration
	var seq []time.Duration
	for range 9 {
		d = nextDelay(d)
		seq = append(seq, d)
	}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60}
	for i := range want {
		if seq[i] != want[i]*time.Second {
			t.Fatalf("backoff %v, want %v seconds", seq, want)
		}
	}
	for range 1000 {
		if j := jitter(10 * time.Second); j < 8*time.Second || j > 12*time.Second {
			t.Fatalf("jitter(10s) = %v, want 8-12 s", j)
		}
	}
}

// TestPeerFileRoundTrip: the file keeps what was seen, counts failures
// across a reload, drops a peer at MaxPeerFileFails, is written 0600, and is
// ignored when it belongs to another network or does not parse.
func TestPeerFileRoundTrip(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	path := filepath.Join(t.TempDir(), "peers.json")
	g := chain.TestParams("file").Genesis().Hash()
	f := openPeerFile(path, g, log)
	if len(f.infos()) != 0 {
		t.Fatal("a missing file is not empty")
	}
	p1, _ := PeerID(KeyFromSeed(1))
	p2, _ := PeerID(KeyFromSeed(2))
	addr := ma.StringCast("/ip4/127.0.0.1/tcp/4001")
	f.seen(p1, []ma.Multiaddr{addr}, time.Now())
	f.seen(p2, []ma.Multiaddr{addr}, time.Now())
	if !f.failed(p2) {
		t.Fatal("one failure dropped the peer")
	}
	keepAll := func(peer.ID) bool { return true }
	if err := f.save(keepAll); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v, %v; want 0600", fi.Mode(), err)
	}
	f = openPeerFile(path, g, log)
	if got := f.infos(); len(got) != 2 {
		t.Fatalf("reloaded %v, want two peers", got)
	}
	for i := 1; i < MaxPeerFileFails-1; i++ {
		if !f.failed(p2) {
			t.Fatalf("dropped after %d failures, want %d", i+1, MaxPeerFileFails)
		}
	}
	if f.failed(p2) {
		t.Fatalf("still remembered after %d failures", MaxPeerFileFails)
	}
	if got := f.infos(); len(got) != 1 || got[0].ID != p1 {
		t.Fatalf("remembered %v, want only %s", got, p1)
	}
	// Another network's file is ignored.
	other := chain.TestParams("other").Genesis().Hash()
	if got := openPeerFile(path, other, log).infos(); len(got) != 0 {
		t.Fatalf("another network's file gave %v", got)
	}
	// So is garbage, and no temporary file is left behind.
	if err := os.WriteFile(path, []byte("{\"version\": 1, \"peers\": [tru"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := openPeerFile(path, g, log).infos(); len(got) != 0 {
		t.Fatalf("a corrupt file gave %v", got)
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp*")); len(m) != 0 {
		t.Fatalf("temporary files left: %v", m)
	}
}

// TestFoundPeersBounded: thousands of found peers (as a LAN's mDNS answers
// or DHT records may name) whose address accepts and then says nothing
// keep at most maxFoundDials dials, and goroutines, at a time; the rest
// are dropped, to be found again.
func TestFoundPeersBounded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h := discHost(t, ctx, "found")
	tarpit := tarpitAddr(t)
	before := runtime.NumGoroutine()
	for i := range 3000 {
		key, err := GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		id, err := PeerID(key)
		if err != nil {
			t.Fatal(err)
		}
		h.disc.offer(peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{tarpit}})
		if i%64 == 63 {
			time.Sleep(time.Millisecond) // let dialFound take what was offered
		}
	}
	h.disc.mu.Lock()
	dialing := len(h.disc.dialing)
	h.disc.mu.Unlock()
	// Each dial holds a few goroutines of libp2p's own (the dial, its
	// transport); a goroutine per found peer would be thousands.
	if grown := runtime.NumGoroutine() - before; dialing > maxFoundDials || grown > 20*maxFoundDials {
		t.Fatalf("3,000 found peers: %d being dialled (at most %d), %d more goroutines", dialing, maxFoundDials, grown)
	}
}

// tarpitAddr listens on 127.0.0.1 for the rest of the test and returns the
// address: connections to it are accepted and then held silent, so a dial
// there lasts its whole timeout.
func tarpitAddr(t *testing.T) ma.Multiaddr {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	a, err := ma.NewMultiaddr(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", l.Addr().(*net.TCPAddr).Port))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

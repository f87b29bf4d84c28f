package p2p_test

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/p2p"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// Helpers shared by the discovery tests (bootstrap, DHT, peerstore file,
// mDNS). Every node is a real libp2p host on 127.0.0.1.

func discCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// discLogger logs to the test's output with -v and P2P_TEST_LOG=1, else
// nowhere.
func discLogger(t *testing.T, name string) *slog.Logger {
	if os.Getenv("P2P_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(discLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", name)
}

type discLogWriter struct{ t *testing.T }

func (w discLogWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

// discStart starts a peer and stops it at the end of the test (a peer the
// test closed itself is closed again harmlessly).
func discStart(t *testing.T, ctx context.Context, cfg testnet.Config) *testnet.Peer {
	t.Helper()
	p, err := testnet.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func discKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	k, err := p2p.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// discListenAddrs returns p's listen addresses without the /p2p part: what a
// restart on the same ports listens on.
func discListenAddrs(t *testing.T, p *testnet.Peer) []string {
	t.Helper()
	var out []string
	for _, a := range p.Host.Addrs() {
		info, err := peer.AddrInfoFromP2pAddr(a)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range info.Addrs {
			out = append(out, m.String())
		}
	}
	return out
}

// discHandshaken reports whether a has completed the status handshake with b:
// only then does a know b's tip.
func discHandshaken(a, b *testnet.Peer) bool {
	for _, pi := range a.Host.Peers() {
		if pi.ID == b.Host.ID() && pi.Tip != (chain.Hash{}) {
			return true
		}
	}
	return false
}

func discWaitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	if err := testnet.WaitFor(ctx, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

package p2p

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

func isConnected(a, b *Host) bool { return a.host.Network().Connectedness(b.ID()) == network.Connected }

// TestBlockBothWays: a host that blocks a peer drops its connection and
// connects with it neither way, while its other peers stay; once unblocked
// the peer connects again either way.
func TestBlockBothWays(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b, c := discHost(t, ctx, "block"), discHost(t, ctx, "block"), discHost(t, ctx, "block")
	for _, h := range []*Host{b, c} {
		if err := h.Connect(ctx, a.TCPAddr().String()); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Block(b.ID()); err != nil {
		t.Fatal(err)
	}
	discWait(t, ctx, "b disconnected from a", func() bool { return !isConnected(a, b) && !isConnected(b, a) })
	if got := a.Blocked(); len(got) != 1 || got[0] != b.ID() {
		t.Fatalf("Blocked() = %v, want [%s]", got, b.ID())
	}
	if err := a.Connect(ctx, b.TCPAddr().String()); !errors.Is(err, ErrBlocked) {
		t.Errorf("a dialling blocked b: %v, want ErrBlocked", err)
	}
	// b does not block a: its dial may see a secured connection for the
	// moment a takes to refuse it, but a never takes b on as a peer and the
	// connection does not last. Both transports.
	for _, addr := range a.Addrs() {
		_ = b.Connect(ctx, addr.String())
		for _, p := range a.Peers() {
			if p.ID == b.ID() {
				t.Fatalf("a took blocked b on as a peer (dialled on %s)", addr)
			}
		}
		discWait(t, ctx, "blocked b's connection ends", func() bool { return !isConnected(a, b) && !isConnected(b, a) })
	}
	time.Sleep(200 * time.Millisecond) // a connection let through would show by now
	if isConnected(a, b) || isConnected(b, a) {
		t.Fatal("a and b connected while b is blocked")
	}
	if !isConnected(a, c) {
		t.Error("blocking b dropped c")
	}

	a.Unblock(b.ID())
	if got := a.Blocked(); len(got) != 0 {
		t.Fatalf("Blocked() = %v after Unblock", got)
	}
	if err := b.Connect(ctx, a.TCPAddr().String()); err != nil {
		t.Fatalf("unblocked b cannot connect to a: %v", err)
	}
	discWait(t, ctx, "b connected to a", func() bool { return isConnected(a, b) })
	if err := a.Block(b.ID()); err != nil {
		t.Fatal(err)
	}
	discWait(t, ctx, "b disconnected again", func() bool { return !isConnected(a, b) })
	a.Unblock(b.ID())
	if err := a.Connect(ctx, b.TCPAddr().String()); err != nil {
		t.Fatalf("a cannot dial unblocked b: %v", err)
	}
}

// TestBlockedBootstrapPeer: a blocked bootstrap peer is not dialled (no
// dial, no failure counted) while blocked, and is dialled again at once when
// unblocked.
func TestBlockedBootstrapPeer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := discHost(t, ctx, "block-boot")
	a := discHost(t, ctx, "block-boot", WithBootstrap(b.TCPAddr().String()))
	discWait(t, ctx, "connect to the bootstrap peer", func() bool { return isConnected(a, b) })
	if err := a.Block(b.ID()); err != nil {
		t.Fatal(err)
	}
	discWait(t, ctx, "bootstrap peer disconnected", func() bool { return !isConnected(a, b) })
	dials, fails := a.disc.dials.Load(), a.disc.dialErrors.Load()
	time.Sleep(3 * minRedial) // past the redial delay after a lost peer
	if n, f := a.disc.dials.Load(), a.disc.dialErrors.Load(); n != dials || f != fails {
		t.Errorf("while blocked: dials %d -> %d, failures %d -> %d; want none", dials, n, fails, f)
	}
	a.disc.mu.Lock()
	_, kept := a.disc.kept[b.ID()]
	a.disc.mu.Unlock()
	if !kept {
		t.Fatal("the blocked bootstrap peer is no longer kept")
	}
	start := time.Now()
	a.Unblock(b.ID())
	discWait(t, ctx, "redial the unblocked bootstrap peer", func() bool { return isConnected(a, b) })
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("reconnected %v after Unblock, want at once", d)
	}
}

// TestBlockLimits: Block refuses an empty ID and the host's own, lists at
// most MaxBlocked peers (a Block over the cap blocks none of its IDs), and is
// independent of the refused list.
func TestBlockLimits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a := discHost(t, ctx, "block-limits")
	if err := a.Block(""); err == nil {
		t.Error("blocked the empty peer ID")
	}
	if err := a.Block(a.ID()); err == nil {
		t.Error("blocked itself")
	}
	ids := make([]peer.ID, MaxBlocked-1)
	for i := range ids {
		ids[i] = peer.ID("fake-" + strconv.Itoa(i))
	}
	if err := a.Block(ids...); err != nil {
		t.Fatal(err)
	}
	if err := a.Block(ids[0], "one-more", "two-more"); !errors.Is(err, ErrTooManyBlocked) {
		t.Fatalf("over the cap: %v, want ErrTooManyBlocked", err)
	}
	if a.gater.isBlocked("one-more") {
		t.Fatal("a Block over the cap blocked some of its IDs")
	}
	if err := a.Block(ids[0], "one-more"); err != nil { // ids[0]: already listed
		t.Fatalf("up to the cap: %v", err)
	}
	if n := len(a.Blocked()); n != MaxBlocked {
		t.Fatalf("%d blocked, want %d", n, MaxBlocked)
	}
	// Refusals neither count against nor evict blocks, and unblocking does
	// not forgive a refused peer.
	a.refuse("bad", "test")
	a.Unblock("bad", ids[0])
	if _, refused := a.gater.isRefused("bad"); !refused || a.gater.allowed("bad") {
		t.Error("Unblock forgave a refused peer")
	}
	if n := len(a.Blocked()); n != MaxBlocked-1 {
		t.Fatalf("%d blocked after unblocking one, want %d", n, MaxBlocked-1)
	}
}

package p2p

import (
	"math/big"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-msgio"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
)

// TestTieIsNoStrike: a peer whose tip has our tip's work and a lower hash
// claims a better chain by the tie rule; when we hold that tip already (a
// sibling that came after our tip was established, so the fork choice
// keeps ours) the claim is honest: we fetch nothing and never refuse the
// peer for it. A peer claiming such a tie on a tip we do not hold is still
// struck out as a liar. (Two sides of a healed partition that mined the
// same work stayed split, and the node refused its only link.)
func TestTieIsNoStrike(t *testing.T) {
	ctx := testContext(t, 60*time.Second)
	params := chain.TestParams("tie")
	a, b := buildBlocks(t, params, 1, 1, 8)[0], buildBlocks(t, params, 1, 1, 8)[0]
	if b.Hash().Less(a.Hash()) == false {
		a, b = b, a // b: the lower hash, the tie rule's winner
	}
	var clock atomic.Int64
	clock.Store(time.UnixMilli(params.GenesisTime).Add(time.Hour).UnixMilli())
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(params, key, node.WithClock(func() time.Time { return time.UnixMilli(clock.Load()) }))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.AddBlock(ctx, a); err != nil {
		t.Fatal(err)
	}
	clock.Add((chain.TieWindow + time.Second).Milliseconds()) // a is established
	if err := n.AddBlock(ctx, b); err != nil {
		t.Fatal(err)
	}
	if n.Status().Tip != a.Hash() || !n.HasBlock(b.Hash()) {
		t.Fatalf("tip %s; want %s kept with %s beside it", n.Status().Tip.Short(), a.Hash().Short(), b.Hash().Short())
	}
	h, err := New(ctx, n, WithKey(key), WithListenAddrs("/ip4/127.0.0.1/tcp/0"), WithSyncInterval(20*time.Millisecond),
		withLimits(func(l *limits) { l.uselessBackoff = 20 * time.Millisecond }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	v := victim{Host: h, node: n}

	claim := func(tip chain.Hash) network.StreamHandler {
		return claimStatus(func(theirs chain.Status) chain.Status {
			return chain.Status{Genesis: theirs.Genesis, Tip: tip, Height: 1, Work: new(big.Int).Set(theirs.Work)}
		})
	}

	// The honest tie: the sibling we hold.
	honest := rawHost(t)
	var asked atomic.Int32
	honest.SetStreamHandler(StatusProtocol, claim(b.Hash()))
	honest.SetStreamHandler(BlocksProtocol, serveBlocks(&asked, func(msgio.WriteCloser) {}))
	connectRaw(t, ctx, honest, v)
	// Many status polls later (every 20 ms), still connected, nothing asked.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if !v.gater.allowed(honest.ID()) {
			reason, _ := v.gater.isRefused(honest.ID())
			t.Fatalf("the honest tie peer was refused: %s", reason)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := asked.Load(); got != 0 {
		t.Errorf("%d blocks requests for a tip we hold", got)
	}
	if n.Status().Tip != a.Hash() {
		t.Errorf("the tip moved to %s", n.Status().Tip.Short())
	}

	// The lying tie: a lower hash we do not hold, and nothing to show.
	liar := rawHost(t)
	liar.SetStreamHandler(StatusProtocol, claim(chain.Hash{}))
	liar.SetStreamHandler(BlocksProtocol, serveBlocks(&asked, func(msgio.WriteCloser) {}))
	connectRaw(t, ctx, liar, v)
	waitUntil(t, ctx, "the tie liar is refused", func() bool { return !v.gater.allowed(liar.ID()) })
}

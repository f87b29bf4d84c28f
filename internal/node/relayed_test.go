package node_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/netfile"
	"github.com/p2pchain/p2pchain/internal/node"
)

// TestRelayedReadingsLeaveRoom: on an authority network peers relay
// readings, and a stranger can sign as many as it likes with keys of its
// own. Relayed readings may fill half the pending set; the node's own
// submitters keep the rest (before, a stranger could fill it all, and
// every local submission answered "pending set full"). Past the half a
// relayed reading is refused before its signature is checked (before,
// each cost an Ed25519 verification first).
func TestRelayedReadingsLeaveRoom(t *testing.T) {
	keys := []ed25519.PrivateKey{key(91), key(92), key(93), key(94)}
	net := authorityNetwork(t, keys)
	n, err := node.New(net.Params, keys[0], node.WithAuthority(net.Authority()), node.WithPoolSize(10))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Minute)
	relayed := 0
	for i := range 10 {
		r, err := chain.NewReading(key(95), "stranger", 60+i, at)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.ReceiveReading(r); err == nil {
			relayed++
		} else if !errors.Is(err, chain.ErrPoolFull) || chain.IsPeerFault(err) {
			t.Fatalf("relayed reading %d: %v, want a pending set full that is no peer's fault", i, err)
		}
	}
	if relayed != 5 {
		t.Fatalf("%d relayed readings taken, want 5 (half of 10)", relayed)
	}
	// Past the half, a relayed reading is refused before its signature
	// is checked: a stranger's flood then costs lookups, not Ed25519.
	before := n.SignaturesVerified()
	for i := range 100 {
		r, err := chain.NewReading(key(95), "stranger", 100+i, at)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.ReceiveReading(r); !errors.Is(err, chain.ErrPoolFull) {
			t.Fatalf("a relayed reading past the half: %v, want pending set full", err)
		}
	}
	if got := n.SignaturesVerified() - before; got != 0 {
		t.Errorf("%d signatures verified for 100 relayed readings refused as over the half, want 0", got)
	}
	for i := range 5 {
		if _, err := n.SubmitAt("local", 70+i, at); err != nil {
			t.Fatalf("local submission %d with relayed readings at their half: %v", i, err)
		}
	}
	if _, err := n.SubmitAt("local", 80, at); !errors.Is(err, chain.ErrPoolFull) {
		t.Fatalf("a submission past the whole set: %v, want pending set full", err)
	}
}

// TestOwnReadingsProposedFirst: relayed readings (a stranger's, signed
// with keys of its own) at their half of the pending set, then one reading
// submitted here: the authority proposes its own reading first, in the
// next block, not behind the stranger's (before: oldest first, so at 4
// readings a block it waited three blocks behind 10 relayed ones, and
// behind 50,000 at the defaults).
func TestOwnReadingsProposedFirst(t *testing.T) {
	keys := []ed25519.PrivateKey{key(97)}
	net := authorityNetworkWith(t, keys, func(f *netfile.File) { f.MaxReadings = 4 })
	n, err := node.New(net.Params, keys[0], node.WithAuthority(net.Authority()), node.WithPoolSize(20))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Minute)
	for i := range 10 {
		r, err := chain.NewReading(key(98), "stranger", 60+i, at)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.ReceiveReading(r); err != nil {
			t.Fatalf("relayed reading %d: %v", i, err)
		}
	}
	own, err := n.SubmitAt("local", 70, at.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(ctx, nil) }()
	defer func() { cancel(); <-done }()
	for n.Status().Height < 1 {
		select {
		case <-ctx.Done():
			t.Fatal("the authority decided no block")
		case <-time.After(10 * time.Millisecond):
		}
	}
	b, ok, err := n.BlockByHeight(1)
	if err != nil || !ok {
		t.Fatalf("block 1: %v, found %v", err, ok)
	}
	var subjects []string
	for _, r := range b.Block.Readings {
		subjects = append(subjects, r.Subject)
	}
	if len(b.Block.Readings) == 0 || b.Block.Readings[0].ID() != own.ID() {
		t.Fatalf("block 1 holds %v: want the reading submitted here first", subjects)
	}
}

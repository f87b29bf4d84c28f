package node_test

import (
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
)

// TestRelayedReadingsLeaveRoom: on an authority network peers relay
// readings, and a stranger can sign as many as it likes with keys of its
// own. Relayed readings may fill half the pending set; the node's own
// submitters keep the rest (before, a stranger could fill it all, and
// every local submission answered "pending set full").
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
	for i := range 5 {
		if _, err := n.SubmitAt("local", 70+i, at); err != nil {
			t.Fatalf("local submission %d with relayed readings at their half: %v", i, err)
		}
	}
	if _, err := n.SubmitAt("local", 80, at); !errors.Is(err, chain.ErrPoolFull) {
		t.Fatalf("a submission past the whole set: %v, want pending set full", err)
	}
}

package node_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"path/filepath"
	"sync/atomic"
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

// readCountingStore counts the store's reading lookups.
type readCountingStore struct {
	node.Store
	reads atomic.Int64
}

func (s *readCountingStore) ReadingBlock(id chain.Hash) (chain.Hash, bool) {
	s.reads.Add(1)
	return s.Store.ReadingBlock(id)
}

// TestRelayedPastHalfReadsNothing: past the relayed half of the pending
// set, a relayed reading is refused on the count alone, before it is
// looked up: a reading the chain let go of to the store is found there by
// a read, made under the node's lock, and a stranger's readings past the
// half (any bytes for a signature: none is checked, and none is blamed)
// must not cost the node a store read each, with every other caller of the
// node waiting on it.
func TestRelayedPastHalfReadsNothing(t *testing.T) {
	keys := []ed25519.PrivateKey{key(61), key(62), key(63), key(64)}
	net := authorityNetwork(t, keys)
	dir := filepath.Join(t.TempDir(), "store")
	n, st := openAuthorityNode(t, net, dir)
	ctx := context.Background()
	g, _, _ := n.BlockByHeight(0)
	parent := g.Block
	for i := range 3 {
		b := nextBlock(t, net, parent, 70+i)
		b.Seal = seal(net, b, keys[:3], []int{0, 1, 2})
		if err := n.AddBlock(ctx, b); err != nil {
			t.Fatal(err)
		}
		parent = b
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	// Restarted: the readings of the final blocks are the store's.
	real, state := openState(t, net, dir)
	defer real.Close()
	counting := &readCountingStore{Store: real}
	n = newNodeOn(t, net, counting, state, key(9), node.WithPoolSize(10),
		node.WithClock(func() time.Time { return time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC) }))
	if _, ok, err := n.LocateReading(parent.Readings[0].ID()); !ok || err != nil {
		t.Fatal("a reading of the stored chain is not known after the restart")
	}
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for i := range 5 {
		r, err := chain.NewReading(key(65), "stranger", 60+i, at)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.ReceiveReading(r); err != nil {
			t.Fatalf("relayed reading %d: %v", i, err)
		}
	}
	before := counting.reads.Load()
	for i := range 100 {
		r, err := chain.NewReading(key(65), "stranger", 100+i, at)
		if err != nil {
			t.Fatal(err)
		}
		r.Sig = [64]byte{byte(i), 1} // any bytes: not checked past the half
		if err := n.ReceiveReading(r); !errors.Is(err, chain.ErrPoolFull) || chain.IsPeerFault(err) {
			t.Fatalf("a relayed reading past the half: %v, want pending set full, no fault", err)
		}
	}
	if got := counting.reads.Load() - before; got != 0 {
		t.Fatalf("%d store reads for 100 relayed readings past the half, want 0", got)
	}
}

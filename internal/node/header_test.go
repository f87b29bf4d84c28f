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
	"github.com/p2pchain/p2pchain/internal/store"
)

// storedChain makes an authority network of four keys (key(k) to
// key(k+3)), a node on a store in a temporary directory that adds three
// sealed blocks of bpm, bpm+1 and bpm+2, closes that store, and returns the
// network, the store opened again with its state, and the blocks: a node
// made on them (newNodeOn) holds the blocks below its restored chain's
// base, and their readings, only in the store.
func storedChain(t *testing.T, k byte, bpm int) (*netfile.Network, *store.Store, node.State, []*chain.Block) {
	t.Helper()
	keys := []ed25519.PrivateKey{key(k), key(k + 1), key(k + 2), key(k + 3)}
	net := authorityNetwork(t, keys)
	dir := filepath.Join(t.TempDir(), "store")
	n, st := openAuthorityNode(t, net, dir)
	g, _, _ := n.BlockByHeight(0)
	parent := g.Block
	var blocks []*chain.Block
	for i := range 3 {
		b := nextBlock(t, net, parent, bpm+i)
		b.Seal = seal(net, b, keys[:3], []int{0, 1, 2})
		if err := n.AddBlock(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		blocks, parent = append(blocks, b), b
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	real, state := openState(t, net, dir)
	return net, real, state, blocks
}

// gatedHeaderStore holds each header read until released.
type gatedHeaderStore struct {
	node.Store
	entered chan struct{}
	release chan struct{}
}

func (s *gatedHeaderStore) HeaderByHash(h chain.Hash) (chain.Header, error) {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	<-s.release
	return s.Store.HeaderByHash(h)
}

// TestHeaderReadOutsideLock: the header of a block the chain let go of to
// the store (an API client's FHIR search asks for one per block it shows,
// for as many old blocks as it likes) is read without the node's lock
// held: a slow read must not hold up the node. Before, it was read under
// n.mu, and everything else that takes it waited for the disk.
func TestHeaderReadOutsideLock(t *testing.T) {
	net, real, state, blocks := storedChain(t, 71, 70)
	defer real.Close()
	gated := &gatedHeaderStore{Store: real, entered: make(chan struct{}, 1), release: make(chan struct{})}
	n := newNodeOn(t, net, gated, state, key(9))
	// Block 1 is below the restored chain's base: only the store has it.
	got := make(chan chain.Header, 1)
	go func() {
		hdr, _ := n.Header(blocks[0].Hash())
		got <- hdr
	}()
	select {
	case <-gated.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the header was not read from the store")
	}
	status := make(chan chain.Status, 1)
	go func() { status <- n.Status() }()
	select {
	case <-status:
	case <-time.After(2 * time.Second):
		close(gated.release)
		t.Fatal("the node's lock is held while a header is read from the store")
	}
	close(gated.release)
	if hdr := <-got; hdr.Height != 1 || hdr != blocks[0].Header {
		t.Fatalf("header %+v, want block 1's", hdr)
	}
	// Not archived, not known: none.
	if _, ok := n.Header(chain.Hash{9}); ok {
		t.Fatal("a header for a hash the node does not know")
	}
}

// gatedReadingStore holds each reading look-up until released.
type gatedReadingStore struct {
	node.Store
	entered chan struct{}
	release chan struct{}
}

func (s *gatedReadingStore) ReadingBlock(id chain.Hash) (chain.Hash, bool) {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	<-s.release
	return s.Store.ReadingBlock(id)
}

// TestRelayedKnownReadingReadOutsideLock: a reading of the chain relayed
// again (no fault of its relayer: a peer may do so at its whole budget,
// 2,000 a second, with readings anyone can read off the chain) is found
// known by a store read made without the node's lock held, once the chain
// has let its readings go to the store. Before, each cost a store read
// under n.mu.
func TestRelayedKnownReadingReadOutsideLock(t *testing.T) {
	net, real, state, blocks := storedChain(t, 81, 70)
	defer real.Close()
	open := make(chan struct{})
	close(open)
	gated := &gatedReadingStore{Store: real, entered: make(chan struct{}, 1), release: open} // open while the node starts
	n := newNodeOn(t, net, gated, state, key(9),
		node.WithClock(func() time.Time { return time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC) }))
	gated.release = make(chan struct{})
	select { // only the relayed reading's look-up counts below
	case <-gated.entered:
	default:
	}
	relayed := make(chan error, 1)
	go func() { relayed <- n.ReceiveReading(blocks[0].Readings[0]) }()
	select {
	case <-gated.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the relayed reading was not looked up in the store")
	}
	status := make(chan chain.Status, 1)
	go func() { status <- n.Status() }()
	select {
	case <-status:
	case <-time.After(2 * time.Second):
		close(gated.release)
		t.Fatal("the node's lock is held while a relayed reading is looked up in the store")
	}
	close(gated.release)
	if err := <-relayed; !errors.Is(err, chain.ErrKnownReading) || chain.IsPeerFault(err) {
		t.Fatalf("a chain reading relayed again: %v, want known, no fault", err)
	}
}

// TestPrefixLookupReadsOutsideLock: a lookup by reading id prefix (GET
// /api/v1/readings/{prefix}: no token, and a prefix of 4 digits matches up
// to MaxMatches readings of a long chain) checks the readings only the
// store holds without the node's lock held. Before, each match was looked
// up in the store under n.mu.
func TestPrefixLookupReadsOutsideLock(t *testing.T) {
	net, real, state, blocks := storedChain(t, 85, 80)
	defer real.Close()
	open := make(chan struct{})
	close(open)
	gated := &gatedReadingStore{Store: real, entered: make(chan struct{}, 1), release: open}
	n := newNodeOn(t, net, gated, state, key(9))
	gated.release = make(chan struct{})
	select {
	case <-gated.entered:
	default:
	}
	id := blocks[0].Readings[0].ID()
	p, err := chain.ParseHashPrefix(id.String()[:12])
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan node.Matches, 1)
	go func() {
		m, _ := n.ReadingsWithPrefix(p, 5)
		got <- m
	}()
	select {
	case <-gated.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the reading was not looked up in the store")
	}
	status := make(chan chain.Status, 1)
	go func() { status <- n.Status() }()
	select {
	case <-status:
	case <-time.After(2 * time.Second):
		close(gated.release)
		t.Fatal("the node's lock is held while a prefix's match is looked up in the store")
	}
	close(gated.release)
	if m := <-got; m.Count != 1 || m.Hashes[0] != id {
		t.Fatalf("matches %+v, want the one reading", m)
	}
	// Blocks: block 1 is below the base, found by its prefix too.
	bp, err := chain.ParseHashPrefix(blocks[0].Hash().String()[:12])
	if err != nil {
		t.Fatal(err)
	}
	if m, err := n.BlocksWithPrefix(bp, 5); err != nil || m.Count != 1 || m.Hashes[0] != blocks[0].Hash() {
		t.Fatalf("block matches %+v, %v; want block 1", m, err)
	}
	if m, err := n.BlocksWithPrefix(p, 5); err != nil || m.Count != 0 {
		t.Fatalf("block matches for a reading's prefix %+v, %v; want none", m, err)
	}
}

// countingReadingStore counts the store's reading look-ups.
type countingReadingStore struct {
	node.Store
	reads atomic.Int64
}

func (s *countingReadingStore) ReadingBlock(id chain.Hash) (chain.Hash, bool) {
	s.reads.Add(1)
	return s.Store.ReadingBlock(id)
}

// TestRelayedNewReadingOneStoreRead: a new reading relayed to a node whose
// chain has let readings go to the store is looked up in the store once,
// without the node's lock (TestRelayedKnownReadingReadOutsideLock); the
// look-up again after its signature is checked, under the lock, is in
// memory only: a reading the store did not hold before cannot have
// reached it since without passing through memory. Before, that second
// look-up read the store too, with the lock held, for every new reading a
// stranger signed.
func TestRelayedNewReadingOneStoreRead(t *testing.T) {
	net, real, state, _ := storedChain(t, 91, 70)
	defer real.Close()
	counting := &countingReadingStore{Store: real}
	at := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	n := newNodeOn(t, net, counting, state, key(9), node.WithClock(func() time.Time { return at }))
	r, err := chain.NewReading(key(95), "fresh", 70, at.Add(-time.Second))
	if err != nil {
		t.Fatal(err)
	}
	before := counting.reads.Load()
	if err := n.ReceiveReading(r); err != nil {
		t.Fatalf("a new relayed reading: %v", err)
	}
	if got := counting.reads.Load() - before; got != 1 {
		t.Errorf("a new relayed reading cost %d store look-ups, want 1 (outside the lock)", got)
	}
}

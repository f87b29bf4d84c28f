package node

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/store"
)

// gatedStore is a real store whose AddPending can be held back (gate) or
// made to fail, and which records the size of every pending batch.
type gatedStore struct {
	*store.Store
	mu      sync.Mutex
	gate    chan struct{} // nil: open
	fail    error
	batches []int
	entered chan struct{} // receives once per AddPending call
}

func (s *gatedStore) AddPending(rs ...chain.Reading) error {
	s.mu.Lock()
	gate, fail := s.gate, s.fail
	s.batches = append(s.batches, len(rs))
	s.mu.Unlock()
	select {
	case s.entered <- struct{}{}:
	default:
	}
	if gate != nil {
		<-gate
	}
	if fail != nil {
		return fail
	}
	return s.Store.AddPending(rs...)
}

func (s *gatedStore) set(gate chan struct{}, fail error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate, s.fail = gate, fail
}

func (s *gatedStore) sizes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.batches...)
}

func writerKey(i byte) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte{'w', i})
	return ed25519.NewKeyFromSeed(seed[:])
}

// durableNode returns a node on a gated store in a temp dir, and the
// store's path.
func durableNode(t *testing.T, params chain.Params, opts ...Option) (*Node, *gatedStore, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "chain")
	st, err := store.Open(path, params)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	gs := &gatedStore{Store: st, entered: make(chan struct{}, 1)}
	n, err := New(params, writerKey(9), append([]Option{WithStore(gs, State{})}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return n, gs, path
}

func (n *Node) storingCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.wr.storing)
}

func waitStoring(t *testing.T, n *Node, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for n.storingCount() < want {
		if time.Now().After(deadline) {
			t.Fatalf("%d readings storing, want %d", n.storingCount(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

func signed(t *testing.T, params chain.Params, subject string) chain.Reading {
	t.Helper()
	r, err := chain.NewReading(writerKey(1), subject, 70, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Readings submitted while a write syncs share the next write; none is
// acknowledged or pending (minable) before its write returned, and all are
// in the store after.
func TestSubmissionsGroupCommitted(t *testing.T) {
	params := chain.TestParams("group")
	n, gs, _ := durableNode(t, params)
	gate := make(chan struct{})
	gs.set(gate, nil)

	const more = 20
	errs := make(chan error, more+1)
	go func() { errs <- n.SubmitReading(signed(t, params, "first")) }()
	<-gs.entered // the first write is under way, held
	for i := range more {
		go func() { errs <- n.SubmitReading(signed(t, params, fmt.Sprintf("s%d", i))) }()
	}
	waitStoring(t, n, more+1)
	select {
	case err := <-errs:
		t.Fatalf("a submission was answered (%v) before its write returned", err)
	default:
	}
	if n.Pending() != 0 {
		t.Fatalf("%d readings pending before their write returned", n.Pending())
	}
	if err := n.Err(); err != nil {
		t.Fatal(err)
	}
	close(gate)
	for range more + 1 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := gs.sizes(); len(got) != 2 || got[0] != 1 || got[1] != more {
		t.Fatalf("pending batches %v, want [1 %d]", got, more)
	}
	if n.Pending() != more+1 {
		t.Fatalf("%d readings pending, want %d", n.Pending(), more+1)
	}
	st, err := gs.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Pending) != more+1 {
		t.Fatalf("%d readings stored pending, want %d", len(st.Pending), more+1)
	}
}

// A write that fails is answered with its error to every submitter of its
// batch; its readings never enter the pool (the miner cannot take them);
// memory and disk still agree, so the node goes on, and the reading can be
// submitted again.
func TestSubmissionWriteFails(t *testing.T) {
	params := chain.TestParams("fails")
	n, gs, _ := durableNode(t, params)
	boom := errors.New("disk on fire")
	gs.set(nil, boom)
	r := signed(t, params, "x")
	if err := n.SubmitReading(r); !errors.Is(err, boom) {
		t.Fatalf("submission on a failing store: %v", err)
	}
	if n.Pending() != 0 || n.storingCount() != 0 {
		t.Fatalf("a reading whose write failed is pending (%d) or storing (%d)", n.Pending(), n.storingCount())
	}
	if err := n.Err(); err != nil {
		t.Fatalf("the node failed: %v", err)
	}
	gs.set(nil, nil)
	if err := n.SubmitReading(r); err != nil {
		t.Fatal(err)
	}
	if n.Pending() != 1 {
		t.Fatalf("%d pending, want 1", n.Pending())
	}
}

// A reading submitted twice while its write syncs is written once; the
// second submission waits for the first's write and is answered known.
func TestDuplicateWhileStoring(t *testing.T) {
	params := chain.TestParams("dup")
	n, gs, _ := durableNode(t, params)
	gate := make(chan struct{})
	gs.set(gate, nil)
	r := signed(t, params, "x")
	first := make(chan error, 1)
	go func() { first <- n.SubmitReading(r) }()
	<-gs.entered
	second := make(chan error, 1)
	go func() { second <- n.SubmitReading(r) }()
	select {
	case err := <-second:
		t.Fatalf("the duplicate was answered (%v) before the write returned", err)
	case <-time.After(20 * time.Millisecond):
	}
	close(gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; !errors.Is(err, chain.ErrKnownReading) {
		t.Fatalf("duplicate: %v, want known", err)
	}
	if got := gs.sizes(); len(got) != 1 {
		t.Fatalf("pending batches %v, want one", got)
	}
}

// A peer's block holding a reading that connects while the reading's write
// syncs makes it known (in the chain), never acknowledged as pending, and
// leaves no pending record in the store.
func TestBlockConnectsWhileStoring(t *testing.T) {
	params := chain.TestParams("race")
	n, gs, path := durableNode(t, params)
	gate := make(chan struct{})
	gs.set(gate, nil)
	r := signed(t, params, "x")
	done := make(chan error, 1)
	go func() { done <- n.SubmitReading(r) }()
	<-gs.entered

	c, err := chain.New(params)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	blk := c.NewBlock([]chain.Reading{r}, now)
	if err := chain.Solve(context.Background(), &blk.Header); err != nil {
		t.Fatal(err)
	}
	if err := n.AddBlock(context.Background(), blk); err != nil {
		t.Fatal(err)
	}
	close(gate)
	if err := <-done; !errors.Is(err, chain.ErrKnownReading) {
		t.Fatalf("submission whose block connected meanwhile: %v, want known", err)
	}
	if n.Pending() != 0 {
		t.Fatalf("%d pending, want 0", n.Pending())
	}
	if info, ok, _ := n.LocateReading(r.ID()); !ok || info.Pending || info.Height != 1 {
		t.Fatalf("reading: %+v, %v; want in block 1", info, ok)
	}
	if err := gs.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(path, params)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if ids, err := st.ReadingsWithPrefix(chain.HashPrefix{}, 10); err != nil || len(ids) != 1 {
		t.Fatalf("stored readings (main chain and pending): %v, %v; want the one in block 1", ids, err)
	}
}

// No submission, however many at once, is acknowledged unless its reading
// is on disk, and the pool never exceeds its size.
func TestSubmissionsFillPool(t *testing.T) {
	params := chain.TestParams("full")
	n, gs, _ := durableNode(t, params, WithPoolSize(10))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var acked []chain.Hash
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := signed(t, params, fmt.Sprintf("s%d", i))
			err := n.SubmitReading(r)
			switch {
			case err == nil:
				mu.Lock()
				acked = append(acked, r.ID())
				mu.Unlock()
			case !errors.Is(err, chain.ErrPoolFull):
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if len(acked) != 10 || n.Pending() != 10 {
		t.Fatalf("%d acknowledged, %d pending; want 10 and 10", len(acked), n.Pending())
	}
	st, err := gs.Load()
	if err != nil {
		t.Fatal(err)
	}
	stored := map[chain.Hash]bool{}
	for _, r := range st.Pending {
		stored[r.ID()] = true
	}
	for _, id := range acked {
		if !stored[id] {
			t.Fatalf("acknowledged reading %s is not stored", id.Short())
		}
	}
}

// A batch's sync never waits for n.mu: the next batch is written while the
// one before waits for the lock to enter the pool, and the two enter it in
// the order they were written.
func TestBatchWrittenWhileLockHeld(t *testing.T) {
	params := chain.TestParams("pipeline")
	n, gs, _ := durableNode(t, params)
	gate := make(chan struct{})
	gs.set(gate, nil)
	a, b := signed(t, params, "a"), signed(t, params, "b")
	errs := make(chan error, 2)
	go func() { errs <- n.SubmitReading(a) }()
	<-gs.entered
	go func() { errs <- n.SubmitReading(b) }()
	waitStoring(t, n, 2)
	gs.set(nil, nil)
	n.mu.Lock() // readers, peers and blocks hold the node
	close(gate)
	select {
	case <-gs.entered: // b's batch is written
	case <-time.After(10 * time.Second):
		n.mu.Unlock()
		t.Fatal("the next batch waited for the node's lock")
	}
	n.mu.Unlock()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := n.PendingReadings(); len(got) != 2 || got[0].ID() != a.ID() || got[1].ID() != b.ID() {
		t.Fatalf("pending %v, want a then b", got)
	}
}

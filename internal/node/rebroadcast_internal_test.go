package node

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/store"
)

// readingRecorder is a Broadcaster that records the readings sent.
type readingRecorder struct {
	mu   sync.Mutex
	sent []chain.Reading
}

func (r *readingRecorder) BroadcastBlock(context.Context, *chain.Block) error { return nil }
func (r *readingRecorder) BroadcastConsensus(context.Context, []byte) error   { return nil }
func (r *readingRecorder) CatchUp()                                           {}
func (r *readingRecorder) BroadcastReading(_ context.Context, rd chain.Reading) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, rd)
	return nil
}

// TestRebroadcastOwnBehindRelayed: a reading submitted here that waited
// past rebroadcastAge is sent again even with more relayed readings ahead
// of it in the pending set than the rebroadcast used to look at (it took
// the oldest 1,024 and kept those submitted here, so relayed readings,
// which may fill half the set, hid the node's own); relayed readings are
// not sent again.
func TestRebroadcastOwnBehindRelayed(t *testing.T) {
	params := chain.TestParams("rebroadcast")
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	n, err := New(params, writerKey(1), WithClock(clock), WithPoolSize(4000))
	if err != nil {
		t.Fatal(err)
	}
	at := now.Add(-time.Minute)
	for i := range 1100 {
		r, err := chain.NewReading(writerKey(2), fmt.Sprintf("stranger%d", i), 70, at)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.addReading(r, false); err != nil {
			t.Fatalf("relayed reading %d: %v", i, err)
		}
	}
	own, err := n.SubmitAt("local", 70, at)
	if err != nil {
		t.Fatal(err)
	}
	var rec readingRecorder
	n.rebroadcast(context.Background(), &rec)
	if len(rec.sent) != 0 {
		t.Fatalf("%d readings sent again before rebroadcastAge", len(rec.sent))
	}
	mu.Lock()
	now = now.Add(2 * rebroadcastAge)
	mu.Unlock()
	n.rebroadcast(context.Background(), &rec)
	if len(rec.sent) != 1 || rec.sent[0].ID() != own.ID() {
		t.Fatalf("sent again: %d readings, want only the one submitted here", len(rec.sent))
	}
}

// TestRebroadcastOldestFirst: of the readings submitted here and waiting,
// the oldest rebroadcastMax are sent again, oldest first; those younger
// than rebroadcastAge are not.
func TestRebroadcastOldestFirst(t *testing.T) {
	params := chain.TestParams("rebroadcast-order")
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	n, err := New(params, writerKey(1), WithClock(clock), WithPoolSize(4000))
	if err != nil {
		t.Fatal(err)
	}
	var ids []chain.Hash
	for i := range rebroadcastMax + 50 {
		r, err := n.SubmitAt(fmt.Sprintf("p%d", i), 70, now.Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID())
		mu.Lock()
		now = now.Add(time.Millisecond)
		mu.Unlock()
	}
	mu.Lock()
	now = now.Add(rebroadcastAge)
	mu.Unlock()
	young, err := n.SubmitAt("young", 70, now)
	if err != nil {
		t.Fatal(err)
	}
	var rec readingRecorder
	n.rebroadcast(context.Background(), &rec)
	if len(rec.sent) != rebroadcastMax {
		t.Fatalf("%d readings sent again, want %d", len(rec.sent), rebroadcastMax)
	}
	for i, r := range rec.sent {
		if r.ID() != ids[i] {
			t.Fatalf("reading %d sent again is %s, want the %dth oldest %s", i, r.ID().Short(), i, ids[i].Short())
		}
		if r.ID() == young.ID() {
			t.Fatal("a reading younger than rebroadcastAge was sent again")
		}
	}
}

// TestRebroadcastAfterRestart: a reading submitted here, still pending
// when the node restarts, is marked again from its store (signed with the
// node's key) and sent again, and proposed first; a relayed reading,
// pending too, is not. Before, a restart forgot which readings were
// submitted here, and a follower's reading that no peer had taken waited
// for ever.
func TestRebroadcastAfterRestart(t *testing.T) {
	params := chain.TestParams("rebroadcast-restart")
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	n, st := storedNode(t, params, clock)
	relayed, err := chain.NewReading(writerKey(2), "stranger", 70, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.addReading(relayed, false); err != nil {
		t.Fatal(err)
	}
	own, err := n.SubmitAt("local", 71, now)
	if err != nil {
		t.Fatal(err)
	}
	n2 := restarted(t, st, params, clock)
	if got := n2.Pending(); got != 2 {
		t.Fatalf("%d readings pending after the restart, want 2", got)
	}
	mu.Lock()
	now = now.Add(2 * rebroadcastAge)
	mu.Unlock()
	var rec readingRecorder
	n2.rebroadcast(context.Background(), &rec)
	if len(rec.sent) != 1 || rec.sent[0].ID() != own.ID() {
		t.Fatalf("sent again after the restart: %d readings, want only the one submitted here", len(rec.sent))
	}
	n2.mu.Lock()
	first := n2.pool.TakeFirst(1)
	n2.mu.Unlock()
	if len(first) != 1 || first[0].ID() != own.ID() {
		t.Errorf("the reading submitted here is not proposed first after the restart")
	}
}

// TestFinalityAfterRestartFromSubmission: a reading taken an hour before
// it was submitted here, still pending at a restart, is reported final
// (p2pchain_finality_seconds: from its submission at this node) seconds
// after the restart, not an hour and more: its own time is not its
// submission's. Before, the restart marked it as submitted at its time.
func TestFinalityAfterRestartFromSubmission(t *testing.T) {
	params := chain.TestParams("finality-restart")
	params.MaxReorgDepth = 1
	params.FinalAge = 0
	params.MaxReadings = 1
	var mu sync.Mutex
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	n, st := storedNode(t, params, clock)
	if _, err := n.SubmitAt("taken-earlier", 71, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	n2 := restarted(t, st, params, clock)
	events, stop := n2.Subscribe(64)
	defer stop()
	if _, err := n2.Submit("after", 72); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = n2.Run(ctx, nil) }()
	defer func() { cancel(); <-done }()
	deadline := time.After(10 * time.Second)
	var lat []time.Duration
	for len(lat) < 1 {
		select {
		case e := <-events:
			if e.Kind == EventFinal {
				lat = append(lat, e.Latencies...)
			}
		case <-deadline:
			t.Fatalf("no latency reported within 10 s (final height %d)", n2.FinalHeight())
		}
	}
	for _, d := range lat {
		if d > time.Minute {
			t.Errorf("finality reported %v after submission, want seconds: counted from the reading's own time", d)
		}
	}
}

// storedNode is a node of params on a store in a temporary directory,
// signing with writerKey(1), on clock.
func storedNode(t *testing.T, params chain.Params, clock func() time.Time) (*Node, *store.Store) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "chain"), params)
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(params, writerKey(1), WithStore(st, State{}), WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	return n, st
}

// restarted closes st and starts the node of storedNode again on what it
// holds: what a restart would find. The store is closed at the test's end.
func restarted(t *testing.T, st *store.Store, params chain.Params, clock func() time.Time) *Node {
	t.Helper()
	state := reloaded(t, st, params)
	st2, err := store.Open(st.Path(), params)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st2.Close() })
	n, err := New(params, writerKey(1), WithStore(st2, *state), WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

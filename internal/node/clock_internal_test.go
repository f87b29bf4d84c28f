package node

import (
	"context"
	"crypto/ed25519"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// testClock is a clock the test moves.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) now() time.Time           { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) set(offset time.Duration) { c.offset.Store(int64(offset)) }

func clockNode(t *testing.T, c *testClock) *Node {
	t.Helper()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(chain.TestParams("clock"), key, WithClock(c.now))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestClockCheckMajority: the check judges the median over relaying peers,
// of two middle values the one nearer zero, with at least two peers, and
// forgets a peer's offset after clockMaxAge.
func TestClockCheckMajority(t *testing.T) {
	c := &testClock{}
	n := clockNode(t, c)
	at := func(d time.Duration) *chain.Block {
		return &chain.Block{Header: chain.Header{Time: c.now().Add(d).UnixMilli()}}
	}
	tooNew := ruleErrFor(t, chain.ErrTimeTooNew)
	steps := []struct {
		from   string
		offset time.Duration
		err    error
		skewed bool
		want   time.Duration // the offset reported, to the second
	}{
		{"a", 5 * time.Minute, tooNew, false, 5 * time.Minute}, // one peer: no judgement
		{"b", 0, nil, false, 0},                                // +5m and 0: the one nearer zero
		{"c", 5 * time.Minute, tooNew, true, 5 * time.Minute},  // two of three ahead
		{"b", 5 * time.Minute, nil, true, 5 * time.Minute},     // the same peer again replaces its offset
		{"a", 0, nil, true, 5 * time.Minute},
		{"c", -time.Second, nil, false, 0},
	}
	for i, s := range steps {
		n.watchClock(c.now(), at(s.offset), s.err, s.from)
		got := n.ClockCheck()
		if got.Skewed != s.skewed || got.Offset.Round(time.Second) != s.want {
			t.Fatalf("step %d (%s at %v): %+v, want skewed %v, offset %v", i, s.from, s.offset, got, s.skewed, s.want)
		}
	}
	if got := n.ClockCheck().TooNew; got != 2 {
		t.Errorf("TooNew %d, want 2", got)
	}
	n.watchClock(c.now(), at(time.Hour), ruleErrFor(t, chain.ErrBadSignature), "d") // invalid: no sample
	n.watchClock(c.now(), at(time.Hour), tooNew, "")                                // from sync: counted, no sample
	if got := n.ClockCheck(); got.Sources != 3 || got.TooNew != 3 {
		t.Errorf("after an invalid block and a sync's: %+v, want 3 sources, 3 too new", got)
	}
	c.set(clockMaxAge + time.Second)
	if got := n.ClockCheck(); got.Sources != 0 || got.Skewed {
		t.Errorf("after clockMaxAge: %+v, want no sources", got)
	}
}

// ruleErrFor returns the chain's rule error of code, as AddBlock returns it.
func ruleErrFor(t *testing.T, code chain.ErrorCode) error {
	t.Helper()
	return &chain.RuleError{Code: code}
}

// TestMinerHoldsFutureReading: a reading taken while the node's clock was
// ahead, with the clock then set back, waits in the pool (a block timed now
// may not hold it, rule 6d) while later readings are mined, and is mined
// once its time is no more than MaxFutureDrift ahead.
func TestMinerHoldsFutureReading(t *testing.T) {
	c := &testClock{}
	c.set(5 * time.Minute)
	n := clockNode(t, c)
	ahead, err := n.Submit("clock", 70)
	if err != nil {
		t.Fatal(err)
	}
	c.set(0)
	later, err := n.Submit("clock", 71)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(ctx, nil) }()
	defer func() { cancel(); <-done }()
	mined := func(id chain.Hash) bool { info, ok, _ := n.LocateReading(id); return ok && !info.Pending }
	for !mined(later.ID()) {
		if ctx.Err() != nil {
			t.Fatalf("the reading taken now was not mined beside one from the future")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if mined(ahead.ID()) {
		t.Fatalf("the reading 5 minutes ahead was mined in a block timed now")
	}
	c.set(3*time.Minute + time.Second) // now its time is under MaxFutureDrift ahead
	n.mu.Lock()
	n.signalLocked() // the timer of the miner is 3 real minutes away: wake it
	n.mu.Unlock()
	for !mined(ahead.ID()) {
		if ctx.Err() != nil {
			t.Fatalf("the reading from the future was not mined once its time came")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

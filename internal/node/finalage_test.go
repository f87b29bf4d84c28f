package node_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/store"
)

// TestFinalByAgeIsReported: on a network that goes quiet, the blocks deep
// enough become final once they are old enough, with no new block, and the
// node reports it (EventFinal) by itself. Before, the final height rose only
// when something asked for it, and no event said so: a clinic's dashboard
// following the event stream waited for the next block, maybe for ever.
func TestFinalByAgeIsReported(t *testing.T) {
	params := chain.TestParams("final-age")
	params.MaxReorgDepth = 1
	params.FinalAge = time.Minute
	params.MaxReadings = 1
	var mu sync.Mutex
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	n, err := node.New(params, key(9), node.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := n.Submit(fmt.Sprintf("s%d", i), 70); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(ctx, nil) }()
	defer func() { cancel(); <-done }()
	waitFor(t, 10*time.Second, "3 blocks mined", func() bool { return n.Status().Height == 3 })
	events, stop := n.Subscribe(16)
	defer stop()
	if f := n.FinalHeight(); f != 0 {
		t.Fatalf("final height %d before any block is a minute old, want 0", f)
	}

	mu.Lock()
	now = now.Add(2 * time.Minute) // no new block: only time passes
	mu.Unlock()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-events:
			if e.Kind == node.EventFinal && e.Final == 2 {
				return // blocks 1 and 2: deep enough (1 block on top) and old enough
			}
		case <-deadline:
			t.Fatalf("no final event for height 2 within 10 s of the blocks becoming old enough (final height now %d)", n.FinalHeight())
		}
	}
}

// TestFinalNeverAheadOfStore: a final event names no block the store does
// not hold yet. The chain takes a block in memory before its commit is
// written; a final event sent in between (by a reader asking for the final
// height, or by the age check) promised a block that a failed commit would
// lose: 75 of 299 final events did, before the final height reported was
// capped at the tip last announced.
func TestFinalNeverAheadOfStore(t *testing.T) {
	params := chain.TestParams("final-durable")
	params.MaxReorgDepth = 1
	params.FinalAge = 0
	st, err := store.Open(filepath.Join(t.TempDir(), "chain"), params)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n, err := node.New(params, key(9), node.WithStore(st, store.State{}))
	if err != nil {
		t.Fatal(err)
	}
	events, stop := n.Subscribe(1 << 16)
	defer stop()
	var quit atomic.Bool
	var askedAhead atomic.Int64
	asked := make(chan struct{})
	go func() { // a client asking for the final height (status, any lookup)
		defer close(asked)
		for !quit.Load() {
			if h := n.FinalHeight(); h > st.Height() { // the store's height only grows here
				askedAhead.Add(1)
			}
		}
	}()
	const blocks = 300
	bad, finals := 0, 0
	checked := make(chan struct{})
	go func() {
		defer close(checked)
		for e := range events {
			if e.Kind == node.EventFinal {
				finals++
				if held := st.Height(); e.Final > held || e.Height > held {
					if bad++; bad <= 3 {
						t.Logf("final event: final %d, tip %d; the store holds height %d", e.Final, e.Height, held)
					}
				}
			}
			if e.Kind == node.EventTip && e.Height == blocks {
				return
			}
		}
	}()
	b := newBuilder(t, params)
	for range blocks {
		if err := n.AddBlock(context.Background(), b.block(chain.Hash{}, "s")); err != nil {
			t.Fatal(err)
		}
	}
	quit.Store(true)
	<-asked
	<-checked
	if finals == 0 {
		t.Fatal("no final event")
	}
	if bad > 0 {
		t.Errorf("%d of %d final events named a block the store did not hold yet", bad, finals)
	}
	if n := askedAhead.Load(); n > 0 {
		t.Errorf("FinalHeight named a block the store did not hold yet %d times", n)
	}
}

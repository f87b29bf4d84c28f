package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/store"
	"github.com/p2pchain/p2pchain/internal/store/storetest"
)

// A disk that stalls and recovers, on a real store whose syncs the test
// holds up (storetest.FS.Stall). The node counts the disk as slow after
// 100 ms and waits at most 1 s for a write; the stalls last until the test
// releases them, always much longer than that.

// slowNode returns a node on a store in a temp dir whose files go through
// fs, counting the disk slow after slowAfter (default 100 ms).
func slowNode(t *testing.T, params chain.Params, slowAfter ...time.Duration) (*Node, *store.Store, *storetest.FS) {
	t.Helper()
	fs := storetest.New()
	st, err := store.Open(filepath.Join(t.TempDir(), "chain"), params, store.WithFS(fs), store.WithDiskSlow(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	n, err := New(params, writerKey(9), WithStore(st, State{}), WithSpaceRetry(10*time.Millisecond),
		WithDiskSlow(append(slowAfter, 100*time.Millisecond)[0]), WithWriteWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return n, st, fs
}

// lockedLog is a log's output that the test reads while the node writes.
type lockedLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// answered runs f and returns its error, failing the test if it does not
// return within 10 s (the disk stalls for longer).
func answered(t *testing.T, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no answer within 10 s while the disk stalls", what)
		return nil
	}
}

// While syncs stall, a reading queued for the stalled write is answered
// after the write wait with ErrDiskSlow saying it may still be stored; a
// new reading is refused at once, not stored; sent again, the first is
// still "may be stored". Reads answer meanwhile. Once the disk answers, the
// first reading is pending (stored), the same reading again is known, and
// a restart finds it once, and the refused one nowhere.
func TestSlowDiskReadings(t *testing.T) {
	params := chain.TestParams("slow-readings")
	n, st, fs := slowNode(t, params)
	var logged lockedLog
	n.log = slog.New(slog.NewTextHandler(&logged, nil))
	if err := n.SubmitReading(signed(t, params, "before")); err != nil {
		t.Fatal(err)
	}

	stall := fs.Stall(storetest.Syncs)
	defer stall.Release()
	queued := signed(t, params, "queued")
	err := answered(t, "a reading on a stalled disk", func() error { return n.SubmitReading(queued) })
	if !errors.Is(err, ErrDiskSlow) || !strings.Contains(err.Error(), "may still be") || !strings.Contains(err.Error(), queued.ID().String()) {
		t.Fatalf("a reading on a stalled disk: %v, want ErrDiskSlow that says it may still be stored, with its id", err)
	}
	if !n.Disk().Slow || n.Disk().Err == nil {
		t.Fatalf("disk state while a write stalls: %+v", n.Disk())
	}
	refused := signed(t, params, "refused")
	err = answered(t, "a new reading on a slow disk", func() error { return n.SubmitReading(refused) })
	if !errors.Is(err, ErrDiskSlow) || !strings.Contains(err.Error(), "not stored") || strings.Contains(err.Error(), "may still be") {
		t.Fatalf("a new reading on a slow disk: %v, want ErrDiskSlow that says it was not stored", err)
	}
	err = answered(t, "the queued reading again", func() error { return n.SubmitReading(queued) })
	if !errors.Is(err, ErrDiskSlow) || !strings.Contains(err.Error(), "may still be") {
		t.Fatalf("the queued reading sent again on a slow disk: %v", err)
	}
	_ = answered(t, "reads", func() error {
		_ = n.Status()
		_ = n.Overview()
		_ = n.Storage()
		_, err := n.Blocks(0, 10)
		return err
	})

	if !strings.Contains(logged.String(), "disk slow: refusing new readings") {
		t.Errorf("no warning of the slow disk in the log:\n%s", logged.String())
	}
	stall.Release()
	waitFor(t, "the queued reading is stored", func() bool { return n.Pending() == 2 })
	waitFor(t, "the disk is not slow", func() bool { return !n.Disk().Slow })
	waitFor(t, "the log says the disk answers again", func() bool { return strings.Contains(logged.String(), "disk answers again") })
	if c := strings.Count(logged.String(), "disk slow: refusing"); c != 1 {
		t.Errorf("the slow disk was logged %d times, want once:\n%s", c, logged.String())
	}
	if err := n.SubmitReading(queued); chain.CodeOf(err) != chain.ErrKnownReading {
		t.Fatalf("the queued reading sent again once stored: %v, want it known", err)
	}
	if err := n.SubmitReading(signed(t, params, "after")); err != nil {
		t.Fatalf("a reading once the disk answers: %v", err)
	}
	if err := n.Err(); err != nil {
		t.Fatal(err)
	}
	state := reloaded(t, st, params)
	if len(state.Pending) != 3 || !hasPending(state, queued.ID()) || hasPending(state, refused.ID()) {
		t.Fatalf("after a restart: %d pending, queued %v, refused %v; want 3 with the queued one and without the refused one",
			len(state.Pending), hasPending(state, queued.ID()), hasPending(state, refused.ID()))
	}
}

// chainOf returns k blocks on genesis, one reading each, a second apart.
func chainOf(t *testing.T, params chain.Params, k int) []*chain.Block {
	t.Helper()
	c, err := chain.New(params)
	if err != nil {
		t.Fatal(err)
	}
	var out []*chain.Block
	for i := range k {
		at := time.UnixMilli(params.GenesisTime).Add(time.Duration(i+1) * time.Second)
		r, err := chain.NewReading(writerKey(2), fmt.Sprintf("s%d", i), 70, at)
		if err != nil {
			t.Fatal(err)
		}
		blk := c.NewBlock([]chain.Reading{r}, at)
		if err := chain.Solve(context.Background(), &blk.Header); err != nil {
			t.Fatal(err)
		}
		if _, err := c.AddBlock(blk, at); err != nil {
			t.Fatal(err)
		}
		out = append(out, blk)
	}
	return out
}

// While syncs stall, peers' blocks keep coming (one goroutine each, as
// gossip validators): each caller is answered within the write wait, at
// most MaxQueuedCommits commits wait for the writer, and the goroutines
// do not grow with the blocks; no block is announced before it is
// stored. Once the disk answers, every block taken is stored and
// announced in order, and the node takes the rest. The bound holds also
// before the disk counts as slow (a threshold of an hour): then the
// MaxQueuedCommits commits waiting for the writer stop the blocks.
func TestSlowDiskBoundsBlocks(t *testing.T) {
	for _, slowAfter := range []time.Duration{100 * time.Millisecond, time.Hour} {
		t.Run(slowAfter.String(), func(t *testing.T) { testSlowDiskBoundsBlocks(t, slowAfter) })
	}
}

func testSlowDiskBoundsBlocks(t *testing.T, slowAfter time.Duration) {
	params := chain.TestParams("slow-blocks")
	n, st, fs := slowNode(t, params, slowAfter)
	const total = 4 * MaxQueuedCommits
	blocks := chainOf(t, params, total)
	events, stop := n.Subscribe(total + 8)
	defer stop()
	before := runtime.NumGoroutine()

	stall := fs.Stall(storetest.Syncs)
	defer stall.Release()
	errs := make([]error, total)
	var wg sync.WaitGroup
	for i, blk := range blocks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = n.AddBlock(context.Background(), blk)
		}()
		time.Sleep(5 * time.Millisecond) // in order, mostly: as gossip brings them
	}
	_ = answered(t, "blocks on a stalled disk", func() error { wg.Wait(); return nil })
	if g := runtime.NumGoroutine() - before; g > 2*MaxQueuedCommits+16 {
		t.Errorf("%d goroutines more on a stalled disk, want at most a writer per queued commit", g)
	}
	taken := n.Status().Height
	if taken == 0 || taken > MaxQueuedCommits {
		t.Fatalf("height %d on a stalled disk, want 1 to %d blocks taken", taken, MaxQueuedCommits)
	}
	for i, err := range errs {
		// A block whose goroutine overtook its parent's waits as an
		// orphan (unknown parent), as from gossip.
		if !(errors.Is(err, ErrDiskSlow) || errors.Is(err, chain.ErrUnknownParent)) || chain.IsPeerFault(err) {
			t.Fatalf("block %d on a stalled disk: %v, want ErrDiskSlow, no peer's fault", i+1, err)
		}
	}
	select {
	case e := <-events:
		t.Fatalf("an event before the disk answered: %+v", e)
	default:
	}
	if n.Disk().Slow != (slowAfter < time.Minute) || n.Disk().Wait == 0 {
		t.Fatalf("disk state %+v with a slow-disk threshold of %v", n.Disk(), slowAfter)
	}

	stall.Release()
	for h := uint64(1); h <= taken; {
		select {
		case e := <-events:
			if e.Kind != EventTip {
				continue
			}
			if e.Height < h || e.Tip != blocks[e.Height-1].Hash() {
				t.Fatalf("tip event %+v, want height %d on", e, h)
			}
			h = e.Height + 1
		case <-time.After(10 * time.Second):
			t.Fatalf("the taken blocks were not announced once the disk answered (up to %d of %d)", h-1, taken)
		}
	}
	waitFor(t, "the disk is not slow", func() bool { return !n.Disk().Slow })
	// What was refused comes back (a sync would bring it).
	if _, err := n.AddBlocks(context.Background(), blocks); err != nil {
		t.Fatalf("the blocks once the disk answers: %v", err)
	}
	if h := n.Status().Height; h != total {
		t.Fatalf("height %d, want %d", h, total)
	}
	if err := n.Err(); err != nil {
		t.Fatal(err)
	}
	state := reloaded(t, st, params)
	if len(state.Main) != total {
		t.Fatalf("%d main blocks stored, want %d", len(state.Main), total)
	}
}

// Run returns once ctx ends even while it has readings to mine: at
// difficulty 0 the proof of work does not look at ctx, and the block it
// made was refused for the ended ctx, again and again (a test of a full
// disk hung in the node's Close for minutes, its miner spinning).
func TestRunStopsWithReadingsPending(t *testing.T) {
	params := chain.TestParams("run-stops")
	n, err := New(params, writerKey(9))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.SubmitReading(signed(t, params, "left")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := answered(t, "Run with an ended ctx", func() error { return n.Run(ctx, nil) }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v, want context.Canceled", err)
	}
}

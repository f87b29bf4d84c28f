package node

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/store"
	"github.com/p2pchain/p2pchain/internal/store/storetest"
)

// The node's storage failure paths, run on a real store whose file system
// injects faults (storetest.FS): a full disk (the store's reserve, then
// the engine's own writes), failing log writes and syncs, a failing
// commits file.

// faultyNode returns a node on a store in a temp dir whose files go
// through fs, keeping 1 MiB free, looking for space every 10 ms.
func faultyNode(t *testing.T, params chain.Params) (*Node, *store.Store, *storetest.FS) {
	t.Helper()
	fs := storetest.New()
	path := filepath.Join(t.TempDir(), "chain")
	st, err := store.Open(path, params, store.WithFS(fs), store.WithReserve(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	n, err := New(params, writerKey(9), WithStore(st, State{}), WithSpaceRetry(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return n, st, fs
}

// reloaded closes st (which must not panic or fail) and opens its
// directory again: what a restart of the node would find.
func reloaded(t *testing.T, st *store.Store, params chain.Params) *store.State {
	t.Helper()
	if err := st.Close(); err != nil {
		t.Fatalf("close the store: %v", err)
	}
	s2, err := store.Open(st.Path(), params)
	if err != nil {
		t.Fatalf("reopen the store: %v", err)
	}
	defer s2.Close()
	state, err := s2.Load()
	if err != nil {
		t.Fatalf("load the store: %v", err)
	}
	return state
}

// nextBlock returns a solved block of the node's pending readings on its
// tip.
func nextBlock(t *testing.T, n *Node) *chain.Block {
	t.Helper()
	n.mu.Lock()
	blk := n.chain.NewBlock(n.pool.Take(n.params.MaxReadings), n.now())
	n.mu.Unlock()
	if err := chain.Solve(context.Background(), &blk.Header); err != nil {
		t.Fatal(err)
	}
	return blk
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func hasPending(st *store.State, id chain.Hash) bool {
	for _, r := range st.Pending {
		if r.ID() == id {
			return true
		}
	}
	return false
}

// A full disk refuses readings with ErrStoreFull (none acknowledged, none
// pending), says so in Storage, leaves the node running, and once space
// returns the node notices by itself and takes readings again.
func TestFullDiskRefusesReadings(t *testing.T) {
	params := chain.TestParams("full-readings")
	n, st, fs := faultyNode(t, params)
	before := signed(t, params, "before")
	if err := n.SubmitReading(before); err != nil {
		t.Fatal(err)
	}

	fs.SetFree(200 << 10)
	refused := signed(t, params, "refused")
	err := n.SubmitReading(refused)
	if !errors.Is(err, ErrStoreFull) || !errors.Is(err, store.ErrFull) {
		t.Fatalf("a reading on a full disk: %v, want ErrStoreFull", err)
	}
	if !strings.Contains(err.Error(), "free space") {
		t.Errorf("the error does not say what to do: %v", err)
	}
	if n.Pending() != 1 {
		t.Fatalf("%d pending, want only the reading stored before", n.Pending())
	}
	if s := n.Storage(); !s.Full || s.Err == nil || s.Failed != nil {
		t.Fatalf("storage state on a full disk: %+v", s)
	}
	if err := n.Err(); err != nil {
		t.Fatalf("a full disk made the node fail: %v", err)
	}

	fs.RealFree()
	waitFor(t, "the node sees space again", func() bool { return !n.Storage().Full })
	if err := n.SubmitReading(refused); err != nil {
		t.Fatalf("the same reading with space back: %v", err)
	}
	state := reloaded(t, st, params)
	if !hasPending(state, before.ID()) || !hasPending(state, refused.ID()) || len(state.Pending) != 2 {
		t.Fatalf("%d pending after a restart, want the 2 acknowledged", len(state.Pending))
	}
}

// A block commit the store refuses for want of space is held: not
// announced, not acknowledged to its caller, no further block is taken;
// once space returns it is written and announced by itself, and the store
// holds it.
func TestFullDiskHoldsBlockCommit(t *testing.T) {
	params := chain.TestParams("full-blocks")
	n, st, fs := faultyNode(t, params)
	r := signed(t, params, "mined")
	if err := n.SubmitReading(r); err != nil {
		t.Fatal(err)
	}
	events, stop := n.Subscribe(16)
	defer stop()
	blk := nextBlock(t, n)

	fs.SetFree(0)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	err := n.AddBlock(ctx, blk)
	cancel()
	if !errors.Is(err, ErrStoreFull) {
		t.Fatalf("a block on a full disk: %v, want ErrStoreFull", err)
	}
	select {
	case e := <-events:
		t.Fatalf("a block not stored was announced: %+v", e)
	default:
	}
	if !n.Storage().Full {
		t.Fatal("the storage state does not show the full disk")
	}
	// No more blocks while one waits: a peer's next block is refused, and
	// not as the peer's fault.
	other := nextBlock(t, n)
	if err := n.AddBlock(context.Background(), other); !errors.Is(err, ErrStoreFull) || chain.IsPeerFault(err) {
		t.Fatalf("a block while a commit waits for space: %v", err)
	}
	if err := n.SubmitReading(signed(t, params, "meanwhile")); !errors.Is(err, ErrStoreFull) {
		t.Fatalf("a reading while a commit waits for space: %v", err)
	}

	fs.RealFree()
	select {
	case e := <-events:
		if e.Kind != EventTip || e.Tip != blk.Hash() {
			t.Fatalf("first event after space returned: %+v, want the held block's tip", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the held block was not written and announced once space returned")
	}
	waitFor(t, "the node sees space again", func() bool { return !n.Storage().Full })
	if err := n.Err(); err != nil {
		t.Fatal(err)
	}
	if err := n.SubmitReading(signed(t, params, "after")); err != nil {
		t.Fatalf("a reading once space returned: %v", err)
	}
	state := reloaded(t, st, params)
	if len(state.Main) != 1 || state.Main[0].Hash() != blk.Hash() {
		t.Fatalf("the store holds %d main blocks, want the held one", len(state.Main))
	}
}

// The miner does not spin on a full disk: it waits for space, then its
// block is stored.
func TestMinerWaitsForSpace(t *testing.T) {
	params := chain.TestParams("full-miner")
	n, st, fs := faultyNode(t, params)
	if err := n.SubmitReading(signed(t, params, "m")); err != nil {
		t.Fatal(err)
	}
	fs.SetFree(0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx, nil) }()
	waitFor(t, "the node sees the full disk", func() bool { return n.Storage().Full })
	time.Sleep(50 * time.Millisecond)
	if h := n.Status().Height; h > 1 {
		t.Fatalf("the miner went on to height %d on a full disk", h)
	}
	fs.RealFree()
	waitFor(t, "the mined block is stored", func() bool { return !n.Storage().Full && n.Pending() == 0 })
	cancel()
	<-done
	if state := reloaded(t, st, params); len(state.Main) != 1 || len(state.Pending) != 0 {
		t.Fatalf("store holds %d blocks and %d pending, want 1 and 0", len(state.Main), len(state.Pending))
	}
}

// Writes that fail in the engine (an I/O error, or a full disk that the
// ballast could not cover) stop the store: the node fails, says what to
// do, acknowledges nothing more, and a restart finds everything it
// acknowledged.
func TestEngineFailureFailsNode(t *testing.T) {
	for _, tc := range []struct {
		name     string
		block    bool // fail a block commit (else a reading's)
		match    func(op errorfs.Op) bool
		err      error
		wantText string
	}{
		{"reading EIO", false, storetest.LogSyncs, storetest.EIO, "check the disk"},
		{"reading ENOSPC", false, storetest.LogWrites, storetest.ENOSPC, "free space"},
		{"block EIO", true, storetest.LogSyncs, storetest.EIO, "check the disk"},
		{"block ENOSPC", true, storetest.LogWrites, storetest.ENOSPC, "free space"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			params := chain.TestParams("engine-fails")
			n, st, fs := faultyNode(t, params)
			acked := signed(t, params, "acked")
			if err := n.SubmitReading(acked); err != nil {
				t.Fatal(err)
			}
			blk := nextBlock(t, n)
			fs.Fail(tc.match, tc.err, -1)
			var err error
			lost := signed(t, params, "lost")
			if tc.block {
				err = n.AddBlock(context.Background(), blk)
			} else {
				err = n.SubmitReading(lost)
			}
			if err == nil {
				t.Fatal("a failed write was acknowledged")
			}
			select {
			case <-n.Done():
			case <-time.After(10 * time.Second):
				t.Fatalf("the node did not fail (write error %v)", err)
			}
			if ferr := n.Err(); ferr == nil || !strings.Contains(ferr.Error(), tc.wantText) || strings.Contains(ferr.Error(), "damaged") {
				t.Fatalf("the node's error does not say what to do (%q), or says damaged: %v", tc.wantText, ferr)
			}
			if n.Storage().Failed == nil {
				t.Fatal("the storage state does not show the failure")
			}
			if err := n.SubmitReading(signed(t, params, "later")); err == nil {
				t.Fatal("a failed node acknowledged a reading")
			}
			fs.Clear()
			state := reloaded(t, st, params)
			if !hasPending(state, acked.ID()) && len(state.Main) == 0 {
				t.Fatal("the acknowledged reading is not in the store after a restart")
			}
		})
	}
}

// The commits file is best effort: a failure to write it neither refuses
// readings nor blocks, nor makes the node fail.
func TestCommitsFileFailureIsNotFatal(t *testing.T) {
	params := chain.TestParams("commits-file")
	n, st, fs := faultyNode(t, params)
	fault := fs.Fail(storetest.CommitsFile, storetest.EIO, -1)
	r := signed(t, params, "c")
	if err := n.SubmitReading(r); err != nil {
		t.Fatal(err)
	}
	if err := n.AddBlock(context.Background(), nextBlock(t, n)); err != nil {
		t.Fatal(err)
	}
	if fault.Hits() == 0 {
		t.Fatal("the fault never struck")
	}
	if err := n.Err(); err != nil || n.Storage().Full {
		t.Fatalf("a failing commits file: node error %v, storage %+v", err, n.Storage())
	}
	fs.Clear()
	if state := reloaded(t, st, params); len(state.Main) != 1 {
		t.Fatalf("%d blocks stored, want 1", len(state.Main))
	}
}

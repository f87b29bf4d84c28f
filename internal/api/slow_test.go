package api_test

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/api"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/store"
	"github.com/p2pchain/p2pchain/internal/store/storetest"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// A disk that stalls and recovers: the node counts it slow after 100 ms
// and waits at most 1 s for a write; the stalls last until the test
// releases them, much longer.

// slowPeer starts a node with its API on a store whose files go through
// fs.
func slowPeer(t *testing.T, cfg testnet.Config, fs *storetest.FS) *env {
	t.Helper()
	cfg.NodeOptions = append(cfg.NodeOptions, node.WithDiskSlow(100*time.Millisecond), node.WithWriteWait(time.Second))
	e, _ := storedPeer(t, t.TempDir(), cfg, store.WithFS(fs), store.WithDiskSlow(100*time.Millisecond))
	return e
}

// within runs f and fails the test if it takes more than 10 s (the disk
// stalls for longer).
func within[T any](t *testing.T, what string, f func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- f() }()
	select {
	case v := <-done:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no answer within 10 s while the disk stalls", what)
		var zero T
		return zero
	}
}

// While the disk stalls: a reading waits at most the write wait, then gets
// 503 disk_slow with Retry-After, its id and "may still be stored"; a new
// reading gets 503 disk_slow "not stored" at once; status, blocks, a
// subject's readings, metrics and the event stream answer; the status
// and a metric say the disk is slow. Once it answers, the node takes
// readings again by itself, and the first reading, sent again, is known.
func TestDiskSlowAnswers(t *testing.T) {
	fs := storetest.New()
	e := slowPeer(t, testnet.Config{NoMiner: true}, fs)
	want(t, "a reading", e.postJSON("/api/v1/readings", reading), 202, "")

	stall := fs.Stall(storetest.Syncs)
	defer stall.Release()
	const queued = `{"subject": "alice", "bpm": 74, "time": 1767225600000}`
	r := within(t, "a reading on a stalled disk", func() response { return e.postJSON("/api/v1/readings", queued) })
	want(t, "a reading on a stalled disk", r, 503, api.CodeDiskSlow)
	queuedID := errorID(t, r)
	if !strings.Contains(string(r.body), queuedID+" not yet stored") {
		t.Errorf("the disk_slow body's id %q is not the reading it speaks of: %s", queuedID, r.body)
	}
	if r.header.Get("Retry-After") == "" {
		t.Error("503 disk_slow without Retry-After")
	}
	for _, s := range []string{"may still be", "the same reading", "check the disk"} {
		if !strings.Contains(string(r.body), s) {
			t.Errorf("the disk_slow body does not say %q: %s", s, r.body)
		}
	}
	r = within(t, "a new reading on a slow disk", func() response {
		return e.postJSON("/api/v1/readings", `{"subject": "bob", "bpm": 61}`)
	})
	want(t, "a new reading on a slow disk", r, 503, api.CodeDiskSlow)
	if !strings.Contains(string(r.body), "not stored") || strings.Contains(string(r.body), "may still be") {
		t.Errorf("a new reading on a slow disk does not say it was not stored: %s", r.body)
	}
	for _, p := range []string{"/api/v1/status", "/api/v1/blocks", "/api/v1/blocks/0", "/api/v1/subjects/alice/readings", "/metrics"} {
		r := within(t, "GET "+p, func() response { return e.get(p) })
		if r.status != 200 {
			t.Errorf("GET %s on a slow disk: %d %s", p, r.status, r.body)
		}
	}
	stream, _ := e.openEvents() // a new stream opens and starts
	next(t, stream, api.EventReady)
	if s := storageState(t, e); s.State != api.StorageSlow || !strings.Contains(s.Error, "check the disk") || s.Since == 0 || s.WriteWait == 0 {
		t.Errorf("status storage on a slow disk: %+v", s)
	}
	if l := metricLine(t, e, "p2pchain_storage_slow"); l != "p2pchain_storage_slow 1" {
		t.Errorf("metric on a slow disk: %q", l)
	}

	stall.Release()
	waitStorage(t, e, api.StorageOK)
	if l := metricLine(t, e, "p2pchain_storage_slow"); l != "p2pchain_storage_slow 0" {
		t.Errorf("metric once the disk answers: %q", l)
	}
	r = e.postJSON("/api/v1/readings", queued)
	want(t, "the queued reading sent again", r, 409, api.CodeKnownReading)
	if id := errorID(t, r); id != queuedID {
		t.Errorf("409 reading_known names reading %q, want %q", id, queuedID)
	}
	want(t, "a reading once the disk answers", e.postJSON("/api/v1/readings", `{"subject": "bob", "bpm": 61}`), 202, "")
	if p := e.peer.Node.Pending(); p != 3 {
		t.Errorf("%d pending, want the 3 readings stored", p)
	}
}

// errorID is the id of the reading an error answer names: a reading
// submitted and refused carries it, so that a client can look it up or
// send it again.
func errorID(t *testing.T, r response) string {
	t.Helper()
	var v struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(r.body, &v); err != nil || len(v.ID) != 64 {
		t.Fatalf("error answer without the reading's id: %s", r.body)
	}
	return v.ID
}

// A peer mines ten blocks a second and gossips them while this node's disk
// stalls for 5 s: the node holds at most MaxQueuedCommits blocks for its
// writer, its goroutines stop growing, and once the disk answers it
// catches up with the peer by itself, every reading of the peer's chain
// once.
func TestSlowDiskGossip(t *testing.T) {
	fs := storetest.New()
	e := slowPeer(t, testnet.Config{}, fs)
	other := startPeer(t, e.ctx, testnet.Config{Params: e.peer.Node.Params()})
	if err := other.Connect(e.ctx, e.peer); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Node.Submit("first", 70); err != nil {
		t.Fatal(err)
	}
	waitHeight(t, e, other)
	// The tip on disk, not only in memory: a commit still being written
	// as the stall begins stalls with it, and the disk stays below start.
	var start uint64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if o := e.peer.Node.Overview(); o.Stored == o.Height {
			start = o.Height
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tip not on disk 10 s after it arrived: %+v", e.peer.Node.Overview())
		}
	}
	stall := fs.Stall(storetest.Syncs)
	defer stall.Release()
	var peak int
	for i := range 50 {
		if _, err := other.Node.Submit(fmt.Sprintf("o%d", i), 80); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		if i == 25 {
			peak = runtime.NumGoroutine()
		}
	}
	if g := runtime.NumGoroutine(); g > peak+2*node.MaxQueuedCommits {
		t.Errorf("goroutines grew from %d to %d in the second half of the stall", peak, g)
	}
	if h := e.peer.Node.Status().Height; h > start+node.MaxQueuedCommits {
		t.Errorf("height %d on a stalled disk from %d: more than %d blocks held for the writer", h, start, node.MaxQueuedCommits)
	}
	if other.Node.Status().Height < start+40 {
		t.Fatalf("the peer mined only to height %d", other.Node.Status().Height)
	}
	// The status says how far the disk is behind the chain the node holds.
	if s := decode[api.StatusView](t, e.get("/api/v1/status")); s.Storage.Height != start || s.Height <= start {
		t.Errorf("status on a stalled disk: height %d, storage height %d; want the height held above %d, the one stored", s.Height, s.Storage.Height, start)
	}
	if l := metricLine(t, e, "p2pchain_storage_height"); l != fmt.Sprintf("p2pchain_storage_height %d", start) {
		t.Errorf("metric on a stalled disk: %q, want height %d", l, start)
	}

	stall.Release()
	waitHeight(t, e, other)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		s := decode[api.StatusView](t, e.get("/api/v1/status"))
		if s.Storage.Height == s.Height {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("storage height %d, height %d, 10 s after the disk answered", s.Storage.Height, s.Height)
		}
	}
	seen := map[chain.Hash]bool{}
	blocks, err := e.peer.Node.Blocks(e.peer.Node.Status().Height, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		for _, r := range b.Readings {
			if seen[r.ID()] {
				t.Fatalf("reading %s twice in the chain", r.ID().Short())
			}
			seen[r.ID()] = true
		}
	}
	if len(seen) != 51 {
		t.Fatalf("%d readings in the chain, want the peer's 51", len(seen))
	}
}

// waitHeight waits until e's node has other's tip.
func waitHeight(t *testing.T, e *env, other *testnet.Peer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for e.peer.Node.Status().Tip != other.Node.Status().Tip || other.Node.Pending() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("height %d, the peer's %d: not caught up", e.peer.Node.Status().Height, other.Node.Status().Height)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

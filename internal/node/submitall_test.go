package node_test

import (
	"errors"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
)

// TestSubmitAll: a batch of readings with their own times; all or nothing
// when atomic, each on its own otherwise.
func TestSubmitAll(t *testing.T) {
	params := chain.TestParams("submitall")
	n := newStoredNode(t, params)
	now := time.UnixMilli(params.GenesisTime).Add(time.Hour) // newStoredNode's clock
	past := now.Add(-30 * time.Minute)
	good := []node.Submission{{Subject: "alice", BPM: 70, Time: past}, {Subject: "bob", BPM: 80}}
	bad := []node.Submission{
		{Subject: "carol", BPM: 9999},                        // out of range
		{Subject: "dave", BPM: 60, Time: now.Add(time.Hour)}, // in the future
		{Subject: "alice", BPM: 70, Time: past},              // repeats good[0]
	}

	// Atomic with refusals: nothing added, each answer says why.
	_, errs := n.SubmitAll(append(append([]node.Submission{}, good...), bad...), true)
	wantCodes := []error{node.ErrNotAdded, node.ErrNotAdded, chain.ErrBadBPM, chain.ErrBadReadingTime, chain.ErrKnownReading}
	for i, e := range errs {
		if !errors.Is(e, wantCodes[i]) {
			t.Errorf("atomic answer %d: %v, want %v", i, e, wantCodes[i])
		}
	}
	if n.Pending() != 0 {
		t.Fatalf("atomic batch with refusals left %d pending", n.Pending())
	}

	// Not atomic: the good ones are in, with their times.
	rs, errs := n.SubmitAll(append(append([]node.Submission{}, good...), bad...), false)
	for i := range good {
		if errs[i] != nil {
			t.Fatalf("answer %d: %v", i, errs[i])
		}
		info, ok := n.LocateReading(rs[i].ID())
		if !ok || !info.Pending {
			t.Fatalf("reading %d not pending", i)
		}
	}
	if rs[0].Time != past.UnixMilli() || rs[1].Time != now.UnixMilli() {
		t.Fatalf("times %d and %d, want %d and now %d", rs[0].Time, rs[1].Time, past.UnixMilli(), now.UnixMilli())
	}
	for i, e := range errs[len(good):] {
		if !errors.Is(e, wantCodes[len(good)+i]) {
			t.Errorf("answer %d: %v, want %v", len(good)+i, e, wantCodes[len(good)+i])
		}
	}
	if n.Pending() != 2 {
		t.Fatalf("%d pending, want 2", n.Pending())
	}
	// Atomic again with a reading now known: refused whole.
	_, errs = n.SubmitAll([]node.Submission{{Subject: "erin", BPM: 65}, good[0]}, true)
	if !errors.Is(errs[0], node.ErrNotAdded) || !errors.Is(errs[1], chain.ErrKnownReading) {
		t.Fatalf("atomic with a known reading: %v", errs)
	}
	if n.Pending() != 2 {
		t.Fatalf("%d pending, want 2", n.Pending())
	}
}

package node_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/store"
	"github.com/p2pchain/p2pchain/internal/testnet"
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
		info, ok, _ := n.LocateReading(rs[i].ID())
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

// An atomic batch larger than the room left in the pending set is refused
// whole, never half added; without atomic the readings that fit go in.
func TestSubmitAllRoom(t *testing.T) {
	params := chain.TestParams("submitall-room")
	n, err := node.New(params, key(9), node.WithPoolSize(5), node.WithClock(func() time.Time {
		return time.UnixMilli(params.GenesisTime).Add(time.Hour)
	}))
	if err != nil {
		t.Fatal(err)
	}
	batch := func(k int) []node.Submission {
		var out []node.Submission
		for i := range k {
			out = append(out, node.Submission{Subject: "s", BPM: 60 + i})
		}
		return out
	}
	if _, errs := n.SubmitAll(batch(3), true); errs[0] != nil {
		t.Fatal(errs[0])
	}
	_, errs := n.SubmitAll(batch(3)[1:3], true) // 2 more that fit, but 61 and 62 are known
	for i, e := range errs {
		if !errors.Is(e, chain.ErrKnownReading) {
			t.Errorf("atomic with known readings, answer %d: %v", i, e)
		}
	}
	// Too many for the room: refused whole before anything is signed,
	// known readings among them or not (the cheap check first).
	signed := n.SignaturesVerified()
	fresh := []node.Submission{{Subject: "t", BPM: 70}, {Subject: "t", BPM: 71}, {Subject: "t", BPM: 72}}
	for _, b := range [][]node.Submission{fresh, batch(4)[1:4]} {
		_, errs = n.SubmitAll(b, true)
		for i, e := range errs {
			if !errors.Is(e, chain.ErrPoolFull) {
				t.Errorf("atomic batch of 3 into room for 2, answer %d: %v", i, e)
			}
		}
	}
	if got := n.SignaturesVerified(); got != signed {
		t.Errorf("refused atomic batches added %d signatures, want none signed", got-signed)
	}
	if n.Pending() != 3 {
		t.Fatalf("%d pending after a refused atomic batch, want 3", n.Pending())
	}
	_, errs = n.SubmitAll(fresh, false)
	added := 0
	for _, e := range errs {
		if e == nil {
			added++
		} else if !errors.Is(e, chain.ErrPoolFull) {
			t.Errorf("answer: %v", e)
		}
	}
	if added != 2 || n.Pending() != 5 {
		t.Fatalf("not atomic: %d added, %d pending; want 2 and 5", added, n.Pending())
	}
	// No room at all: a batch that is not atomic is refused before signing.
	signed = n.SignaturesVerified()
	_, errs = n.SubmitAll([]node.Submission{{Subject: "u", BPM: 80}}, false)
	if !errors.Is(errs[0], chain.ErrPoolFull) || n.SignaturesVerified() != signed {
		t.Fatalf("a batch into a full pending set: %v, %d signatures added", errs[0], n.SignaturesVerified()-signed)
	}
}

// TestSignedKnownCostsNoSignature: readings signed elsewhere that the node
// holds already (an import of another node's export) are looked up before
// their signatures are checked, so they cost none; a fresh node on a store
// has none of them in its signature cache.
func TestSignedKnownCostsNoSignature(t *testing.T) {
	dir := t.TempDir()
	params := chain.TestParams("signed-known")
	blocks, err := testnet.BuildDataDir(t.Context(), dir, params, 50, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(dir, "chain"), params)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	state, err := st.LoadRecent()
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(params, key(9), node.WithStore(st, *state))
	if err != nil {
		t.Fatal(err)
	}
	var subs []node.Submission
	for _, b := range blocks {
		r := b.Readings[0]
		subs = append(subs, node.Submission{Subject: r.Subject, BPM: int(r.BPM), Time: time.UnixMilli(r.Time), Signed: &r})
	}
	for _, atomic := range []bool{true, false} {
		before := n.SignaturesVerified()
		_, errs := n.SubmitAll(subs, atomic)
		for i, err := range errs {
			if chain.CodeOf(err) != chain.ErrKnownReading {
				t.Fatalf("atomic %v: reading %d: %v, want known", atomic, i, err)
			}
		}
		if got := n.SignaturesVerified() - before; got != 0 {
			t.Errorf("atomic %v: %d signatures verified for %d readings the chain holds, want 0", atomic, got, len(subs))
		}
	}
}

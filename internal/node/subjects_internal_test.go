package node

import (
	"context"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// TestSubjectTotalRecountGap: the subject total is recounted at a new tip,
// but not before recountGap times the last count's cost has passed: a
// count that cost an hour is kept over a new subject's block, one that
// cost nothing is redone at once.
func TestSubjectTotalRecountGap(t *testing.T) {
	params := chain.TestParams("recount")
	n, _, _ := faultyNode(t, params)
	ctx := context.Background()
	add := func(subject string) {
		t.Helper()
		if _, err := n.Submit(subject, 70); err != nil {
			t.Fatal(err)
		}
		if err := n.AddBlock(ctx, nextBlock(t, n)); err != nil {
			t.Fatal(err)
		}
	}
	total := func() int {
		t.Helper()
		list, err := n.Subjects("", 10)
		if err != nil {
			t.Fatal(err)
		}
		return list.Total
	}
	add("alice")
	if got := total(); got != 1 {
		t.Fatalf("total %d, want 1", got)
	}
	n.subjectCache.mu.Lock()
	n.subjectCache.total.took = time.Hour // as if the count had cost that
	n.subjectCache.mu.Unlock()
	add("bob")
	add("carol")
	add("dave")
	// The kept count is 1, but a first and last page listing four subjects
	// says four.
	if got := total(); got != 4 {
		t.Fatalf("total %d on a whole list of 4 right after a count that cost an hour, want 4", got)
	}
	list, err := n.Subjects("alice", 1) // a later page: the kept count
	if err != nil {
		t.Fatal(err)
	}
	if list.Total != 1 || !list.More {
		t.Fatalf("a page after alice: total %d (more %v), want the kept 1", list.Total, list.More)
	}
	n.subjectCache.mu.Lock()
	n.subjectCache.total.took = 0
	n.subjectCache.mu.Unlock()
	if list, err := n.Subjects("alice", 1); err != nil || list.Total != 4 {
		t.Fatalf("total %d (%v) once the gap has passed, want 4", list.Total, err)
	}
}

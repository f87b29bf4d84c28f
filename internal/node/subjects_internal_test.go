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
	if got := total(); got != 1 {
		t.Fatalf("total %d right after a count that cost an hour, want the kept 1", got)
	}
	n.subjectCache.mu.Lock()
	n.subjectCache.total.took = 0
	n.subjectCache.mu.Unlock()
	if got := total(); got != 2 {
		t.Fatalf("total %d once the gap has passed, want 2", got)
	}
}

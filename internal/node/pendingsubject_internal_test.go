package node

import (
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// TestPendingSubjectCostsWhatIsAsked: a subject's pending figures and its
// newest pending readings (what GET /api/v1/subjects/{subject}, its
// readings and FHIR searches ask for, with no token, under the node's
// lock) cost the same whether the subject holds 500 pending readings or
// 50,000. On an authority network a stranger can relay readings of one
// subject until they fill half the pending set; before, each such request
// walked all of them under n.mu (tens of ms each), holding up blocks,
// consensus and submissions for as long.
func TestPendingSubjectCostsWhatIsAsked(t *testing.T) {
	cost := func(readings int) time.Duration {
		n, err := New(chain.TestParams("pending-subject"), writerKey(3), WithPoolSize(readings))
		if err != nil {
			t.Fatal(err)
		}
		n.mu.Lock()
		for i := range readings {
			r := chain.Reading{Subject: "alice", BPM: 70, Time: int64(readings - i)} // the newest time arrives first
			r.Sig[0], r.Sig[1], r.Sig[2] = byte(i), byte(i>>8), byte(i>>16)
			if err := n.pool.Add(r); err != nil {
				t.Fatal(err)
			}
		}
		n.mu.Unlock()
		best := time.Hour
		for range 20 {
			start := time.Now()
			if got := n.pendingOfSubject("alice"); got.count != readings || got.newest != int64(readings) {
				t.Fatalf("figures %+v, want %d readings, newest %d", got, readings, readings)
			}
			if got := n.PendingOf("alice", 100); len(got) != 100 || got[0].Time != 1 {
				t.Fatalf("%d newest pending readings, the first of time %d; want 100, newest arrival first", len(got), got[0].Time)
			}
			best = min(best, time.Since(start))
		}
		return best
	}
	small, large := cost(500), cost(50_000)
	t.Logf("500 pending readings of the subject: %v; 50,000: %v", small, large)
	if large > 10*small+time.Millisecond {
		t.Fatalf("a subject of 50,000 pending readings costs %v a request, one of 500 %v: the cost follows the subject's readings", large, small)
	}
}

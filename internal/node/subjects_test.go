package node_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/store"
)

// newStoredNode is newNode with a store on disk.
func newStoredNode(t *testing.T, params chain.Params, blocks ...*chain.Block) *node.Node {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "chain"), params)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	at := time.UnixMilli(params.GenesisTime).Add(time.Hour)
	n, err := node.New(params, key(9), node.WithStore(st, node.State{}), node.WithClock(func() time.Time { return at }))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.AddBlocks(context.Background(), blocks); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSubjects: the subjects list of a durable node, with each subject's
// figures, pending readings, paging, and figures that follow new blocks and
// a reorganisation.
func TestSubjects(t *testing.T) {
	params := chain.TestParams("subjects")
	b := newBuilder(t, params)
	b1 := b.block(chain.Hash{}, "bob", "alice")
	b2 := b.block(chain.Hash{}, "alice")
	n := newStoredNode(t, params, b1, b2)

	// figures computes what the list must say from the blocks given.
	figures := func(blocks ...*chain.Block) map[string]node.SubjectSummary {
		out := map[string]node.SubjectSummary{}
		for _, blk := range blocks {
			for _, r := range blk.Readings {
				s := out[r.Subject]
				s.Subject = r.Subject
				if s.Count == 0 || r.BPM < s.Min {
					s.Min = r.BPM
				}
				if s.Count == 0 || r.BPM > s.Max {
					s.Max = r.BPM
				}
				s.Count++
				s.Sum += uint64(r.BPM)
				s.LastSeen = max(s.LastSeen, r.Time)
				out[r.Subject] = s
			}
		}
		return out
	}
	check := func(what string, want map[string]node.SubjectSummary, pending map[string]int) {
		t.Helper()
		list, err := n.Subjects("", 100)
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		for s := range want {
			names[s] = true
		}
		for s := range pending {
			names[s] = true
		}
		if len(list.Subjects) != len(names) || list.Total != len(names) || list.More {
			t.Fatalf("%s: %d subjects (total %d, more %v), want %d", what, len(list.Subjects), list.Total, list.More, len(names))
		}
		for i, got := range list.Subjects {
			if i > 0 && list.Subjects[i-1].Subject >= got.Subject {
				t.Fatalf("%s: subjects out of order: %q before %q", what, list.Subjects[i-1].Subject, got.Subject)
			}
			w := want[got.Subject]
			if got.Count != w.Count || got.Min != w.Min || got.Max != w.Max || got.Sum != w.Sum || got.Pending != pending[got.Subject] {
				t.Fatalf("%s: %q: %+v, want %+v and %d pending", what, got.Subject, got, w, pending[got.Subject])
			}
			if w.Count > 0 && (got.Latest.Time != w.LastSeen || got.LastSeen < w.LastSeen) {
				t.Fatalf("%s: %q latest at %d (last seen %d), want %d", what, got.Subject, got.Latest.Time, got.LastSeen, w.LastSeen)
			}
			one, ok, err := n.Subject(got.Subject)
			if err != nil || !ok || one != got {
				t.Fatalf("%s: Subject(%q) = %+v, %v, %v; the list says %+v", what, got.Subject, one, ok, err, got)
			}
		}
	}
	check("two blocks", figures(b1, b2), nil)

	// A pending reading of a new subject and one of a known subject.
	for _, s := range []string{"carol", "bob"} {
		if _, err := n.Submit(s, 90); err != nil {
			t.Fatal(err)
		}
	}
	check("pending", figures(b1, b2), map[string]int{"carol": 1, "bob": 1})
	if _, ok, err := n.Subject("nobody"); ok || err != nil {
		t.Fatalf("Subject(nobody) = %v, %v", ok, err)
	}

	// Paging: one at a time, in order.
	var paged []string
	after := ""
	for i := 0; ; i++ {
		list, err := n.Subjects(after, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range list.Subjects {
			paged = append(paged, s.Subject)
			after = s.Subject
		}
		if !list.More {
			break
		}
		if i > 5 {
			t.Fatal("paging does not end")
		}
	}
	if fmt.Sprint(paged) != "[alice bob carol]" {
		t.Fatalf("pages gave %v", paged)
	}

	// A new block: the figures add it (from what was counted before).
	b3 := b.block(chain.Hash{}, "alice", "dave")
	if _, err := n.AddBlocks(context.Background(), []*chain.Block{b3}); err != nil {
		t.Fatal(err)
	}
	check("three blocks", figures(b1, b2, b3), map[string]int{"carol": 1, "bob": 1})

	// A heavier branch from b1 replaces b2 and b3: figures are counted again.
	f2 := b.block(b1.Hash(), "erin")
	f3 := b.block(f2.Hash(), "alice")
	f4 := b.block(f3.Hash())
	if _, err := n.AddBlocks(context.Background(), []*chain.Block{f2, f3, f4}); err != nil {
		t.Fatal(err)
	}
	// b2's and b3's readings went back to the pending set.
	check("after the reorganisation", figures(b1, f2, f3, f4), map[string]int{"carol": 1, "bob": 1, "alice": 2, "dave": 1})
}

package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// TestAddPendingBatch: readings added together are one durable write (one
// commit count, one sync), and the commits file, kept open, follows every
// commit while the store is open and after it is reopened.
func TestAddPendingBatch(t *testing.T) {
	p := testParams()
	path := filepath.Join(t.TempDir(), "chain")
	s, err := Open(path, p)
	if err != nil {
		t.Fatal(err)
	}
	rs := makeReadings(p, "batch", 3, 0) // 4 readings
	before := s.commits
	if err := s.AddPending(rs...); err != nil {
		t.Fatal(err)
	}
	if s.commits != before+1 {
		t.Fatalf("%d readings took %d commits, want 1", len(rs), s.commits-before)
	}
	file := filepath.Join(path, commitsFile)
	for i := range 3 {
		if err := s.AddPending(makeReadings(p, "more", i, 10)...); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(file); !bytes.Equal(got, encodeCommits(s.commits)) {
			t.Fatalf("commits file %x after commit %d, want %x", got, s.commits, encodeCommits(s.commits))
		}
	}
	count := s.commits
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, p)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Pending) != len(rs)+1+2+3 {
		t.Fatalf("%d pending readings after reopening, want %d", len(st.Pending), len(rs)+6)
	}
	if s.commits != count {
		t.Fatalf("commit count %d after reopening, want %d", s.commits, count)
	}
	if err := s.AddPending(makeReadings(p, "after", 0, 20)...); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(file); !bytes.Equal(got, encodeCommits(count+1)) {
		t.Fatalf("commits file %x after reopening and one commit, want %x", got, encodeCommits(count+1))
	}
}

// TestAddPendingLeavesOutMainChain: a pending batch written after the
// commit that connected one of its readings' block (a node's submission
// racing a peer's block) does not make that reading pending again, and
// writes the others.
func TestAddPendingLeavesOutMainChain(t *testing.T) {
	p := testParams()
	s, err := Open(filepath.Join(t.TempDir(), "chain"), p)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := chain.New(p)
	if err != nil {
		t.Fatal(err)
	}
	rs := makeReadings(p, "race", 3, 0)
	at := time.UnixMilli(p.GenesisTime + 1000)
	blk := c.NewBlock(rs[:1], at)
	if err := chain.Solve(context.Background(), &blk.Header); err != nil {
		t.Fatal(err)
	}
	u, err := c.AddBlock(blk, at)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(Commit{Blocks: []*chain.Block{blk}, Updates: []*chain.Update{u}, PendingRemove: []chain.Hash{rs[0].ID()}}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddPending(rs...); err != nil {
		t.Fatal(err)
	}
	if _, err := s.get(s.db, keyPending(rs[0].ID())); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a main-chain reading was made pending: %v", err)
	}
	for _, r := range rs[1:] {
		if _, err := s.get(s.db, keyPending(r.ID())); err != nil {
			t.Fatalf("pending reading %s: %v", r.ID().Short(), err)
		}
	}
}

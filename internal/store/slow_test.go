package store

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/store/storetest"
)

// TestSlowSyncIsReported: a log sync that stalls (storetest.FS.Stall)
// holds its write until the disk answers, fails nothing, and is reported
// while it lasts (LastDiskSlow names the operation and the file); once
// the disk answers the write returns and is stored.
func TestSlowSyncIsReported(t *testing.T) {
	fs := storetest.New()
	s, err := Open(filepath.Join(t.TempDir(), "chain"), testParams(), WithFS(fs), WithDiskSlow(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	p := testParams()
	if err := s.AddPending(makeReadings(p, "before", 0, 0)...); err != nil {
		t.Fatal(err)
	}
	if what, _ := s.LastDiskSlow(); what != "" {
		t.Fatalf("a slow disk reported before any: %s", what)
	}
	stall := fs.Stall(storetest.LogSyncs)
	defer stall.Release()
	done := make(chan error, 1)
	go func() { done <- s.AddPending(makeReadings(p, "slow", 1, 10)...) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		what, at := s.LastDiskSlow()
		if what != "" {
			if !strings.Contains(what, ".log") || at.IsZero() {
				t.Errorf("the report does not name the log: %q at %v", what, at)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a sync stalled for 10 s was not reported")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("the write returned while its sync stalls: %v", err)
	default:
	}
	stall.Release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the write once the disk answers: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the write did not return once the disk answered")
	}
	if err := s.Err(); err != nil {
		t.Fatalf("a slow disk failed the store: %v", err)
	}
	if got, want := pendingAfterReopen(t, s), len(makeReadings(p, "", 0, 0))+len(makeReadings(p, "", 1, 10)); got != want {
		t.Fatalf("%d pending after reopening, want %d", got, want)
	}
}

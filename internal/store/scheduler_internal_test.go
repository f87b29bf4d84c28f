package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// TestCompactionSchedulerGrants: the store's compaction scheduler, which
// has no timer, still lets the engine compact: flushed tables pile up in
// L0 past its threshold, one compaction at a time brings them down (each
// compaction that ends grants the next waiting one), a manual compaction
// of a table under the threshold runs and returns, and every grant is
// given back.
func TestCompactionSchedulerGrants(t *testing.T) {
	sched := newCompactionScheduler()
	opts := &pebble.Options{L0CompactionThreshold: 2, L0StopWritesThreshold: 1000, Logger: quietLogger{}}
	opts.Experimental.CompactionScheduler = sched
	db, err := pebble.Open(filepath.Join(t.TempDir(), "engine"), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	}()
	const tables = 24
	for i := range tables {
		b := db.NewBatch()
		for k := range 500 {
			_ = b.Set(fmt.Appendf(nil, "k%05d", k*tables+i), make([]byte, 64), nil)
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			t.Fatal(err)
		}
		if err := db.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for {
		m := db.Metrics()
		if m.Compact.Count > 0 && m.Levels[0].TablesCount < 4 {
			t.Logf("%d tables flushed; %d compactions; L0 holds %d tables", tables, m.Compact.Count, m.Levels[0].TablesCount)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a minute: %d compactions, L0 holds %d tables (threshold 2)", m.Compact.Count, m.Levels[0].TablesCount)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// One table more, under the threshold: only a manual compaction moves it.
	if err := db.Set([]byte("k-late"), []byte("v"), pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := db.Compact(ctx, []byte("k"), []byte("l"), true); err != nil {
		t.Fatalf("manual compaction: %v", err)
	}
	if n := db.Metrics().Levels[0].TablesCount; n != 0 {
		t.Errorf("after a manual compaction L0 holds %d tables", n)
	}
	// Every grant is given back (Done): the count of running compactions
	// falls to 0 once the engine is idle.
	for {
		sched.mu.Lock()
		running := sched.running
		sched.mu.Unlock()
		if running == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d compactions still counted as running with nothing left to compact", running)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/store/storetest"
)

// tableReads matches reads of the engine's tables.
func tableReads(op errorfs.Op) bool {
	return (op.Kind == errorfs.OpFileRead || op.Kind == errorfs.OpFileReadAt) && strings.HasSuffix(op.Path, ".sst")
}

// tableWrites matches writes and syncs of the engine's tables (a flush).
func tableWrites(op errorfs.Op) bool {
	return (storetest.DataWrites(op) || storetest.Syncs(op)) && strings.HasSuffix(op.Path, ".sst")
}

// manifestWrites matches writes and syncs of the engine's MANIFEST.
func manifestWrites(op errorfs.Op) bool {
	return (storetest.DataWrites(op) || storetest.Syncs(op)) && strings.Contains(op.Path, "MANIFEST")
}

// storedChain writes the small fixture's main chain into a new store and
// closes it (its records are then in tables), returning its path.
func storedChain(t *testing.T) (string, *fixture) {
	t.Helper()
	f := smallFixture(t)
	path := filepath.Join(t.TempDir(), "chain")
	n := newNode(t, mustOpen(t, path))
	for _, b := range f.main {
		n.add(b)
	}
	if err := n.store.Close(); err != nil {
		t.Fatal(err)
	}
	return path, f
}

// isClosed reports whether ch is closed.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// closeWithin closes s, failing the test if Close does not return (a hang:
// the bound is far above any Close's time).
func closeWithin(t *testing.T, s *Store) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		t.Fatal("Close hangs")
		return nil
	}
}

// TestReadEIOFailsStore: an I/O error reading a table is not "absent":
// ReadingBlock and MainHash answer false, and the store fails with a
// *DiskError that says to check the disk; it then writes nothing.
func TestReadEIOFailsStore(t *testing.T) {
	path, f := storedChain(t)
	fs := storetest.New()
	s := openFaulty(t, path, fs)
	defer s.Close()
	id := f.main[60].Readings[0].ID()
	fs.Fail(tableReads, storetest.EIO, -1)
	if _, ok := s.ReadingBlock(id); ok {
		t.Fatal("ReadingBlock found the reading although every table read fails")
	}
	if _, ok := s.MainHash(70); ok {
		t.Fatal("MainHash found height 70 although every table read fails")
	}
	err := s.Err()
	var de *DiskError
	if !errors.As(err, &de) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("Err() = %v (%T), want a *DiskError of EIO", err, err)
	}
	for _, want := range []string{"disk failed", "check the disk", "dmesg", "do not move it away"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message does not say %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "damaged") && !strings.Contains(err.Error(), "not known to be damaged") {
		t.Errorf("an I/O error is reported as damage: %v", err)
	}
	if !isClosed(s.Failed()) {
		t.Error("Failed() is not closed")
	}
	fs.Clear()
	if bh, ok := s.ReadingBlock(id); !ok || bh != f.main[60].Hash() {
		t.Fatalf("without the fault ReadingBlock = %s, %v; want %s", bh.Short(), ok, f.main[60].Hash().Short())
	}
	// Nothing decided on the false answers is stored.
	if err := s.AddPending(makeReadings(testParams(), "after", 0, 0)...); !errors.As(err, &de) {
		t.Fatalf("a write after the failure: %v, want the *DiskError", err)
	}
}

// TestReadEIOIsNoDamage: an I/O error met by a method that returns errors
// is a *DiskError, not a *CorruptError (which tells the operator to move
// the store away).
func TestReadEIOIsNoDamage(t *testing.T) {
	path, f := storedChain(t)
	fs := storetest.New()
	s := openFaulty(t, path, fs)
	defer s.Close()
	fs.Fail(tableReads, storetest.EIO, -1)
	_, err := s.BlockByHash(f.main[5].Hash())
	var de *DiskError
	var ce *CorruptError
	if !errors.As(err, &de) || errors.As(err, &ce) {
		t.Fatalf("BlockByHash with EIO: %v (%T), want a *DiskError", err, err)
	}
	if s.Err() == nil {
		t.Fatal("the store did not fail")
	}
}

// TestDamagedTableFailsStore: a table whose bytes were changed on disk
// opens (the damaged block is not read at Open), but a lookup that meets
// the damage fails the store with a *CorruptError instead of answering
// that a stored reading or height is absent.
func TestDamagedTableFailsStore(t *testing.T) {
	path, f := storedChain(t)
	tables, _ := filepath.Glob(filepath.Join(path, "*.sst"))
	if len(tables) == 0 {
		t.Fatal("no tables")
	}
	met := 0
	for _, table := range tables {
		data, err := os.ReadFile(table)
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off < len(data) && met < 3; off += 1024 {
			dir := filepath.Join(t.TempDir(), "chain")
			copyDir(t, path, dir)
			d := append([]byte(nil), data...)
			d[off] ^= 0x40
			if err := os.WriteFile(filepath.Join(dir, filepath.Base(table)), d, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(dir, testParams())
			if err != nil {
				continue // found at Open: a *CorruptError (TestCorruptRandomBytes)
			}
			if _, err := s.LoadRecent(); err != nil {
				s.Close()
				continue
			}
			wrong := 0
			for i, b := range f.main {
				for _, r := range b.Readings {
					if h, ok := s.ReadingBlock(r.ID()); !ok || h != b.Hash() {
						wrong++
					}
				}
				if h, ok := s.MainHash(uint64(i + 1)); !ok || h != b.Hash() {
					wrong++
				}
			}
			if wrong > 0 {
				met++
				var ce *CorruptError
				if err := s.Err(); !errors.As(err, &ce) {
					t.Errorf("byte %d of %s flipped: %d lookups answered absent, and Err() = %v (want a *CorruptError)",
						off, filepath.Base(table), wrong, err)
				} else if !isClosed(s.Failed()) {
					t.Error("Failed() is not closed")
				}
			}
			if err := s.Close(); err != nil && s.Err() == nil {
				t.Errorf("close: %v", err)
			}
		}
	}
	if met == 0 {
		t.Fatal("no flipped byte reached a lookup: the test checks nothing")
	}
}

// TestFlushWriteFailureFailsStore: a table write that fails during a
// flush (EIO, or an exhausted quota, which the reserve cannot see) makes
// the engine retry it forever. The store fails instead: Err says why,
// Close returns (without the flush), and what was acknowledged is in the
// engine's log for the next Open.
func TestFlushWriteFailureFailsStore(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		full bool
	}{{"EIO", storetest.EIO, false}, {"EDQUOT", storetest.EDQUOT, true}} {
		t.Run(tc.name, func(t *testing.T) {
			fs := storetest.New()
			path := filepath.Join(t.TempDir(), "chain")
			s := openFaulty(t, path, fs)
			rs := makeReadings(testParams(), "flush", 0, 0)
			if err := s.AddPending(rs...); err != nil {
				t.Fatal(err)
			}
			fs.Fail(tableWrites, tc.err, -1)
			if err := closeWithin(t, s); err != nil {
				t.Fatalf("close: %v", err)
			}
			err := s.Err()
			var we *WriteError
			var de *DiskError
			if tc.full && (!errors.As(err, &we) || !errors.Is(err, ErrFull)) {
				t.Fatalf("Err() = %v, want a *WriteError of a full disk", err)
			}
			if !tc.full && (!errors.As(err, &de) || !errors.Is(err, syscall.EIO)) {
				t.Fatalf("Err() = %v, want a *DiskError of EIO", err)
			}
			if !tc.full && !strings.Contains(err.Error(), "check the disk") {
				t.Errorf("message does not say to check the disk: %v", err)
			}
			fs.Clear()
			if n := pendingAfterReopenPath(t, path); n != len(rs) {
				t.Fatalf("%d pending after reopening, want %d", n, len(rs))
			}
		})
	}
}

// TestFlushFailureWhileWriting: a flush that fails in the background while
// readings are written fails the store, and the writes return its error
// instead of piling up in the engine, which would stall them for good.
func TestFlushFailureWhileWriting(t *testing.T) {
	fs := storetest.New()
	s := openFaulty(t, filepath.Join(t.TempDir(), "chain"), fs)
	p := testParams()
	var rs []chain.Reading
	for i := range 40 {
		rs = append(rs, makeReadings(p, "run", i, int64(i)*10)...)
	}
	fs.Fail(tableWrites, storetest.EIO, -1)
	res := make(chan error, 1)
	go func() {
		for {
			if err := s.AddPending(rs...); err != nil {
				res <- err
				return
			}
		}
	}()
	select {
	case err := <-res:
		var de *DiskError
		if !errors.As(err, &de) || !errors.Is(err, syscall.EIO) {
			t.Fatalf("write after the failed flush: %v, want a *DiskError of EIO", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("writes go on (or hang) after the flush failed")
	}
	if err := closeWithin(t, s); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// TestManifestFailureInBackground: a failed MANIFEST write during a
// background flush made the engine call Fatalf on its own goroutine, where
// the store's panic killed the process. It now fails the store.
func TestManifestFailureInBackground(t *testing.T) {
	fs := storetest.New()
	path := filepath.Join(t.TempDir(), "chain")
	s := openFaulty(t, path, fs)
	rs := makeReadings(testParams(), "manifest", 0, 0)
	if err := s.AddPending(rs...); err != nil {
		t.Fatal(err)
	}
	fs.Fail(manifestWrites, storetest.EIO, -1)
	if err := closeWithin(t, s); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := s.Err(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Err() = %v, want the MANIFEST's EIO", err)
	}
	fs.Clear()
	if n := pendingAfterReopenPath(t, path); n != len(rs) {
		t.Fatalf("%d pending after reopening, want %d", n, len(rs))
	}
}

// TestOpenOnFailingDisk: an intact store opened while the disk fails its
// syncs or MANIFEST writes is reported as a disk failure, not as damage,
// and without a panic.
func TestOpenOnFailingDisk(t *testing.T) {
	for _, tc := range []struct {
		name  string
		match func(errorfs.Op) bool
	}{{"syncs", storetest.Syncs}, {"manifest", manifestWrites}} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "chain")
			s := mustOpen(t, path)
			if err := s.AddPending(makeReadings(testParams(), "o", 0, 0)...); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			fs := storetest.New()
			fs.Fail(tc.match, storetest.EIO, -1)
			s2, err := Open(path, testParams(), WithFS(fs))
			if err == nil {
				s2.Close()
				t.Fatal("opened on a failing disk")
			}
			var ce *CorruptError
			if errors.As(err, &ce) || !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "check the disk") {
				t.Fatalf("open: %v (%T), want a disk failure that says to check the disk", err, err)
			}
		})
	}
}

// pendingAfterReopenPath opens the store at path and returns how many
// pending readings it holds.
func pendingAfterReopenPath(t *testing.T, path string) int {
	t.Helper()
	s, err := Open(path, testParams())
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	st, err := s.Load()
	if err != nil {
		t.Fatalf("load after reopening: %v", err)
	}
	return len(st.Pending)
}

// TestDamagedBodyFailsStore: a block body changed under its hash, met by a
// lookup after the store opened (not at start), is reported as damage and
// fails the store like any other read it cannot answer: its writes are
// refused, and the node stops (before, the lookup answered the damage
// while the node ran on).
func TestDamagedBodyFailsStore(t *testing.T) {
	_, st := pristine(t)
	mid := st.Main[len(st.Main)/2]
	path, _ := damaged(t)
	db, err := pebble.Open(path, &pebble.Options{Logger: quietLogger{}, EventListener: eventListener(nil)})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := mid.MarshalBinary()
	data[len(data)-1] ^= 1 // the last signature's last byte
	if err := db.Set(keyBlock(mid.Hash()), data, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, testParams())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Err() != nil {
		t.Fatalf("failed before any read: %v", s.Err())
	}
	_, err = s.BlockByHash(mid.Hash())
	wantCorrupt(t, "the changed body", path, err)
	var ce *CorruptError
	if !errors.As(s.Err(), &ce) {
		t.Fatalf("store error after the damaged read: %v, want the *CorruptError", s.Err())
	}
	select {
	case <-s.Failed():
	default:
		t.Fatal("Failed is not closed")
	}
}

// TestBackgroundDiskFailureIsDiskError: an I/O error of the engine's
// background work (a compaction's table read as much as a flush's write)
// fails the store with a *DiskError that says to check the disk, not with
// "a write failed". A compaction reading the table a test made unreadable
// could fail the store first, with the wrong kind of error.
func TestBackgroundDiskFailureIsDiskError(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "chain"))
	defer s.Close()
	s.backgroundError(fmt.Errorf("pebble: compaction: %w", &os.PathError{Op: "read", Path: "000005.sst", Err: syscall.EIO}))
	err := s.Err()
	var de *DiskError
	if !errors.As(err, &de) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("Err() = %v (%T), want a *DiskError of EIO", err, err)
	}
	for _, want := range []string{"flushing or compacting", "check the disk", "do not move it away"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message does not say %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "a write failed") {
		t.Errorf("a background read failure is called a failed write: %v", err)
	}
}

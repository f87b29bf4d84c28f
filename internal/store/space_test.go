package store

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/store/storetest"
)

// openFaulty opens a store at path on a fault-injecting file system with a
// reserve of 1 MiB (a ballast of 512 KiB).
func openFaulty(t *testing.T, path string, fs *storetest.FS) *Store {
	t.Helper()
	s, err := Open(path, testParams(), WithFS(fs), WithReserve(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// pendingAfterReopen closes s (which must not panic or fail) and returns
// how many pending readings a plain reopen finds.
func pendingAfterReopen(t *testing.T, s *Store) int {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	s2, err := Open(s.Path(), testParams())
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	st, err := s2.Load()
	if err != nil {
		t.Fatalf("load after reopening: %v", err)
	}
	return len(st.Pending)
}

// TestFullRefusesAndResumes: under the reserve a write is refused with a
// *FullError, writes nothing and leaves the store open; with space back
// the same write succeeds.
func TestFullRefusesAndResumes(t *testing.T) {
	fs := storetest.New()
	path := filepath.Join(t.TempDir(), "chain")
	s := openFaulty(t, path, fs)
	if _, err := os.Stat(filepath.Join(path, BallastFile)); err != nil {
		t.Fatalf("no ballast after open: %v", err)
	}
	p := testParams()
	first := makeReadings(p, "full", 0, 0)
	if err := s.AddPending(first...); err != nil {
		t.Fatal(err)
	}
	commits := s.commits

	fs.SetFree(100 << 10)
	refused := makeReadings(p, "full", 1, 10)
	err := s.AddPending(refused...)
	var fe *FullError
	if !errors.As(err, &fe) || !errors.Is(err, ErrFull) || !fe.WaitForSpace() {
		t.Fatalf("AddPending on a full disk: %v, want a *FullError", err)
	}
	if fe.Free != 100<<10 || fe.Reserve != 1<<20 {
		t.Errorf("FullError says %d free, reserve %d; want %d and %d", fe.Free, fe.Reserve, 100<<10, 1<<20)
	}
	var ce *CorruptError
	if errors.As(err, &ce) {
		t.Fatalf("a full disk is reported as damage: %v", err)
	}
	if s.commits != commits {
		t.Fatalf("a refused write was committed (%d commits, want %d)", s.commits, commits)
	}
	if err := s.CheckSpace(); !errors.Is(err, ErrFull) {
		t.Fatalf("CheckSpace on a full disk: %v", err)
	}

	fs.RealFree()
	if err := s.CheckSpace(); err != nil {
		t.Fatalf("CheckSpace with space back: %v", err)
	}
	if err := s.AddPending(refused...); err != nil {
		t.Fatalf("the same write with space back: %v", err)
	}
	if got, want := pendingAfterReopen(t, s), len(first)+len(refused); got != want {
		t.Fatalf("%d pending after reopening, want %d", got, want)
	}
}

// TestEngineWriteFails: a log write that fails (no space, even after the
// ballast is dropped; or an I/O error) stops the store's writes with a
// *WriteError, which is not damage; Close does not panic, and a reopen
// finds every write acknowledged before.
func TestEngineWriteFails(t *testing.T) {
	for _, tc := range []struct {
		name  string
		match func(errorfs.Op) bool
		err   error
		full  bool
	}{
		{"ENOSPC", storetest.LogWrites, storetest.ENOSPC, true},
		{"EDQUOT", storetest.LogWrites, storetest.EDQUOT, true},
		{"EIO", storetest.LogWrites, storetest.EIO, false},
		{"fsync EIO", storetest.LogSyncs, storetest.EIO, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := storetest.New()
			s := openFaulty(t, filepath.Join(t.TempDir(), "chain"), fs)
			p := testParams()
			acked := makeReadings(p, "ack", 0, 0)
			if err := s.AddPending(acked...); err != nil {
				t.Fatal(err)
			}
			fault := fs.Fail(tc.match, tc.err, -1)
			err := s.AddPending(makeReadings(p, "lost", 1, 10)...)
			var we *WriteError
			if !errors.As(err, &we) || we.Full != tc.full || errors.Is(err, ErrFull) != tc.full {
				t.Fatalf("AddPending with failing log writes: %v, want a *WriteError (full %v)", err, tc.full)
			}
			var ce *CorruptError
			if errors.As(err, &ce) {
				t.Fatalf("a failed write is reported as damage: %v", err)
			}
			if fault.Hits() == 0 {
				t.Fatal("the fault never struck")
			}
			fs.Clear()
			if err2 := s.AddPending(makeReadings(p, "after", 2, 20)...); !errors.As(err2, &we) {
				t.Fatalf("a write after the engine stopped: %v, want the *WriteError", err2)
			}
			// The refused readings may or may not have reached the log;
			// the acknowledged ones must be there.
			if got := pendingAfterReopen(t, s); got < len(acked) {
				t.Fatalf("%d pending after reopening, want at least the %d acknowledged", got, len(acked))
			}
		})
	}
}

// TestBallastTakesTheRace: a log write that finds the disk full once (a
// race with another program) is retried after the ballast is dropped, and
// succeeds; the ballast comes back once there is room.
func TestBallastTakesTheRace(t *testing.T) {
	fs := storetest.New()
	path := filepath.Join(t.TempDir(), "chain")
	s := openFaulty(t, path, fs)
	p := testParams()
	fault := fs.Fail(storetest.LogWrites, storetest.ENOSPC, 1)
	if err := s.AddPending(makeReadings(p, "race", 0, 0)...); err != nil {
		t.Fatalf("a write that met a full disk once: %v", err)
	}
	if fault.Hits() != 1 {
		t.Fatalf("the fault struck %d times, want 1", fault.Hits())
	}
	if _, err := os.Stat(filepath.Join(path, BallastFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the ballast is still there after a full disk: %v", err)
	}
	if err := s.AddPending(makeReadings(p, "race", 1, 10)...); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(path, BallastFile)); err != nil {
		t.Fatalf("the ballast did not come back with room for it: %v", err)
	}
	if got, want := pendingAfterReopen(t, s), len(makeReadings(p, "race", 0, 0))+len(makeReadings(p, "race", 1, 10)); got != want {
		t.Fatalf("%d pending after reopening, want %d", got, want)
	}
}

// TestCommitsFileFails: the commits file is best effort: a write of it
// that fails leaves the commit acknowledged and stored.
func TestCommitsFileFails(t *testing.T) {
	fs := storetest.New()
	s := openFaulty(t, filepath.Join(t.TempDir(), "chain"), fs)
	p := testParams()
	fault := fs.Fail(storetest.CommitsFile, storetest.EIO, -1)
	rs := makeReadings(p, "commits", 0, 0)
	if err := s.AddPending(rs...); err != nil {
		t.Fatalf("AddPending with a failing commits file: %v", err)
	}
	if fault.Hits() == 0 {
		t.Fatal("the fault never struck")
	}
	fs.Clear()
	if got := pendingAfterReopen(t, s); got != len(rs) {
		t.Fatalf("%d pending after reopening, want %d", got, len(rs))
	}
}

// mountTmpfs mounts a tmpfs of size bytes on a new temp directory, or
// skips the test where it cannot (not root, no mount).
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a size-limited tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		// Lazily: a stopped engine keeps its files open until the
		// process ends.
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// TestCloseOnFullDisk: on a real file system (16 MiB) filled to the last byte by
// another program, writes are refused as full (not damage), Close returns
// promptly without panicking, and with the space back the store opens
// with everything it acknowledged.
func TestCloseOnFullDisk(t *testing.T) {
	dir := mountTmpfs(t, 16<<20)
	path := filepath.Join(dir, "chain")
	p := testParams()
	s, err := Open(path, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() }) // before the unmount (a no-op once closed)
	var acked int
	for i := range 50 {
		rs := makeReadings(p, "close", i, int64(i)*10)
		if err := s.AddPending(rs...); err != nil {
			t.Fatal(err)
		}
		acked += len(rs)
	}
	filler, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4<<10)
	for {
		if _, err := filler.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	filler.Close()
	err = s.AddPending(makeReadings(p, "refused", 0, 0)...)
	var fe *FullError
	if !errors.As(err, &fe) {
		t.Fatalf("a write on a full disk: %v, want a *FullError", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Logf("close on a full disk: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close on a full disk does not return")
	}
	// Opening it again on the full disk (a node restarted too early) may
	// fail, but as a full disk, never as damage.
	if s3, err := Open(path, p); err == nil {
		s3.Close()
	} else {
		var ce *CorruptError
		if errors.As(err, &ce) || !errors.Is(err, ErrFull) {
			t.Fatalf("open on a full disk: %v, want a full disk, not damage", err)
		}
		t.Logf("open on a full disk: %v", err)
	}
	if err := os.Remove(filepath.Join(dir, "filler")); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path, p)
	if err != nil {
		t.Fatalf("reopen with space back: %v", err)
	}
	defer s2.Close()
	st, err := s2.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Pending) != acked {
		t.Fatalf("%d pending after reopening, want the %d acknowledged", len(st.Pending), acked)
	}
}

// TestEngineStopsOnRealFullDisk: with a reserve that sees no full disk,
// readings fill a real file system until the engine's own log write fails,
// once the ballast's room is used up too. The
// store then reports a full disk, not damage, refuses further writes,
// closes without panicking (it used to die in Close with "sync: unlock of
// unlocked mutex"), and with space back opens with everything it
// acknowledged.
func TestEngineStopsOnRealFullDisk(t *testing.T) {
	dir := mountTmpfs(t, 16<<20)
	path := filepath.Join(dir, "chain")
	p := testParams()
	// The store is made to believe the disk is empty, so that its
	// reserve never refuses a write, and a ballast of 512 KiB.
	fs := storetest.New()
	s, err := Open(path, p, WithFS(fs), WithReserve(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	fs.SetFree(1 << 40)
	// Another program takes all but 256 KiB.
	fillerPath := filepath.Join(dir, "filler")
	filler, err := os.Create(fillerPath)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4<<10)
	var size int64
	for {
		n, err := filler.Write(buf)
		size += int64(n)
		if err != nil {
			break
		}
	}
	filler.Close()
	if err := os.Truncate(fillerPath, size-256<<10); err != nil {
		t.Fatal(err)
	}

	acked := 0
	for i := 0; ; i++ {
		var rs []chain.Reading
		for j := range 20 {
			rs = append(rs, makeReadings(p, fmt.Sprintf("fill%d", j), i, int64(i)*10)...)
		}
		err := s.AddPending(rs...)
		if err == nil {
			acked += len(rs)
			if i > 10000 {
				t.Fatal("256 KiB never filled")
			}
			continue
		}
		var ce *CorruptError
		if errors.As(err, &ce) || !errors.Is(err, ErrFull) {
			t.Fatalf("after %d readings: %v, want a full disk, not damage", acked, err)
		}
		var we *WriteError
		if !errors.As(err, &we) {
			t.Fatalf("after %d readings: %v, want a *WriteError (the engine's write failed)", acked, err)
		}
		break
	}
	if err := s.AddPending(makeReadings(p, "after", 0, 0)...); !errors.Is(err, ErrFull) {
		t.Fatalf("a write after the engine stopped: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := os.Remove(fillerPath); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path, p)
	if err != nil {
		t.Fatalf("reopen with space back: %v", err)
	}
	defer s2.Close()
	st, err := s2.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Pending) < acked {
		t.Fatalf("%d pending after reopening, want at least the %d acknowledged", len(st.Pending), acked)
	}
	t.Logf("%d readings acknowledged before the disk filled, %d stored", acked, len(st.Pending))
}

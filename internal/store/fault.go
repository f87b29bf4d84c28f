package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// A failed store.
//
// A store fails when it meets an error it cannot answer truthfully past:
// a read the disk could not do (an I/O error: *DiskError), data that is
// damaged (a checksum that fails: *CorruptError), or a write of the engine
// that failed for any reason but a full disk (*WriteError; a full disk is
// waited out: space.go). The first failure is kept: Err returns it and
// Failed is closed. From then on every write is refused with it, so that
// nothing decided on an answer the store could not give (a lookup that
// answered "absent" because the disk failed) is ever stored; reads go on
// as they can. A failed store is closed without a flush.

// DiskError is a disk that failed under the store: an I/O error (EIO), or
// a file system that became read-only or went away. It is not known
// damage: the files may be intact, so the store must not be moved away;
// the disk must be checked. It matches errors.Is of its cause (e.g.
// syscall.EIO).
type DiskError struct {
	Path string // the store directory
	Op   string // what the store did: "reading", "opening", "writing"
	Err  error
}

func (e *DiskError) Error() string {
	return fmt.Sprintf("chain store %s: the disk failed while %s (%v): the node stops; "+
		"the store is not known to be damaged (do not move it away): check the disk "+
		"(the system log, e.g. dmesg, and its SMART status, e.g. smartctl -a), "+
		"and start the node again once the disk is fixed; run `p2pchain verify --data %s` if it reported errors",
		e.Path, e.Op, e.Err, filepath.Dir(e.Path))
}

// Unwrap returns the file system's error.
func (e *DiskError) Unwrap() error { return e.Err }

// Stopped reports that the store writes nothing any more (package node
// tests for this method, on any store behind its Store interface).
func (e *DiskError) Stopped() bool { return true }

// diskFault reports whether err means that the disk failed rather than
// that the data is damaged.
func diskFault(err error) bool {
	for _, e := range []syscall.Errno{syscall.EIO, syscall.EROFS, syscall.ENXIO, syscall.ENODEV} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Err returns why the store failed (a *DiskError, a *CorruptError or a
// *WriteError), or nil while it works. Once set it stays.
func (s *Store) Err() error {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	return s.failErr
}

// Failed returns a channel that is closed when the store fails (Err then
// says why), whether a call of the store or the engine's background work
// met the failure.
func (s *Store) Failed() <-chan struct{} { return s.failCh }

// fail records err as the store's failure, unless it failed already, and
// returns the store's failure.
func (s *Store) fail(err error) error {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	if s.failErr == nil {
		s.failErr = err
		s.log.Error("chain store: failed; refusing every write", "err", err)
		close(s.failCh)
	}
	return s.failErr
}

// lookupFailed records the error of a lookup that answers false rather
// than an error: "absent" is the answer only for a key the store does not
// hold; any other error fails the store, so that no caller acts on a
// false "absent" without seeing the failure.
func (s *Store) lookupFailed(err error) {
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrClosed) {
		return
	}
	s.fail(err) // classified already (readErr, recoverPanic, corrupt)
}

// failedRetry is how often the engine of a failed store may retry its
// failed background work.
const failedRetry = 100 * time.Millisecond

// backgroundError handles an error of the engine's background work (a
// flush, a compaction). A full disk (ENOSPC) is logged only: the engine
// retries, and the store refuses writes under its reserve until there is
// room (space.go). A disk that failed (a *DiskError), an exhausted quota
// (which the reserve cannot see: a *WriteError) or damage fails the store: the engine would retry
// the same failing write forever while the node went on as if its writes
// were stored.
func (s *Store) backgroundError(err error) {
	quietLogger{}.Errorf("background error: %v", err)
	if s == nil {
		return // an engine opened without a store (tests)
	}
	if s.Err() != nil {
		// The store failed: the engine retries its failed flush at once,
		// again and again, until Close. Slow it down meanwhile.
		time.Sleep(failedRetry)
		return
	}
	switch {
	case errors.Is(err, syscall.EDQUOT):
		s.fail(&WriteError{Path: s.path, Full: true, Err: err})
	case diskFault(err):
		// A table write of a flush or a table read of a compaction: the
		// error does not say which, and the advice is the same.
		s.fail(&DiskError{Path: s.path, Op: "flushing or compacting", Err: err})
	case pebble.IsCorruptionError(err):
		s.fail(&CorruptError{Path: s.path, Err: corruptionDetail(err)})
	}
}

// engineFatal handles the engine's Fatalf (an engine that cannot go on:
// a failed write of its log or MANIFEST). In a call of the store it
// panics, and the call returns the failure (recoverWrite, recoverPanic).
// On the engine's own goroutines (a background flush) nothing would
// recover the panic and the process would die with a raw Go panic: there
// it fails the store instead and returns: the engine then returns the
// error to its caller (a flush), which reports it (BackgroundError) and
// tries again until Close, which closes the engine without a flush.
func (s *Store) engineFatal(fe fatalError) {
	if s == nil || inStoreCall() {
		panic(fe)
	}
	var err error
	switch {
	case pebble.IsCorruptionError(fe):
		err = &CorruptError{Path: s.path, Err: corruptionDetail(fe)}
	case diskFault(fe):
		err = &DiskError{Path: s.path, Op: "writing", Err: fe} // as in a store call (panicErr)
	default:
		err = &WriteError{Path: s.path, Full: noSpace(fe), Err: fe}
	}
	s.fail(err)
}

// storePkg is this package's import path, as function names in a stack
// trace begin.
var storePkg = reflect.TypeFor[Store]().PkgPath() + "."

// inStoreCall reports whether a function of this package is on the
// calling goroutine's stack: a call of the store, which recovers the
// engine's panics, as opposed to one of the engine's goroutines.
func inStoreCall() bool {
	pcs := make([]uintptr, 512)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs)])
	for {
		f, more := frames.Next()
		if strings.HasPrefix(f.Function, storePkg) && !strings.HasPrefix(f.Function, storePkg+"quietLogger") &&
			!strings.HasPrefix(f.Function, storePkg+"(*Store).engineFatal") && !strings.HasPrefix(f.Function, storePkg+"inStoreCall") {
			return true
		}
		if !more {
			return false
		}
	}
}

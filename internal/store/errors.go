package store

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// Sentinel errors; test with errors.Is.
var (
	// ErrWrongNetwork: the store was made for another genesis block.
	ErrWrongNetwork = errors.New("store belongs to another network")
	// ErrLocked: another process has the store open.
	ErrLocked = errors.New("store is locked")
	// ErrNotFound: no such block or reading.
	ErrNotFound = errors.New("not found")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store is closed")
	// ErrBadCommit: a Commit whose updates do not follow the stored tip
	// (a bug of the caller); nothing was written.
	ErrBadCommit = errors.New("commit does not follow the stored chain")
	// ErrFull: the store's disk is full (or its quota spent). Not damage:
	// see *FullError (nothing written, retry once there is space) and
	// *WriteError (the engine stopped: restart once there is space).
	ErrFull = errors.New("the disk is full")
)

// NetworkError is a store opened for another network than the one it was
// made for: what it holds and what the opener runs. It matches
// errors.Is(err, ErrWrongNetwork).
type NetworkError struct {
	Path        string     // the store directory
	HeldName    string     // the network name the store was made with
	HeldGenesis chain.Hash // and its genesis block
	Name        string     // the network the opener runs
	Genesis     chain.Hash // and its genesis block
}

func (e *NetworkError) Error() string {
	return fmt.Sprintf("chain store %s: %v: it holds network %q (genesis %s), this node runs %q (genesis %s); use another data directory",
		e.Path, ErrWrongNetwork, e.HeldName, e.HeldGenesis.Short(), e.Name, e.Genesis.Short())
}

// Unwrap makes errors.Is(err, ErrWrongNetwork) hold.
func (e *NetworkError) Unwrap() error { return ErrWrongNetwork }

// FullError is a write the store refused, writing nothing, because the
// free space of its file system is under the reserve it keeps (see
// WithReserve). The same write succeeds once space returns: the store is
// intact and stays open. It matches errors.Is(err, ErrFull).
type FullError struct {
	Path    string // the store directory
	Free    uint64 // bytes free on its file system
	Size    uint64 // bytes of its file system
	Reserve uint64 // bytes the store wants free before it writes
	Err     error  // the file system's error, if one was met; else nil
}

func (e *FullError) Error() string {
	return fmt.Sprintf("the disk of %s is full: %s free of %s, and the node writes only with %s free; "+
		"free space on that file system (nothing stored is lost, and the node writes again by itself once there is room)",
		e.Path, mib(e.Free), mib(e.Size), mib(e.Reserve))
}

// Space says how full the disk is, for a message of a tool that is no
// node: "3.95 MiB free of 24.0 MiB, and the store writes only with 4.00
// MiB free".
func (e *FullError) Space() string {
	return fmt.Sprintf("%s free of %s, and the store writes only with %s free", mib(e.Free), mib(e.Size), mib(e.Reserve))
}

// Is makes errors.Is(err, ErrFull) true.
func (e *FullError) Is(target error) bool { return target == ErrFull }

// Unwrap returns the file system's error, if any.
func (e *FullError) Unwrap() error { return e.Err }

// WaitForSpace reports that nothing was written and that the same write
// may be retried once space returns (package node tests for this method:
// a store behind the node's Store interface answers it).
func (e *FullError) WaitForSpace() bool { return true }

// WriteError is a write that failed in the storage engine: its disk is
// full, or the disk failed (an I/O error). The engine stops at such a
// failure, so the store refuses every later write and the node must be
// restarted. It is not damage: every write acknowledged before it is on
// disk, and the store opens again once the cause is gone. Full reports a
// full disk (then errors.Is(err, ErrFull)).
type WriteError struct {
	Path string
	Full bool
	Err  error
}

func (e *WriteError) Error() string {
	if e.Full {
		return fmt.Sprintf("chain store %s: the disk is full (%v): the storage engine stopped writing; "+
			"everything acknowledged is stored and intact: free space on that file system and start the node again", e.Path, e.Err)
	}
	return fmt.Sprintf("chain store %s: a write failed (%v): the storage engine stopped writing; "+
		"everything acknowledged before is stored: check the disk (the system log, e.g. dmesg, says more), "+
		"then start the node again, and run `p2pchain verify --data %s` if the disk reported errors", e.Path, e.Err, filepath.Dir(e.Path))
}

// Stopped reports that the store writes nothing any more (package node
// tests for this method, on any store behind its Store interface).
func (e *WriteError) Stopped() bool { return true }

// Is makes errors.Is(err, ErrFull) true for a full disk.
func (e *WriteError) Is(target error) bool { return e.Full && target == ErrFull }

// Unwrap returns the engine's error.
func (e *WriteError) Unwrap() error { return e.Err }

// CorruptError reports a store that is damaged or is not a store: a
// truncated or overwritten file, a missing file, records that do not decode
// or indexes that disagree. Err says what was found. Nothing is repaired
// automatically: the operator checks the store or moves it away, and the
// node syncs the chain again from its peers.
type CorruptError struct {
	Path string // the store directory
	Err  error
}

func (e *CorruptError) Error() string {
	data := filepath.Dir(e.Path)
	return fmt.Sprintf("chain store %s is damaged: %v; "+
		"run `p2pchain verify --data %s` to see where, "+
		"or move %s away and start the node again to re-sync the chain from its peers",
		e.Path, e.Err, data, e.Path)
}

// Unwrap returns the underlying error.
func (e *CorruptError) Unwrap() error { return e.Err }

// corrupt returns a *CorruptError for the store at path.
func corrupt(path string, format string, args ...any) error {
	return &CorruptError{Path: path, Err: fmt.Errorf(format, args...)}
}

// readErr classifies an error met while reading: a disk that failed (an
// I/O error) is a *DiskError, a permission problem is reported as it is,
// everything else but a closed store means the files are damaged. Each of
// these fails the store (fault.go): an answer it could not read is never
// taken for an absent record.
func (s *Store) readErr(err error) error {
	var ce *CorruptError
	var de *DiskError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrClosed):
		return err
	case errors.As(err, &ce), errors.As(err, &de):
	case diskFault(err):
		err = &DiskError{Path: s.path, Op: "reading", Err: err}
	case errors.Is(err, fs.ErrPermission):
		err = fmt.Errorf("chain store %s: %w", s.path, err)
	default:
		err = &CorruptError{Path: s.path, Err: corruptionDetail(err)}
	}
	s.fail(err)
	return err
}

// corruptionDetail names the damaged file when the engine says which one,
// instead of its internal error wrapping.
func corruptionDetail(err error) error {
	if info := pebble.ExtractDataCorruptionInfo(err); info != nil && info.Details != nil {
		return fmt.Errorf("file %s: %v", info.Path, info.Details)
	}
	return err
}

// writeErr classifies an error met while writing: only the engine's
// corruption errors are corruption; a full disk is not.
func (s *Store) writeErr(err error) error {
	var ce *CorruptError
	var fe *FullError
	var we *WriteError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce), errors.As(err, &fe), errors.As(err, &we), errors.Is(err, ErrClosed):
		return err
	case pebble.IsCorruptionError(err):
		return &CorruptError{Path: s.path, Err: corruptionDetail(err)}
	case noSpace(err):
		return s.fullError(err)
	}
	return fmt.Errorf("chain store %s: %w", s.path, err)
}

// fullError returns a *FullError for the store's file system as it is now.
func (s *Store) fullError(err error) *FullError {
	fe := &FullError{Path: s.path, Err: err}
	if du, derr := s.fs.GetDiskUsage(s.path); derr == nil {
		fe.Free, fe.Size, fe.Reserve = du.AvailBytes, du.TotalBytes, s.reserveFor(du.TotalBytes)
	}
	return fe
}

// recoverWrite turns a panic of the engine while it commits (Pebble panics
// when a log write or sync fails: its commit pipeline cannot go on) into a
// *WriteError, and stops the store: every later write returns it, and
// Close leaves the stopped engine alone. Corruption the engine reports
// this way is still a *CorruptError. Use as: defer s.recoverWrite(&err).
func (s *Store) recoverWrite(err *error) {
	r := recover()
	if r == nil {
		return
	}
	cause, ok := r.(error)
	if !ok {
		cause = fmt.Errorf("%v", r)
	}
	if pebble.IsCorruptionError(cause) {
		*err = &CorruptError{Path: s.path, Err: corruptionDetail(cause)}
		s.fail(*err)
		return
	}
	we := &WriteError{Path: s.path, Full: noSpace(cause), Err: cause}
	s.stopped.CompareAndSwap(nil, we)
	s.log.Error("chain store: a write failed in the storage engine, which stopped", "err", we)
	*err = s.stopped.Load()
	s.fail(*err)
}

// recoverPanic turns a panic of the engine (or of decoding damaged data)
// into a *CorruptError, into a *WriteError if the engine met a full disk
// (opening a store writes too), or into a *DiskError if the disk failed;
// all but a full disk fail the store. Use as: defer s.recoverPanic(&err).
func (s *Store) recoverPanic(err *error) {
	if r := recover(); r != nil {
		*err = s.panicErr(r)
	}
}

// panicErr is recoverPanic's error for the panic value r.
func (s *Store) panicErr(r any) error {
	e, ok := r.(error)
	var err error
	switch {
	case ok && noSpace(e):
		return &WriteError{Path: s.path, Full: true, Err: e}
	case ok && diskFault(e):
		op := "reading"
		if _, fatal := e.(fatalError); fatal {
			op = "writing" // the engine's log or MANIFEST
		}
		err = &DiskError{Path: s.path, Op: op, Err: e}
	default:
		err = &CorruptError{Path: s.path, Err: fmt.Errorf("storage engine failed: %v", r)}
	}
	s.fail(err)
	return err
}

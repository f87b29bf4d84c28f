package store

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"
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
)

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

// readErr classifies an error met while reading: everything but a closed
// store or a permission problem means the files are damaged.
func (s *Store) readErr(err error) error {
	var ce *CorruptError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce), errors.Is(err, ErrNotFound), errors.Is(err, ErrClosed):
		return err
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("chain store %s: %w", s.path, err)
	}
	return &CorruptError{Path: s.path, Err: corruptionDetail(err)}
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
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce), errors.Is(err, ErrClosed):
		return err
	case pebble.IsCorruptionError(err):
		return &CorruptError{Path: s.path, Err: corruptionDetail(err)}
	}
	return fmt.Errorf("chain store %s: %w", s.path, err)
}

// recoverPanic turns a panic of the engine (or of decoding damaged data)
// into a *CorruptError. Use as: defer s.recoverPanic(&err).
func (s *Store) recoverPanic(err *error) {
	if r := recover(); r != nil {
		*err = &CorruptError{Path: s.path, Err: fmt.Errorf("storage engine failed: %v", r)}
	}
}

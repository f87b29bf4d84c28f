// Package storetest provides a fault-injecting file system for the tests
// of package store and of its users: every file the store writes goes
// through it (store.WithFS), so that a test fails a write, a sync or a
// create at the point it chooses, or makes the disk look full, and checks
// what the store and the node do; or stalls them (Stall), as a slow disk
// does.
package storetest

import (
	"io/fs"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// FS is the operating system's file system with faults injected on
// demand. Its zero value is not usable: call New. Safe for concurrent use.
type FS struct {
	*errorfs.FS
	mu     sync.Mutex
	free   *uint64 // nil: the real free space
	faults []*fault
	stalls []stall
}

type fault struct {
	match func(errorfs.Op) bool
	err   error
	left  int // failures left; <0: until cleared
	hits  int
}

// New returns an FS that injects nothing yet.
func New() *FS {
	f := &FS{}
	f.FS = errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(f.maybeError))
	return f
}

// Fault is an injected failure; Hits says how often it struck.
type Fault struct {
	fs *FS
	f  *fault
}

// Hits returns how many operations the fault failed.
func (h Fault) Hits() int {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	return h.f.hits
}

// Fail makes the operations that match fail with err, the next times of
// them (times < 0: until Clear).
func (f *FS) Fail(match func(errorfs.Op) bool, err error, times int) Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	ft := &fault{match: match, err: err, left: times}
	f.faults = append(f.faults, ft)
	return Fault{f, ft}
}

// Clear removes every fault and gives back the real free space.
func (f *FS) Clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults, f.free = nil, nil
}

// SetFree makes GetDiskUsage report bytes free (of the real total).
func (f *FS) SetFree(bytes uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.free = &bytes
}

// RealFree makes GetDiskUsage report the real free space again.
func (f *FS) RealFree() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.free = nil
}

// GetDiskUsage implements vfs.FS, with the free space SetFree gave.
func (f *FS) GetDiskUsage(path string) (vfs.DiskUsage, error) {
	du, err := f.FS.GetDiskUsage(path)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil && f.free != nil {
		du.AvailBytes = min(*f.free, du.TotalBytes)
		du.UsedBytes = du.TotalBytes - du.AvailBytes
	}
	return du, err
}

func (f *FS) maybeError(op errorfs.Op) error {
	f.wait(op)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ft := range f.faults {
		if ft.left == 0 || !ft.match(op) {
			continue
		}
		if ft.left > 0 {
			ft.left--
		}
		ft.hits++
		return &fs.PathError{Op: "injected", Path: op.Path, Err: ft.err}
	}
	return nil
}

// Errors as the kernel returns them.
var (
	ENOSPC = syscall.ENOSPC // no space left on device
	EDQUOT = syscall.EDQUOT // disk quota exceeded
	EIO    = syscall.EIO    // input/output error
)

// Writes matches the operations that write data or metadata (writes,
// syncs, creates, renames, removes, preallocations).
func Writes(op errorfs.Op) bool { return op.Kind.ReadOrWrite() == errorfs.OpIsWrite }

// DataWrites matches writes of a file's bytes.
func DataWrites(op errorfs.Op) bool {
	return op.Kind == errorfs.OpFileWrite || op.Kind == errorfs.OpFileWriteAt
}

// Syncs matches syncs of a file.
func Syncs(op errorfs.Op) bool {
	switch op.Kind {
	case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
		return true
	}
	return false
}

// LogWrites matches writes of the engine's write-ahead log, the durable
// step of every commit (a full disk fails them).
func LogWrites(op errorfs.Op) bool { return DataWrites(op) && strings.HasSuffix(op.Path, ".log") }

// LogSyncs matches syncs of the engine's write-ahead log (a failing disk
// fails them).
func LogSyncs(op errorfs.Op) bool { return Syncs(op) && strings.HasSuffix(op.Path, ".log") }

// CommitsFile matches writes of the store's commits file.
func CommitsFile(op errorfs.Op) bool {
	return (DataWrites(op) || Syncs(op)) && strings.HasSuffix(op.Path, "COMMITS")
}

// Stall is a stall injected by FS.Stall: the operations that match it
// block until Release (or until the time given to StallFor has passed).
type Stall struct {
	fs      *FS
	release chan struct{}
	once    sync.Once
	waiting int // operations blocked now; guarded by fs.mu
	hits    int // operations it blocked; guarded by fs.mu
}

// Stall makes the operations that match block, as on a disk that stops
// answering for a while (a SAN hiccup, a dying SSD), until Release. They
// then go on as usual: a stall fails nothing.
func (f *FS) Stall(match func(errorfs.Op) bool) *Stall {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := &Stall{fs: f, release: make(chan struct{})}
	f.stalls = append(f.stalls, stall{match: match, s: s})
	return s
}

// StallFor is Stall released by itself after d.
func (f *FS) StallFor(match func(errorfs.Op) bool, d time.Duration) *Stall {
	s := f.Stall(match)
	time.AfterFunc(d, s.Release)
	return s
}

// Release lets the blocked operations, and those to come, go on.
func (s *Stall) Release() {
	s.once.Do(func() {
		s.fs.mu.Lock()
		defer s.fs.mu.Unlock()
		for i, st := range s.fs.stalls {
			if st.s == s {
				s.fs.stalls = append(s.fs.stalls[:i:i], s.fs.stalls[i+1:]...)
				break
			}
		}
		close(s.release)
	})
}

// Waiting returns how many operations the stall blocks now.
func (s *Stall) Waiting() int {
	s.fs.mu.Lock()
	defer s.fs.mu.Unlock()
	return s.waiting
}

// Hits returns how many operations the stall blocked.
func (s *Stall) Hits() int {
	s.fs.mu.Lock()
	defer s.fs.mu.Unlock()
	return s.hits
}

type stall struct {
	match func(errorfs.Op) bool
	s     *Stall
}

// wait blocks op while a stall matches it. f.mu must not be held.
func (f *FS) wait(op errorfs.Op) {
	f.mu.Lock()
	var s *Stall
	for _, st := range f.stalls {
		if st.match(op) {
			s = st.s
			break
		}
	}
	if s == nil {
		f.mu.Unlock()
		return
	}
	s.waiting++
	s.hits++
	f.mu.Unlock()
	<-s.release
	f.mu.Lock()
	s.waiting--
	f.mu.Unlock()
}

package store

import (
	"errors"
	"fmt"
	"io"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Disk space.
//
// A full disk is not damage: the store keeps what it wrote, and writes
// again once space returns. Three layers keep the engine from ever meeting
// a full disk in the middle of a write, which it cannot survive (Pebble
// stops its commit pipeline at the first failed log write, by design):
//
//  1. A reserve. Before every write the store reads the free space of its
//     file system; under the reserve it writes nothing and returns a
//     *FullError (errors.Is ErrFull), which a caller may retry as it is
//     once space returns. The reserve leaves the engine room to flush and
//     compact what it holds.
//  2. A ballast: a file of BallastFile, half the reserve (at most 4 MiB), that the store
//     deletes the moment a write of the engine fails for want of space (a
//     race with another program filling the disk), so that the write is
//     retried at once and succeeds (vfs.OnDiskFull, CockroachDB's scheme).
//     It is made again once there is room for it above the reserve.
//  3. Past both, the write fails in the engine, which stops: the store
//     returns a *WriteError, refuses every further write, and its Close
//     releases the directory without touching the stopped engine. What it
//     acknowledged is on disk; a restart after freeing space loads it.

// BallastFile is the name of the ballast in the store directory.
const BallastFile = "BALLAST"

const (
	minReserve = 4 << 20   // at least 4 MiB kept free: room to flush a full memtable (Pebble's default, 4 MiB)
	maxReserve = 128 << 20 // at most 128 MiB kept free
	maxBallast = 4 << 20   // the ballast: half the reserve, at most 4 MiB
)

// WithFS makes the store use fs for every file it writes and reads (the
// engine's, the commits file and the ballast) instead of the operating
// system's directly. Tests use it to inject failures (pebble's
// vfs/errorfs). The directory itself is still made and listed with the os
// package, so fs must work on the real path.
func WithFS(fs vfs.FS) Option { return func(s *Store) { s.fs = fs } }

// WithReserve sets how many bytes of its file system the store keeps free
// (default: a twentieth of the file system, within 4 MiB and 128 MiB).
// Under it, writes fail with a *FullError; see Store.CheckSpace.
func WithReserve(bytes uint64) Option { return func(s *Store) { s.reserve = bytes } }

// reserveFor returns the reserve on a file system of total bytes.
func (s *Store) reserveFor(total uint64) uint64 {
	if s.reserve != 0 {
		return s.reserve
	}
	return min(max(total/20, minReserve), maxReserve)
}

// CheckSpace reports whether the store may write: nil, or a *FullError
// while the free space of its file system is under the reserve. Every
// write checks it first; a node calls it to see when space has returned.
// When there is room again it makes the ballast again first.
func (s *Store) CheckSpace() error {
	du, err := s.fs.GetDiskUsage(s.path)
	if err != nil {
		return nil // cannot tell: let the write try
	}
	reserve := s.reserveFor(du.TotalBytes)
	need := reserve
	ballast := min(reserve/2, maxBallast)
	if !s.ballastOK.Load() {
		need += ballast
	}
	if du.AvailBytes < need {
		return &FullError{Path: s.path, Free: du.AvailBytes, Size: du.TotalBytes, Reserve: need}
	}
	if !s.ballastOK.Load() {
		s.makeBallast(ballast)
	}
	return nil
}

// ballastRetry is how long the store waits before it tries again to make a
// ballast it could not make.
const ballastRetry = time.Minute

// makeBallast writes the ballast file of size bytes (best effort: a store
// without one still has its reserve).
func (s *Store) makeBallast(size uint64) {
	s.ballastMu.Lock()
	defer s.ballastMu.Unlock()
	if s.ballastOK.Load() || time.Now().Before(s.ballastNext) {
		return
	}
	path := s.fs.PathJoin(s.path, BallastFile)
	if fi, err := s.fs.Stat(path); err == nil && uint64(fi.Size()) >= size {
		s.ballastOK.Store(true)
		return
	}
	f, err := s.fs.OpenReadWrite(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		s.ballastNext = time.Now().Add(ballastRetry)
		return
	}
	// Allocated, not truncated: a sparse file would reserve nothing. Where
	// the file system cannot preallocate, the bytes are written.
	var werr error
	if f.Preallocate(0, int64(size)) == nil {
		_, werr = f.WriteAt([]byte{0}, int64(size)-1)
	} else {
		buf := make([]byte, 64<<10)
		for left := size; left > 0 && werr == nil; {
			n := min(left, uint64(len(buf)))
			_, werr = f.Write(buf[:n])
			left -= n
		}
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = s.fs.Remove(path) // no room for it yet
		s.ballastNext = time.Now().Add(ballastRetry)
		return
	}
	s.ballastOK.Store(true)
}

// dropBallast deletes the ballast: called by the engine's file system when
// a write fails for want of space, before the write is retried once.
func (s *Store) dropBallast() {
	s.ballastMu.Lock()
	defer s.ballastMu.Unlock()
	if s.fs.Remove(s.fs.PathJoin(s.path, BallastFile)) == nil {
		s.log.Warn("chain store: the disk is full; deleted the ballast file to finish the writes under way, "+
			"and refusing new ones until there is room again", "dir", s.path)
	}
	s.ballastOK.Store(false)
}

// noSpace reports whether err means that the file system is out of space
// or out of quota.
func noSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// readFile reads a whole file through the store's file system.
func (s *Store) readFile(path string) ([]byte, error) {
	f, err := s.fs.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// writeFile replaces a small file through the store's file system (no
// sync: the commits file is best effort).
func (s *Store) writeFile(path string, data []byte) error {
	f, err := s.fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	return werr
}

// mib formats a byte count for people, to the KiB under 10 MiB.
func mib(n uint64) string {
	if n < 10<<20 {
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

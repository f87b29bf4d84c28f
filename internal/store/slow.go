package store

import (
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// A slow disk.
//
// A disk that takes seconds to write or sync (a SAN hiccup, a dying SSD, a
// noisy neighbour) fails nothing: the store's writes just take that long,
// and return once the disk answers. The store does not time them out (a
// write it gave up on could still reach the disk); it reports them. The
// engine times every write and sync of its files (Pebble's disk-health
// checks) and reports one that has lasted DefaultDiskSlow or longer
// (WithDiskSlow) every few seconds while it lasts; LastDiskSlow returns
// the last such report, for the node's log and status. The node times its
// own writes and decides what to refuse meanwhile (package node, slow.go).

// DefaultDiskSlow is how long a disk operation of the engine lasts before
// the store reports it (Pebble's default).
const DefaultDiskSlow = 5 * time.Second

// WithDiskSlow sets how long a write or sync of the engine lasts before
// the store reports it (LastDiskSlow); default DefaultDiskSlow.
func WithDiskSlow(d time.Duration) Option { return func(s *Store) { s.slowAfter = d } }

// diskSlowed is one report of a slow disk operation.
type diskSlowed struct {
	what string
	at   time.Time
}

// diskSlow records the engine's report of a slow disk operation. It runs
// on the engine's monitoring goroutine, which must not wait for anything
// that waits for the disk: it only stores the report (no logging, which
// may write to the same disk).
func (s *Store) diskSlow(info pebble.DiskSlowInfo) {
	s.slowLast.Store(&diskSlowed{
		what: fmt.Sprintf("%s of %s has lasted %.1fs", info.OpType, info.Path, info.Duration.Seconds()),
		at:   time.Now(),
	})
}

// LastDiskSlow returns the engine's last report of a slow disk operation
// (which operation on which file, and for how long it had lasted) and
// when it was made; "" if none since the store opened.
func (s *Store) LastDiskSlow() (string, time.Time) {
	d := s.slowLast.Load()
	if d == nil {
		return "", time.Time{}
	}
	return d.what, d.at
}

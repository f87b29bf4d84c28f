package node

import (
	"errors"
	"fmt"
	"time"
)

// A full disk.
//
// A store that refuses a write for want of space (its error has a method
// WaitForSpace() bool that returns true: package store's *FullError) has
// written nothing, and the same write succeeds once space returns. The node
// then:
//
//   - refuses new readings: each submitter gets an error that matches
//     ErrStoreFull, with the store's text (free space, what to do); no
//     reading is acknowledged that is not on disk;
//   - holds a block commit the store refused, with its blocks in memory,
//     unannounced, unrelayed and unacknowledged, and writes it again every
//     retry interval (WithSpaceRetry) until it is stored (then it is
//     announced as usual): the chain never rolls back, and what peers and
//     the miner were told stays true. Meanwhile it takes no new block
//     (AddBlock and AddBlocks fail with ErrStoreFull, which is no peer's
//     fault), the miner waits, and reads are served as before;
//   - logs once what is wrong and what to do, shows it in Storage (the
//     API's status and metrics), probes the store's free space every retry
//     interval, and logs again when it writes again.
//
// Any other store error of a block commit, or a store whose engine stopped
// (its error has a method Stopped() bool that returns true), makes the
// node fail (failLocked): it must be restarted.

// ErrStoreFull matches (errors.Is) the errors of readings and blocks that
// the node refuses because its disk is full. It writes again by itself
// once there is room.
var ErrStoreFull = errors.New("disk full")

// DefaultSpaceRetry is how often a node whose disk is full looks for space
// again.
const DefaultSpaceRetry = time.Second

// WithSpaceRetry sets how often a node whose disk is full looks for space
// again (default DefaultSpaceRetry).
func WithSpaceRetry(d time.Duration) Option { return func(c *config) { c.spaceRetry = d } }

// spaceState is the node's view of its disk space (guarded by n.mu).
type spaceState struct {
	err     error     // the store's last refusal for want of space; nil: it writes
	since   time.Time // when the refusals began
	holding bool      // a block commit waits for space
	probing bool      // a probe goroutine runs
}

// Storage is the state of a node's storage, for its status.
type Storage struct {
	// Full is set while the disk is full: Err says how full and what to
	// do, Since when it began.
	Full  bool
	Since time.Time
	Err   error
	// Failed is why the node stopped writing for good (nil: it did not).
	Failed error
}

// Storage returns the state of the node's storage.
func (n *Node) Storage() Storage {
	n.mu.Lock()
	defer n.mu.Unlock()
	return Storage{Full: n.space.err != nil, Since: n.space.since, Err: n.space.err, Failed: n.failed}
}

// waitForSpace reports whether err is a store's refusal for want of space:
// nothing written, and the same write may be tried again.
func waitForSpace(err error) bool {
	var w interface{ WaitForSpace() bool }
	return errors.As(err, &w) && w.WaitForSpace()
}

// storeStopped reports whether err says that the store writes nothing any
// more (its engine stopped after a failed write).
func storeStopped(err error) bool {
	var s interface{ Stopped() bool }
	return errors.As(err, &s) && s.Stopped()
}

// fullErr is the error for a reading or block refused for want of space.
func fullErr(what string, err error) error {
	return fmt.Errorf("%s (%w): %w", what, ErrStoreFull, err)
}

// spaceFullLocked records a refusal of the store for want of space: the
// first one is logged with what to do, and starts the probe. n.mu must be
// held.
func (n *Node) spaceFullLocked(err error) {
	first := n.space.err == nil
	n.space.err = err
	if !first {
		return
	}
	n.space.since = n.now()
	n.log.Error("disk full: refusing new readings and blocks until there is room; "+
		"free space on the data directory's file system (nothing stored is lost; the node writes again by itself)",
		"err", err)
	if c, ok := n.store.(interface{ CheckSpace() error }); ok && !n.space.probing {
		n.space.probing = true
		go n.probeSpace(c)
	}
}

// spaceOKLocked records that the store wrote again. n.mu must be held.
func (n *Node) spaceOKLocked() {
	if n.space.err == nil {
		return
	}
	n.log.Info("disk space is back: accepting readings and blocks again",
		"full_for", n.now().Sub(n.space.since).Round(time.Second))
	n.space.err, n.space.since = nil, time.Time{}
	n.signalLocked() // the miner may go on
}

// probeSpace asks the store every retry interval whether it may write,
// until it may (or the node failed), so that the status shows that space
// returned even when nothing is submitted.
func (n *Node) probeSpace(c interface{ CheckSpace() error }) {
	for {
		time.Sleep(n.spaceRetry)
		err := c.CheckSpace()
		n.mu.Lock()
		switch {
		case n.failed != nil || n.space.err == nil:
		case err == nil && !n.space.holding:
			n.spaceOKLocked()
		case err != nil:
			n.space.err = err // the latest free space
			n.mu.Unlock()
			continue
		default: // the held commit is written next: it says when
			n.mu.Unlock()
			continue
		}
		n.space.probing = false
		n.mu.Unlock()
		return
	}
}

// applyCommit writes pc to the store, and while the store refuses it for
// want of space, writes it again every retry interval. It returns nil once
// pc is stored, or the store's other error.
func (n *Node) applyCommit(pc *pendingCommit) error {
	for {
		err := n.timed(&n.disk.commit, func() error {
			return n.store.Apply(pc.blocks, pc.updates, pc.add, pc.remove)
		})
		n.mu.Lock()
		switch {
		case err == nil:
			n.space.holding = false
			n.spaceOKLocked()
		case waitForSpace(err):
			n.space.holding = true
			n.spaceFullLocked(err)
		default:
			n.space.holding = false
		}
		n.mu.Unlock()
		if err == nil || !waitForSpace(err) {
			return err
		}
		time.Sleep(n.spaceRetry)
	}
}

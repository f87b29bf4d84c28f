package node

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// A slow disk.
//
// A disk whose writes or syncs take seconds, or stall for a while and then
// recover (a SAN hiccup, a dying SSD, a noisy neighbour), fails nothing:
// the store's writes return once the disk answers, and what they wrote is
// stored. Before, the node waited as long as the disk did, everywhere a
// write was waited for: a reading's submitter had no answer for the whole
// stall, and every block a peer gossiped meanwhile was taken into the
// chain and queued for the writer, with a gossip validator and a writer
// goroutine each, without bound (a 15 s stall with a peer mining ten
// blocks a second: 150 blocks held, 300 goroutines more, 40 submissions
// unanswered). Reads never waited: nothing holds n.mu across a write.
//
// The node times its own store writes (a batch of readings, a block
// commit; real time, not the node's clock). A write still in flight after
// the slow-disk threshold (WithDiskSlow) makes the disk slow until it
// completes. Meanwhile:
//
//   - a new reading is refused at once with an error that matches
//     ErrDiskSlow and says it was not stored: nothing is queued behind the
//     stalled write;
//   - a reading already queued waits at most the write wait (WithWriteWait)
//     for its write, then is answered with an error that matches
//     ErrDiskSlow and says it may still be stored: its write goes on, and
//     the reading enters the pending set once it is durable;
//   - a block is refused (not taken into the chain) with ErrDiskSlow, no
//     peer's fault: gossip ignores it, a sync ends without penalty, the
//     miner waits; so are blocks while MaxQueuedCommits commits wait for
//     the writer, whatever their age;
//   - a caller whose block was taken waits at most the write wait (or its
//     context) for the block's commit, then gets ErrDiskSlow ("accepted but
//     not yet stored"): the commit goes on in order and the block is
//     announced once durable, never before; the caller does not relay it.
//     The miner alone waits for its block as long as the disk does, and
//     relays it then;
//   - the first slow write is logged with what to check, Storage reports
//     the disk slow (the API's status and metrics), and a write that
//     completes logs that the disk answers again.
//
// Nothing acknowledged is lost and nothing is stored twice: every write
// completes in order once the disk answers, and the node takes readings
// and blocks again by itself (a block refused meanwhile comes back by
// gossip or the sync).

// ErrDiskSlow matches (errors.Is) the errors of readings and blocks that
// the node refuses, or stops waiting for, because its disk is slow. Each
// error says whether what it answers may still be stored.
var ErrDiskSlow = errors.New("disk slow")

// DefaultDiskSlow is how long a store write may take before the node
// counts its disk as slow.
const DefaultDiskSlow = 2 * time.Second

// DefaultWriteWait is the longest a submitter, a gossip validator or a
// sync waits for the store write of its reading or block.
const DefaultWriteWait = 10 * time.Second

// MaxQueuedCommits is how many block commits may wait for the store's
// writer; past it, blocks are refused with ErrDiskSlow until it catches up.
const MaxQueuedCommits = 32

// WithDiskSlow sets how long a store write may take before the node
// counts its disk as slow (default DefaultDiskSlow); it must be positive.
func WithDiskSlow(d time.Duration) Option { return func(c *config) { c.diskSlow = d } }

// WithWriteWait sets the longest a submitter, a gossip validator or a sync
// waits for the store write of its reading or block before it is answered
// with ErrDiskSlow (default DefaultWriteWait); it must be positive (the
// miner alone waits without a limit).
func WithWriteWait(d time.Duration) Option { return func(c *config) { c.writeWait = d } }

// diskWatch times the node's store writes.
type diskWatch struct {
	slowAfter time.Duration
	wait      time.Duration
	batch     atomic.Int64 // when the batch of readings being written began (Unix ns); 0: none
	commit    atomic.Int64 // when the block commit being written began (Unix ns); 0: none
	slowSince time.Time    // the slow write logged; zero when none (guarded by n.mu)
}

// timed runs write, a store write, timed in t. One still running after
// the slow-disk threshold logs the disk slow (noteSlow), and its end then
// logs that the disk answers again (noteAnswered). A timer per write, not
// a watcher that ticks: an idle node is woken by nothing (every wake-up
// costs CPU, and 50 nodes on one machine pay it 50 times).
func (n *Node) timed(t *atomic.Int64, write func() error) error {
	t.Store(time.Now().UnixNano())
	alarm := time.AfterFunc(n.disk.slowAfter, n.noteSlow)
	err := write()
	t.Store(0)
	if !alarm.Stop() {
		n.noteAnswered()
	}
	return err
}

// oldestWrite returns what the oldest store write in flight writes and
// when it began; "" if none.
func (d *diskWatch) oldestWrite() (string, time.Time) {
	what, since := "", int64(0)
	if b := d.batch.Load(); b != 0 {
		what, since = "a batch of readings", b
	}
	if c := d.commit.Load(); c != 0 && (since == 0 || c < since) {
		what, since = "a block commit", c
	}
	if since == 0 {
		return "", time.Time{}
	}
	return what, time.Unix(0, since)
}

// slowErr returns an error matching ErrDiskSlow while a store write has
// lasted the slow-disk threshold or longer, else nil. It says what waits,
// for how long, and, if the store reported it, which disk operation.
func (n *Node) slowErr() error {
	what, since := n.disk.oldestWrite()
	if what == "" {
		return nil
	}
	waited := time.Since(since)
	if waited < n.disk.slowAfter {
		return nil
	}
	msg := fmt.Sprintf("%s has waited %s for the disk", what, waited.Round(100*time.Millisecond))
	if ls, ok := n.store.(interface{ LastDiskSlow() (string, time.Time) }); ok {
		if op, at := ls.LastDiskSlow(); op != "" && !at.Before(since) {
			msg += " (" + op + ")"
		}
	}
	return fmt.Errorf("%w: %s; check the disk (iostat -x 1, dmesg, SMART, the volume's latency); "+
		"the node resumes by itself once the write completes", ErrDiskSlow, msg)
}

// writeNotDone is why a caller stopped waiting for a store write that
// has lasted wait, on a disk not counted slow.
func writeNotDone(wait time.Duration) error {
	return fmt.Errorf("%w: its write has not completed in %v", ErrDiskSlow, wait)
}

// behindLocked returns why a block cannot be taken now for a slow disk:
// a store write lasts the slow-disk threshold, or MaxQueuedCommits
// commits wait for the writer. nil: it can. n.mu must be held.
func (n *Node) behindLocked() error {
	if n.store == nil {
		return nil
	}
	if err := n.slowErr(); err != nil {
		return fmt.Errorf("block not taken: %w", err)
	}
	if q := n.commits.queued(); q >= MaxQueuedCommits {
		return fmt.Errorf("block not taken (%w): %d block commits wait for the disk", ErrDiskSlow, q)
	}
	return nil
}

// DiskState is the state of a node's disk writes, for its status.
type DiskState struct {
	// Slow is set while a store write has lasted the slow-disk threshold
	// or longer: Err says what waits and what to check, Since when that
	// write began.
	Slow  bool
	Since time.Time
	Err   error
	// Wait is how long the oldest store write in flight has lasted (0:
	// none).
	Wait time.Duration
}

// Disk returns the state of the node's disk writes. It waits for nothing.
func (n *Node) Disk() DiskState {
	_, since := n.disk.oldestWrite()
	if since.IsZero() {
		return DiskState{}
	}
	err := n.slowErr()
	return DiskState{Slow: err != nil, Since: since, Err: err, Wait: time.Since(since)}
}

// noteSlow logs, once, that a store write has lasted the slow-disk
// threshold, with what to check.
func (n *Node) noteSlow() {
	n.mu.Lock()
	defer n.mu.Unlock()
	err := n.slowErr() // under n.mu: noteAnswered cannot have run for this write yet
	if err == nil || !n.disk.slowSince.IsZero() {
		return
	}
	_, n.disk.slowSince = n.disk.oldestWrite()
	n.log.Warn("disk slow: refusing new readings and blocks until the write completes; "+
		"nothing acknowledged is lost, and readings already queued may still be stored", "err", err)
}

// noteAnswered logs that the disk answers again once no store write has
// lasted the slow-disk threshold, and wakes the miner.
func (n *Node) noteAnswered() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.disk.slowSince.IsZero() || n.slowErr() != nil {
		return // not logged slow, or another write is still slow
	}
	n.log.Info("disk answers again: accepting readings and blocks",
		"slow_for", time.Since(n.disk.slowSince).Round(100*time.Millisecond))
	n.disk.slowSince = time.Time{}
	n.signalLocked() // the miner may go on
}

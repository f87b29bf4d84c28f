package node

import (
	"fmt"
	"sync"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// Group commit of submitted readings.
//
// A reading is acknowledged only once it is on disk (durable before
// acknowledged), and that sync (about a millisecond) is never waited for
// under n.mu, which readers, peers and the miner share. Submissions are
// group-committed in the shape of LevelDB's writer queue and etcd's WAL:
// the readings submitted while one batch syncs form the next batch, which
// a goroutine started by the first of its submitters writes in one durable
// store batch (Store.AddPending, one fsync); its submitters wait for it, at
// most the write wait (slow.go: on a slow disk the write goes on after they
// were answered). One batch is written at a time, in order, so the store's
// arrival order is the order in which readings enter the pool; a batch's
// sync runs while the batch before it waits for n.mu to enter the pool. No
// goroutine runs when nothing is submitted.
//
// Order with blocks. A reading enters the pending pool only after its batch
// is durable, and the miner takes readings from the pool only. So a block
// mined here never carries a reading whose write failed or has not
// finished: every reading of a block is durably pending, or is made durable
// by the block's own commit (a peer's block, recorded by addLocked). While
// its batch is written a reading is "storing": in no pool; a second
// submission of it waits for that batch, then is answered as known (or
// written again if the batch failed). If a block holding it connected
// meanwhile (a peer mined it), the reading is answered
// chain.ErrKnownReading ("already in the chain"), never acknowledged as
// pending: it is durable in the chain. The store leaves a reading its main
// chain holds out of a pending batch, so that case leaves no stale pending
// record whichever of the two commits came first.
//
// Failure. A batch the store cannot write leaves memory as it was (its
// readings never entered the pool): each of its submitters gets the error,
// nothing of it is mined, and memory and disk still agree, so the node does
// not stop for it (as before group commit). A batch refused for want of
// space is answered with ErrStoreFull (space.go); one that stopped the
// store's engine makes the node fail at once (failLocked), as a store that
// is really failing fails the next block commit, which stops it. A failed
// write may still have reached the disk: such a reading comes back pending
// after a restart, stored though not acknowledged, never the reverse.

// pendingWriter is the group-commit queue of submitted readings.
type pendingWriter struct {
	max     int                          // the pool's size: storing readings count against it
	storing map[chain.Hash]*pendingBatch // readings submitted, not yet answered (guarded by n.mu)

	// mu guards the queue. It is taken under n.mu (a submission joins a
	// batch) or alone (a writer hands the turn on without waiting for
	// n.mu), never the other way round.
	mu   sync.Mutex
	next *pendingBatch   // collecting submissions; nil if none
	busy bool            // a batch is being written
	last <-chan struct{} // done of the batch last sealed: the next one is answered after it
}

// pendingBatch is the readings written in one durable store batch.
type pendingBatch struct {
	entries []pendingEntry
	errs    []error         // each entry's answer, set before done is closed
	prev    <-chan struct{} // done of the batch written before; nil if none
	turn    chan struct{}   // closed when the batch is sealed and may be written
	done    chan struct{}   // closed once written and every answer is in errs
}

// sealLocked makes b the batch to write next. w.mu must be held.
func (w *pendingWriter) sealLocked(b *pendingBatch) {
	b.prev, w.last = w.last, b.done
	close(b.turn)
}

type pendingEntry struct {
	r     chain.Reading
	id    chain.Hash
	local bool      // submitted here, not gossiped by a peer
	at    time.Time // submission time
}

// storeReading adds a checked reading to the pending set through the group
// commit and returns its answer once its batch is durable. n.mu must be
// held; storeReading releases it.
func (n *Node) storeReading(e pendingEntry) error {
	w := &n.wr
	if held := n.heldLocked(); held >= w.max {
		n.mu.Unlock()
		return &chain.RuleError{Code: chain.ErrPoolFull,
			Detail: fmt.Sprintf("%d readings pending; try again when blocks are mined", held)}
	}
	if err := n.slowErr(); err != nil {
		// Nothing is queued behind a write the disk holds up (slow.go).
		n.mu.Unlock()
		return fmt.Errorf("reading not stored: %w", err)
	}
	w.mu.Lock()
	b := w.next
	owner := b == nil
	if owner {
		b = &pendingBatch{turn: make(chan struct{}), done: make(chan struct{})}
		w.next = b
	}
	i := len(b.entries)
	b.entries, b.errs = append(b.entries, e), append(b.errs, nil)
	if owner && !w.busy {
		// No batch is being written: seal this one and write it now.
		w.busy, w.next = true, nil
		w.sealLocked(b)
	}
	w.mu.Unlock()
	w.storing[e.id] = b
	n.mu.Unlock()
	if owner {
		go func() {
			<-b.turn // the previous batch is written and this one sealed
			n.writeBatch(b)
		}()
	}
	return n.awaitBatch(b, i, e.id)
}

// awaitBatch returns the answer to entry i of b, id, once b is written, or
// after the write wait an error that says it may still be stored
// (slow.go): the batch's write goes on.
func (n *Node) awaitBatch(b *pendingBatch, i int, id chain.Hash) error {
	t := time.NewTimer(n.disk.wait)
	defer t.Stop()
	select {
	case <-b.done:
		return b.errs[i]
	case <-t.C:
		return n.stillStoring(id)
	}
}

// stillStoring is the answer to a reading whose batch is still being
// written after the write wait.
func (n *Node) stillStoring(id chain.Hash) error {
	cause := n.slowErr()
	if cause == nil {
		cause = writeNotDone(n.disk.wait)
	}
	return fmt.Errorf("reading %s not yet stored, and it may still be: it enters the pending set if its write completes, "+
		"and is then answered as known if sent again: %w", id, cause)
}

// writeBatch writes a sealed batch durably (outside n.mu), hands the turn
// to the batch that collected meanwhile, so that its sync runs while this
// one waits for n.mu, and answers its submitters after those of the batch
// before (pool order is write order).
func (n *Node) writeBatch(b *pendingBatch) {
	rs := make([]chain.Reading, len(b.entries))
	for i := range b.entries {
		rs[i] = b.entries[i].r
	}
	err := n.timed(&n.disk.batch, func() error { return n.store.AddPending(rs...) })

	w := &n.wr
	w.mu.Lock()
	if next := w.next; next != nil {
		w.next = nil
		w.sealLocked(next)
	} else {
		w.busy = false
	}
	w.mu.Unlock()

	if b.prev != nil {
		<-b.prev
	}
	n.mu.Lock()
	accepted := false
	for i := range b.entries {
		b.errs[i] = n.settleLocked(&b.entries[i], err)
		accepted = accepted || b.errs[i] == nil
	}
	if accepted {
		n.signalLocked()
	}
	n.mu.Unlock()
	close(b.done)
}

// settleLocked answers one reading of a written batch: werr is the batch's
// write error. n.mu must be held.
func (n *Node) settleLocked(e *pendingEntry, werr error) error {
	delete(n.wr.storing, e.id)
	// In memory: a block that brought it while it was written is one the
	// chain holds there, and addReading looked in the store before.
	_, inChain := n.chain.RecentReadingHeight(e.id)
	switch {
	case werr != nil && waitForSpace(werr):
		n.spaceFullLocked(werr)
		return fullErr("reading not stored", werr)
	case werr != nil && storeStopped(werr):
		return fmt.Errorf("reading not stored: %w", n.failLocked(werr))
	case werr != nil:
		return fmt.Errorf("reading not stored: %w", werr)
	case n.failed != nil:
		return n.failed
	case inChain:
		// A peer's block brought it while it was written: it is durable
		// in the chain, not pending.
		return &chain.RuleError{Code: chain.ErrKnownReading, Detail: "reading " + e.id.Short() + " is already in the chain"}
	}
	n.spaceOKLocked()
	if err := n.pool.Add(e.r); err != nil {
		if chain.CodeOf(err) != chain.ErrPoolFull {
			return err // already pending: a reorganisation returned it meanwhile
		}
		// Its room was reserved before the write, and a reorganisation
		// meanwhile returned readings past the limit: a stored reading is
		// never refused for space (as at restart), so it goes in anyway.
		n.pool.Apply(&chain.Update{Returned: []chain.Reading{e.r}})
	}
	n.acceptedLocked(e)
	return nil
}

// acceptedLocked records a reading that joined the pool (without waking
// the waiters: the caller signals). n.mu must be held.
func (n *Node) acceptedLocked(e *pendingEntry) {
	if e.local {
		n.pool.MarkFirst(e.id) // proposed before relayed readings (buildBlock)
	}
	if e.local && len(n.submitted) < maxSubmitted {
		n.submitted[e.id] = e.at
	}
	if e.local && n.outbox != nil {
		select {
		case n.outbox <- e.r:
		default: // sent again later (rebroadcast)
		}
	}
}

// heldLocked is how many readings the pending set holds or will: pending,
// and being written. n.mu must be held.
func (n *Node) heldLocked() int { return len(n.wr.storing) + n.pool.Len() }

package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/p2pchain/p2pchain/internal/store"
)

// A failed store.
//
// A store that cannot answer a read (a disk error, damage) answers the
// chain's lookups "absent" (chain.Archive has no error to return) and
// fails: its Err says why, and it refuses every later write with that
// error. So nothing decided on such an answer is stored or announced: the
// commit of a block (writeCommit) or the batch of a reading (writeBatch)
// fails, which makes the node fail (failLocked) before anything is
// announced or acknowledged. A store that fails in the background (a
// flush that cannot write) stops a running node at once (watchStore).
// Queries tell a read failure from an absent block or reading
// (BlockByHeight and the like).

// storeErr returns why the node's store failed, or nil (also without a
// store).
func (n *Node) storeErr() error {
	if n.store == nil {
		return nil
	}
	return n.store.Err()
}

// watchStore makes the node fail as soon as its store fails, until ctx
// ends or the node failed otherwise.
func (n *Node) watchStore(ctx context.Context) {
	if n.store == nil {
		return
	}
	select {
	case <-n.store.Failed():
		n.mu.Lock()
		_ = n.failLocked(n.store.Err())
		n.mu.Unlock()
	case <-n.dead:
	case <-ctx.Done():
	}
}

// readFailed returns the error of a query whose lookup found nothing or
// could not read a block: the store's failure if it has failed (then the
// node fails too), else nil (really absent), or err if the store did not
// fail but the read did.
func (n *Node) readFailed(err error) error {
	if serr := n.storeErr(); serr != nil {
		n.mu.Lock()
		_ = n.failLocked(serr)
		n.mu.Unlock()
		return fmt.Errorf("cannot read the chain store: %w", serr)
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("cannot read the chain store: %w", err)
	}
	return nil
}

// fullStopError is a full disk that stops the node: on an authority
// network the consensus state must be on disk before the node votes, so
// it cannot wait for space as a proof-of-work node does (space.go). It
// matches errors.Is(err, ErrStoreFull), not the store's "retry once there
// is room".
type fullStopError struct {
	path string // the store directory, if known
	err  error  // the store's error
}

func (e *fullStopError) Error() string {
	where := "the data directory's file system"
	if e.path != "" {
		where = "the file system of " + e.path
	}
	return fmt.Sprintf("the disk is full: an authority node cannot wait for space, as its consensus state must be stored before it votes; "+
		"free space on %s, then start the node again (nothing it acknowledged is lost)", where)
}

// Is makes errors.Is(err, ErrStoreFull) true.
func (e *fullStopError) Is(target error) bool { return target == ErrStoreFull }

// fullStop returns the error that stops an authority node whose store
// refused a write for want of space (err), or err as it is for any other
// error.
func fullStop(err error) error {
	if !waitForSpace(err) {
		return err
	}
	var fe *store.FullError
	if errors.As(err, &fe) {
		return &fullStopError{path: fe.Path, err: err}
	}
	return &fullStopError{err: err}
}

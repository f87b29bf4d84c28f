package p2p

import (
	"context"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// syncer decides when and from whom to catch up. Its loop runs at most one
// sync per peer at a time; a request for a peer already being synced makes it
// run once more afterwards. It also polls every peer now and then, so a node
// that missed a gossiped block still catches up.
type syncer struct {
	h        *Host
	interval time.Duration
	requests chan peer.ID

	mu    sync.Mutex
	state SyncState
}

// SyncState is the progress of the current catch-up, if any.
type SyncState struct {
	Syncing bool
	Peer    peer.ID
	From    uint64 // our height when the sync started
	Height  uint64 // our height now
	Target  uint64 // the peer's height
}

func newSyncer(h *Host, interval time.Duration) *syncer {
	return &syncer{h: h, interval: interval, requests: make(chan peer.ID, 64)}
}

// request asks for a sync with p. It never blocks: if the queue is full the
// next poll covers p.
func (s *syncer) request(p peer.ID) {
	select {
	case s.requests <- p:
	default:
	}
}

func (s *syncer) loop(ctx context.Context) {
	defer s.h.wg.Done()
	active, again := map[peer.ID]bool{}, map[peer.ID]bool{}
	done := make(chan peer.ID)
	start := func(p peer.ID) {
		if active[p] {
			again[p] = true
			return
		}
		active[p] = true
		s.h.wg.Add(1)
		go func() {
			defer s.h.wg.Done()
			if err := s.syncWith(ctx, p); err != nil && ctx.Err() == nil {
				s.h.log.Debug("sync ended", "peer", p, "err", err)
			}
			select {
			case done <- p:
			case <-ctx.Done():
			}
		}()
	}
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-s.requests:
			start(p)
		case p := <-done:
			delete(active, p)
			if again[p] {
				delete(again, p)
				start(p)
			}
		case <-t.C:
			for _, p := range s.h.host.Network().Peers() {
				start(p)
			}
		}
	}
}

// syncWith catches up with p: a status handshake, then batches of blocks
// until our tip is at least as good as p's. Each request's locator starts at
// the last block of the previous batch, so a long branch that has not yet
// overtaken our main chain is fetched block after block, never twice.
func (s *syncer) syncWith(ctx context.Context, p peer.ID) error {
	theirs, err := s.h.exchangeStatus(ctx, p)
	if err != nil {
		return err
	}
	ours := s.h.ledger.Status()
	if !theirs.Better(ours) {
		return nil
	}
	start, lastLog := time.Now(), time.Now()
	from, fromHeight := ours.Tip, ours.Height
	s.setState(SyncState{Syncing: true, Peer: p, From: fromHeight, Height: fromHeight, Target: theirs.Height})
	defer s.setState(SyncState{})
	s.h.log.Info("syncing", "peer", p, "height", ours.Height, "target", theirs.Height)
	for theirs.Better(ours) {
		blocks, err := s.h.requestBlocks(ctx, p, s.h.ledger.Locator(from), MaxBatch)
		if len(blocks) > 0 {
			if _, aerr := s.h.ledger.AddBlocks(ctx, blocks); aerr != nil {
				if chain.IsPeerFault(aerr) {
					s.h.refuse(p, "sent an invalid block: "+aerr.Error())
				}
				return aerr
			}
		}
		if err != nil {
			return err
		}
		if len(blocks) == 0 {
			return nil // the peer has nothing after our locator: it moved to another branch
		}
		from = blocks[len(blocks)-1].Hash()
		ours = s.h.ledger.Status()
		got := blocks[len(blocks)-1].Header.Height
		s.setState(SyncState{Syncing: true, Peer: p, From: fromHeight, Height: got, Target: max(theirs.Height, got)})
		if time.Since(lastLog) > 2*time.Second {
			lastLog = time.Now()
			s.h.log.Info("syncing", "peer", p, "height", got, "target", theirs.Height,
				"percent", percent(got, theirs.Height))
		}
		if !theirs.Better(ours) {
			// Caught up with what the peer had; ask whether it moved on.
			if theirs, err = s.h.exchangeStatus(ctx, p); err != nil {
				return err
			}
		}
	}
	s.h.log.Info("synced", "peer", p, "height", ours.Height, "tip", ours.Tip.Short(),
		"seconds", time.Since(start).Round(time.Millisecond).Seconds())
	return nil
}

func percent(a, b uint64) int {
	if b == 0 {
		return 100
	}
	return int(min(100, a*100/b))
}

func (s *syncer) setState(st SyncState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state = st
}

func (s *syncer) State() SyncState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

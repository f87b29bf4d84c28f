package p2p

import (
	"context"
	"errors"
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
// after our locator until our tip is at least as good as p's.
func (s *syncer) syncWith(ctx context.Context, p peer.ID) error {
	theirs, err := s.h.exchangeStatus(ctx, p)
	if err != nil {
		return err
	}
	ours := s.h.ledger.Status()
	if !theirs.Better(ours) || theirs.Genesis != ours.Genesis {
		return nil
	}
	start, last := time.Now(), time.Now()
	from := ours.Height
	s.setState(SyncState{Syncing: true, Peer: p, From: from, Height: from, Target: theirs.Height})
	defer s.setState(SyncState{})
	s.h.log.Info("syncing", "peer", p, "height", ours.Height, "target", theirs.Height)
	for theirs.Better(ours) {
		blocks, err := s.h.requestBlocks(ctx, p, s.h.ledger.Locator(), MaxBatch)
		added := 0
		for _, b := range blocks {
			aerr := s.h.ledger.AddBlock(ctx, b)
			switch {
			case aerr == nil:
				added++
			case errors.Is(aerr, chain.ErrDuplicateBlock):
			case chain.IsPeerFault(aerr):
				s.h.refuse(p, "sent an invalid block: "+aerr.Error())
				return aerr
			default:
				return aerr
			}
		}
		if err != nil {
			if chain.IsPeerFault(err) {
				s.h.refuse(p, "sent a malformed block: "+err.Error())
			}
			return err
		}
		if added == 0 {
			return nil // nothing new: the peer has nothing better for us
		}
		ours = s.h.ledger.Status()
		if ours.Height > theirs.Height {
			theirs.Height = ours.Height // the peer grew while we synced
		}
		s.setState(SyncState{Syncing: true, Peer: p, From: from, Height: ours.Height, Target: theirs.Height})
		if time.Since(last) > 2*time.Second {
			last = time.Now()
			s.h.log.Info("syncing", "peer", p, "height", ours.Height, "target", theirs.Height,
				"percent", percent(ours.Height, theirs.Height))
		}
		if !theirs.Better(ours) {
			// Ask again in case the peer moved on meanwhile.
			if theirs, err = s.h.exchangeStatus(ctx, p); err != nil {
				return err
			}
		}
	}
	d := time.Since(start)
	s.h.log.Info("synced", "peer", p, "height", ours.Height, "blocks", ours.Height-min(from, ours.Height),
		"seconds", d.Round(time.Millisecond).Seconds())
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

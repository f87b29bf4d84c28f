package p2p

// Blocking: the operator cuts the node off from chosen peers, and undoes it.
// Unlike the refusal of misbehaving peers (gater.go), which the host decides,
// bounds by evicting the oldest and forgets after RefuseFor, a block is the
// operator's decision: it lasts until Unblock (or a restart: the list lives
// in memory only), and Block fails rather than evict when the list is full.

import (
	"errors"
	"fmt"
	"sort"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
)

// MaxBlocked caps the list of blocked peers.
const MaxBlocked = 4096

var (
	// ErrBlocked is wrapped by the error of Connect to a blocked peer.
	ErrBlocked = errors.New("blocked by this node's operator")
	// ErrRefused is wrapped by the error of Connect to a peer this node
	// refuses: for earlier misbehaviour, or found by the handshake to run
	// another network. The error says why.
	ErrRefused = errors.New("this node refuses the peer")
	// ErrTooManyBlocked is wrapped by the error of a Block that would list
	// more than MaxBlocked peers.
	ErrTooManyBlocked = fmt.Errorf("more than %d blocked peers", MaxBlocked)
)

// block adds ids to the blocked list, all of them or, if the list would
// then hold more than MaxBlocked, none.
func (g *gater) block(ids []peer.ID) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	fresh := map[peer.ID]struct{}{}
	for _, p := range ids {
		if _, ok := g.blocked[p]; !ok {
			fresh[p] = struct{}{}
		}
	}
	if n := len(g.blocked) + len(fresh); n > MaxBlocked {
		return fmt.Errorf("%d blocked peers already, %d more asked: %w; unblock some first", len(g.blocked), len(fresh), ErrTooManyBlocked)
	}
	for p := range fresh {
		g.blocked[p] = struct{}{}
	}
	return nil
}

func (g *gater) unblock(ids []peer.ID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range ids {
		delete(g.blocked, p)
	}
}

func (g *gater) isBlocked(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.blocked[p]
	return ok
}

func (g *gater) blockedPeers() []peer.ID {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]peer.ID, 0, len(g.blocked))
	for p := range g.blocked {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Block cuts the host off from peers until Unblock: it closes its
// connections to them, and refuses connections with them either way.
// Discovery does not dial them meanwhile; a bootstrap or remembered peer is
// dialled again once it is unblocked (others: Connect). It fails, blocking
// none of ids, on an invalid peer ID, on the host's own, or when the list
// would hold more than MaxBlocked peers (ErrTooManyBlocked). Blocking a
// blocked peer again does nothing.
func (h *Host) Block(ids ...peer.ID) error {
	for _, p := range ids {
		if err := p.Validate(); err != nil {
			return fmt.Errorf("block %q: %w", p, err)
		}
		if p == h.host.ID() {
			return fmt.Errorf("block %s: that is this node itself", p)
		}
	}
	if err := h.gater.block(ids); err != nil {
		return err
	}
	// Listed first, so that no new connection gets through while these
	// close.
	for _, p := range ids {
		h.peers.forget(p)
		_ = h.host.Network().ClosePeer(p)
	}
	if len(ids) > 0 {
		h.log.Info("blocked peers", "count", len(ids), "blocked", h.gater.blockedCount())
	}
	return nil
}

// Unblock lets peers connect again and be dialled: at once for bootstrap
// and remembered peers still kept by discovery, on Connect for others.
// Unblocking a peer that is not blocked does nothing.
func (h *Host) Unblock(ids ...peer.ID) {
	h.gater.unblock(ids)
	sw, _ := h.host.Network().(*swarm.Swarm)
	for _, p := range ids {
		if sw != nil {
			sw.Backoff().Clear(p)
		}
		h.disc.wake(p)
	}
	if len(ids) > 0 {
		h.log.Info("unblocked peers", "count", len(ids), "blocked", h.gater.blockedCount())
	}
}

// Blocked returns the blocked peers, sorted.
func (h *Host) Blocked() []peer.ID { return h.gater.blockedPeers() }

func (g *gater) blockedCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.blocked)
}

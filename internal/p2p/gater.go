package p2p

import (
	"container/list"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

const (
	// MaxRefused caps the refused-peer list; refusing one more peer evicts
	// the one refused longest ago. Peer IDs cost nothing to make, so the
	// list can only slow down an attacker, never stop one: it must not grow
	// without bound either.
	MaxRefused = 4096
	// RefuseFor is how long a peer stays refused.
	RefuseFor = 24 * time.Hour
)

// gater refuses connections to and from peers the node has cut off: peers on
// another genesis, peers that sent invalid blocks or broke the blocks
// protocol, and peers whose claimed status proved false too often. The list
// lives in memory only (a restart forgives everyone; a peer on another
// network is found out again by its first handshake), holds at most
// MaxRefused peers and forgets each after RefuseFor.
//
// Apart from that list it holds the peers the operator blocked (block.go):
// never forgotten nor evicted, only unblocked, and at most MaxBlocked.
type gater struct {
	mu      sync.Mutex
	max     int
	ttl     time.Duration
	now     func() time.Time
	order   *list.List // of *refusal, oldest first
	refused map[peer.ID]*list.Element
	blocked map[peer.ID]struct{}
}

type refusal struct {
	id     peer.ID
	reason string
	at     time.Time
}

func newGater() *gater {
	return &gater{max: MaxRefused, ttl: RefuseFor, now: time.Now, order: list.New(), refused: map[peer.ID]*list.Element{}, blocked: map[peer.ID]struct{}{}}
}

func (g *gater) refuse(p peer.ID, reason string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e, ok := g.refused[p]; ok {
		g.order.Remove(e)
	}
	g.refused[p] = g.order.PushBack(&refusal{id: p, reason: reason, at: g.now()})
	for g.order.Len() > g.max {
		oldest := g.order.Front()
		g.order.Remove(oldest)
		delete(g.refused, oldest.Value.(*refusal).id)
	}
}

func (g *gater) isRefused(p peer.ID) (string, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	e, ok := g.refused[p]
	if !ok {
		return "", false
	}
	r := e.Value.(*refusal)
	if g.now().Sub(r.at) >= g.ttl {
		g.order.Remove(e)
		delete(g.refused, p)
		return "", false
	}
	return r.reason, true
}

// size returns how many peers are on the list (expired ones included until
// they are looked up or evicted).
func (g *gater) size() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.refused)
}

// allowed reports whether connections with p may be made: p is neither
// refused nor blocked.
func (g *gater) allowed(p peer.ID) bool {
	_, bad := g.isRefused(p)
	return !bad && !g.isBlocked(p)
}

func (g *gater) InterceptPeerDial(p peer.ID) bool                 { return g.allowed(p) }
func (g *gater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return g.allowed(p) }
func (g *gater) InterceptAccept(network.ConnMultiaddrs) bool      { return true }
func (g *gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return g.allowed(p)
}
func (g *gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

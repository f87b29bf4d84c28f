package p2p

import (
	"sync"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// gater refuses connections to and from peers the node has cut off: peers on
// another genesis, and peers that sent invalid blocks.
type gater struct {
	mu      sync.Mutex
	refused map[peer.ID]string // peer -> reason
}

func newGater() *gater { return &gater{refused: map[peer.ID]string{}} }

func (g *gater) refuse(p peer.ID, reason string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refused[p] = reason
}

func (g *gater) isRefused(p peer.ID) (string, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r, ok := g.refused[p]
	return r, ok
}

func (g *gater) allowed(p peer.ID) bool { _, bad := g.isRefused(p); return !bad }

func (g *gater) InterceptPeerDial(p peer.ID) bool                 { return g.allowed(p) }
func (g *gater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return g.allowed(p) }
func (g *gater) InterceptAccept(network.ConnMultiaddrs) bool      { return true }
func (g *gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return g.allowed(p)
}
func (g *gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

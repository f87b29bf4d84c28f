package p2p

import (
	"fmt"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
)

// Default connection limits.
const (
	DefaultLowWater  = 32
	DefaultHighWater = 64
)

// WithConnLimits sets the connection manager's water marks (default
// DefaultLowWater, DefaultHighWater): when the host has more than high
// peers, it closes the least useful connections (never those to bootstrap
// peers, nor those younger than a minute) down to low. Peers found by mDNS
// or the DHT are dialled only while fewer than low of the host's peers are
// ones it dialled itself (inbound strangers do not switch discovery off). New fails
// unless 1 <= low <= high.
//
// High is also the most inbound connections the node keeps: after the
// handshake of one more, the inbound guard (evict.go) closes an inbound
// connection of a peer it dialled, or disconnects one of the peers that
// connected to it (and that it did not dial), the newcomer or another. The
// resource manager refuses inbound connections past High + InboundSpare at
// once, before their handshake (newResourceManager).
func WithConnLimits(low, high int) Option {
	return func(c *config) { c.lowWater, c.highWater = low, high }
}

func newConnManager(low, high int) (*connmgr.BasicConnMgr, error) {
	if low < 1 || low > high {
		return nil, fmt.Errorf("connection limits: low %d, high %d: want 1 <= low <= high", low, high)
	}
	return connmgr.NewConnManager(low, high)
}

// newResourceManager returns go-libp2p's default resource manager (its
// limits scaled to the machine's memory and file descriptors, as libp2p.New
// makes it) with one change: at most maxInbound inbound connections at once.
// The connection manager closes only connections older than its grace
// period (a minute), and the inbound guard acts only after a handshake, so
// without the cap a flood of fresh identities holds as many connections as
// the default limits allow: some hundreds to over a thousand, by the
// machine's memory. Outbound connections (bootstrap peers,
// discovery, dials asked for) are not capped by it.
func newResourceManager(maxInbound int) (network.ResourceManager, error) {
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	capped := rcmgr.PartialLimitConfig{System: rcmgr.ResourceLimits{ConnsInbound: rcmgr.LimitVal(maxInbound)}}
	return rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(capped.Build(limits.AutoScale())))
}

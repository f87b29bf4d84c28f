package p2p

import (
	"fmt"

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
// or the DHT are dialled only while the host has fewer than low. New fails
// unless 1 <= low <= high.
func WithConnLimits(low, high int) Option {
	return func(c *config) { c.lowWater, c.highWater = low, high }
}

func newConnManager(low, high int) (*connmgr.BasicConnMgr, error) {
	if low < 1 || low > high {
		return nil, fmt.Errorf("connection limits: low %d, high %d: want 1 <= low <= high", low, high)
	}
	return connmgr.NewConnManager(low, high)
}

package p2p

import (
	"errors"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// WithBootstrap adds bootstrap peers, each a full multiaddr ending in
// /p2p/<peer ID>. The host dials them at start and keeps a connection to each
// for as long as it runs: after a failed dial or a disconnection it dials
// again with exponential backoff (1 s doubling to 1 min, with jitter). A
// bootstrap peer refused by the connection gater (another network, invalid
// blocks) is not dialled again. Bootstrap peers are protected from the
// connection manager and seed the DHT. An address of this host itself is
// skipped, so one list can serve every node of a network. New fails with a
// clear error on an address that does not parse.
func WithBootstrap(addrs ...string) Option {
	return func(c *config) { c.bootstrap = append(c.bootstrap, addrs...) }
}

// exampleAddr is what a good peer address looks like, for error messages.
const exampleAddr = "/ip4/192.0.2.10/tcp/4001/p2p/12D3KooW..."

// ParsePeerAddr parses a full peer multiaddr (.../p2p/<peer ID>).
func ParsePeerAddr(s string) (*peer.AddrInfo, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("empty peer address: want a full multiaddr such as %s", exampleAddr)
	}
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return nil, fmt.Errorf("peer address %q is not a multiaddr (%v): want a full multiaddr such as %s", s, err, exampleAddr)
	}
	info, err := peer.AddrInfoFromP2pAddr(m)
	if err != nil {
		return nil, fmt.Errorf("peer address %q does not end in /p2p/<peer ID> (%v): want a full multiaddr such as %s", s, err, exampleAddr)
	}
	if len(info.Addrs) == 0 {
		return nil, fmt.Errorf("peer address %q has a peer ID but no network address: want a full multiaddr such as %s", s, exampleAddr)
	}
	return info, nil
}

// parseBootstrap parses bootstrap addresses, merging addresses of one peer
// and leaving out self.
func parseBootstrap(addrs []string, self peer.ID) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	index := map[peer.ID]int{}
	var errs []error
	for _, s := range addrs {
		info, err := ParsePeerAddr(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("bootstrap: %w", err))
			continue
		}
		if info.ID == self {
			continue
		}
		if i, ok := index[info.ID]; ok {
			out[i].Addrs = append(out[i].Addrs, info.Addrs...)
			continue
		}
		index[info.ID] = len(out)
		out = append(out, *info)
	}
	return out, errors.Join(errs...)
}

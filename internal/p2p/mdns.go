package p2p

import (
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// WithMDNS turns multicast DNS discovery on or off (default off; the
// p2pchain daemon turns it on). The host announces itself on every multicast
// interface under a service name of its network (MDNSServiceName) and dials
// the peers it hears of, so nodes on one LAN find each other with no address
// given, and nodes of other networks never hear of each other. A host that
// listens only on loopback has nothing to announce to a LAN: listen on the
// LAN address or on 0.0.0.0 for mDNS to be of use.
func WithMDNS(on bool) Option { return func(c *config) { c.mdns = on } }

// MDNSServiceName is the mDNS service name of the network with this genesis:
// "p2pchain-" and the first 16 hex digits of the genesis hash.
func MDNSServiceName(genesis chain.Hash) string { return "p2pchain-" + genesis.String()[:16] }

// mdnsNotifee hands the peers mDNS finds to the dialler.
type mdnsNotifee struct{ d *discovery }

func (n mdnsNotifee) HandlePeerFound(info peer.AddrInfo) {
	if info.ID == n.d.h.host.ID() {
		return
	}
	n.d.mdnsFound.Add(1)
	n.d.offer(info)
}

// startMDNS starts mDNS. A failure (no multicast interface, say) is logged,
// not fatal: the node still works with its other means of discovery.
func (d *discovery) startMDNS() {
	name := MDNSServiceName(d.h.ledger.Status().Genesis)
	s := mdns.NewMdnsService(d.h.host, name, mdnsNotifee{d})
	if err := s.Start(); err != nil {
		d.log.Warn("mDNS discovery is off: cannot start it", "service", name, "err", err)
		_ = s.Close()
		return
	}
	d.mdns = s
	d.log.Info("mDNS discovery on", "service", name)
}

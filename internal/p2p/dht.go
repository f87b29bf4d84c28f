package p2p

import (
	"context"
	"fmt"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	coredisc "github.com/libp2p/go-libp2p/core/discovery"
	"github.com/libp2p/go-libp2p/core/peer"
	drouting "github.com/libp2p/go-libp2p/p2p/discovery/routing"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// DHTProtocolPrefix prefixes the Kademlia DHT's protocol IDs
// (/p2pchain/kad/1.0.0), so our DHT is never mixed with the public IPFS one.
const DHTProtocolPrefix = "/p2pchain"

const (
	// DefaultRendezvousInterval is how often the host looks up its network's
	// rendezvous on the DHT.
	DefaultRendezvousInterval = time.Minute
	// readvertiseRounds: the host advertises itself at the rendezvous every
	// this many lookups, and at every lookup until its first advertisement
	// succeeds.
	readvertiseRounds = 10
	// rendezvousTimeout bounds one advertisement or lookup.
	rendezvousTimeout = 30 * time.Second
)

// WithDHT turns the Kademlia DHT on or off (default off). The host runs a
// DHT server under DHTProtocolPrefix, seeded only with its bootstrap and
// remembered peers (never the public IPFS bootstrap nodes), and meets the
// other nodes of its network at a rendezvous (RendezvousNamespace): it
// advertises itself there, looks up the others every rendezvous interval,
// and dials those it finds.
func WithDHT(on bool) Option { return func(c *config) { c.dht = on } }

// WithRendezvousInterval sets how often the DHT rendezvous is looked up
// (default DefaultRendezvousInterval); the host re-advertises itself every
// ten lookups. Tests use a short interval to converge quickly.
func WithRendezvousInterval(d time.Duration) Option {
	return func(c *config) { c.rendezvousInterval = d }
}

// RendezvousNamespace is where the nodes of the network with this genesis
// meet on the DHT.
func RendezvousNamespace(genesis chain.Hash) string {
	return "/p2pchain/rendezvous/1/" + genesis.String()
}

// startDHT starts the DHT and the rendezvous loop.
func (d *discovery) startDHT(ctx context.Context, interval time.Duration) error {
	allowed := func(_ any, p peer.ID) bool { return d.h.gater.allowed(p) }
	kad, err := dht.New(d.h.host,
		dht.Mode(dht.ModeServer),
		dht.ProtocolPrefix(DHTProtocolPrefix),
		dht.DisableValues(), // we need provider records only
		dht.BootstrapPeersFunc(d.dhtSeeds),
		dht.RoutingTableFilter(allowed),
		dht.QueryFilter(func(dht any, ai peer.AddrInfo) bool { return allowed(dht, ai.ID) }),
	)
	if err != nil {
		return fmt.Errorf("start the DHT: %w", err)
	}
	d.kad = kad
	d.h.wg.Add(1)
	go d.rendezvous(ctx, interval)
	return nil
}

// dhtSeeds are the peers the DHT starts from when its routing table is
// empty: the bootstrap peers and the peers remembered from the last run.
func (d *discovery) dhtSeeds() []peer.AddrInfo {
	seeds := append([]peer.AddrInfo(nil), d.boots...)
	if d.book != nil {
		seeds = append(seeds, d.book.infos()...)
	}
	return seeds
}

// rendezvous advertises this host at the network's rendezvous and dials the
// peers found there, every interval (with jitter).
func (d *discovery) rendezvous(ctx context.Context, interval time.Duration) {
	defer d.h.wg.Done()
	rd := drouting.NewRoutingDiscovery(d.kad)
	ns := RendezvousNamespace(d.h.ledger.Status().Genesis)
	advertised, round := false, 0
	delay := min(interval, time.Second) // the first round soon: bootstrap dials are quick
	for sleep(ctx, jitter(delay)) {
		delay = interval
		if d.kad.RoutingTable().Size() == 0 {
			_ = d.kad.Bootstrap(ctx) // seeds the table from dhtSeeds
			continue
		}
		if !advertised || round%readvertiseRounds == 0 {
			actx, cancel := context.WithTimeout(ctx, rendezvousTimeout)
			_, err := rd.Advertise(actx, ns)
			cancel()
			if err != nil {
				d.log.Debug("DHT: cannot advertise at the rendezvous", "err", err)
			} else {
				advertised = true
			}
		}
		round++
		fctx, cancel := context.WithTimeout(ctx, rendezvousTimeout)
		found, err := rd.FindPeers(fctx, ns, coredisc.Limit(2*d.low))
		if err != nil {
			cancel()
			d.log.Debug("DHT: cannot look up the rendezvous", "err", err)
			continue
		}
		for info := range found {
			if info.ID == d.h.host.ID() {
				continue
			}
			d.dhtFound.Add(1)
			d.offer(info)
		}
		cancel()
	}
}

package p2p

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
)

// Discovery: how a node finds the network and stays in it.
//
//	bootstrap.go  peers given by the operator: dialled at start and kept, with backoff
//	peerstore.go  peers remembered from the last run: dialled at start, a few at a time, dropped after failures
//	mdns.go       peers on the same LAN, found by multicast DNS
//	dht.go        peers anywhere, found at a rendezvous on the Kademlia DHT
//	connmgr.go    how many connections we keep
//
// This file holds what they share: the loop that keeps a connection to a
// given peer, the dialling of found peers, and the counters.

const (
	// minRedial and maxRedial bound the exponential backoff between dials
	// of a kept peer.
	minRedial = time.Second
	maxRedial = time.Minute
	// stableConn is how long a connection to a kept peer must last for its
	// backoff to start again from minRedial: a peer that drops us at once
	// is redialled ever more slowly.
	stableConn = time.Minute
	// dialTimeout bounds one dial.
	dialTimeout = 15 * time.Second
	// maxFoundDials is how many found peers, or remembered ones, are
	// dialled at once.
	maxFoundDials = 4
)

// DiscoveryStats counts what discovery did since the host started. A peer
// found again counts again.
type DiscoveryStats struct {
	MDNSFound  uint64 // peers reported by mDNS (ourselves excluded)
	DHTFound   uint64 // peers found at the DHT rendezvous (ourselves excluded)
	Dials      uint64 // dials made by discovery (bootstrap, remembered and found peers)
	DialErrors uint64 // of which failed
}

// DiscoveryStats returns the discovery counters.
func (h *Host) DiscoveryStats() DiscoveryStats {
	d := h.disc
	return DiscoveryStats{
		MDNSFound: d.mdnsFound.Load(), DHTFound: d.dhtFound.Load(),
		Dials: d.dials.Load(), DialErrors: d.dialErrors.Load(),
	}
}

// discovery is the host's discovery state. Its loops run on the host's
// context and wait group.
type discovery struct {
	h     *Host
	log   *slog.Logger
	found chan peer.AddrInfo // from mDNS and the DHT, to dialFound
	low   int                // dial found peers only while fewer of our dials are connected
	high  int                // and fewer peers than this in all (the connection manager's high water)

	mu      sync.Mutex
	kept    map[peer.ID]chan struct{} // kept peer -> signalled when it disconnects
	dialing map[peer.ID]bool          // found peers being dialled
	// Remembered peers left undialled because they are blocked
	// (dialRemembered), and the signal that one was unblocked.
	blockedRemembered map[peer.ID]bool
	unblocked         chan struct{}
	// Whether the host has only private or loopback addresses, and when
	// that was last looked at (onlyLocalAddrs).
	localOnly   bool
	localOnlyAt time.Time

	mdns      mdns.Service     // nil: off
	kad       *dht.IpfsDHT     // nil: off
	provStore *rendezvousStore // the DHT's provider records (dht.go); nil: DHT off
	book      *peerFile        // nil: no peerstore file
	boots     []peer.AddrInfo  // bootstrap peers, for the DHT

	mdnsFound, dhtFound, dials, dialErrors atomic.Uint64
	stopOnce, closeDHTOnce                 sync.Once
}

func newDiscovery(h *Host, low, high int) *discovery {
	return &discovery{
		h: h, log: h.log, low: low, high: high,
		found:   make(chan peer.AddrInfo, 64),
		kept:    map[peer.ID]chan struct{}{},
		dialing: map[peer.ID]bool{},

		blockedRemembered: map[peer.ID]bool{},
		unblocked:         make(chan struct{}, 1),
	}
}

// disconnected is called when the host has no connection left to p.
func (d *discovery) disconnected(p peer.ID) { d.wake(p) }

// wake tells p's keeper, if p is kept, to look at p again: it disconnected,
// or was unblocked; and dialRemembered, if p is a remembered peer it left
// for being blocked.
func (d *discovery) wake(p peer.ID) {
	d.mu.Lock()
	wake := d.kept[p]
	if d.blockedRemembered[p] {
		wake = d.unblocked
	}
	d.mu.Unlock()
	if wake != nil {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
}

// dial connects to info, bypassing the swarm's own dial backoff: the
// callers pace their dials themselves. They count a failure in dialErrors
// once they have acted on it, so that a test that sees the count sees what
// followed too.
func (d *discovery) dial(ctx context.Context, info peer.AddrInfo) error {
	d.dials.Add(1)
	if sw, ok := d.h.host.Network().(*swarm.Swarm); ok {
		sw.Backoff().Clear(info.ID)
	}
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	return d.h.host.Connect(ctx, info)
}

// outboundPeers counts the peers we have a connection to that we dialled.
// Only these count toward the low water mark for dialling found peers:
// inbound connections are the dialler's choice, and counting them would let
// whoever opens enough of them, with fresh identities and no handshake,
// stop us from dialling the peers we found.
func (d *discovery) outboundPeers() int {
	seen := map[peer.ID]bool{}
	for _, c := range d.h.host.Network().Conns() {
		if c.Stat().Direction == network.DirOutbound {
			seen[c.RemotePeer()] = true
		}
	}
	return len(seen)
}

func (d *discovery) connected(p peer.ID) bool {
	return d.h.host.Network().Connectedness(p) == network.Connected
}

// keepOpts says what keep keeps.
type keepOpts struct {
	what string // for the log: "bootstrap peer"
}

// keep starts a loop that dials info, waits while connected and dials
// again after a disconnection, with exponential backoff and jitter between
// failed dials. It stops when ctx ends or when the peer is refused by the
// gater.
func (d *discovery) keep(ctx context.Context, info peer.AddrInfo, opts keepOpts) {
	wake := make(chan struct{}, 1)
	d.mu.Lock()
	if _, dup := d.kept[info.ID]; dup {
		d.mu.Unlock()
		return
	}
	d.kept[info.ID] = wake
	d.mu.Unlock()
	d.h.wg.Add(1)
	go func() {
		defer d.h.wg.Done()
		defer func() {
			d.mu.Lock()
			delete(d.kept, info.ID)
			d.mu.Unlock()
		}()
		d.keepLoop(ctx, info, wake, opts)
	}()
}

func (d *discovery) keepLoop(ctx context.Context, info peer.AddrInfo, wake chan struct{}, opts keepOpts) {
	log := d.log.With("peer", info.ID)
	var delay time.Duration
	fails, blocked := 0, false
	for {
		if delay > 0 && !sleep(ctx, jitter(delay)) {
			return
		}
		if reason, refused := d.h.gater.isRefused(info.ID); refused {
			log.Info("no longer dialling refused "+opts.what, "reason", reason)
			return
		}
		if d.h.gater.isBlocked(info.ID) {
			// Not dialled, and no failure counted, until Unblock wakes us.
			if !blocked {
				log.Info("not dialling blocked " + opts.what)
				blocked = true
			}
			select {
			case <-ctx.Done():
				return
			case <-wake:
			case <-time.After(maxRedial): // in case a wake was missed
			}
			delay, fails = 0, 0
			continue
		}
		blocked = false
		if !d.connected(info.ID) {
			if err := d.dial(ctx, info); err != nil {
				if ctx.Err() != nil {
					return
				}
				fails++
				delay = nextDelay(delay)
				log.Debug("cannot reach "+opts.what, "attempt", fails, "retry_in", delay, "err", err)
				d.dialErrors.Add(1)
				continue
			}
			// The first try's success is routine (the node prints its
			// connections); one after failures is news.
			level := slog.LevelDebug
			if fails > 0 {
				level = slog.LevelInfo
			}
			log.Log(ctx, level, "connected to "+opts.what, "after_attempts", fails+1)
			fails = 0
		}
		up := time.Now()
		for d.connected(info.ID) {
			select {
			case <-ctx.Done():
				return
			case <-wake:
			case <-time.After(maxRedial): // in case a notification was missed
			}
		}
		if time.Since(up) >= stableConn {
			delay = minRedial
		} else {
			delay = nextDelay(delay)
		}
		log.Info("lost "+opts.what+", redialling", "in", delay)
	}
}

// nextDelay doubles the backoff delay, from minRedial up to maxRedial.
func nextDelay(d time.Duration) time.Duration {
	if d < minRedial {
		return minRedial
	}
	return min(2*d, maxRedial)
}

// jitter spreads d by ±20%, so that nodes which lost the same peer at the
// same time do not all dial it at the same instant.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d*4/5 + rand.N(d*2/5+1)
}

// sleep waits for d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// offer hands a found peer to dialFound. It never blocks, and is safe to call
// after the host is closed (mDNS may report a peer late).
func (d *discovery) offer(info peer.AddrInfo) {
	if info.ID == d.h.host.ID() || len(info.Addrs) == 0 {
		return
	}
	select {
	case d.found <- info:
	default: // full: the peer will be found again
	}
}

// dialFound dials the peers found by mDNS and the DHT, at most maxFoundDials
// at a time (one found while all are busy is dropped), while fewer peers
// than the connection manager's low water mark are connected by our own
// dials (outboundPeers).
func (d *discovery) dialFound(ctx context.Context) {
	defer d.h.wg.Done()
	sem := make(chan struct{}, maxFoundDials)
	for {
		var info peer.AddrInfo
		select {
		case <-ctx.Done():
			return
		case info = <-d.found:
		}
		// Our own dials count toward low (inbound strangers must not switch
		// discovery off), and high bounds them all: past it the connection
		// manager would trim, and dialling again would churn.
		if d.connected(info.ID) || d.outboundPeers() >= d.low || len(d.h.host.Network().Peers()) >= d.high {
			continue
		}
		if !d.h.gater.allowed(info.ID) { // refused or blocked
			continue
		}
		d.mu.Lock()
		busy := d.dialing[info.ID]
		d.mu.Unlock()
		if busy {
			continue
		}
		// A slot first, waited for here: a goroutine waiting per found
		// peer would let whoever answers mDNS or the DHT park as many as it
		// names; while this loop waits, found peers queue in d.found (64)
		// and the rest are dropped, to be found again.
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		d.mu.Lock()
		d.dialing[info.ID] = true
		d.mu.Unlock()
		d.h.wg.Add(1)
		go func() {
			defer d.h.wg.Done()
			defer func() { <-sem }()
			defer func() {
				d.mu.Lock()
				delete(d.dialing, info.ID)
				d.mu.Unlock()
			}()
			if err := d.dial(ctx, info); err != nil {
				d.dialErrors.Add(1)
				d.log.Debug("cannot reach found peer", "peer", info.ID, "err", err)
				return
			}
			d.log.Info("connected to found peer", "peer", info.ID)
		}()
	}
}

// start runs discovery as configured. It is called once the host serves
// its protocols, so found peers get a handshake at once.
func (d *discovery) start(ctx context.Context, cfg *config, boots []peer.AddrInfo) error {
	d.boots = boots
	d.h.wg.Add(1)
	go d.dialFound(ctx)
	for _, b := range boots {
		d.h.host.ConnManager().Protect(b.ID, "bootstrap")
		d.keep(ctx, b, keepOpts{what: "bootstrap peer"})
	}
	if cfg.peerFile != "" {
		d.book = openPeerFile(cfg.peerFile, d.h.ledger.Status().Genesis, d.log)
		d.startPeerFile(ctx)
	}
	if cfg.dht {
		if err := d.startDHT(ctx, cfg.rendezvousInterval); err != nil {
			return err
		}
	}
	if cfg.mdns {
		d.startMDNS()
	}
	return nil
}

// stop ends what start began that the host's context does not end. It runs
// before the libp2p host closes, so the peers we are connected to can still
// be written to the peerstore file.
func (d *discovery) stop() {
	d.stopOnce.Do(func() {
		if d.mdns != nil {
			_ = d.mdns.Close()
		}
		if d.book != nil {
			d.savePeerFile()
		}
	})
}

// closeDHT closes the DHT, after the libp2p host.
func (d *discovery) closeDHT() {
	d.closeDHTOnce.Do(func() {
		if d.kad != nil {
			if err := d.kad.Close(); err != nil {
				d.log.Debug("closing the DHT", "err", err)
			}
		}
	})
}

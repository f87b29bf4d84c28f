package p2p

import (
	"cmp"
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// InboundSpare is how many inbound connections over the high water mark
// the resource manager lets through to their handshake (newResourceManager):
// room for a newcomer to be weighed against the peers already there
// (inbound.choose) instead of being refused before anyone knows who it is.
// The inbound guard brings the count back to the high water mark as soon
// as a handshake ends.
const InboundSpare = 8

// syncedTag is the connection manager's tag of a peer whose blocks,
// fetched by sync, joined the chain here: such a peer is kept by the
// connection manager's trim and by the inbound guard. The tag decays, one
// a minute from syncedTagValue, so that it keeps a peer about ten minutes
// after the last sync from it that added blocks; and the inbound guard
// keeps at most maxSyncedKept peers for it, those with the highest values.
// An identity that wins a race to serve one new block must not be kept
// for as long as it stays, nor may many such identities hold every slot.
const (
	syncedTag      = "p2pchain:synced"
	syncedTagValue = 10
	syncedTagDecay = time.Minute
	maxSyncedKept  = 8
)

// newSyncedTag registers syncedTag with cm's decayer, or returns nil if
// cm has none (a host passed in with WithHost may have any manager), and
// then markSynced tags the peer plainly.
func newSyncedTag(cm connmgr.ConnManager) connmgr.DecayingTag {
	d, ok := connmgr.SupportsDecay(cm)
	if !ok {
		return nil
	}
	tag, err := d.RegisterDecayingTag(syncedTag, syncedTagDecay, connmgr.DecayFixed(1), connmgr.BumpSumBounded(0, syncedTagValue))
	if err != nil {
		return nil // registered already: a host shared by two of ours
	}
	return tag
}

// markSynced records that a sync from p added blocks to the chain.
func (h *Host) markSynced(p peer.ID) {
	if h.syncedTag != nil {
		_ = h.syncedTag.Bump(p, syncedTagValue)
		return
	}
	h.host.ConnManager().TagPeer(p, syncedTag, syncedTagValue)
}

// inbound keeps the node's inbound connections at most max, choosing after
// each handshake which leaves when there is one too many: an inbound
// connection of a peer the node dialled (it keeps the node's), else a peer
// that connected to the node (and that it did not dial itself). Refusing
// every newcomer once the slots are full, as the resource manager's cap
// alone does, lets a stream of fresh identities (free to make) hold every
// slot the established peers leave, so that an honest new peer is refused
// while it lasts. The choice
// (choose) keeps the peers that proved useful and the longest-connected
// half of the rest, and evicts the newest peer of the address group that
// holds the most of the others: identities from a few networks then push
// out each other, not a newcomer from elsewhere.
type inbound struct {
	h       host.Host
	max     int
	kick    chan struct{} // a new inbound connection: look again
	evicted atomic.Uint64
}

func newInbound(h host.Host, max int) *inbound {
	return &inbound{h: h, max: max, kick: make(chan struct{}, 1)}
}

// connected is called for every new connection; it does not block.
func (in *inbound) connected(c network.Conn) {
	if c.Stat().Direction != network.DirInbound {
		return
	}
	select {
	case in.kick <- struct{}{}:
	default: // a look is due already
	}
}

// loop evicts peers over the limit after each new inbound connection,
// until ctx ends.
func (in *inbound) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-in.kick:
		}
		peers, extra := in.peers(time.Now())
		// Connections, not peers, are counted: the resource manager's cap
		// is on connections, and one peer may hold several (up to its
		// default per-peer limit of 8), so that a few identities could
		// otherwise fill every slot, the spare ones too, with no eviction.
		// So are the inbound connections of peers the node dialled (extra):
		// the cap counts them, and such a peer (one that discovery found,
		// say) could otherwise hold 8 slots each, unseen. Those go first,
		// newest first: the peer keeps the node's own connection.
		conns := len(extra)
		for _, p := range peers {
			conns += p.conns
		}
		slices.SortFunc(extra, func(a, b network.Conn) int { return b.Stat().Opened.Compare(a.Stat().Opened) })
		for ; conns > in.max && len(extra) > 0; conns-- {
			_ = extra[0].Close()
			extra = extra[1:]
		}
		for conns > in.max {
			i := choose(peers)
			if i < 0 {
				break // every one is kept: the spare slots hold the rest
			}
			_ = in.h.Network().ClosePeer(peers[i].id)
			in.evicted.Add(1)
			conns -= peers[i].conns
			peers = slices.Delete(peers, i, i+1)
		}
	}
}

// inboundPeer is what choose weighs of a peer that connected to the node.
type inboundPeer struct {
	id     peer.ID
	group  netip.Prefix  // its address group (addrGroup)
	age    time.Duration // since its oldest connection opened
	conns  int           // how many connections it holds
	useful bool          // protected or tagged by the connection manager (keptValue)
	tagged int           // the value of the tags that keep it, when not protected
}

// peers returns the connected peers all of whose connections they opened,
// and the inbound connections of the peers the node has a connection to
// that it opened.
func (in *inbound) peers(now time.Time) (out []inboundPeer, extra []network.Conn) {
	net := in.h.Network()
	cm := in.h.ConnManager()
	for _, p := range net.Peers() {
		conns := net.ConnsToPeer(p)
		if len(conns) == 0 {
			continue
		}
		ip := inboundPeer{id: p, conns: len(conns)}
		ours := false
		var opened time.Time
		for _, c := range conns {
			st := c.Stat()
			if st.Direction != network.DirInbound {
				ours = true
				break
			}
			if opened.IsZero() || st.Opened.Before(opened) {
				opened = st.Opened
				ip.group = addrGroup(c.RemoteMultiaddr())
			}
		}
		if ours {
			for _, c := range conns {
				if c.Stat().Direction == network.DirInbound {
					extra = append(extra, c)
				}
			}
			continue
		}
		ip.age = now.Sub(opened)
		if cm.IsProtected(p, "") {
			ip.useful = true
		} else if t := cm.GetTagInfo(p); t != nil {
			ip.tagged = keptValue(t)
			ip.useful = ip.tagged > 0
		}
		out = append(out, ip)
	}
	// Kept for their tags alone: at most maxSyncedKept, the highest
	// values first (the most recent syncs), then the longest connected.
	var tagged []int
	for i, p := range out {
		if p.tagged > 0 {
			tagged = append(tagged, i)
		}
	}
	if len(tagged) > maxSyncedKept {
		slices.SortStableFunc(tagged, func(a, b int) int {
			return cmp.Or(cmp.Compare(out[b].tagged, out[a].tagged), cmp.Compare(out[b].age, out[a].age))
		})
		for _, i := range tagged[maxSyncedKept:] {
			out[i].useful = false
		}
	}
	return out, extra
}

// deliveryTagPrefix begins the names of GossipSub's decaying tags of
// the peers that delivered a topic's message first, or while the first
// copy was being validated.
const deliveryTagPrefix = "pubsub-deliveries:"

// keptValue is the value of a peer's tags that keeps it from the inbound
// guard: all but GossipSub's delivery tags. Those cost an identity
// nothing (it relays a block or reading the network already has, and
// every identity that sends a copy while the first is validated is tagged
// too) and last up to 150 minutes, so that identities relaying one block
// would hold every slot, the spare ones too, and a newcomer would be
// refused again.
func keptValue(t *connmgr.TagInfo) int {
	v := t.Value
	for name, tv := range t.Tags {
		if strings.HasPrefix(name, deliveryTagPrefix) {
			v -= tv
		}
	}
	return v
}

// choose returns the index of the peer to evict from peers, or -1 when
// every one is kept. Kept: the useful ones (bootstrap peers, gossip mesh
// peers, up to maxSyncedKept peers that synced blocks to us; not those
// that only delivered gossip messages, keptValue), then the
// longest-connected half of the others. Of the rest, the newest peer of
// the largest address group (by the connections its peers hold) leaves;
// between groups of one size, the one whose newest peer is newest. A newcomer from a group of its own thus
// stays while any group holds two of the rest; when all are alone it is
// the newest, and leaves, as the cap alone would have refused it.
func choose(peers []inboundPeer) int {
	var rest []int
	for i, p := range peers {
		if !p.useful {
			rest = append(rest, i)
		}
	}
	slices.SortStableFunc(rest, func(a, b int) int { return cmp.Compare(peers[b].age, peers[a].age) }) // oldest first
	rest = rest[len(rest)/2:]
	if len(rest) == 0 {
		return -1
	}
	type group struct {
		n      int
		newest int // index into peers
	}
	groups := map[netip.Prefix]*group{}
	for _, i := range rest {
		g := groups[peers[i].group]
		if g == nil {
			g = &group{newest: i}
			groups[peers[i].group] = g
		}
		g.n += max(peers[i].conns, 1)
		if peers[i].age < peers[g.newest].age {
			g.newest = i
		}
	}
	var pick *group
	for _, i := range rest { // in a fixed order: the map's is not
		g := groups[peers[i].group]
		if pick == nil || g.n > pick.n || g.n == pick.n && peers[g.newest].age < peers[pick.newest].age {
			pick = g
		}
	}
	return pick.newest
}

// addrGroup returns the address group of a connection's remote address:
// its IPv4 /16 or IPv6 /32, the share of the address space that one
// operator most often holds. An address that is not IP is in the zero
// group.
func addrGroup(a ma.Multiaddr) netip.Prefix {
	ip, err := manet.ToIP(a)
	if err != nil {
		return netip.Prefix{}
	}
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Prefix{}
	}
	addr = addr.Unmap()
	bits := 16
	if addr.Is6() {
		bits = 32
	}
	p, err := addr.Prefix(bits)
	if err != nil {
		return netip.Prefix{}
	}
	return p
}

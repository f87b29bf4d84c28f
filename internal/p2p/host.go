package p2p

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	noise "github.com/libp2p/go-libp2p/p2p/security/noise"
	tls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2pchain/p2pchain/internal/bft"
	"github.com/p2pchain/p2pchain/internal/chain"
)

// Ledger is what the network needs from the node that owns the chain. All
// methods are called from many goroutines at once.
type Ledger interface {
	Params() chain.Params
	Status() chain.Status
	// Locator returns a block locator from the known block from (the
	// tip if from is unknown or zero).
	Locator(from chain.Hash) []chain.Hash
	BlocksAfter(locator []chain.Hash, max, maxBytes int) ([]*chain.Block, error)
	// AddBlock validates and adds a block, returning the chain's rule error
	// (see chain.IsPeerFault) if it is not accepted.
	AddBlock(ctx context.Context, b *chain.Block) error
	// AddBlocks adds a batch in order, skipping known blocks, and stops at
	// the first block not accepted, returning how many were newly added and
	// that block's error.
	AddBlocks(ctx context.Context, blocks []*chain.Block) (int, error)
	// TipBlock returns the main-chain tip, which a sync announces.
	TipBlock() *chain.Block
	// IsMainChain reports whether hash is a block of the main chain.
	IsMainChain(hash chain.Hash) bool
	// HasBlock reports whether hash is a known block of any branch.
	HasBlock(hash chain.Hash) bool
}

// Host is a running p2pchain network endpoint.
type Host struct {
	host   host.Host
	ps     *pubsub.PubSub
	topic  *pubsub.Topic
	ledger Ledger
	nearby func() map[chain.Hash]networkName // the networks a refusal can name (nearbyNetworks), made on first use
	log    *slog.Logger
	gater  *gater
	sync   *syncManager
	peers  *peerBook
	mesh   *meshTracer
	// inbound evicts a peer that connected to the node when one too many
	// did (evict.go).
	inbound *inbound
	// syncedTag marks peers whose blocks a sync added (evict.go); nil:
	// the connection manager has no decayer, a plain tag is used.
	syncedTag connmgr.DecayingTag
	disc      *discovery

	// Authority networks (consensus.go).
	cons      ConsensusLedger
	consTopic *pubsub.Topic
	readTopic *pubsub.Topic

	metrics counters
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

type counters struct {
	gossipBytesIn, gossipBytesOut atomic.Uint64
	syncBytesIn, syncBytesOut     atomic.Uint64
	rejected                      atomic.Uint64 // gossiped blocks rejected
	malformed, oversized          atomic.Uint64 // blocks from peers (gossip or sync) that never reached the ledger
	gossipThrottled               atomic.Uint64 // gossiped blocks over their relayer's budget
	streamsReset                  atomic.Uint64 // streams reset for a peer's limits
}

type config struct {
	key          ed25519.PrivateKey
	listen       []string
	log          *slog.Logger
	syncInterval time.Duration
	limits       limits // peers.go; tests shrink them

	// discovery: bootstrap.go, mdns.go, dht.go, connmgr.go, peerstore.go
	bootstrap           []string
	mdns, dht           bool
	rendezvousInterval  time.Duration
	lowWater, highWater int
	peerFile            string

	userAgent string

	host host.Host // WithHost: run on this host instead of building one
}

// Option configures a Host.
type Option func(*config)

// WithKey sets the host's identity (default: a new random key).
func WithKey(k ed25519.PrivateKey) Option { return func(c *config) { c.key = k } }

// WithListenAddrs sets the multiaddrs to listen on (default: a random TCP and
// QUIC port on 127.0.0.1). New fails unless it listens on every one.
func WithListenAddrs(addrs ...string) Option { return func(c *config) { c.listen = addrs } }

// WithHost makes New run on h, a libp2p host the caller built (on a
// simulated network, say), instead of building its own: the identity and
// the addresses are h's, and WithKey, WithListenAddrs, WithUserAgent and
// the water marks of WithConnLimits (not the dialling threshold) are not
// used, nor are the listen checks. Everything above the host is the same:
// GossipSub with its scoring, the validators, the status and blocks
// protocols, the sync manager, the peer limits and discovery. The host's
// own connection gater and manager apply, not the ones New installs, so a
// refused peer is not turned away before its handshake, only disconnected
// after it. Close closes h, and so does New if it fails.
func WithHost(h host.Host) Option { return func(c *config) { c.host = h } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithSyncInterval sets how often every peer is asked for its status
// (default 10 s).
func WithSyncInterval(d time.Duration) Option { return func(c *config) { c.syncInterval = d } }

// DefaultUserAgent is the agent version Identify announces unless
// WithUserAgent sets another.
const DefaultUserAgent = "p2pchain"

// IdentifyProtocolVersion is the protocol version Identify announces: the
// p2pchain protocol this host speaks (docs/PROTOCOL.md), informative only.
var IdentifyProtocolVersion = fmt.Sprintf("p2pchain/%d", chain.HeaderVersion)

// WithUserAgent sets the agent version Identify announces to peers, such as
// "p2pchain/0.1.0" (default DefaultUserAgent).
func WithUserAgent(ua string) Option { return func(c *config) { c.userAgent = ua } }

// ListenAddrs returns the TCP and QUIC multiaddrs for ip and port (0: random).
func ListenAddrs(ip string, port int) []string {
	proto := "ip4"
	if strings.Contains(ip, ":") {
		proto = "ip6"
	}
	return []string{
		fmt.Sprintf("/%s/%s/tcp/%d", proto, ip, port),
		fmt.Sprintf("/%s/%s/udp/%d/quic-v1", proto, ip, port),
	}
}

// New starts a host serving ledger. Close stops it. It fails, listening on
// nothing, if it cannot listen on each of its listen addresses; when a port
// is taken (by another node, most likely) the error wraps ErrPortInUse and
// names the port and the transport.
func New(ctx context.Context, ledger Ledger, opts ...Option) (*Host, error) {
	cfg := config{
		listen:       ListenAddrs("127.0.0.1", 0),
		log:          slog.New(slog.NewTextHandler(io.Discard, nil)),
		syncInterval: 10 * time.Second,
		limits:       defaultLimits(),

		rendezvousInterval: DefaultRendezvousInterval,
		lowWater:           DefaultLowWater,
		highWater:          DefaultHighWater,
		userAgent:          DefaultUserAgent,
	}
	for _, o := range opts {
		o(&cfg)
	}
	priv, boots, err := prepare(&cfg)
	if err != nil {
		if cfg.host != nil {
			_ = cfg.host.Close()
		}
		return nil, err
	}
	g := newGater()
	lh := cfg.host
	if lh == nil {
		if lh, err = newLibp2pHost(&cfg, priv, g); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	h := &Host{host: lh, ledger: ledger, log: cfg.log, gater: g, peers: newPeerBook(cfg.limits), mesh: newMeshTracer(), cancel: cancel}
	h.nearby = sync.OnceValue(func() map[chain.Hash]networkName { return nearbyNetworks(ledger.Params()) })
	h.sync = newSyncManager(h, cfg.syncInterval)
	h.disc = newDiscovery(h, cfg.lowWater, cfg.highWater)
	h.inbound = newInbound(lh, cfg.highWater)
	h.syncedTag = newSyncedTag(lh.ConnManager())
	params := ledger.Params()
	h.ps, err = pubsub.NewGossipSub(ctx, lh, append(GossipOptions(MaxGossipSize(params)),
		pubsub.WithRawTracer(h.mesh),
		scoreOption(BlocksTopic(ledger.Status().Genesis)),
		subscriptionFilter(ledger.Status().Genesis),
	)...)
	if err == nil {
		err = h.joinBlocks(ctx)
	}
	if err == nil {
		err = h.joinConsensus(ctx)
	}
	if err != nil {
		cancel()
		_ = lh.Close()
		return nil, err
	}
	if fr, ok := ledger.(FaultReporter); ok {
		fr.OnPeerFault(func(from, reason string) {
			h.metrics.rejected.Add(1)
			h.refuse(peer.ID(from), reason)
		})
	}
	lh.SetStreamHandler(StatusProtocol, h.handleStatus)
	lh.SetStreamHandler(BlocksProtocol, h.handleBlocks)
	lh.Network().Notify(&network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			if !g.allowed(c.RemotePeer()) {
				// Refused or blocked while this connection was being set up.
				go func() { _ = c.Close() }()
				return
			}
			h.peers.add(c.RemotePeer())
			h.inbound.connected(c)
			h.sync.request(c.RemotePeer(), false) // handshake, then catch up if behind
		},
		DisconnectedF: func(n network.Network, c network.Conn) {
			if n.Connectedness(c.RemotePeer()) != network.Connected {
				h.peers.forget(c.RemotePeer())
				h.disc.disconnected(c.RemotePeer())
			}
		},
	})
	h.wg.Add(2)
	go h.sync.loop(ctx)
	go func() {
		defer h.wg.Done()
		h.inbound.loop(ctx)
	}()
	if err := h.disc.start(ctx, &cfg, boots); err != nil {
		_ = h.Close()
		return nil, err
	}
	return h, nil
}

// MaxGossipSize is the largest GossipSub RPC frame a node of a network
// with params accepts: room for the largest consensus message of an
// authority network (an 8-byte nonce, a proposal and its block).
func MaxGossipSize(params chain.Params) int {
	return nonceSize + bft.ProposalSize + params.MaxBlockSize() + 1024
}

// prepare checks cfg and returns the key for the host New builds (nil
// with WithHost) and the bootstrap peers.
func prepare(cfg *config) (crypto.PrivKey, []peer.AddrInfo, error) {
	var priv crypto.PrivKey
	var self peer.ID
	if cfg.host != nil {
		self = cfg.host.ID()
	} else {
		if cfg.key == nil {
			k, err := GenerateKey()
			if err != nil {
				return nil, nil, err
			}
			cfg.key = k
		}
		var err error
		if priv, err = libp2pKey(cfg.key); err != nil {
			return nil, nil, err
		}
		if self, err = peer.IDFromPrivateKey(priv); err != nil {
			return nil, nil, err
		}
	}
	boots, err := parseBootstrap(cfg.bootstrap, self)
	if err != nil {
		return nil, nil, err
	}
	if cfg.syncInterval <= 0 {
		return nil, nil, fmt.Errorf("sync interval %v: want a positive duration", cfg.syncInterval)
	}
	if cfg.rendezvousInterval <= 0 {
		return nil, nil, fmt.Errorf("rendezvous interval %v: want a positive duration", cfg.rendezvousInterval)
	}
	return priv, boots, nil
}

// newLibp2pHost builds the host of a node: TCP and QUIC on the listen
// addresses, each of which must listen, with g as its gater.
func newLibp2pHost(cfg *config, priv crypto.PrivKey, g *gater) (host.Host, error) {
	cm, err := newConnManager(cfg.lowWater, cfg.highWater)
	if err != nil {
		return nil, err
	}
	rm, err := newResourceManager(cfg.highWater + InboundSpare)
	if err != nil {
		_ = cm.Close()
		return nil, err
	}
	listen, err := parseListen(cfg.listen)
	if err == nil {
		// A port in use is found before go-libp2p logs its own failure.
		err = listenFailure(listen)
	}
	if err != nil {
		_ = cm.Close()
		_ = rm.Close()
		return nil, err
	}
	lh, err := libp2p.New(
		libp2p.Identity(priv),
		libp2p.ListenAddrs(listen...),
		// Without port reuse, a TCP port another process listens on is an
		// error here, as a UDP port is, instead of two nodes sharing it.
		libp2p.Transport(tcp.NewTCPTransport, tcp.DisableReuseport()),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Security(tls.ID, tls.New),
		libp2p.ConnectionGater(g),
		libp2p.ConnectionManager(cm),
		libp2p.ResourceManager(rm),
		libp2p.DisableRelay(),
		libp2p.UserAgent(cfg.userAgent),
		libp2p.ProtocolVersion(IdentifyProtocolVersion),
	)
	if err != nil {
		_ = cm.Close()
		_ = rm.Close()
		if perr := listenFailure(listen); perr != nil {
			return nil, perr
		}
		return nil, fmt.Errorf("start libp2p host on %v: %w", cfg.listen, err)
	}
	// The swarm starts when at least one address listens and only logs the
	// others: every address asked for must listen.
	if missing := notListening(lh, listen); len(missing) > 0 {
		_ = lh.Close()
		if perr := listenFailure(missing); perr != nil {
			return nil, perr
		}
		return nil, fmt.Errorf("could not listen on %v; try again, or pick another port", missing)
	}
	return lh, nil
}

// Close stops the host and waits for its goroutines. It writes the
// peerstore file, if any, before it disconnects.
func (h *Host) Close() error {
	h.cancel()
	h.disc.stop()
	err := h.host.Close()
	h.disc.closeDHT()
	h.wg.Wait()
	return err
}

// ID returns the host's peer ID.
func (h *Host) ID() peer.ID { return h.host.ID() }

// Addrs returns the host's listen addresses with its peer ID appended: what
// another node passes to Connect.
func (h *Host) Addrs() []ma.Multiaddr {
	info := peer.AddrInfo{ID: h.host.ID(), Addrs: h.host.Addrs()}
	addrs, _ := peer.AddrInfoToP2pAddrs(&info)
	sort.Slice(addrs, func(i, j int) bool { return addrs[i].String() < addrs[j].String() })
	return addrs
}

// TCPAddr returns the first full TCP address, the one to give the next node.
func (h *Host) TCPAddr() ma.Multiaddr {
	for _, a := range h.Addrs() {
		if _, err := a.ValueForProtocol(ma.P_TCP); err == nil {
			return a
		}
	}
	return nil
}

// TCPPort returns the TCP port the host listens on (0 if none): for a host
// started on any free port, the one it got.
func (h *Host) TCPPort() int {
	a := h.TCPAddr()
	if a == nil {
		return 0
	}
	v, err := a.ValueForProtocol(ma.P_TCP)
	if err != nil {
		return 0
	}
	p, err := strconv.Atoi(v)
	if err != nil {
		return 0
	}
	return p
}

// Connect dials a peer given as a full multiaddr (.../p2p/<peer ID>), and
// waits for the status handshake that follows, until ctx ends: a peer of
// another network is refused by it, which Connect returns rather than
// report a connection about to be cut. A peer whose handshake has not
// answered by then counts as connected.
func (h *Host) Connect(ctx context.Context, addr string) error {
	m, err := ma.NewMultiaddr(addr)
	if err != nil {
		return fmt.Errorf("bad multiaddr %q: %w (want e.g. /ip4/127.0.0.1/tcp/10000/p2p/12D3KooW...)", addr, err)
	}
	info, err := peer.AddrInfoFromP2pAddr(m)
	if err != nil {
		return fmt.Errorf("multiaddr %q has no /p2p/<peer ID> part: %w", addr, err)
	}
	if info.ID == h.host.ID() {
		return errors.New("that address is this node itself")
	}
	if reason, refused := h.gater.isRefused(info.ID); refused {
		return fmt.Errorf("%w %s: %s", ErrRefused, info.ID, reason)
	}
	if h.gater.isBlocked(info.ID) {
		return fmt.Errorf("peer %s is %w; unblock it first", info.ID, ErrBlocked)
	}
	// A user asking to connect means now: forget earlier failed dials.
	if sw, ok := h.host.Network().(*swarm.Swarm); ok {
		sw.Backoff().Clear(info.ID)
	}
	if err := h.host.Connect(ctx, *info); err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	connected := time.Now()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	wait := time.NewTimer(statusTimeout) // the handshake's own bound
	defer wait.Stop()
	for {
		if reason, refused := h.gater.isRefused(info.ID); refused {
			return fmt.Errorf("%w %s after the handshake: %s", ErrRefused, info.ID, reason)
		}
		if _, ok := h.peers.status(info.ID); ok {
			return nil
		}
		if !h.connected(info.ID) {
			return fmt.Errorf("connect to %s: the peer closed the connection before the status handshake "+
				"(it may have as many peers as it takes, or refuse this node)", addr)
		}
		// Identify has told the peer's protocols: one without the status
		// protocol a second after the connection (a node that was starting
		// registers it at once, and identify pushes the change) is no
		// p2pchain node.
		if protos, err := h.host.Peerstore().GetProtocols(info.ID); err == nil && len(protos) > 0 &&
			!slices.Contains(protos, protocol.ID(StatusProtocol)) && time.Since(connected) > time.Second {
			return fmt.Errorf("connect to %s: the peer does not speak %s: not a p2pchain node", addr, StatusProtocol)
		}
		select {
		case <-ctx.Done():
			return nil // connected; the handshake has not answered yet
		case <-wait.C:
			return nil
		case <-tick.C:
		}
	}
}

// connected reports whether the host has a connection to p.
func (h *Host) connected(p peer.ID) bool {
	return h.host.Network().Connectedness(p) == network.Connected
}

// refuse cuts a peer off: disconnect now and refuse it for RefuseFor.
func (h *Host) refuse(p peer.ID, reason string) {
	h.log.Warn("refusing peer", "peer", p, "reason", reason)
	h.gater.refuse(p, reason)
	h.peers.forget(p)
	_ = h.host.Network().ClosePeer(p)
}

// PeerInfo describes a connected peer.
type PeerInfo struct {
	ID     peer.ID
	Addrs  []ma.Multiaddr
	Height uint64 // from its last status, 0 if none yet: a claim, not proven
	Tip    chain.Hash

	Strikes        int       // useless syncs from it lately (MaxStrikes: refused)
	Backoff        time.Time // no sync from it before this
	ServedBytes    uint64    // bytes of blocks we sent it
	ServedRequests uint64    // status and blocks streams of its we served
	Resets         uint64    // its streams we reset for its limits
}

// Peers returns the connected peers, sorted by ID.
func (h *Host) Peers() []PeerInfo {
	var out []PeerInfo
	for _, p := range h.host.Network().Peers() {
		info := PeerInfo{ID: p}
		for _, c := range h.host.Network().ConnsToPeer(p) {
			info.Addrs = append(info.Addrs, c.RemoteMultiaddr())
		}
		if st, ok := h.peers.status(p); ok {
			info.Height, info.Tip = st.Height, st.Tip
		}
		ps := h.peers.stats(p)
		info.Strikes, info.Backoff = ps.strikes, ps.backoff
		info.ServedBytes, info.ServedRequests, info.Resets = ps.servedBytes, ps.servedRequests, ps.resets
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Sync returns the progress of the current catch-up (zero if none).
func (h *Host) Sync() SyncState { return h.sync.State() }

// LastSync returns the final progress of the last finished catch-up.
func (h *Host) LastSync() SyncState { return h.sync.Last() }

// Traffic counts bytes of block data moved by gossip and by sync, and what
// peers' limits cut.
type Traffic struct {
	GossipIn, GossipOut, SyncIn, SyncOut uint64
	Rejected                             uint64 // gossiped blocks rejected: oversized, malformed or invalid
	// Oversized and Malformed count blocks from peers, by gossip or sync,
	// that the host refused before the ledger saw them: over the network's
	// block size limit, or bytes that do not decode as a block. (The
	// ledger counts the invalid blocks it refuses itself.)
	Oversized, Malformed uint64
	GossipThrottled      uint64 // gossiped blocks ignored: their relayer was over its budget
	StreamsReset         uint64 // peers' streams reset: over their stream, request or byte limits
	// ServeBusy counts the blocks requests that waited, or were reset,
	// because all peers together had the node's serving budget
	// (ServeBytesTotalPerSecond).
	ServeBusy uint64
	// Evicted counts the peers that connected to the node and were
	// disconnected to make room, one too many having connected (evict.go).
	Evicted uint64
}

// Traffic returns the byte counters.
func (h *Host) Traffic() Traffic {
	return Traffic{
		GossipIn: h.metrics.gossipBytesIn.Load(), GossipOut: h.metrics.gossipBytesOut.Load(),
		SyncIn: h.metrics.syncBytesIn.Load(), SyncOut: h.metrics.syncBytesOut.Load(),
		Rejected:        h.metrics.rejected.Load(),
		Oversized:       h.metrics.oversized.Load(),
		Malformed:       h.metrics.malformed.Load(),
		GossipThrottled: h.metrics.gossipThrottled.Load(),
		StreamsReset:    h.metrics.streamsReset.Load(),
		ServeBusy:       h.peers.serveBusy(),
		Evicted:         h.inbound.evicted.Load(),
	}
}

package sim

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/quicreuse"
	"github.com/marcopolo/simnet"
	"github.com/quic-go/quic-go"
	"go.uber.org/fx"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/p2p"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// Config says what to simulate. Zero fields take the defaults in brackets.
type Config struct {
	Nodes  int // how many nodes [100]
	Degree int // how many others each node dials [4]
	Blocks int // how many blocks are mined, one every Interval, each by a node drawn at random [10]
	// Readings is how many readings each block holds [1]. The blocks are
	// built beforehand (testnet.BuildChain); the node drawn adds one and
	// broadcasts it, as Node.Run does with a block it mined.
	Readings int
	Seed     uint64       // the random draws: delays, dials, miners [1]
	Params   chain.Params // the network [chain.TestParams("sim"), genesis a minute before Run]
	Log      *slog.Logger // nodes' and hosts' log [discard]

	// MinDelay and MaxDelay bound each node's delay, drawn uniformly; a
	// link's one-way latency is the sum of its two nodes' [10 ms, 100 ms:
	// links of 20 to 200 ms, median 110 ms].
	MinDelay, MaxDelay time.Duration
	Bandwidth          int           // each node's up and down link, bits per second [20 Mbit/s]
	Interval           time.Duration // between blocks [5 s]
	Settle             time.Duration // the longest wait for the meshes, and for the last block [60 s]
}

func (c *Config) defaults() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Nodes, 100)
	def(&c.Degree, 4)
	def(&c.Blocks, 10)
	def(&c.Readings, 1)
	def(&c.Bandwidth, 20_000_000)
	defDur(&c.MinDelay, 10*time.Millisecond)
	defDur(&c.MaxDelay, 100*time.Millisecond)
	defDur(&c.Interval, 5*time.Second)
	defDur(&c.Settle, 60*time.Second)
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Params.Name == "" {
		c.Params = chain.TestParams("sim")
		// The virtual clock of a synctest bubble starts in 2000.
		c.Params.GenesisTime = time.Now().Add(-time.Minute).UnixMilli()
	}
	if c.Log == nil {
		c.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Result is what Run measured. Durations are in the clock Run ran under:
// virtual under synctest.
type Result struct {
	Nodes, Blocks int
	// LinkMedian is the median one-way latency of the links the nodes
	// dialled.
	LinkMedian time.Duration
	// Latencies has, for every block and every node but its miner, the
	// time from the miner connecting the block to the node connecting it.
	Latencies          []time.Duration
	P50, P95, P99, Max time.Duration
	// LastNode has, for every block, the time it took to reach the last
	// node.
	LastNode []time.Duration
	// Missing counts (node, block) pairs where the block never joined the
	// node's main chain.
	Missing int
	// Forks counts blocks that some node connected and that ended off the
	// first node's main chain; Reorgs counts tip changes, summed over the
	// nodes, that disconnected blocks.
	Forks, Reorgs int
	BlockSize     int // bytes of the last block, encoded
	// PayloadIn is the block bytes a node received per block, by gossip and
	// sync (p2p.Traffic), averaged over the nodes: how many copies of each
	// block it got.
	PayloadIn float64
	// WireOut is the UDP bytes a node sent per block while the blocks were
	// mined, averaged over the nodes: QUIC, GossipSub control messages and
	// the background included. Background is the UDP bytes a node sent per
	// second before the first block, with no block to move.
	WireOut, Background float64
	// ShortMesh counts nodes whose gossip mesh was still short when Settle
	// ran out and the blocks started (see waitMesh).
	ShortMesh int
	// Setup is the time the dials and meshes took; HeapAfterSetup the Go
	// heap in use once they were up (the machine's cost, not the model's).
	Setup          time.Duration
	HeapAfterSetup uint64
}

// String summarises r on a few lines.
func (r *Result) String() string {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }
	lastMedian := time.Duration(0)
	if len(r.LastNode) > 0 {
		lastMedian = percentile(r.LastNode, 50)
	}
	return fmt.Sprintf("%d nodes, %d blocks, link median %s: propagation p50 %s p95 %s p99 %s max %s (last node: median %s); missing %d, forks %d, reorgs %d\n"+
		"block %d B: payload in %.0f B/node/block (%.1f copies); wire out %.0f B/node/block; background %.0f B/node/s\n"+
		"setup %s (short meshes %d), heap after setup %d MiB",
		r.Nodes, r.Blocks, ms(r.LinkMedian), ms(r.P50), ms(r.P95), ms(r.P99), ms(r.Max), ms(lastMedian),
		r.Missing, r.Forks, r.Reorgs,
		r.BlockSize, r.PayloadIn, r.PayloadIn/float64(max(r.BlockSize, 1)), r.WireOut, r.Background,
		r.Setup.Round(time.Millisecond), r.ShortMesh, r.HeapAfterSetup>>20)
}

// simNode is one node of the simulation.
type simNode struct {
	node  *node.Node
	host  *p2p.Host
	conn  *simnet.SimConn
	delay time.Duration

	mu      sync.Mutex
	arrived map[chain.Hash]time.Time // first time each block joined the main chain
	reorgs  int
}

// Run builds the network, mines the blocks and measures them. Run it
// inside synctest.Test for virtual time.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.defaults()
	if cfg.Nodes < 2 || cfg.Degree < 1 || cfg.Degree >= cfg.Nodes || cfg.MinDelay > cfg.MaxDelay {
		return nil, fmt.Errorf("sim: %d nodes of degree %d, delays %v to %v: want 1 <= degree < nodes and min <= max",
			cfg.Nodes, cfg.Degree, cfg.MinDelay, cfg.MaxDelay)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	delays := map[string]time.Duration{} // by IP; read by the router's goroutine only
	nw := &simnet.Simnet{
		LatencyFunc: func(p *simnet.Packet) time.Duration {
			return delays[p.From.(*net.UDPAddr).IP.String()] + delays[p.To.(*net.UDPAddr).IP.String()]
		},
		Logger: cfg.Log,
	}
	link := simnet.NodeBiDiLinkSettings{
		Downlink: simnet.LinkSettings{BitsPerSecond: cfg.Bandwidth},
		Uplink:   simnet.LinkSettings{BitsPerSecond: cfg.Bandwidth},
	}
	nodes := make([]*simNode, 0, cfg.Nodes)
	defer func() {
		cancel()
		for _, n := range nodes {
			_ = n.host.Close()
		}
		nw.Close()
	}()
	for i := range cfg.Nodes {
		ip := simnet.IntToPublicIPv4(i)
		delay := cfg.MinDelay + time.Duration(rng.Int64N(int64(cfg.MaxDelay-cfg.MinDelay)+1))
		delays[ip.String()] = delay
		n, err := startNode(ctx, nw, ip, link, &cfg)
		if err != nil {
			return nil, fmt.Errorf("sim: node %d: %w", i, err)
		}
		n.delay = delay
		nodes = append(nodes, n)
		go n.watch(ctx)
	}
	nw.Start()

	start := time.Now()
	links, err := dial(ctx, nodes, cfg.Degree, rng)
	if err != nil {
		return nil, err
	}
	short, err := waitMesh(ctx, nodes, cfg.Settle)
	if err != nil {
		return nil, err
	}
	res := &Result{Nodes: cfg.Nodes, Blocks: cfg.Blocks, LinkMedian: percentile(links, 50), Setup: time.Since(start), ShortMesh: short}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapAfterSetup = ms.HeapInuse

	const idle = 10 * time.Second
	wire0 := wireOut(nodes)
	time.Sleep(idle)
	wire1 := wireOut(nodes)
	res.Background = float64(wire1-wire0) / float64(len(nodes)) / idle.Seconds()
	payload0 := payloadIn(nodes)

	key, err := p2p.GenerateKey()
	if err != nil {
		return nil, err
	}
	chainBlocks, err := testnet.BuildChain(cfg.Params, key, cfg.Blocks, cfg.Readings)
	if err != nil {
		return nil, err
	}
	type mined struct {
		hash chain.Hash
		by   int
		at   time.Time
	}
	var blocks []mined
	for k, b := range chainBlocks {
		m := rng.IntN(len(nodes))
		n := nodes[m]
		// What Node.Run does with a block it mined.
		if err := n.node.AddBlock(ctx, b); err != nil {
			return nil, fmt.Errorf("sim: block %d at node %d: %w", k+1, m, err)
		}
		blocks = append(blocks, mined{hash: b.Hash(), by: m, at: time.Now()})
		if err := n.host.BroadcastBlock(ctx, b); err != nil {
			return nil, fmt.Errorf("sim: block %d at node %d: %w", k+1, m, err)
		}
		if k < cfg.Blocks-1 {
			if err := sleep(ctx, cfg.Interval); err != nil {
				return nil, err
			}
		}
	}
	// Wait for the last block everywhere, or Settle.
	last := blocks[len(blocks)-1].hash
	deadline := time.Now().Add(cfg.Settle)
	for time.Now().Before(deadline) && slices.ContainsFunc(nodes, func(n *simNode) bool { return n.firstSeen(last).IsZero() }) {
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return nil, err
		}
	}
	res.PayloadIn = float64(payloadIn(nodes)-payload0) / float64(len(nodes)) / float64(cfg.Blocks)
	res.WireOut = float64(wireOut(nodes)-wire1) / float64(len(nodes)) / float64(cfg.Blocks)
	if b, ok, _ := nodes[blocks[len(blocks)-1].by].node.BlockByHash(last); ok {
		data, _ := b.Block.MarshalBinary()
		res.BlockSize = len(data)
	}

	for _, b := range blocks {
		var slowest time.Duration
		for i, n := range nodes {
			if i == b.by {
				continue
			}
			at := n.firstSeen(b.hash)
			if at.IsZero() {
				res.Missing++
				continue
			}
			d := at.Sub(b.at)
			res.Latencies = append(res.Latencies, d)
			slowest = max(slowest, d)
		}
		res.LastNode = append(res.LastNode, slowest)
	}
	if len(res.Latencies) > 0 {
		res.P50, res.P95, res.P99 = percentile(res.Latencies, 50), percentile(res.Latencies, 95), percentile(res.Latencies, 99)
		res.Max = slices.Max(res.Latencies)
	}
	seen := map[chain.Hash]bool{}
	for _, n := range nodes {
		n.mu.Lock()
		for h := range n.arrived {
			seen[h] = true
		}
		res.Reorgs += n.reorgs
		n.mu.Unlock()
	}
	for h := range seen {
		if !nodes[0].node.IsMainChain(h) {
			res.Forks++
		}
	}
	return res, nil
}

// startNode starts a node with the real p2p host on a simulated QUIC host
// at ip.
func startNode(ctx context.Context, nw *simnet.Simnet, ip net.IP, link simnet.NodeBiDiLinkSettings, cfg *Config) (*simNode, error) {
	key, err := p2p.GenerateKey()
	if err != nil {
		return nil, err
	}
	n := &simNode{arrived: map[chain.Hash]time.Time{}}
	lh, err := newHost(nw, ip, key, link, &n.conn)
	if err != nil {
		return nil, err
	}
	n.node, err = node.New(cfg.Params, key, node.WithLogger(cfg.Log))
	if err != nil {
		_ = lh.Close()
		return nil, err
	}
	n.host, err = p2p.New(ctx, n.node, p2p.WithHost(lh), p2p.WithLogger(cfg.Log))
	if err != nil {
		return nil, err
	}
	return n, nil
}

// newHost builds a libp2p host listening on QUIC at ip on nw, as
// go-libp2p's x/simlibp2p does, with key as its identity; *conn is set to
// its simulated UDP endpoint.
func newHost(nw *simnet.Simnet, ip net.IP, key ed25519.PrivateKey, link simnet.NodeBiDiLinkSettings, conn **simnet.SimConn) (host.Host, error) {
	priv, err := crypto.UnmarshalEd25519PrivateKey(key)
	if err != nil {
		return nil, err
	}
	cm, err := connmgr.NewConnManager(p2p.DefaultLowWater, p2p.DefaultHighWater)
	if err != nil {
		return nil, err
	}
	src := sourceIP{ip}
	quicReuse := libp2p.QUICReuse(
		func(l fx.Lifecycle, reset quic.StatelessResetKey, token quic.TokenGeneratorKey, opts ...quicreuse.Option) (*quicreuse.ConnManager, error) {
			qcm, err := quicreuse.NewConnManager(reset, token, opts...)
			if err != nil {
				return nil, err
			}
			// libp2p does not close a connection manager it was given.
			l.Append(fx.StopHook(qcm.Close))
			return qcm, nil
		},
		quicreuse.OverrideSourceIPSelector(func() (quicreuse.SourceIPSelector, error) { return src, nil }),
		quicreuse.OverrideListenUDP(func(_ string, addr *net.UDPAddr) (net.PacketConn, error) {
			c := nw.NewEndpoint(addr, link)
			*conn = c
			return c, nil
		}),
	)
	h, err := libp2p.New(
		libp2p.Identity(priv),
		libp2p.ListenAddrStrings(fmt.Sprintf("/ip4/%s/udp/8000/quic-v1", ip)),
		libp2p.Transport(libp2pquic.NewTransport),
		quicReuse,
		libp2p.ConnectionManager(cm),
		libp2p.ResourceManager(&network.NullResourceManager{}),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		// x/simlibp2p: identify's address discovery stalls synctest.
		libp2p.DisableIdentifyAddressDiscovery(),
		libp2p.UserAgent(p2p.DefaultUserAgent),
		libp2p.ProtocolVersion(p2p.IdentifyProtocolVersion),
	)
	if err != nil {
		_ = cm.Close()
		return nil, err
	}
	return h, nil
}

// sourceIP makes QUIC dial from the node's simulated address.
type sourceIP struct{ ip net.IP }

func (s sourceIP) PreferredSourceIPForDestination(*net.UDPAddr) (net.IP, error) { return s.ip, nil }

// watch records when each block first joins the node's main chain.
func (n *simNode) watch(ctx context.Context) {
	events, stop := n.node.Subscribe(1024)
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-events:
			if e.Kind != node.EventTip || e.Update == nil {
				continue
			}
			now := time.Now()
			n.mu.Lock()
			if len(e.Update.Disconnected) > 0 {
				n.reorgs++
			}
			for _, b := range e.Update.Connected {
				if h := b.Hash(); n.arrived[h].IsZero() {
					n.arrived[h] = now
				}
			}
			n.mu.Unlock()
		}
	}
}

// firstSeen returns when block h first joined the node's main chain (zero:
// never).
func (n *simNode) firstSeen(h chain.Hash) time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.arrived[h]
}

// dial makes every node dial degree others drawn at random, and returns
// the one-way latency of each link dialled.
func dial(ctx context.Context, nodes []*simNode, degree int, rng *rand.Rand) ([]time.Duration, error) {
	targets := make([][]int, len(nodes))
	var links []time.Duration
	for i := range nodes {
		for _, j := range rng.Perm(len(nodes) - 1)[:degree] {
			if j >= i {
				j++ // skip i itself
			}
			targets[i] = append(targets[i], j)
			links = append(links, nodes[i].delay+nodes[j].delay)
		}
	}
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			for _, j := range targets[i] {
				addr := nodes[j].host.Addrs()[0].String()
				if err := n.host.Connect(ctx, addr); err != nil {
					errs[i] = fmt.Errorf("sim: node %d dials node %d: %w", i, j, err)
					return
				}
			}
		})
	}
	wg.Wait()
	return links, errors.Join(errs...)
}

// waitMesh waits until every node forwards blocks to at least as many
// peers as GossipSub keeps when it can (4), or as it has, or until settle
// has passed, and returns how many nodes fall short: in a big network a
// few nodes whose peers' meshes are full may stay short (they get blocks
// by gossip or sync instead).
func waitMesh(ctx context.Context, nodes []*simNode, settle time.Duration) (int, error) {
	deadline := time.Now().Add(settle)
	for {
		short := 0
		for _, n := range nodes {
			if n.host.MeshPeers() < min(4, len(n.host.Peers())) {
				short++
			}
		}
		if short == 0 || time.Now().After(deadline) {
			return short, nil
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return short, err
		}
	}
}

// wireOut sums the UDP bytes the nodes sent.
func wireOut(nodes []*simNode) uint64 {
	var sum uint64
	for _, n := range nodes {
		sum += uint64(n.conn.Stats().BytesSent)
	}
	return sum
}

// payloadIn sums the block bytes the nodes received by gossip and sync.
func payloadIn(nodes []*simNode) uint64 {
	var sum uint64
	for _, n := range nodes {
		t := n.host.Traffic()
		sum += t.GossipIn + t.SyncIn
	}
	return sum
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// percentile returns the p-th percentile of ds (nearest rank).
func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

package testnet

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/p2p"
)

// Peer is one running node: chain owner, network host and miner.
type Peer struct {
	Node   *node.Node
	Host   *p2p.Host
	cancel context.CancelFunc
	done   chan struct{}
}

// Config says how to start a peer.
type Config struct {
	Params       chain.Params
	Key          ed25519.PrivateKey // nil: random
	Log          *slog.Logger       // nil: discard
	SyncInterval time.Duration      // 0: the p2p default
	NoMiner      bool               // do not mine pending readings
	Clock        func() time.Time   // the node's clock (nil: time.Now)

	Listen             []string      // nil: random TCP and QUIC ports on 127.0.0.1
	Bootstrap          []string      // bootstrap peers (p2p.WithBootstrap)
	DHT                bool          // run the DHT and its rendezvous (p2p.WithDHT)
	RendezvousInterval time.Duration // 0: the p2p default
	PeerstoreFile      string        // "": none (p2p.WithPeerstoreFile)
	HostOptions        []p2p.Option  // further options for p2p.New, applied last
	NodeOptions        []node.Option // further options for node.New, applied last (node.WithStore)
}

// Start starts a peer, by default listening on random loopback ports.
func Start(ctx context.Context, cfg Config) (*Peer, error) {
	key := cfg.Key
	if key == nil {
		k, err := p2p.GenerateKey()
		if err != nil {
			return nil, err
		}
		key = k
	}
	var nopts []node.Option
	listen := cfg.Listen
	if listen == nil {
		listen = p2p.ListenAddrs("127.0.0.1", 0)
	}
	hopts := []p2p.Option{p2p.WithKey(key), p2p.WithListenAddrs(listen...),
		p2p.WithBootstrap(cfg.Bootstrap...), p2p.WithDHT(cfg.DHT)}
	if cfg.Log != nil {
		nopts = append(nopts, node.WithLogger(cfg.Log))
		hopts = append(hopts, p2p.WithLogger(cfg.Log))
	}
	if cfg.Clock != nil {
		nopts = append(nopts, node.WithClock(cfg.Clock))
	}
	if cfg.SyncInterval > 0 {
		hopts = append(hopts, p2p.WithSyncInterval(cfg.SyncInterval))
	}
	if cfg.RendezvousInterval > 0 {
		hopts = append(hopts, p2p.WithRendezvousInterval(cfg.RendezvousInterval))
	}
	if cfg.PeerstoreFile != "" {
		hopts = append(hopts, p2p.WithPeerstoreFile(cfg.PeerstoreFile))
	}
	hopts = append(hopts, cfg.HostOptions...)
	nopts = append(nopts, cfg.NodeOptions...)
	n, err := node.New(cfg.Params, key, nopts...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	h, err := p2p.New(ctx, n, hopts...)
	if err != nil {
		cancel()
		return nil, err
	}
	p := &Peer{Node: n, Host: h, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		if !cfg.NoMiner {
			_ = n.Run(ctx, h)
		}
	}()
	return p, nil
}

// Close stops the peer.
func (p *Peer) Close() error {
	p.cancel()
	<-p.done
	return p.Host.Close()
}

// Connect dials other.
func (p *Peer) Connect(ctx context.Context, other *Peer) error {
	return p.Host.Connect(ctx, other.Host.TCPAddr().String())
}

// StartN starts n peers with the same config (and random keys).
func StartN(ctx context.Context, n int, cfg Config) ([]*Peer, error) {
	var peers []*Peer
	for i := 0; i < n; i++ {
		p, err := Start(ctx, cfg)
		if err != nil {
			CloseAll(peers)
			return nil, err
		}
		peers = append(peers, p)
	}
	return peers, nil
}

// CloseAll stops every peer.
func CloseAll(peers []*Peer) {
	for _, p := range peers {
		_ = p.Close()
	}
}

// Line connects peer i to peer i-1: a chain topology where every message
// must hop through the peers between.
func Line(ctx context.Context, peers []*Peer) error {
	for i := 1; i < len(peers); i++ {
		if err := peers[i].Connect(ctx, peers[i-1]); err != nil {
			return err
		}
	}
	return nil
}

// WaitFor polls cond every 10 ms until it holds or ctx ends.
func WaitFor(ctx context.Context, cond func() bool) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// WaitConverged waits until every peer has the same tip and no pending
// readings.
func WaitConverged(ctx context.Context, peers []*Peer) error {
	err := WaitFor(ctx, func() bool {
		tip := peers[0].Node.Status().Tip
		for _, p := range peers {
			if o := p.Node.Overview(); o.Tip != tip || o.Pending > 0 {
				return false
			}
		}
		return true
	})
	if err != nil {
		var desc string
		for i, p := range peers {
			o := p.Node.Overview()
			desc += fmt.Sprintf(" [%d: height %d tip %s pending %d]", i, o.Height, o.Tip.Short(), o.Pending)
		}
		return fmt.Errorf("peers did not converge:%s: %w", desc, err)
	}
	return nil
}

// WaitMesh waits until every peer has at least want peers in its GossipSub
// mesh for blocks, so a new block reaches them at once.
func WaitMesh(ctx context.Context, peers []*Peer, want int) error {
	return WaitFor(ctx, func() bool {
		for _, p := range peers {
			if p.Host.MeshPeers() < want {
				return false
			}
		}
		return true
	})
}

// BuildChain makes n blocks on genesis of params, each with perBlock readings
// signed by key, solved at the network's difficulty. Block times advance one
// second per block from the genesis time.
func BuildChain(params chain.Params, key ed25519.PrivateKey, n, perBlock int) ([]*chain.Block, error) {
	c, err := chain.New(params)
	if err != nil {
		return nil, err
	}
	out := make([]*chain.Block, 0, n)
	for i := 0; i < n; i++ {
		at := time.UnixMilli(params.GenesisTime).Add(time.Duration(i+1) * time.Second)
		var rs []chain.Reading
		for j := 0; j < perBlock; j++ {
			r, err := chain.NewReading(key, fmt.Sprintf("subject-%d", j), chain.MinBPM+(i+j)%100, at)
			if err != nil {
				return nil, err
			}
			rs = append(rs, r)
		}
		b := c.NewBlock(rs, at)
		if err := chain.Solve(context.Background(), &b.Header); err != nil {
			return nil, err
		}
		if _, err := c.AddBlock(b, at); err != nil {
			return nil, fmt.Errorf("block %d: %w", i+1, err)
		}
		out = append(out, b)
	}
	return out, nil
}

// InvalidBatch makes n full blocks (params.MaxReadings readings each, of
// the one-byte subject "s", so that a sync batch holds as many as it can)
// in a chain on parent, readings signed by key and times at now, each
// solved at the network's difficulty, with the first block's last
// signature broken: the batch an attacker builds once and serves again and
// again, whose blocks are valid but for block 1's rule 8.
func InvalidBatch(ctx context.Context, params chain.Params, key ed25519.PrivateKey, parent *chain.Block, n int, now time.Time) ([]*chain.Block, error) {
	out := make([]*chain.Block, 0, n)
	seq := 0
	for range n {
		rs := make([]chain.Reading, params.MaxReadings)
		for j := range rs {
			seq++ // distinct readings: bpm and time vary
			r, err := chain.NewReading(key, "s", chain.MinBPM+seq%200, now.Add(-time.Duration(seq)*time.Millisecond))
			if err != nil {
				return nil, err
			}
			rs[j] = r
		}
		out = append(out, &chain.Block{Readings: rs})
	}
	if n > 0 {
		out[0].Readings[len(out[0].Readings)-1].Sig[7] ^= 1
	}
	for _, b := range out {
		b.Header = chain.Header{Version: chain.HeaderVersion, Height: parent.Header.Height + 1, Parent: parent.Hash(),
			Time: now.UnixMilli(), Count: uint32(len(b.Readings)), Difficulty: params.Difficulty, Root: b.ReadingsRoot()}
		if err := chain.Solve(ctx, &b.Header); err != nil {
			return nil, err
		}
		parent = b
	}
	return out, nil
}

// Clock is a clock for tests that moves only when told to: nodes given its
// Now see time pass by Advance, so finality (which needs blocks to age) can
// be reached without waiting. It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

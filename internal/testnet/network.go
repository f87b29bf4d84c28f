package testnet

// A network of durable nodes, as the p2pchain testnet command runs it: each
// node with its own data directory (identity key and chain store), wired by
// a topology, optionally under a steady load of readings.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pchain/p2pchain/internal/bft"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/datadir"
	"github.com/p2pchain/p2pchain/internal/netfile"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/store"
)

// Topology says which nodes of a network dial which. Node i dials only
// nodes before it, so a network is connected whatever the topology.
type Topology struct {
	Kind string // "line", "ring", "random" or "full"
	K    int    // random: how many earlier nodes each node dials
}

// ParseTopology reads line, ring, random:K (K at least 1) or full.
func ParseTopology(s string) (Topology, error) {
	kind, k, hasK := strings.Cut(s, ":")
	switch {
	case (kind == "line" || kind == "ring" || kind == "full") && !hasK:
		return Topology{Kind: kind}, nil
	case kind == "random" && hasK:
		n, err := strconv.Atoi(k)
		if err != nil || n < 1 {
			return Topology{}, fmt.Errorf("topology %q: K in random:K is a whole number of at least 1", s)
		}
		return Topology{Kind: kind, K: n}, nil
	}
	return Topology{}, fmt.Errorf("topology %q: use line, ring, random:K or full", s)
}

func (t Topology) String() string {
	if t.Kind == "random" {
		return "random:" + strconv.Itoa(t.K)
	}
	return t.Kind
}

// Links returns the dials of a network of n nodes: [i, j] means node i
// dials node j, always j < i. line: each node dials the one before; ring:
// line, and the last dials the first; random:K: each node dials K distinct
// earlier nodes drawn by rng (all of them when there are fewer); full:
// every pair.
func (t Topology) Links(n int, rng *rand.Rand) [][2]int {
	var out [][2]int
	for i := 1; i < n; i++ {
		switch t.Kind {
		case "line", "ring":
			out = append(out, [2]int{i, i - 1})
		case "full":
			for j := 0; j < i; j++ {
				out = append(out, [2]int{i, j})
			}
		case "random":
			for _, j := range rng.Perm(i)[:min(t.K, i)] {
				out = append(out, [2]int{i, j})
			}
		}
	}
	if t.Kind == "ring" && n > 2 {
		out = append(out, [2]int{n - 1, 0})
	}
	return out
}

// NetworkConfig says how to start a network.
type NetworkConfig struct {
	Nodes    int
	Topology Topology
	Params   chain.Params
	Dir      string       // node i keeps its data in Dir/node-i (created if need be)
	Log      *slog.Logger // nil: discard; each node's lines carry node=i
	Seed     uint64       // seed of the random topology (0: a random one)
	NoMiner  bool         // do not mine pending readings
	// Authorities, if above 0, makes an authority network of the first
	// Authorities nodes (the rest follow) instead of a proof-of-work one:
	// its network file is made from their identities, with Params's name
	// and limits and a 1 s block interval, and replaces Params.
	Authorities int
	// Network, if set, is an authority network (a network file) that every
	// node runs, replacing Params; its authorities are whichever nodes'
	// identities (in Dir) it lists.
	Network *netfile.Network
}

// Network is a running network of durable nodes. Peers[i], Dirs[i] and
// Stores[i] belong to node i.
type Network struct {
	Peers  []*Peer
	Dirs   []*datadir.Dir
	Stores []*store.Store
	Links  [][2]int // the dials made (Topology.Links)
}

// StartNetwork starts cfg.Nodes nodes on random loopback ports, each with
// its data directory's identity and a durable store, and connects them by
// cfg.Topology. It does not wait for the links to be up: see WaitPeers.
// On error it closes what it started.
func StartNetwork(ctx context.Context, cfg NetworkConfig) (_ *Network, err error) {
	if cfg.Nodes < 1 {
		return nil, fmt.Errorf("a network needs at least one node, not %d", cfg.Nodes)
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	net := &Network{}
	defer func() {
		if err != nil {
			net.Close()
		}
	}()
	var opts []node.Option
	nw := cfg.Network
	if nw == nil && cfg.Authorities > 0 {
		if nw, err = net.authorities(cfg); err != nil {
			return nil, err
		}
	}
	if nw != nil {
		cfg.Params = nw.Params
		opts = append(opts, node.WithAuthority(nw.Authority()))
	}
	for i := 0; i < cfg.Nodes; i++ {
		if err := net.start(ctx, cfg, i, log.With("node", i), opts...); err != nil {
			return nil, fmt.Errorf("node %d: %w", i, err)
		}
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	net.Links = cfg.Topology.Links(cfg.Nodes, rand.New(rand.NewPCG(seed, seed)))
	for _, l := range net.Links {
		dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := net.Peers[l[0]].Connect(dctx, net.Peers[l[1]])
		cancel()
		if err != nil {
			return nil, fmt.Errorf("node %d dialing node %d: %w", l[0], l[1], err)
		}
	}
	return net, nil
}

// start starts node i, the way the node command does: the data directory
// locked, its identity key, its store loaded into the node.
func (net *Network) start(ctx context.Context, cfg NetworkConfig, i int, log *slog.Logger, opts ...node.Option) error {
	dir, err := net.dir(cfg, i)
	if err != nil {
		return err
	}
	key, _, err := dir.Key()
	if err != nil {
		return err
	}
	st, err := store.Open(dir.File(datadir.StoreDir), cfg.Params, store.WithLogger(log))
	if err != nil {
		return err
	}
	net.Stores = append(net.Stores, st)
	s, err := st.LoadRecent()
	if err != nil {
		return err
	}
	p, err := Start(ctx, Config{Params: cfg.Params, Key: key, Log: log, NoMiner: cfg.NoMiner,
		NodeOptions: append([]node.Option{node.WithStore(st, *s)}, opts...)})
	if err != nil {
		return err
	}
	net.Peers = append(net.Peers, p)
	return nil
}

// Degrees returns how many peers each node has once every link is up.
func (net *Network) Degrees() []int { return degrees(len(net.Peers), net.Links) }

// TCPPorts returns the nodes' libp2p TCP listen ports (for WireMeter).
func (net *Network) TCPPorts() ([]int, error) {
	out := make([]int, len(net.Peers))
	for i, p := range net.Peers {
		a := p.Host.TCPAddr()
		if a == nil {
			return nil, fmt.Errorf("node %d listens on no TCP address", i)
		}
		port, err := TCPPort(a.String())
		if err != nil {
			return nil, fmt.Errorf("node %d: %w", i, err)
		}
		out[i] = port
	}
	return out, nil
}

// degrees returns how many peers each of n nodes has once links are up.
func degrees(n int, links [][2]int) []int {
	d := make([]int, n)
	seen := map[[2]int]bool{}
	for _, l := range links {
		a, b := min(l[0], l[1]), max(l[0], l[1])
		if !seen[[2]int{a, b}] {
			seen[[2]int{a, b}] = true
			d[a]++
			d[b]++
		}
	}
	return d
}

// WaitPeers waits until every node is connected to at least the peers its
// links give it.
func (net *Network) WaitPeers(ctx context.Context) error {
	want := net.Degrees()
	err := WaitFor(ctx, func() bool {
		for i, p := range net.Peers {
			if len(p.Host.Peers()) < want[i] {
				return false
			}
		}
		return true
	})
	if err != nil {
		var desc []string
		for i, p := range net.Peers {
			desc = append(desc, fmt.Sprintf("node %d: %d of %d", i, len(p.Host.Peers()), want[i]))
		}
		return fmt.Errorf("peers not all connected (%s): %w", strings.Join(desc, ", "), err)
	}
	return nil
}

// Halves returns the two halves a partition cuts n nodes into: nodes 0 to
// n/2-1, and n/2 to n-1.
func Halves(n int) (a, b []int) {
	for i := range n {
		if i < n/2 {
			a = append(a, i)
		} else {
			b = append(b, i)
		}
	}
	return a, b
}

// CrossLinks returns the links of n nodes that cross the cut between the
// halves (Halves).
func CrossLinks(n int, links [][2]int) [][2]int {
	var out [][2]int
	for _, l := range links {
		if (l[0] < n/2) != (l[1] < n/2) {
			out = append(out, l)
		}
	}
	return out
}

// otherHalf returns the nodes of the half i is not in.
func otherHalf(n, i int) []int {
	a, b := Halves(n)
	if i < n/2 {
		return b
	}
	return a
}

// errFewNodes is the error of a partition of fewer than two nodes.
func errFewNodes(n int) error {
	return fmt.Errorf("a partition needs at least 2 nodes, not %d", n)
}

// otherHalfIDs returns the peer IDs of the nodes of the half node i is not in.
func (net *Network) otherHalfIDs(i int) []peer.ID {
	var ids []peer.ID
	for _, j := range otherHalf(len(net.Peers), i) {
		ids = append(ids, net.Peers[j].Host.ID())
	}
	return ids
}

// Partition cuts the network in two (Halves): every node blocks every node
// of the other half (p2p.Host.Block), which closes their connections and
// keeps them apart until Heal. It returns the links it cut (CrossLinks).
func (net *Network) Partition() ([][2]int, error) {
	n := len(net.Peers)
	if n < 2 {
		return nil, errFewNodes(n)
	}
	for i, p := range net.Peers {
		if err := p.Host.Block(net.otherHalfIDs(i)...); err != nil {
			return nil, fmt.Errorf("node %d: %w", i, err)
		}
	}
	return CrossLinks(n, net.Links), nil
}

// Heal undoes Partition: every node unblocks the other half, and the links
// that crossed the cut are dialled again. It returns those links.
func (net *Network) Heal(ctx context.Context) ([][2]int, error) {
	n := len(net.Peers)
	if n < 2 {
		return nil, errFewNodes(n)
	}
	for i, p := range net.Peers {
		p.Host.Unblock(net.otherHalfIDs(i)...)
	}
	cross := CrossLinks(n, net.Links)
	var errs []error
	for _, l := range cross {
		dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := net.Peers[l[0]].Connect(dctx, net.Peers[l[1]])
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("node %d dialing node %d: %w", l[0], l[1], err))
		}
	}
	return cross, errors.Join(errs...)
}

// Close stops every node at once, then closes their stores and unlocks
// their directories.
func (net *Network) Close() error {
	var wg sync.WaitGroup
	errs := make([]error, len(net.Peers))
	for i, p := range net.Peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.Close()
		}()
	}
	wg.Wait()
	for _, s := range net.Stores {
		errs = append(errs, s.Close())
	}
	for _, d := range net.Dirs {
		errs = append(errs, d.Close())
	}
	net.Peers, net.Stores, net.Dirs = nil, nil, nil
	return errors.Join(errs...)
}

// Heights returns each node's chain height.
func (net *Network) Heights() []uint64 {
	out := make([]uint64, len(net.Peers))
	for i, p := range net.Peers {
		out[i] = p.Node.Status().Height
	}
	return out
}

// Load submits readings to a network's nodes in turn at a steady rate.
type Load struct {
	net  *Network
	done chan struct{}

	mu          sync.Mutex
	submitted   int
	failed      int
	lastErr     error
	unconfirmed []chain.Hash // submitted, not seen on node 0's main chain at the last Stats
	// in holds the blocks of node 0's main chain that hold readings of
	// the load, as seen at the last Stats, with their readings; base is
	// the tip then: the blocks of in up to its height were checked on the
	// main chain that it ends, and stay there as long as base does.
	in         map[chain.Hash]*loadBlock
	confirmed  int // the readings of in
	base       chain.Hash
	baseHeight uint64
}

// loadBlock is a block of node 0's main chain holding readings of a load.
type loadBlock struct {
	height uint64
	ids    []chain.Hash
}

// LoadStats counts a load's readings so far.
type LoadStats struct {
	Submitted int   // accepted by the node they were submitted to
	Failed    int   // refused (LastErr says why)
	Confirmed int   // of those submitted, in a block of node 0's main chain
	LastErr   error // the last refusal
	// Unreachable counts the readings whose request reached no node (node
	// processes: connection refused, a node down), apart from refusals; a
	// timeout or a reset, which may have met a node that took the reading,
	// counts as Failed. LastUnreachable is the last one's error.
	Unreachable     int
	LastUnreachable error
}

// StartLoad submits perSecond readings a second until ctx ends, round-robin
// over the nodes through node.Submit (subject "load", heart rates cycling
// from 60 to 119). Wait for its end with Wait.
func (net *Network) StartLoad(ctx context.Context, perSecond float64) *Load {
	l := &Load{net: net, done: make(chan struct{})}
	go l.run(ctx, perSecond)
	return l
}

func (l *Load) run(ctx context.Context, perSecond float64) {
	defer close(l.done)
	pace(ctx, perSecond, func(k int) bool {
		p := l.net.Peers[k%len(l.net.Peers)]
		r, err := p.Node.Submit("load", 60+k%60)
		l.mu.Lock()
		if err != nil {
			l.failed++
			l.lastErr = err
		} else {
			l.submitted++
			l.unconfirmed = append(l.unconfirmed, r.ID())
		}
		l.mu.Unlock()
		return true
	})
}

// pace calls send(0), send(1), ... at perSecond calls a second, catching up
// every 10 ms, until ctx ends or send returns false.
func pace(ctx context.Context, perSecond float64, send func(k int) bool) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	start, sent := time.Now(), 0
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for due := int(now.Sub(start).Seconds() * perSecond); sent < due; sent++ {
				if !send(sent) {
					return
				}
			}
		}
	}
}

// Wait waits until the load has stopped.
func (l *Load) Wait() { <-l.done }

// Stats counts the readings so far. Confirmed counts those in node 0's
// main chain now: a reorganisation that takes a block out takes its
// readings out of the count (they count again once a block of the new main
// chain holds them). It costs the blocks above the tip of the last Stats
// and the readings not confirmed then, not the whole history: if that tip
// is still on the main chain, so is every block below it that was.
func (l *Load) Stats() LoadStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	n0 := l.net.Peers[0].Node
	if l.in == nil {
		l.in = map[chain.Hash]*loadBlock{}
	}
	tip := n0.Status()
	reorg := l.baseHeight > 0 && !onMain(n0, l.baseHeight, l.base) // a reorganisation below the base: check every block
	for h, b := range l.in {
		if !reorg && b.height <= l.baseHeight {
			continue
		}
		info, ok, err := n0.BlockByHash(h)
		if err != nil {
			l.lastErr = fmt.Errorf("load: look up block %s: %w", h.Short(), err) // counted as it was
			continue
		}
		if ok && info.Main {
			continue
		}
		delete(l.in, h) // off the main chain: its readings are pending again, or in another block
		l.confirmed -= len(b.ids)
		l.unconfirmed = append(l.unconfirmed, b.ids...)
	}
	left := l.unconfirmed[:0]
	for _, id := range l.unconfirmed {
		info, ok, err := n0.LocateReading(id) // in a main-chain block, or pending
		if err != nil {
			l.lastErr = fmt.Errorf("load: look up reading %s: %w", id.Short(), err)
		}
		if err != nil || !ok || info.Pending {
			left = append(left, id)
			continue
		}
		b := l.in[info.Block]
		if b == nil {
			b = &loadBlock{height: info.Height}
			l.in[info.Block] = b
		}
		b.ids = append(b.ids, id)
		l.confirmed++
	}
	l.unconfirmed = left
	// The tip read first is the new base if it is still on the main chain:
	// every block checked since is then on the chain it ends (or above it,
	// and checked again next time). Else the old base stays.
	if onMain(n0, tip.Height, tip.Tip) {
		l.base, l.baseHeight = tip.Tip, tip.Height
	}
	return LoadStats{Submitted: l.submitted, Failed: l.failed, Confirmed: l.confirmed, LastErr: l.lastErr}
}

// onMain reports whether the block hash is node n's main-chain block at
// height.
func onMain(n *node.Node, height uint64, hash chain.Hash) bool {
	info, ok, _ := n.BlockByHeight(height)
	return ok && info.Block.Hash() == hash
}

// dir opens (once) node i's data directory.
func (net *Network) dir(cfg NetworkConfig, i int) (*datadir.Dir, error) {
	if i < len(net.Dirs) {
		return net.Dirs[i], nil
	}
	dir, err := datadir.Open(filepath.Join(cfg.Dir, "node-"+strconv.Itoa(i)))
	if err != nil {
		return nil, err
	}
	net.Dirs = append(net.Dirs, dir)
	return dir, nil
}

// authorities makes the network of an authority network whose
// authorities are the first cfg.Authorities nodes.
func (net *Network) authorities(cfg NetworkConfig) (*netfile.Network, error) {
	f, err := net.authorityFile(cfg)
	if err != nil {
		return nil, err
	}
	return netfile.Parse(f.Encode())
}

// authorityFile makes the network file of an authority network whose
// authorities are the first cfg.Authorities nodes, opening (and creating)
// their data directories.
func (net *Network) authorityFile(cfg NetworkConfig) (*netfile.File, error) {
	if cfg.Authorities > cfg.Nodes || cfg.Authorities > bft.MaxAuthorities {
		return nil, fmt.Errorf("%d authorities: want 1 to %d, and no more than the %d nodes", cfg.Authorities, bft.MaxAuthorities, cfg.Nodes)
	}
	var ids []string
	for i := range cfg.Authorities {
		dir, err := net.dir(cfg, i)
		if err != nil {
			return nil, fmt.Errorf("node %d: %w", i, err)
		}
		key, _, err := dir.Key()
		if err != nil {
			return nil, fmt.Errorf("node %d: %w", i, err)
		}
		id, err := netfile.PeerIDOf(bft.KeyOf(key))
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	f, err := netfile.New(cfg.Params.Name, ids)
	if err != nil {
		return nil, err
	}
	f.BlockInterval = "1s"
	f.MaxReadings = cfg.Params.MaxReadings
	return f, nil
}

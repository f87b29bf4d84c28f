package testnet

// The naive baseline: the classic libp2p blockchain demo's design, run in
// the same harness as the real nodes so that their figures compare. Each
// node keeps its chain as a slice of blocks and sends the whole chain, as
// one JSON line, to each neighbour every Interval (5 s) and when it adds a
// block of its own; a receiver keeps the chain it got if it is longer than
// its own, and sends it on at its next tick, as the demo does. It checks
// nothing, stores nothing and signs nothing: it is a yardstick, not a node.

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// NaiveBlock is a block of the naive chain: the demo's fields (index, time,
// BPM, hash, previous hash) plus what a p2pchain reading holds (subject,
// author key, signature) so that a block carries the same content, and a
// nonce for proof of work.
type NaiveBlock struct {
	Index     int
	Timestamp string
	BPM       int
	Subject   string
	Author    string // hex Ed25519 public key
	Sig       string // hex signature
	Hash      string
	PrevHash  string
	Nonce     int
}

// hash is the SHA-256 of the block's fields as the demo concatenates them,
// the nonce last.
func (b NaiveBlock) hash() [32]byte {
	return sha256.Sum256(strconv.AppendInt(b.hashPrefix(), int64(b.Nonce), 10))
}

// hashPrefix is what the block's hash covers before the nonce.
func (b NaiveBlock) hashPrefix() []byte {
	return []byte(strconv.Itoa(b.Index) + b.Timestamp + strconv.Itoa(b.BPM) + b.Subject + b.Author + b.Sig + b.PrevHash)
}

// NaiveConfig says how to run a naive network.
type NaiveConfig struct {
	Nodes      int
	Links      [][2]int      // [i, j]: node i dials node j (Topology.Links)
	Interval   time.Duration // between whole-chain sends (0: 5 s)
	Difficulty int           // leading zero bits of a block's hash (0: none)
}

// NaiveNetwork is a running naive network on loopback TCP, one goroutine
// set per node.
type NaiveNetwork struct {
	nodes  []*naiveNode
	key    ed25519.PrivateKey
	cfg    NaiveConfig
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when a node's chain grows
}

type naiveNode struct {
	net     *NaiveNetwork
	ln      net.Listener
	bytesIn atomic.Uint64
	rephase chan struct{} // draw a new phase for the sends

	mu      sync.Mutex
	chain   []NaiveBlock
	reached []time.Time // reached[k]: when the chain first had k+1 blocks
	conns   []*naiveConn
}

type naiveConn struct {
	mu sync.Mutex
	c  net.Conn
	w  *bufio.Writer
}

// StartNaive starts a naive network and connects it by cfg.Links.
func StartNaive(ctx context.Context, cfg NaiveConfig) (_ *NaiveNetwork, err error) {
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
	}
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	nn := &NaiveNetwork{key: key, cfg: cfg, cancel: cancel, changed: make(chan struct{})}
	defer func() {
		if err != nil {
			nn.Close()
		}
	}()
	genesis := NaiveBlock{Timestamp: time.Unix(1767225600, 0).UTC().String()}
	gh := genesis.hash()
	genesis.Hash = hex.EncodeToString(gh[:])
	for range cfg.Nodes {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		n := &naiveNode{net: nn, ln: ln, chain: []NaiveBlock{genesis}, reached: []time.Time{{}}, rephase: make(chan struct{}, 1)}
		nn.nodes = append(nn.nodes, n)
		nn.wg.Add(2)
		go func() {
			defer nn.wg.Done()
			n.accept(rctx)
		}()
		go func() {
			defer nn.wg.Done()
			n.tick(rctx)
		}()
	}
	for _, l := range cfg.Links {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", nn.nodes[l[1]].ln.Addr().String())
		if err != nil {
			return nil, fmt.Errorf("naive node %d dialing node %d: %w", l[0], l[1], err)
		}
		nn.nodes[l[0]].serve(rctx, c)
	}
	// The accepting ends register their connections in their own
	// goroutines: wait for them, or a node's first send (the one timed)
	// would miss neighbours, which would then wait for a periodic send.
	want := make([]int, len(nn.nodes))
	for _, l := range cfg.Links {
		want[l[0]]++
		want[l[1]]++
	}
	deadline := time.Now().Add(30 * time.Second)
	for i, n := range nn.nodes {
		for {
			n.mu.Lock()
			have := len(n.conns)
			n.mu.Unlock()
			if have >= want[i] {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("naive node %d: %d of its %d connections 30 s after the dials", i, have, want[i])
			}
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("naive node %d: %d of its %d connections after the dials: %w", i, have, want[i], ctx.Err())
			case <-time.After(time.Millisecond):
			}
		}
	}
	return nn, nil
}

// accept serves the connections other nodes make to n.
func (n *naiveNode) accept(ctx context.Context) {
	for {
		c, err := n.ln.Accept()
		if err != nil {
			return
		}
		n.serve(ctx, c)
	}
}

// serve adds a connection to n's neighbours and reads chains from it.
func (n *naiveNode) serve(ctx context.Context, c net.Conn) {
	nc := &naiveConn{c: c, w: bufio.NewWriter(c)}
	n.mu.Lock()
	n.conns = append(n.conns, nc)
	n.mu.Unlock()
	n.net.wg.Add(1)
	go func() {
		defer n.net.wg.Done()
		defer c.Close()
		r := bufio.NewReaderSize(c, 64*1024)
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return
			}
			n.bytesIn.Add(uint64(len(line)))
			var chain []NaiveBlock
			if json.Unmarshal(line, &chain) != nil {
				continue
			}
			n.adopt(chain, time.Now())
		}
	}()
	go func() {
		<-ctx.Done()
		c.Close()
	}()
}

// adopt keeps chain if it is longer than n's (the demo's only rule).
func (n *naiveNode) adopt(chain []NaiveBlock, at time.Time) {
	n.mu.Lock()
	grew := len(chain) > len(n.chain)
	if grew {
		n.chain = chain
		for len(n.reached) < len(chain) {
			n.reached = append(n.reached, at)
		}
	}
	n.mu.Unlock()
	if grew {
		n.net.mu.Lock()
		close(n.net.changed)
		n.net.changed = make(chan struct{})
		n.net.mu.Unlock()
	}
}

// tick sends n's whole chain to every neighbour every interval, from a
// random phase (nodes that their users started at different times do not
// send in step), drawn again on rephase.
func (n *naiveNode) tick(ctx context.Context) {
	t := time.NewTimer(rand.N(n.net.cfg.Interval))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.rephase:
			t.Reset(rand.N(n.net.cfg.Interval))
		case <-t.C:
			n.broadcast()
			t.Reset(n.net.cfg.Interval)
		}
	}
}

// broadcast sends n's chain, one JSON line, to each neighbour.
func (n *naiveNode) broadcast() {
	n.mu.Lock()
	line, err := json.Marshal(n.chain)
	conns := append([]*naiveConn(nil), n.conns...)
	n.mu.Unlock()
	if err != nil {
		return
	}
	line = append(line, '\n')
	for _, c := range conns {
		c.mu.Lock()
		_ = c.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.w.Write(line); err == nil {
			_ = c.w.Flush()
		}
		c.mu.Unlock()
	}
}

// mine makes the block after prev with proof of work at difficulty bits.
func (nn *NaiveNetwork) mine(prev NaiveBlock, subject string, bpm int) (NaiveBlock, error) {
	now := time.Now()
	msg := fmt.Appendf(nil, "%s/%d/%d", subject, bpm, now.UnixMilli())
	b := NaiveBlock{Index: prev.Index + 1, Timestamp: now.String(), BPM: bpm, Subject: subject,
		Author: hex.EncodeToString(nn.key.Public().(ed25519.PublicKey)), Sig: hex.EncodeToString(ed25519.Sign(nn.key, msg)),
		PrevHash: prev.Hash}
	// As the node's miner (chain.Solve) keeps the SHA-256 state after the
	// part of the header no try changes, this one hashes the fields before
	// the nonce once and, per try, only the nonce's digits: the same hash
	// (NaiveBlock.hash), within 2 times the node's per try, so that a
	// baseline at the same difficulty pays little for its miner
	// (PERFORMANCE.md gives the figures).
	d := sha256.New()
	d.Write(b.hashPrefix())
	mid, err := d.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return b, fmt.Errorf("naive miner: sha256 state: %w", err)
	}
	restore := d.(encoding.BinaryUnmarshaler)
	var digits [20]byte
	var h [32]byte
	for ; ; b.Nonce++ {
		if err := restore.UnmarshalBinary(mid); err != nil {
			return b, fmt.Errorf("naive miner: sha256 state: %w", err)
		}
		d.Write(strconv.AppendInt(digits[:0], int64(b.Nonce), 10))
		d.Sum(h[:0])
		if leadingZeros(h) >= nn.cfg.Difficulty {
			b.Hash = hex.EncodeToString(h[:])
			return b, nil
		}
	}
}

func leadingZeros(h [32]byte) int {
	n := 0
	for _, x := range h {
		if x != 0 {
			return n + bits.LeadingZeros8(x)
		}
		n += 8
	}
	return n
}

// Propagate has node i add a block holding a reading (mined at the
// network's difficulty) and send its chain at once, as the demo does when
// the user types a heart rate, and waits until every node has the block.
// It returns the time from the start of mining until the last node adopted
// a chain holding the block.
//
// Every node first draws a new phase for its periodic sends: a user adds a
// reading at no particular point of the nodes' cycles, whereas the harness
// submits right after the last block arrived, in step with a node's send.
func (nn *NaiveNetwork) Propagate(ctx context.Context, i int, subject string, bpm int) (time.Duration, error) {
	for _, n := range nn.nodes {
		select {
		case n.rephase <- struct{}{}:
		default:
		}
	}
	start := time.Now()
	n := nn.nodes[i]
	n.mu.Lock()
	prev := n.chain[len(n.chain)-1]
	n.mu.Unlock()
	b, err := nn.mine(prev, subject, bpm)
	if err != nil {
		return 0, err
	}
	n.mu.Lock()
	chain := append(append([]NaiveBlock(nil), n.chain...), b)
	n.mu.Unlock()
	n.adopt(chain, time.Now())
	n.broadcast()
	target := len(chain)
	for {
		nn.mu.Lock()
		changed := nn.changed
		nn.mu.Unlock()
		var last time.Time
		done := true
		for _, m := range nn.nodes {
			m.mu.Lock()
			if len(m.reached) < target {
				done = false
			} else if t := m.reached[target-1]; t.After(last) {
				last = t
			}
			m.mu.Unlock()
		}
		if done {
			return last.Sub(start), nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(time.Duration(len(nn.nodes)+2) * nn.cfg.Interval * 2):
			return 0, errors.New("naive network: a block did not reach every node")
		}
	}
}

// BytesIn returns the chain bytes every node has received so far, summed.
func (nn *NaiveNetwork) BytesIn() uint64 {
	var sum uint64
	for _, n := range nn.nodes {
		sum += n.bytesIn.Load()
	}
	return sum
}

// Close stops every node and waits for their goroutines.
func (nn *NaiveNetwork) Close() {
	nn.cancel()
	for _, n := range nn.nodes {
		n.ln.Close()
	}
	nn.wg.Wait()
}

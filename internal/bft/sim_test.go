package bft_test

import (
	"container/heap"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/bft"
	"github.com/p2pchain/p2pchain/internal/chain"
)

// The simulated network: n machines exchanging encoded messages through a
// scheduler in virtual time, with seeded random delays, drops and
// partitions. Each node relays the messages its machine accepts to every
// other node (as GossipSub would), so a message reaches a node through any
// path that is up. The owner of each machine is played by the simulator:
// it validates blocks (a registry of fake blocks stands in for the chain),
// builds blocks when asked, applies commits (and the membership changes
// their blocks carry) and syncs from a peer when its machine says it is
// behind. Every commit any node makes is checked against every other:
// two different blocks decided at one height fail the test at once.

var simEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type simBlock struct {
	height  uint64
	changes []bft.Change
	valid   bool
}

type simNode struct {
	id       int
	key      ed25519.PrivateKey
	m        *bft.Machine
	sched    *bft.Schedule
	up       bool
	seen     map[uint64]bool // envelope ids
	ticks    map[int64]bool  // deadlines with a tick scheduled
	commits  map[uint64]*bft.Commit
	state    []byte // the encoded State the node persisted
	evidence []*bft.Evidence
	behind   uint64
	syncing  bool
	// test behaviour
	equivocate     bool // sign a twin of every proposal and vote, for other nodes
	proposeInvalid bool // build invalid blocks
}

type simEvent struct {
	at  time.Time
	seq uint64
	fn  func()
}

type simQueue []*simEvent

func (q simQueue) Len() int { return len(q) }
func (q simQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q simQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)   { *q = append(*q, x.(*simEvent)) }
func (q *simQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

type simNet struct {
	t        testing.TB
	rng      *rand.Rand
	now      time.Time
	seq      uint64
	envs     uint64
	queue    simQueue
	nodes    []*simNode
	network  chain.Hash
	minDelay time.Duration
	maxDelay time.Duration
	drop     float64
	cut      func(from, to int) bool
	decided  map[uint64]chain.Hash
	blocks   map[chain.Hash]*simBlock
	plan     map[uint64][]bft.Change // changes the block at a height carries
	interval time.Duration           // from a commit to the start of the next height
	verified map[string]bool         // commits verified, by encoding
	nblocks  int
	events   int
}

// simKey returns the test key of authority i.
func simKey(i int) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	binary.BigEndian.PutUint64(seed, uint64(i)+1)
	copy(seed[8:], "p2pchain bft test key")
	return ed25519.NewKeyFromSeed(seed)
}

func simKeys(n int) []bft.Key {
	keys := make([]bft.Key, n)
	for i := range keys {
		keys[i] = bft.KeyOf(simKey(i))
	}
	return keys
}

var simNetwork = chain.Hash(sha256.Sum256([]byte("bft simulation network")))

// newSim returns a network of nodes nodes whose genesis set is the first
// authorities of them (nodes beyond are followers, until a change adds
// them). Nothing runs until start.
func newSim(t testing.TB, seed uint64, nodes, authorities int) *simNet {
	set, err := bft.NewSet(simKeys(authorities))
	if err != nil {
		t.Fatal(err)
	}
	s := &simNet{
		t: t, rng: rand.New(rand.NewPCG(seed, 0x62667431)), now: simEpoch,
		network: simNetwork, minDelay: time.Millisecond, maxDelay: 20 * time.Millisecond,
		decided: map[uint64]chain.Hash{}, verified: map[string]bool{}, blocks: map[chain.Hash]*simBlock{}, plan: map[uint64][]bft.Change{},
	}
	for i := range nodes {
		k := simKey(i)
		s.nodes = append(s.nodes, &simNode{
			id: i, key: k, m: bft.NewMachine(bft.Config{Network: s.network, Key: k}),
			sched: bft.NewSchedule(set), up: true,
			seen: map[uint64]bool{}, ticks: map[int64]bool{}, commits: map[uint64]*bft.Commit{},
		})
	}
	return s
}

func (s *simNet) at(t time.Time, fn func()) {
	s.seq++
	heap.Push(&s.queue, &simEvent{at: t, seq: s.seq, fn: fn})
}

func (s *simNet) soon(fn func()) { s.at(s.now, fn) }

// start starts every node that is up at height 1.
func (s *simNet) start() {
	for _, n := range s.nodes {
		if n.up {
			s.startNode(n)
		}
	}
}

func (s *simNet) startNode(n *simNode) {
	s.soon(func() { s.handle(n, n.m.Start(1, n.sched.SetAt(1), s.now)) })
}

// run processes events until stop holds or the virtual clock passes limit.
// It reports whether stop held.
func (s *simNet) run(limit time.Duration, stop func() bool) bool {
	end := s.now.Add(limit)
	for s.queue.Len() > 0 {
		if stop != nil && stop() {
			return true
		}
		e := heap.Pop(&s.queue).(*simEvent)
		if e.at.After(end) {
			heap.Push(&s.queue, e)
			break
		}
		if e.at.After(s.now) {
			s.now = e.at
		}
		s.events++
		e.fn()
	}
	s.now = end
	return stop != nil && stop()
}

// allDecided returns a stop condition: every node that is up has decided
// height h.
func (s *simNet) allDecided(h uint64) func() bool {
	return func() bool {
		for _, n := range s.nodes {
			if n.up && n.commits[h] == nil {
				return false
			}
		}
		return true
	}
}

// highest returns the highest height with a decision anywhere.
func (s *simNet) highest() uint64 {
	var h uint64
	for k := range s.decided {
		h = max(h, k)
	}
	return h
}

func (s *simNet) delay() time.Duration {
	return s.minDelay + time.Duration(s.rng.Int64N(int64(s.maxDelay-s.minDelay)+1))
}

// send carries envelope id with data from node from to node to.
func (s *simNet) send(from, to int, id uint64, data []byte) {
	if s.drop > 0 && s.rng.Float64() < s.drop {
		return
	}
	if s.cut != nil && s.cut(from, to) {
		return
	}
	s.at(s.now.Add(s.delay()), func() { s.deliver(from, to, id, data) })
}

func (s *simNet) deliver(from, to int, id uint64, data []byte) {
	n := s.nodes[to]
	if !n.up || n.seen[id] || (s.cut != nil && s.cut(from, to)) {
		return
	}
	n.seen[id] = true
	msg, err := bft.DecodeMessage(data)
	if err != nil {
		s.t.Fatalf("node %d: message from %d does not decode: %v", to, from, err)
	}
	u, err := n.m.Receive(msg, s.now)
	if err == nil {
		for k := range s.nodes {
			if k != to && k != from {
				s.send(to, k, id, data)
			}
		}
	} else if bft.IsPeerFault(err) {
		s.t.Errorf("node %d: %s from %d refused as a fault: %v", to, msg.Kind(), from, err)
	}
	s.handle(n, u)
}

// broadcast sends msg from node from to every node listed (all if nil).
func (s *simNet) broadcast(from int, msg bft.Message, to []int) {
	s.envs++
	id := s.envs
	s.nodes[from].seen[id] = true
	data := msg.AppendBinary(nil)
	if to == nil {
		for k := range s.nodes {
			to = append(to, k)
		}
	}
	for _, k := range to {
		if k != from {
			s.send(from, k, id, data)
		}
	}
}

// handle does what an Update says, as an owner would.
func (s *simNet) handle(n *simNode, u bft.Update) {
	if u.State != nil {
		n.state = u.State.AppendBinary(nil)
	}
	for _, h := range u.Validate {
		s.soon(func() { s.handle(n, n.m.Validated(h, s.valid(n, h), s.now)) })
	}
	for _, msg := range u.Messages {
		if n.equivocate {
			s.equivocate(n, msg)
			continue
		}
		s.broadcast(n.id, msg, nil)
	}
	if u.NeedBlock {
		height := n.m.Height()
		s.soon(func() { s.handle(n, n.m.Propose(height, s.newBlock(n, height), s.now)) })
	}
	n.evidence = append(n.evidence, u.Evidence...)
	if u.Commit != nil {
		s.commit(n, u.Commit)
	}
	if u.Behind > 0 {
		s.sync(n, u.Behind)
	}
	if d := u.Deadline; !d.IsZero() && !n.ticks[d.UnixNano()] {
		n.ticks[d.UnixNano()] = true
		s.at(d, func() {
			delete(n.ticks, d.UnixNano())
			if n.up {
				s.handle(n, n.m.Tick(s.now))
			}
		})
	}
}

// newBlock registers a block for height built by n.
func (s *simNet) newBlock(n *simNode, height uint64) chain.Hash {
	s.nblocks++
	h := sha256.Sum256(fmt.Appendf(nil, "block %d by %d, #%d", height, n.id, s.nblocks))
	s.blocks[h] = &simBlock{height: height, changes: s.plan[height], valid: !n.proposeInvalid}
	return h
}

// valid is the owner's block validation: a known, valid block of the
// node's current height whose membership changes its schedule accepts.
func (s *simNet) valid(n *simNode, h chain.Hash) bool {
	b := s.blocks[h]
	return b != nil && b.valid && b.height == n.m.Height() && n.sched.Check(b.height, b.changes...) == nil
}

// twin is the conflicting block an equivocating proposer signs beside h.
func (s *simNet) twin(h chain.Hash, height uint64) chain.Hash {
	t := sha256.Sum256(append([]byte("twin"), h[:]...))
	if s.blocks[t] == nil {
		s.blocks[t] = &simBlock{height: height, valid: true}
	}
	return t
}

// equivocate sends n's message to the even nodes and a conflicting twin,
// signed with n's key, to the odd ones.
func (s *simNet) equivocate(n *simNode, msg bft.Message) {
	var even, odd []int
	for k := range s.nodes {
		if k%2 == 0 {
			even = append(even, k)
		} else {
			odd = append(odd, k)
		}
	}
	s.broadcast(n.id, msg, even)
	switch x := msg.(type) {
	case *bft.Proposal:
		y := *x
		y.Hash, y.POLRound = s.twin(x.Hash, x.Height), -1
		y.Sign(s.network, n.key)
		s.broadcast(n.id, &y, odd)
		return
	case *bft.Vote:
		if int(x.Index) == n.m.Index() { // not a proof-of-lock vote of another
			y := *x
			y.Hash = s.twin(x.Hash, x.Height)
			y.Sign(s.network, n.key)
			s.broadcast(n.id, &y, odd)
			return
		}
	}
	s.broadcast(n.id, msg, odd)
}

// commit is the owner's side of a decision: verify it, check agreement,
// apply the block's changes and start the next height.
func (s *simNet) commit(n *simNode, c *bft.Commit) {
	if key := string(c.AppendBinary(nil)); !s.verified[key] {
		if err := bft.VerifyCommit(s.network, n.sched.SetAt(c.Height), c.Height, c.Hash, c); err != nil {
			s.t.Fatalf("node %d: its own commit at height %d does not verify: %v", n.id, c.Height, err)
		}
		s.verified[key] = true
	}
	if prev, ok := s.decided[c.Height]; ok && prev != c.Hash {
		s.t.Fatalf("FORK at height %d: node %d decided %s, another node %s", c.Height, n.id, c.Hash.Short(), prev.Short())
	}
	s.decided[c.Height] = c.Hash
	b := s.blocks[c.Hash]
	if b == nil || !b.valid || b.height != c.Height {
		s.t.Fatalf("node %d: decided block %s at height %d is not a valid block of that height", n.id, c.Hash.Short(), c.Height)
	}
	if err := n.sched.Apply(c.Height, b.changes...); err != nil {
		s.t.Fatalf("node %d: changes of block %d: %v", n.id, c.Height, err)
	}
	n.commits[c.Height] = c
	next := c.Height + 1
	s.at(s.now.Add(s.interval), func() {
		s.handle(n, n.m.Start(next, n.sched.SetAt(next), s.now))
		if n.behind >= next {
			s.sync(n, n.behind)
		}
	})
}

// sync fetches the commit of n's height from a peer that has it, as a
// block sync would (the block comes from the registry).
func (s *simNet) sync(n *simNode, target uint64) {
	n.behind = max(n.behind, target)
	if n.syncing {
		return
	}
	h := n.m.Height()
	var peers []*simNode
	for _, p := range s.nodes {
		if p != n && p.up && p.commits[h] != nil && (s.cut == nil || !s.cut(p.id, n.id)) {
			peers = append(peers, p)
		}
	}
	if len(peers) == 0 {
		return
	}
	p := peers[s.rng.IntN(len(peers))]
	n.syncing = true
	s.at(s.now.Add(2*s.delay()), func() {
		n.syncing = false
		if !n.up || n.m.Height() != h || n.m.Decided() != nil {
			return
		}
		u, err := n.m.Receive(p.commits[h], s.now)
		if err != nil {
			s.t.Fatalf("node %d: synced commit of height %d refused: %v", n.id, h, err)
		}
		s.handle(n, u)
	})
}

// rounds returns the round of each decided height, from node i's commits.
func (s *simNet) rounds(i int, upTo uint64) []int32 {
	var r []int32
	for h := uint64(1); h <= upTo; h++ {
		if c := s.nodes[i].commits[h]; c != nil {
			r = append(r, c.Round)
		} else {
			r = append(r, -1)
		}
	}
	return r
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

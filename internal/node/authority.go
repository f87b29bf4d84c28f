package node

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/p2pchain/p2pchain/internal/bft"
	"github.com/p2pchain/p2pchain/internal/chain"
)

// An authority network (chain.Authority) replaces mining by the consensus
// of package bft: the node's consensus loop (runAuthority) owns a
// bft.Machine, feeds it the consensus messages peers send (HandleConsensus)
// and does what each bft.Update says: persist the machine's state before
// its messages leave, judge proposed blocks on the tip, build a block when
// it is this node's turn, send messages (a proposal travels with its
// block), and apply the decided block with its commit as seal. Every
// block, decided here or received from a peer, joins the chain through the
// one path for blocks (process), which checks its seal against the
// authority set of its height (bft.CheckSeal) before the chain's rules;
// the chain then holds it final at once.

// Authority configures a node on an authority network (package netfile
// reads it from the network file).
type Authority struct {
	Set      *bft.Set      // the genesis authority set
	Timeouts bft.Timeouts  // the zero value means bft.DefaultTimeouts
	Interval time.Duration // the longest a height waits for a block while no reading is pending
}

// WithAuthority makes the node run the authority consensus of its network
// (Params.Consensus must be chain.Authority): it proposes and votes when its
// key is in the authority set of a height, and follows the commits otherwise.
func WithAuthority(a Authority) Option { return func(c *config) { c.auth = &a } }

// ConsensusInfo is the consensus of the node's network as the node sees it.
type ConsensusInfo struct {
	Kind        string    // "pow" or "authority"
	Height      uint64    // the height being decided (authority)
	Round       int32     // its round
	Step        string    // "propose", "prevote" or "precommit", or StepWaiting
	Authorities []bft.Key // the authority set of Height
	Self        int       // this node's index in it; -1 when it is not an authority
	Decided     uint64    // heights this node saw decided since it started
	Rounds      uint64    // rounds after round 0 they took, in all
	MissedTurns uint64    // of those heights, how many their round-0 proposer missed
	Started     time.Time // when this node started Height; zero while it waits
	Heard       int       // authorities of Height's set heard from at Height, this node included
	Quorum      int       // how many of them a decision needs (more than two thirds); 0 while it waits
	// IdleUntil is, while no reading or approved change waits, when the
	// next block is due: the last block plus the block interval. Until
	// then the authorities have nothing to decide and send nothing, so
	// that hearing none of them is no sign of trouble. Zero otherwise.
	IdleUntil time.Time
	Evidence  []*bft.Evidence
	Approved  []bft.Change // membership changes this node's operator approved, not yet in a block
}

// StepWaiting is ConsensusInfo.Step while a height waits to start: for a
// reading, an approved change, a peer's message or the block interval.
const StepWaiting = "waiting"

// Limits of the consensus owner.
const (
	// maxCandidates bounds the proposed blocks kept for the height being
	// decided: one per accepted proposal, and a proposer signs one per round.
	maxCandidates = 16
	// consensusQueue is how many peer messages wait for the consensus
	// loop; past it a message is ignored (not a fault: gossip resends).
	consensusQueue = 1024
	// consensusWait is the longest a peer's message waits for the loop's
	// verdict before it is ignored.
	consensusWait = 5 * time.Second
	// relayMemoSize is how many consensus messages HandleConsensus
	// remembers as verified and held by the machine (relayMemo).
	relayMemoSize = 4096
	// maxApproved bounds the membership changes an operator approves ahead.
	maxApproved = bft.MaxAuthorities
	// maxEvidence bounds the evidence kept in memory.
	maxEvidence = 1024
	// maxSubmitted bounds the readings whose submission time the node keeps
	// (n.submitted): to report their time to finality and to send them
	// again (rebroadcast). (Their place first in this authority's
	// proposals is the pending set's mark, chain.Pool.MarkFirst, which
	// has no bound of its own.)
	maxSubmitted = 1 << 16
	// rebroadcastAge is how long a pending reading waits before the node
	// sends it to its peers again: gossip loses what is sent before a
	// node's peers know it takes part in the topic, and across partitions.
	// On a network that decides, readings are final long before.
	rebroadcastAge = 2 * time.Second
	// rebroadcastMax is the most readings sent again at once.
	rebroadcastMax = 256
)

// errConsensusBusy: the consensus loop is not taking messages (not a fault).
var errConsensusBusy = errors.New("consensus: busy, message ignored")

var errNotAuthority = errors.New("this network has no authorities: membership changes need an authority network (p2pchain network new)")

// consensus is the state of an authority network's node that the
// consensus loop owns, and what it shares under Node.mu.
type consensus struct {
	net  chain.Hash
	auth Authority
	m    *bft.Machine // the loop's only
	in   chan consensusInput
	seen relayMemo // HandleConsensus's, safe for concurrent use
	// nextChecks bounds the proposer signatures HandleConsensus checks
	// for proposals of the height after next (checkBudget).
	nextChecks checkBudget

	// The loop's own.
	height     uint64                      // the height the machine decides, or will: the tip's + 1
	started    bool                        // the machine runs height
	startedAt  time.Time                   // when it started height (or resumed it)
	warnedAt   time.Time                   // the last warning that height is stuck
	lastBlock  time.Time                   // when the tip was applied: the block interval counts from it
	cands      map[chain.Hash]*chain.Block // blocks proposed at height
	next       map[chain.Hash]*chain.Block // blocks proposed at height+1, first come
	want       map[chain.Hash]bool         // blocks the machine asked to judge that we do not hold
	deadline   time.Time
	kept       map[chain.Hash]bool // blocks of keptHeight stored with the consensus state (keep)
	keptHeight uint64
	// saved is the consensus state stored before a restart, until the
	// machine resumes it at its height. The node signs nothing below that
	// height, which is above the one after the durable tip only if a crash
	// lost blocks that were in memory when the state was stored.
	saved       *bft.State
	savedBlocks []*chain.Block // stored with saved, proposed at its height

	approveMu sync.Mutex // serialises Approve, which stores outside Node.mu

	// Guarded by Node.mu.
	sched    *bft.Schedule
	version  uint64                  // schedule changes applied: a seal checked at another version is checked again
	sealed   map[*chain.Block]uint64 // blocks whose seal precheckLocked verified, at that version
	approved []bft.Change
	evidence []*bft.Evidence
	info     ConsensusInfo
	due      time.Time // the last block plus the block interval (ConsensusInfo.IdleUntil)
}

type consensusInput struct {
	msg   bft.Message
	block *chain.Block // with a proposal, if it came with one
	reply chan consensusReply
}

// consensusReply is the machine's verdict on a peer's message, and whether
// the machine now holds the message (not a far round's, which only counts
// towards a round skip and must come again to count in its round).
type consensusReply struct {
	err  error
	held bool
}

func newConsensus(p chain.Params, a Authority, key ed25519.PrivateKey) (*consensus, error) {
	if p.Consensus != chain.Authority {
		return nil, errors.New("node: authority settings on a proof-of-work network")
	}
	if a.Set == nil {
		return nil, errors.New("node: an authority network needs its authority set")
	}
	if a.Interval <= 0 {
		a.Interval = 5 * time.Second
	}
	if a.Timeouts == (bft.Timeouts{}) {
		a.Timeouts = bft.DefaultTimeouts()
	}
	net := p.Genesis().Hash()
	c := &consensus{
		net: net, auth: a,
		m:     bft.NewMachine(bft.Config{Network: net, Key: key, Timeouts: a.Timeouts}),
		in:    make(chan consensusInput, consensusQueue),
		sched: bft.NewSchedule(a.Set), sealed: map[*chain.Block]uint64{},
		cands: map[chain.Hash]*chain.Block{}, next: map[chain.Hash]*chain.Block{}, want: map[chain.Hash]bool{},
	}
	c.info = ConsensusInfo{Kind: p.Consensus.String(), Self: -1}
	return c, nil
}

// Consensus returns the consensus state of the node's network.
func (n *Node) Consensus() ConsensusInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cons == nil {
		return ConsensusInfo{Kind: n.params.Consensus.String(), Self: -1}
	}
	info := n.cons.info
	if info.Height == 0 {
		// The consensus loop has not run yet: the height after the tip.
		info.Height, info.Step = n.chain.Height()+1, bft.StepPropose.String()
		set := n.cons.sched.SetAt(info.Height)
		info.Authorities = set.Keys()
		if i, ok := set.Index(bft.KeyOf(n.key)); ok {
			info.Self = i
		}
	}
	info.Evidence = append([]*bft.Evidence(nil), n.cons.evidence...)
	info.Approved = append([]bft.Change(nil), n.cons.approved...)
	if info.IdleUntil = n.idleDueLocked(); !n.now().Before(info.IdleUntil) {
		info.IdleUntil = time.Time{}
	}
	return info
}

// idleDueLocked is, while no reading or approved change waits, when the
// next block is due: the last block plus the block interval. Until then
// the authorities have nothing to decide and send nothing. Zero while
// something waits. n.mu must be held.
func (n *Node) idleDueLocked() time.Time {
	if n.pool.Len() > 0 || len(n.cons.approved) > 0 {
		return time.Time{}
	}
	return n.cons.due
}

// AuthoritySet returns the authority set of a height (nil on a
// proof-of-work network).
func (n *Node) AuthoritySet(height uint64) *bft.Set {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cons == nil {
		return nil
	}
	return n.cons.sched.SetAt(height)
}

// Approve records that this node's operator approves a membership change:
// an authority proposes the changes it approves and prevotes only for
// blocks whose changes it approves, so a change takes effect once more
// than two thirds of the authorities approved it. A change with Height 0
// takes effect at the height after the block that carries it. It fails
// on a proof-of-work network and for a change the current schedule
// refuses.
//
// The approval is stored before Approve returns, so a restart keeps it;
// the write happens outside the node's lock (approvals are serialised by
// their own).
func (n *Node) Approve(c bft.Change) error {
	if n.cons == nil {
		return errNotAuthority
	}
	n.cons.approveMu.Lock()
	defer n.cons.approveMu.Unlock()
	n.mu.Lock()
	if err := n.checkApprovalLocked(c); err != nil {
		n.mu.Unlock()
		return err
	}
	list := append(slices.Clone(n.cons.approved), c)
	n.mu.Unlock()
	if n.store != nil {
		// A change a block applies meanwhile stays in this record until
		// the next approval; loadApprovals leaves it out.
		if err := n.store.SaveApprovals(bft.EncodeChanges(list)); err != nil {
			return fmt.Errorf("change not approved: store it: %w", err)
		}
	}
	n.mu.Lock()
	n.cons.approved = append(n.cons.approved, c)
	n.signalLocked()
	n.mu.Unlock()
	return nil
}

// checkApprovalLocked returns why c cannot be approved now, or nil. n.mu
// must be held.
func (n *Node) checkApprovalLocked(c bft.Change) error {
	at := n.chain.Height() + 1
	probe := c
	if probe.Height == 0 {
		probe.Height = at + 1
	}
	if err := n.cons.sched.Check(at, probe); err != nil {
		return fmt.Errorf("change refused: %w", err)
	}
	for _, a := range n.cons.approved {
		if a.Op == c.Op && a.Key == c.Key {
			return fmt.Errorf("change refused: %s of %s is already approved", opName(c.Op), c.Key.String()[:10])
		}
	}
	if len(n.cons.approved) >= maxApproved {
		return fmt.Errorf("change refused: %d changes already wait for a block", maxApproved)
	}
	return nil
}

// loadApprovals restores the approvals stored by Approve that the chain's
// schedule still accepts (a change a block applied since is left out).
func (n *Node) loadApprovals() error {
	raw, err := n.store.Approvals()
	if err != nil {
		return fmt.Errorf("read the stored approvals: %w", err)
	}
	changes, err := bft.DecodeChanges(raw)
	if err != nil {
		n.log.Warn("consensus: the stored approvals do not decode; approve the membership changes again", "err", err)
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range changes {
		if n.checkApprovalLocked(c) == nil {
			n.cons.approved = append(n.cons.approved, c)
		}
	}
	if len(n.cons.approved) > 0 {
		n.log.Info("consensus: approved membership changes restored", "changes", len(n.cons.approved))
	}
	return nil
}

func opName(op bft.Op) string {
	if op == bft.OpRemove {
		return "removal"
	}
	return "addition"
}

// approvesLocked reports whether this node's operator approved every
// change. n.mu must be held.
func (c *consensus) approvesLocked(changes []bft.Change) bool {
	for _, ch := range changes {
		ok := false
		for _, a := range c.approved {
			if a.Op == ch.Op && a.Key == ch.Key && (a.Height == 0 || a.Height == ch.Height) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// checkSealLocked checks the seal and changes of a block on an authority
// network against the schedule as of the tip (bft.CheckSeal), returning
// the changes to apply when it joins. A failure is a chain.ErrBadSeal.
// n.mu must be held.
// A seal the precheck verified is not verified again under the lock if
// the schedule has not changed since.
func (n *Node) checkSealLocked(b *chain.Block) ([]bft.Change, error) {
	if v, ok := n.cons.sealed[b]; ok && v == n.cons.version {
		return bft.DecodeChanges(b.Changes) // decoded and checked at this version
	}
	_, changes, err := bft.CheckSeal(n.cons.net, n.cons.sched, b)
	if err != nil {
		return nil, &chain.RuleError{Code: chain.ErrBadSeal, Detail: fmt.Sprintf("block %s at height %d: %v", b.Hash().Short(), b.Header.Height, err)}
	}
	return changes, nil
}

// connectedLocked applies the changes of a block that joined the chain
// and forgets the approvals they used. n.mu must be held.
func (n *Node) connectedLocked(b *chain.Block, changes []bft.Change) {
	if len(changes) == 0 {
		return
	}
	_ = n.cons.sched.Apply(b.Header.Height, changes...) // checked by checkSealLocked
	n.cons.version++
	kept := n.cons.approved[:0]
	for _, a := range n.cons.approved {
		used := false
		for _, ch := range changes {
			used = used || (a.Op == ch.Op && a.Key == ch.Key)
		}
		if !used {
			kept = append(kept, a)
		}
	}
	n.cons.approved = kept
	n.log.Info("authority set changes", "height", b.Header.Height, "changes", len(changes))
}

// relayMemo remembers the last relayMemoSize consensus messages that
// HandleConsensus verified and the machine then held, keyed by their bytes
// (a proposal's block included) and the tip they arrived at, with when one
// was last let through to be relayed. A message comes again when its
// signer resends it (the machine does, every Timeouts.Resend while it
// waits: a peer may have missed it). A repeated proposal with its block is
// recognised here, by a hash and a lookup, before the block is decoded
// and checked again; the machine recognises other repeats without a
// signature (bft.ErrRepeat). A repeat is relayed again at most once per
// Timeouts.Resend, because a peer that reaches its signer only through
// this node (authorities that each dialled one of them, say) hears it no
// other way, while a replay flood must not become everyone's. Keyed by the
// tip, a message is checked afresh once the chain moves.
type relayMemo struct {
	mu   sync.Mutex
	at   map[[32]byte]time.Time
	ring [relayMemoSize][32]byte
	next int
}

func memoKey(msg []byte, tip uint64) [32]byte {
	h := sha256.New()
	h.Write(msg)
	h.Write(binary.BigEndian.AppendUint64(nil, tip))
	return [32]byte(h.Sum(nil))
}

func (m *relayMemo) has(k [32]byte) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.at[k]
	return ok
}

// relay reports whether a message of key k may be relayed at now (it was
// not within gap before), and if so records now.
func (m *relayMemo) relay(k [32]byte, now time.Time, gap time.Duration) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	last, ok := m.at[k]
	if ok && now.Sub(last) < gap && !now.Before(last) {
		return false
	}
	if !ok {
		if m.at == nil {
			m.at = make(map[[32]byte]time.Time, relayMemoSize)
		}
		if len(m.at) == relayMemoSize {
			delete(m.at, m.ring[m.next])
		}
		m.ring[m.next] = k
		m.next = (m.next + 1) % relayMemoSize
	}
	m.at[k] = now
	return true
}

// nextChecksPerSecond bounds the signature checks of proposals for the
// next height that HandleConsensus makes, a second and at once: a
// proposer signs one proposal a round.
const nextChecksPerSecond = maxCandidates

// checkBudget is a token bucket of signature checks whose failure is no
// one's fault, so that forged messages, free to make, and replayed ones
// cost a bounded number of them. It is safe for concurrent use.
type checkBudget struct {
	mu     sync.Mutex
	tokens float64
	at     time.Time
}

// take takes a check at now, or reports false when none is left.
func (b *checkBudget) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.at.IsZero():
		b.tokens = nextChecksPerSecond
	case now.After(b.at):
		b.tokens = min(nextChecksPerSecond, b.tokens+now.Sub(b.at).Seconds()*nextChecksPerSecond)
	}
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// HandleConsensus takes a consensus message from a peer: a bft message,
// for a proposal followed by the proposed block's encoding. It returns nil
// when the message was accepted (new, verified: worth relaying), an error
// for which bft.IsPeerFault or chain.IsPeerFault is true when the sender
// broke the protocol, and another error when the message is merely of no
// use (old, duplicate, or the node is busy). Cheap checks come first: a
// message verified before (relayMemo), the encoding, then the proposer's
// signature, and only then the block's reading signatures (into the shared
// cache, outside every lock).
func (n *Node) HandleConsensus(ctx context.Context, data []byte) error {
	c := n.cons
	if c == nil {
		return errNotAuthority
	}
	if len(data) == 0 {
		return &bft.RuleError{Code: bft.ErrMalformed, Detail: "empty consensus message"}
	}
	size := len(data)
	if bft.Kind(data[0]) == bft.KindProposal && size > bft.ProposalSize {
		size = bft.ProposalSize
	}
	msg, err := bft.DecodeMessage(data[:size])
	if err != nil {
		return err
	}
	now := n.now()
	resend := c.auth.Timeouts.Resend
	if resend <= 0 {
		resend = bft.DefaultTimeouts().Resend
	}
	// A repeat is relayed at most once per gap: three quarters of the
	// signer's resend interval, so that jitter does not skip every other
	// resend; for a proposal with its block (up to a block's size on every
	// link) four intervals, which a peer that missed it still gets within
	// a few seconds.
	gap := resend * 3 / 4
	if size < len(data) {
		gap = 4 * resend
	}
	n.mu.Lock()
	tip := n.chain.Height()
	n.mu.Unlock()
	key := memoKey(data, tip)
	withBlk := size < len(data)
	// A proposal with its block, verified before: a resend, recognised
	// before the block is decoded and hashed again. Other messages go to
	// the machine, which tells a repeat of one it holds from the rest
	// without a signature (bft.ErrRepeat), and must see them: a lagging
	// peer's resent votes are what it answers with the commit once it has
	// decided (kept from it, a peer that missed the decision stays stuck).
	if withBlk && c.seen.has(key) {
		if c.seen.relay(key, now, gap) {
			return nil // a resend, verified before: relayed for peers that missed it
		}
		return &bft.RuleError{Code: bft.ErrRepeat, Detail: "a message verified before, relayed within " + gap.String()}
	}
	var (
		blk      *chain.Block
		memoable = !withBlk // a proposal's block must be checked here first
	)
	if p, ok := msg.(*bft.Proposal); ok && withBlk {
		n.mu.Lock()
		set := c.sched.SetAt(p.Height)
		n.mu.Unlock()
		blk, err = chain.DecodeBlock(data[size:], n.params.MaxReadings)
		if err != nil {
			return err
		}
		if blk.Hash() != p.Hash || len(blk.Seal) > 0 {
			return &bft.RuleError{Code: bft.ErrMalformed, Detail: "a proposal with another block, or a sealed one"}
		}
		switch {
		case p.Height == tip+1:
			// The height being decided: its set is known. The proposer's
			// signature first, then the readings' (into the cache).
			if err := p.Verify(c.net, set); err != nil {
				return err
			}
			// The block's body against its header: only then are these
			// bytes the proposer's, worth relaying when they come again.
			_, berr := chain.CheckBody(blk, n.params)
			memoable = berr == nil
			n.verifySignatures(ctx, []*chain.Block{blk}, []bool{true}, true)
		case p.Height == tip+2:
			// The next height (this node has not applied the block before
			// it yet). Its set may still change with the block before it,
			// so a failed signature is no fault and the machine checks the
			// proposal again when the height starts; but only a block
			// whose proposal verifies under the set known now waits for
			// it. Unchecked, forged proposals would fill the next
			// height's slots and push out the real proposer's block.
			// A failed check is no fault, so forging one is free, and a
			// real one replayed (not remembered: it is not relayed) is
			// checked again: such checks are bounded (checkBudget), and
			// past the budget the block is not kept, as if its proposal
			// had failed (the proposer sends it again).
			if !c.nextChecks.take(now) || p.Verify(c.net, set) != nil {
				blk = nil
			}
		default:
			blk = nil // a height decided, or far ahead: the machine says which
		}
	}
	in := consensusInput{msg: msg, block: blk, reply: make(chan consensusReply, 1)}
	select {
	case c.in <- in:
	default:
		return errConsensusBusy
	}
	timeout := time.NewTimer(consensusWait)
	defer timeout.Stop()
	select {
	case r := <-in.reply:
		// New and valid (nil: relayed now), or byte for byte one the
		// machine holds (verified then): remembered, and a repeat relayed
		// at most once per gap.
		if memoable && r.held && c.seen.relay(key, now, gap) {
			return nil
		}
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	case <-n.dead:
		return n.Err()
	case <-timeout.C:
		return errConsensusBusy // the loop is not running, or is stuck on its store
	}
}

// loadEvidence reads back the evidence the store kept.
func (c *consensus) loadEvidence(st Store) error {
	raw, err := st.Evidence()
	if err != nil {
		return fmt.Errorf("read the stored evidence: %w", err)
	}
	for _, b := range raw {
		var ev bft.Evidence
		if ev.UnmarshalBinary(b) == nil && len(c.evidence) < maxEvidence {
			c.evidence = append(c.evidence, &ev)
		}
	}
	return nil
}

// ReceiveReading takes a reading gossiped by a peer into the pending set
// (authority networks: readings travel to the proposers). Known readings
// give chain.ErrKnownReading.
func (n *Node) ReceiveReading(r chain.Reading) error {
	if n.cons == nil {
		return errNotAuthority
	}
	return n.addReading(r, false)
}

// runAuthority is the consensus loop of an authority network: it runs
// until ctx ends or the node fails.
func (n *Node) runAuthority(ctx context.Context, b Broadcaster) error {
	c := n.cons
	if err := n.resumeConsensus(ctx, b); err != nil {
		return err
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	rebroadcast := time.NewTicker(rebroadcastAge)
	defer rebroadcast.Stop()
	for {
		now := n.now()
		n.mu.Lock()
		changed := n.changed
		// The durable tip, not the chain's: a height is decided here only
		// once the block below it is on disk, so that a state stored for
		// it never outlives that block in a crash (resumeConsensus).
		tip := n.durable.height
		busy := n.pool.Len() > 0 || len(c.approved) > 0
		n.mu.Unlock()
		if tip+1 > c.height {
			// The chain moved on: our decision applied, or blocks from peers.
			clear(c.cands)
			if tip+1 == c.height+1 {
				c.cands, c.next = c.next, c.cands
			} else {
				clear(c.next)
			}
			c.height, c.started, c.lastBlock = tip+1, false, now
			clear(c.want)
			n.mu.Lock()
			set := c.sched.SetAt(c.height)
			c.info.Height, c.info.Round, c.info.Step = c.height, 0, StepWaiting
			c.info.Started, c.info.Heard, c.info.Quorum = time.Time{}, 0, 0 // until it starts
			c.due = c.lastBlock.Add(c.auth.Interval)
			c.info.Authorities = set.Keys()
			c.info.Self = -1
			if i, ok := set.Index(bft.KeyOf(n.key)); ok {
				c.info.Self = i
			}
			n.mu.Unlock()
		}
		if !c.started && (busy || !now.Before(c.lastBlock.Add(c.auth.Interval)) || !n.authorityAt(c.height)) {
			n.startHeight(ctx, b, now)
		}
		wake := c.deadline
		if !c.started {
			wake = c.lastBlock.Add(c.auth.Interval)
			if c.saved != nil && c.height < c.saved.Height {
				wake = time.Time{} // only the chain reaching it starts a height (changed)
			}
		}
		if wake.IsZero() {
			wake = now.Add(time.Hour)
		}
		timer.Reset(max(wake.Sub(n.now()), time.Millisecond))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-n.dead:
			return n.Err()
		case in := <-c.in:
			n.receive(ctx, b, in)
		case <-timer.C:
			if c.started {
				n.handle(ctx, b, c.m.Tick(n.now()))
			}
		case <-rebroadcast.C:
			n.rebroadcast(ctx, b)
			n.warnIfStuck()
		case <-changed:
		}
	}
}

// stuckAfter is how long a started height may stay undecided before the
// node warns, and then how often it warns again.
const stuckAfter = 30 * time.Second

// warnIfStuck logs a warning when the height being decided has been
// started, and its block due, for stuckAfter without a decision, saying how many authorities
// this node hears: a network short of a quorum otherwise looks healthy
// (its nodes are synced, readings are pending) while nothing becomes final.
func (n *Node) warnIfStuck() {
	c := n.cons
	now := n.now()
	// A follower starts a height at once, but on an idle network (no
	// reading or change pending) the next block is due only a block
	// interval after the last one: hearing nothing until then is no sign
	// of trouble.
	n.mu.Lock()
	due := n.idleDueLocked()
	n.mu.Unlock()
	since := c.startedAt
	if due.After(since) {
		since = due
	}
	if !c.started || now.Sub(since) < stuckAfter || now.Sub(c.warnedAt) < stuckAfter {
		return
	}
	c.warnedAt = now
	heard, quorum, total := c.m.Heard(), 0, 0
	if set := c.m.Set(); set != nil {
		quorum, total = set.Quorum(), set.Len()
	}
	what := "check the authorities' logs"
	if heard < quorum {
		what = "start the authorities that are down, or connect this node to them (p2pchain connect ADDR)"
	}
	n.log.Warn("consensus: no block decided; "+what,
		"height", c.m.Height(), "round", c.m.Round(), "for", now.Sub(c.startedAt).Round(time.Second).String(),
		"authorities_heard", heard, "of", total, "needed", quorum)
}

// authorityAt reports whether this node is an authority at height.
func (n *Node) authorityAt(height uint64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.cons.sched.SetAt(height).Index(bft.KeyOf(n.key))
	return ok
}

// resumeConsensus starts the machine after a restart: from the state this
// authority persisted if it is of the height after the tip (it then signs
// nothing that contradicts what it signed before the restart), else fresh.
func (n *Node) resumeConsensus(ctx context.Context, b Broadcaster) error {
	c := n.cons
	n.mu.Lock()
	tip := n.durable.height
	n.mu.Unlock()
	c.height, c.lastBlock = tip+1, n.now()
	n.mu.Lock()
	c.due = c.lastBlock.Add(c.auth.Interval)
	n.mu.Unlock()
	if n.store == nil {
		return nil
	}
	raw, err := n.store.Consensus()
	if err != nil {
		return fmt.Errorf("read the consensus state: %w", err)
	}
	if raw == nil {
		return nil
	}
	var st bft.State
	if err := st.UnmarshalBinary(raw); err != nil {
		return fmt.Errorf("the stored consensus state is damaged (%w); an authority that restarts without it may sign twice: "+
			"keep this node stopped (and do not start it from an older copy of its data directory: that state would be older than what it signed); "+
			"have the other authorities remove its key (p2pchain authority remove) and add a new one for it", err)
	}
	if st.Height < c.height {
		return nil // a height already decided
	}
	// The blocks stored with it: the locked and valid blocks above all,
	// which no peer may hold any more.
	blocks, err := n.store.ConsensusBlocks()
	if err != nil {
		return fmt.Errorf("read the consensus state's blocks: %w", err)
	}
	c.kept, c.keptHeight = map[chain.Hash]bool{}, st.Height
	for _, blk := range blocks {
		if blk.Header.Height == st.Height {
			c.savedBlocks = append(c.savedBlocks, blk)
			c.kept[blk.Hash()] = true
		}
	}
	if st.Height > c.height {
		// Stored while the blocks below it were in memory only, and those
		// were lost: sign nothing until the chain reaches it again.
		n.log.Warn("consensus state of a height above the chain's: this node signs nothing until it has the blocks below it again",
			"state_height", st.Height, "chain_height", tip)
	}
	c.saved = &st
	n.startHeight(ctx, b, n.now())
	return nil
}

// keep returns the blocks of st's height, among those proposed, that a
// restart must find with st (docs/BFT.md section 10): the locked and the
// valid block and the node's own proposals, those not stored with an
// earlier state of the same height; and whether st is of another height
// than the last state stored (whose blocks are then dropped).
func (c *consensus) keep(st *bft.State) (blocks []*chain.Block, newHeight bool) {
	if newHeight = st.Height != c.keptHeight || c.kept == nil; newHeight {
		c.kept, c.keptHeight = map[chain.Hash]bool{}, st.Height
	}
	want := []chain.Hash{st.LockedHash, st.ValidHash}
	for _, m := range st.Sent {
		if p, ok := m.(*bft.Proposal); ok {
			want = append(want, p.Hash)
		}
	}
	for _, h := range want {
		if blk, ok := c.cands[h]; ok && !h.IsZero() && !c.kept[h] && blk.Header.Height == st.Height {
			c.kept[h] = true
			blocks = append(blocks, blk)
		}
	}
	return blocks, newHeight
}

// startHeight starts the machine at c.height: with the state stored for
// it if there is one (saved), not at all below that state's height.
func (n *Node) startHeight(ctx context.Context, b Broadcaster, now time.Time) {
	c := n.cons
	if c.saved != nil && c.height < c.saved.Height {
		return // heights decided by the others, which come by gossip or sync
	}
	n.mu.Lock()
	set := c.sched.SetAt(c.height)
	n.mu.Unlock()
	c.started, c.startedAt = true, now
	if st := c.saved; st != nil {
		c.saved = nil
		saved := c.savedBlocks
		c.savedBlocks = nil
		if st.Height == c.height {
			for _, blk := range saved {
				c.cands[blk.Hash()] = blk
			}
			n.handle(ctx, b, c.m.Resume(*st, set, now))
			n.log.Info("consensus resumed", "height", st.Height, "round", st.Round, "step", st.Step.String())
			return
		}
	}
	n.handle(ctx, b, c.m.Start(c.height, set, now))
}

// receive gives a peer's message to the machine and answers its sender.
func (n *Node) receive(ctx context.Context, b Broadcaster, in consensusInput) {
	c := n.cons
	h, _ := in.msg.At()
	if h == c.height && !c.started {
		// A peer started the height: join it, if the message is an
		// authority's (a forged one must not make the node start early).
		n.mu.Lock()
		set := c.sched.SetAt(h)
		n.mu.Unlock()
		if err := verifyMessage(c.net, set, in.msg); err != nil {
			in.reply <- consensusReply{err: err}
			return
		}
		n.startHeight(ctx, b, n.now())
	}
	_, round := in.msg.At()
	near := h == c.m.Height() && round <= c.m.Round()+1 // kept in its round, not only counted
	u, err := c.m.Receive(in.msg, n.now())
	in.reply <- consensusReply{err: err, held: err == nil && near || errors.Is(err, bft.ErrRepeat)}
	if in.block != nil {
		hash := in.block.Hash()
		switch {
		case err == nil && h == c.height && len(c.cands) < maxCandidates:
			if _, ok := c.cands[hash]; !ok {
				c.cands[hash] = in.block
				if c.want[hash] {
					delete(c.want, hash)
					u.Validate = append(u.Validate, hash)
				}
			}
		case h == c.height+1 && len(c.next) < maxCandidates:
			c.next[hash] = in.block // judged (and its proposal checked) when the height starts
		}
	}
	n.handle(ctx, b, u)
}

// handle does what an Update says, in its order, and what the machine
// says in return, until nothing is left.
func (n *Node) handle(ctx context.Context, b Broadcaster, u bft.Update) {
	c := n.cons
	for todo := []bft.Update{u}; len(todo) > 0; {
		u, todo = todo[0], todo[1:]
		if u.State != nil && n.store != nil {
			// Durable before the messages of the same step leave, with
			// the blocks it needs after a restart (keep).
			blocks, newHeight := c.keep(u.State)
			if err := n.store.SaveConsensus(u.State.AppendBinary(nil), blocks, newHeight); err != nil {
				n.mu.Lock()
				_ = n.failLocked(fmt.Errorf("save the consensus state: %w", fullStop(err)))
				n.mu.Unlock()
				return
			}
		}
		for _, h := range u.Validate {
			if blk, ok := c.cands[h]; ok {
				todo = append(todo, c.m.Validated(h, n.judge(blk), n.now()))
			} else if len(c.want) < maxCandidates {
				c.want[h] = true
			}
		}
		for _, msg := range u.Messages {
			n.send(ctx, b, msg)
		}
		if len(u.Evidence) > 0 {
			n.recordEvidence(u.Evidence)
		}
		if u.NeedBlock {
			if blk := n.buildBlock(); blk != nil {
				c.cands[blk.Hash()] = blk
				todo = append(todo, c.m.Propose(c.height, blk.Hash(), n.now()))
			}
		}
		if u.Commit != nil {
			n.decided(ctx, b, u.Commit)
		}
		if u.Behind > 0 && b != nil {
			b.CatchUp()
		}
		c.deadline = u.Deadline
	}
	n.mu.Lock()
	c.info.Height, c.info.Round, c.info.Step = c.m.Height(), c.m.Round(), c.m.Step().String()
	c.info.Started, c.info.Heard = c.startedAt, c.m.Heard()
	if set := c.m.Set(); set != nil {
		c.info.Authorities, c.info.Quorum = set.Keys(), set.Quorum()
	}
	c.info.Self = c.m.Index()
	n.mu.Unlock()
}

// send gives a message to the peers; a proposal goes with its block.
func (n *Node) send(ctx context.Context, b Broadcaster, msg bft.Message) {
	if b == nil {
		return
	}
	var data []byte
	switch x := msg.(type) {
	case *bft.Proposal:
		data = x.AppendBinary(nil)
		if blk, ok := n.cons.cands[x.Hash]; ok {
			var err error
			if data, err = blk.AppendBinary(data); err != nil {
				return
			}
		}
	case *bft.Vote:
		data = x.AppendBinary(nil)
	case *bft.Commit:
		data = x.AppendBinary(nil)
	default:
		return
	}
	if err := b.BroadcastConsensus(ctx, data); err != nil && ctx.Err() == nil {
		n.log.Debug("send consensus message", "kind", msg.Kind().String(), "err", err)
	}
}

// judge reports whether a proposed block is valid on the tip: the chain's
// rules (chain.Check), its membership changes against the schedule and,
// when this node is an authority, approved by its operator.
func (n *Node) judge(blk *chain.Block) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if blk.Header.Parent != n.chain.TipHash() {
		return false
	}
	if _, err := n.chain.Process(blk, n.now(), chain.Check); err != nil {
		n.log.Debug("proposed block refused", "height", blk.Header.Height, "err", err)
		return false
	}
	changes, err := bft.DecodeChanges(blk.Changes)
	if err == nil {
		err = n.cons.sched.Check(blk.Header.Height, changes...)
	}
	if err != nil {
		n.log.Debug("proposed block's membership changes refused", "height", blk.Header.Height, "err", err)
		return false
	}
	if _, self := n.cons.sched.SetAt(blk.Header.Height).Index(bft.KeyOf(n.key)); self && !n.cons.approvesLocked(changes) {
		n.log.Info("proposed block carries a membership change this node's operator has not approved: voting nil",
			"height", blk.Header.Height)
		return false
	}
	return true
}

// buildBlock makes this authority's proposal: the pending readings and,
// in round 0, the approved membership changes the schedule accepts, on
// the tip.
func (n *Node) buildBlock() *chain.Block {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.chain.Height()+1 != n.cons.height {
		return nil
	}
	// The readings submitted here first (marked so as they joined the
	// pending set, acceptedLocked): relayed ones may fill half of it (a
	// stranger's, signed with keys of its own), and must not make this
	// authority's own clients wait behind them. TakeFirst costs a pass
	// over the block's readings, not over the pending set or the
	// readings submitted here.
	blk := n.chain.NewBlock(n.pool.TakeFirst(n.params.MaxReadings), n.now())
	var changes []bft.Change
	approved := n.cons.approved
	if n.cons.m.Round() > 0 {
		// A round of this height failed, perhaps over a change the others
		// have not approved: propose the readings alone, so that a change
		// approved by too few costs a round, never the height.
		approved = nil
	}
	for _, a := range approved {
		if len(changes) == chain.MaxChanges {
			break
		}
		ch := a
		if ch.Height == 0 {
			ch.Height = blk.Header.Height + 1
		}
		if n.cons.sched.Check(blk.Header.Height, append(changes, ch)...) == nil {
			changes = append(changes, ch)
		}
	}
	if len(changes) > 0 {
		blk.Changes = bft.EncodeChanges(changes)
		blk.Header.Root = blk.ReadingsRoot()
	}
	return blk
}

// decided applies the block of a commit, sealed with it, and relays it.
func (n *Node) decided(ctx context.Context, b Broadcaster, cm *bft.Commit) {
	c := n.cons
	n.mu.Lock()
	c.info.Decided++
	c.info.Rounds += uint64(cm.Round)
	if cm.Round > 0 {
		c.info.MissedTurns++
	}
	n.mu.Unlock()
	blk, ok := c.cands[cm.Hash]
	if !ok {
		n.log.Info("decided a block this node does not hold; it comes by gossip or sync", "height", cm.Height, "block", cm.Hash.Short())
		return
	}
	sealed := *blk
	sealed.Seal = cm.AppendBinary(nil)
	err := n.AddBlock(ctx, &sealed)
	if err != nil && !errors.Is(err, chain.ErrDuplicateBlock) {
		n.log.Warn("decided block not accepted", "height", cm.Height, "err", err)
		return
	}
	// The proposer of the deciding round relays the sealed block, for the
	// nodes that missed its proposal: each node's commit may hold other
	// signers, and copies with different seals would all travel.
	if b != nil && err == nil && c.m.Set().Proposer(cm.Height, cm.Round) == c.m.Index() {
		if err := b.BroadcastBlock(ctx, &sealed); err != nil && ctx.Err() == nil {
			n.log.Debug("relay decided block", "height", cm.Height, "err", err)
		}
	}
}

// recordEvidence keeps evidence of equivocating authorities, in memory
// and in the store.
func (n *Node) recordEvidence(evs []*bft.Evidence) {
	n.mu.Lock()
	for _, ev := range evs {
		if len(n.cons.evidence) < maxEvidence {
			n.cons.evidence = append(n.cons.evidence, ev)
		}
		n.log.Warn("an authority signed contradicting messages", "height", ev.Height(),
			"authority", ev.Offender(n.cons.sched.SetAt(ev.Height())))
	}
	n.mu.Unlock()
	if n.store == nil {
		return
	}
	for _, ev := range evs {
		if err := n.store.AddEvidence(ev.AppendBinary(nil)); err != nil {
			n.log.Warn("store evidence", "err", err)
		}
	}
}

// rebroadcast sends again (at most 256 at a time, the longest waiting
// first) the readings submitted here that have waited long in the pending
// set: the first send may have been lost. They are looked up from the
// readings submitted here, not found among the oldest pending ones:
// relayed readings may fill half the pending set ahead of them.
func (n *Node) rebroadcast(ctx context.Context, b Broadcaster) {
	if b == nil {
		return
	}
	n.mu.Lock()
	var old []chain.Reading
	cutoff := n.now().Add(-rebroadcastAge)
	// The readings submitted here (peers' readings are their senders' to
	// resend), in the order they were submitted (the pending set's
	// marks): the oldest 256 older than rebroadcastAge, without a pass
	// over all of them.
	n.pool.Marked(func(id chain.Hash, r *chain.Reading) bool {
		t, ok := n.submitted[id]
		switch {
		case !ok:
			return true // past maxSubmitted: not resent
		case !t.Before(cutoff):
			return false // this one and those after it are younger
		}
		old = append(old, *r)
		return len(old) < rebroadcastMax
	})
	n.mu.Unlock()
	for _, r := range old {
		_ = b.BroadcastReading(ctx, r)
	}
}

// verifyMessage checks the signature(s) of a consensus message against set.
func verifyMessage(net chain.Hash, set *bft.Set, msg bft.Message) error {
	switch x := msg.(type) {
	case *bft.Proposal:
		return x.Verify(net, set)
	case *bft.Vote:
		return x.Verify(net, set)
	case *bft.Commit:
		return bft.VerifyCommit(net, set, x.Height, x.Hash, x)
	}
	return &bft.RuleError{Code: bft.ErrMalformed, Detail: "unknown consensus message"}
}

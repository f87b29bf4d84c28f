package bft

import (
	"crypto/ed25519"
	"slices"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// Step is where a machine is within a round.
type Step uint8

// The steps of a round.
const (
	StepPropose   Step = 1 // waiting for the round's proposal
	StepPrevote   Step = 2 // prevoted; waiting for a quorum of prevotes
	StepPrecommit Step = 3 // precommitted; waiting for a decision or the next round
)

func (s Step) String() string {
	switch s {
	case StepPropose:
		return "propose"
	case StepPrevote:
		return "prevote"
	case StepPrecommit:
		return "precommit"
	}
	return "unknown"
}

// Timeouts are the waits of a round. Each grows linearly with the round
// (base + round × delta, at most MaxTimeout), so that once messages take a
// bounded time to arrive, some round is long enough for every correct
// authority to hear from the others and decide.
type Timeouts struct {
	Propose, ProposeDelta     time.Duration // wait for the proposal
	Prevote, PrevoteDelta     time.Duration // after a quorum of mixed prevotes
	Precommit, PrecommitDelta time.Duration // after a quorum of mixed precommits
	// Resend is how long the machine stays silent before it sends again
	// every message it sent at the height (and the least time between two
	// replies with a commit to peers that lag behind).
	Resend time.Duration
}

// MaxTimeout caps a grown timeout.
const MaxTimeout = 10 * time.Minute

// DefaultTimeouts returns the timeouts of a network that sets none.
func DefaultTimeouts() Timeouts {
	return Timeouts{
		Propose: time.Second, ProposeDelta: 500 * time.Millisecond,
		Prevote: 500 * time.Millisecond, PrevoteDelta: 250 * time.Millisecond,
		Precommit: 500 * time.Millisecond, PrecommitDelta: 250 * time.Millisecond,
		Resend: time.Second,
	}
}

func grow(base, delta time.Duration, r int32) time.Duration {
	if delta > 0 && time.Duration(r) > (MaxTimeout-base)/delta {
		return MaxTimeout
	}
	return min(base+delta*time.Duration(r), MaxTimeout)
}

// Config configures a Machine.
type Config struct {
	// Network is the network's genesis hash: every signature covers it, so
	// a statement signed for one network means nothing on another.
	Network chain.Hash
	// Key is this node's private key; nil makes a follower that signs
	// nothing and decides from the authorities' votes and commits.
	Key ed25519.PrivateKey
	// Timeouts; the zero value means DefaultTimeouts.
	Timeouts Timeouts
}

// Update says what the owner must do after a call. In this order: persist
// State if set; validate the blocks of Validate and call Validated; send
// Messages to every node (a proposal goes with its block); if NeedBlock,
// build a block on the tip and call Propose; keep Evidence; if Commit is
// set, persist and apply its block (fetching it if needed), then call
// Start for the next height; if Behind is set, sync blocks and commits up
// to that height; call Tick at Deadline.
type Update struct {
	State    *State
	Messages []Message
	// NeedBlock: this node proposes in the current round and has no
	// block to propose again; Propose gives it one.
	NeedBlock bool
	// Validate lists blocks proposed at this height whose validity the
	// machine does not know: the owner checks each against its parent (the
	// tip), fetching it first if it does not hold it, and calls Validated.
	// The machine prevotes only for a block the owner validated; until
	// then it waits (at most the propose timeout).
	Validate []chain.Hash
	// Commit is the decision of the height: more than two thirds of the
	// authorities precommitted its block in one round.
	Commit *Commit
	// Evidence of authorities that signed contradicting messages.
	Evidence []*Evidence
	// Behind is a height that peers have decided and this node has not.
	Behind uint64
	// Deadline is when to call Tick; zero when no timer runs (the height
	// is decided, or the machine is not started).
	Deadline time.Time
}

// Machine runs Tendermint consensus for one node: one height at a time,
// rounds of propose, prevote and precommit. It does no I/O, reads no clock
// and starts no goroutine; it is not safe for concurrent use.
type Machine struct {
	net chain.Hash
	key ed25519.PrivateKey
	me  Key
	to  Timeouts
	now time.Time

	started bool
	height  uint64
	set     *Set
	self    int // index in set; -1 when not an authority at this height

	round                   int32
	step                    Step
	locked, valid           chain.Hash
	lockedRound, validRound int32
	decided                 *Commit
	last                    *Commit // the commit of height-1, for peers that lag
	lastReply               time.Time

	rounds      map[int32]*roundState
	validity    map[chain.Hash]bool
	asked       map[chain.Hash]bool
	proposed    map[chain.Hash]bool // blocks of the proposals kept
	maxRound    []int32             // highest round of a verified message, per authority
	behind      uint64              // highest height a verified message showed decided (Update.Behind)
	blindBehind time.Time           // when a message not verified last made Update.Behind
	skip        int32               // round at least f+1 authorities have reached
	skipOK      bool                // skip is up to date
	reported    map[evKey]bool
	stash       []Message       // messages for height+1, unverified
	stashKeys   map[string]bool // the stash's messages encoded: a resent one is found without encoding the stash again
	own         []Message       // messages sent at this height, to resend
	dirty       bool            // State changed

	proposeAt, prevoteAt, precommitAt, resendAt time.Time

	// futureChecks is a token bucket of the signature checks spent on
	// messages of later heights (futureCheck), and futureAt when it was
	// last brought up to date.
	futureChecks float64
	futureAt     time.Time
}

type evKey struct {
	kind  Kind
	round int32
	index int
}

type roundState struct {
	proposal             *Proposal
	prevotes, precommits voteSet
	// once-only rules of the round (lines 34, 36 and 47 of the paper)
	prevoteTimer, precommitTimer, polSeen bool
}

// voteSet holds the votes of one type in one round. An authority's first
// vote is in first; every verified vote is also in the tally of its block,
// so an equivocator's second vote still counts for its block (a quorum for
// a block is a quorum of authorities that signed for it, whatever else they
// signed: the safety argument allows the faulty to vote for everything, and
// a proof of lock may rest on it).
type voteSet struct {
	first []*Vote // by index
	total int     // authorities with a vote
	votes map[chain.Hash]*tally
	maj   chain.Hash // the first block to reach a quorum
}

type tally struct {
	by    []*Vote // by index
	count int
}

func (vs *voteSet) count(h chain.Hash) int {
	if t := vs.votes[h]; t != nil {
		return t.count
	}
	return 0
}

// of returns the votes for h, by index (nil if none).
func (vs *voteSet) of(h chain.Hash) []*Vote {
	if t := vs.votes[h]; t != nil {
		return t.by
	}
	return nil
}

// Limits on what a machine keeps for peers.
const (
	maxValidity = 1024 // block validities known at one height
)

func maxStash(n int) int { return 4*n + 4 }

// behindGap is how often at most a message of a later height that is not
// verified makes Update.Behind (receive): the node's status poll interval,
// so that forged messages cost its peers at most one more status exchange
// each per interval.
const behindGap = 10 * time.Second

// NewMachine returns a machine that waits for Start (or Resume).
func NewMachine(cfg Config) *Machine {
	m := &Machine{net: cfg.Network, key: cfg.Key, to: cfg.Timeouts, self: -1}
	if m.to == (Timeouts{}) {
		m.to = DefaultTimeouts()
	}
	if cfg.Key != nil {
		m.me = KeyOf(cfg.Key)
	}
	return m
}

// Height returns the current height.
func (m *Machine) Height() uint64 { return m.height }

// Round returns the current round.
func (m *Machine) Round() int32 { return m.round }

// Step returns the current step.
func (m *Machine) Step() Step { return m.step }

// Set returns the authority set of the current height.
func (m *Machine) Set() *Set { return m.set }

// Index returns this node's index in the current set, or -1.
func (m *Machine) Index() int { return m.self }

// Decided returns the commit of the current height, or nil.
func (m *Machine) Decided() *Commit { return m.decided }

// Heard returns how many authorities of the height's set this machine has
// a verified message of the height from, itself included: fewer than the
// set's Quorum, and the height cannot be decided until more are heard.
func (m *Machine) Heard() int {
	n := 0
	for i, r := range m.maxRound {
		if r >= 0 || i == m.self {
			n++
		}
	}
	return n
}

// State returns what Update.State reports.
func (m *Machine) State() State {
	return State{Height: m.height, Round: m.round, Step: m.step,
		LockedRound: m.lockedRound, LockedHash: m.locked, ValidRound: m.validRound, ValidHash: m.valid,
		Sent: slices.Clip(m.own)}
}

// Start begins height with set, the authority set of that height, at
// round 0. The owner calls it first at the height after its tip, and then
// after it applied the block of each Commit. Messages for the height that
// arrived early (while the machine was at the height before) are replayed
// now. A height not above the current one is ignored.
func (m *Machine) Start(height uint64, set *Set, now time.Time) Update {
	var u Update
	m.now = now
	if m.started && height <= m.height {
		return m.finish(&u)
	}
	var stash []Message
	var last *Commit
	if m.started && height == m.height+1 {
		stash, last = m.stash, m.decided
	}
	m.reset(height, set)
	m.last = last
	m.startRound(0, &u)
	m.run(&u)
	for _, msg := range stash {
		if m.decided != nil {
			break
		}
		if m.receive(msg, &u) == nil {
			m.run(&u)
		}
	}
	return m.finish(&u)
}

// Resume restarts an authority from the State it persisted, after a crash,
// with the set of st.Height. It signs nothing that could contradict what
// it signed before: it keeps its lock, takes back the messages it sent
// (and sends them again in time), does not vote again in a step it
// reached and does not propose again in a round it proposed in.
func (m *Machine) Resume(st State, set *Set, now time.Time) Update {
	var u Update
	m.now = now
	m.reset(st.Height, set)
	m.round, m.step = st.Round, max(st.Step, StepPropose)
	m.locked, m.lockedRound = st.LockedHash, st.LockedRound
	m.valid, m.validRound = st.ValidHash, st.ValidRound
	for _, msg := range st.Sent {
		if h, _ := msg.At(); h != m.height || slices.Contains(m.own, msg) {
			continue
		}
		switch x := msg.(type) {
		case *Proposal:
			m.roundState(x.Round).proposal = x
			m.proposed[x.Hash] = true
			m.validity[x.Hash] = true // it proposed only blocks it judged valid
		case *Vote:
			if int(x.Index) >= set.Len() {
				continue
			}
			m.addVote(x, &u)
		default:
			continue
		}
		m.own = append(m.own, msg)
	}
	if m.step == StepPropose {
		m.proposeAt = now.Add(grow(m.to.Propose, m.to.ProposeDelta, m.round))
	}
	if len(m.own) > 0 { // peers may not have them: send them again now
		u.Messages = append(u.Messages, m.own...)
		m.resendAt = now.Add(m.to.Resend)
	}
	m.run(&u)
	return m.finish(&u)
}

func (m *Machine) reset(height uint64, set *Set) {
	m.started, m.height, m.set = true, height, set
	m.self = -1
	if m.key != nil {
		if i, ok := set.Index(m.me); ok {
			m.self = i
		}
	}
	m.round, m.step = 0, StepPropose
	m.locked, m.valid = chain.Hash{}, chain.Hash{}
	m.lockedRound, m.validRound = -1, -1
	m.decided, m.last = nil, nil
	m.rounds = map[int32]*roundState{}
	m.validity = map[chain.Hash]bool{}
	m.asked = map[chain.Hash]bool{}
	m.proposed = map[chain.Hash]bool{}
	m.maxRound = make([]int32, set.Len())
	for i := range m.maxRound {
		m.maxRound[i] = -1
	}
	m.skipOK = false
	m.reported = map[evKey]bool{}
	m.stash, m.stashKeys, m.own = nil, nil, nil
	m.proposeAt, m.prevoteAt, m.precommitAt, m.resendAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
}

// Propose gives the machine the hash of a block the owner built for
// height, on its tip, after Update.NeedBlock. It is ignored unless the
// machine is still the proposer of its current round at that height and
// has proposed nothing in it. The owner sends the block with the proposal.
func (m *Machine) Propose(height uint64, hash chain.Hash, now time.Time) Update {
	var u Update
	m.now = now
	if m.started && m.decided == nil && height == m.height && !hash.IsZero() && m.valid.IsZero() && m.mayPropose() &&
		m.roundState(m.round).proposal == nil {
		m.validity[hash] = true
		m.propose(hash, -1, &u)
		m.run(&u)
	}
	return m.finish(&u)
}

// Validated tells the machine whether the block hash, proposed at the
// current height, is valid on the owner's tip (ok) or not. Validity is
// kept for the height: Start forgets it.
func (m *Machine) Validated(hash chain.Hash, ok bool, now time.Time) Update {
	var u Update
	m.now = now
	if m.started && m.decided == nil && !hash.IsZero() {
		if _, known := m.validity[hash]; known || len(m.validity) < maxValidity {
			m.validity[hash] = ok
			m.run(&u)
		}
	}
	return m.finish(&u)
}

// Receive takes a proposal, vote or commit from a peer. It returns a
// *RuleError when the message is refused (IsPeerFault tells whether its
// sender broke the protocol) and nil when it was accepted: new, verified
// and kept, worth relaying. A message for the next height is kept and
// replayed by Start; one that contradicts an earlier message of its
// signer is accepted and reported in Update.Evidence.
func (m *Machine) Receive(msg Message, now time.Time) (Update, error) {
	var u Update
	m.now = now
	err := m.receive(msg, &u)
	if err == nil {
		m.run(&u)
	}
	return m.finish(&u), err
}

// Tick fires the timeouts that are due at now and, if the machine has sent
// nothing new for Timeouts.Resend, sends again every message it sent at
// this height (its proposals, their proof-of-lock votes, its votes): a
// peer that lost them, or lags in rounds, gets them in the end, as the
// algorithm's eventual delivery assumes.
func (m *Machine) Tick(now time.Time) Update {
	var u Update
	m.now = now
	if !m.started {
		return u
	}
	for m.decided == nil {
		switch {
		case due(m.proposeAt, now): // OnTimeoutPropose
			m.proposeAt = time.Time{}
			if m.step == StepPropose {
				m.prevote(chain.Hash{}, &u)
			}
		case due(m.prevoteAt, now): // OnTimeoutPrevote
			m.prevoteAt = time.Time{}
			if m.step == StepPrevote {
				m.precommit(chain.Hash{}, &u)
			}
		case due(m.precommitAt, now): // OnTimeoutPrecommit
			m.precommitAt = time.Time{}
			m.startRound(m.round+1, &u)
		default:
			if due(m.resendAt, now) {
				u.Messages = append(u.Messages, m.own...)
				m.resendAt = now.Add(m.to.Resend)
			}
			return m.finish(&u)
		}
		m.run(&u)
	}
	return m.finish(&u)
}

func due(t, now time.Time) bool { return !t.IsZero() && !now.Before(t) }

func (m *Machine) finish(u *Update) Update {
	if m.dirty && m.self >= 0 {
		st := m.State()
		u.State = &st
	}
	m.dirty = false
	if m.started && m.decided == nil {
		for _, t := range []time.Time{m.proposeAt, m.prevoteAt, m.precommitAt, m.resendAt} {
			if !t.IsZero() && (u.Deadline.IsZero() || t.Before(u.Deadline)) {
				u.Deadline = t
			}
		}
	}
	return *u
}

func (m *Machine) roundState(r int32) *roundState {
	rs, ok := m.rounds[r]
	if !ok {
		n := m.set.Len()
		rs = &roundState{
			prevotes:   voteSet{first: make([]*Vote, n), votes: map[chain.Hash]*tally{}},
			precommits: voteSet{first: make([]*Vote, n), votes: map[chain.Hash]*tally{}},
		}
		m.rounds[r] = rs
	}
	return rs
}

func (rs *roundState) votes(k Kind) *voteSet {
	if k == KindPrevote {
		return &rs.prevotes
	}
	return &rs.precommits
}

func (m *Machine) mayPropose() bool {
	return m.self >= 0 && m.set.Proposer(m.height, m.round) == m.self && m.step == StepPropose
}

// startRound is StartRound of the paper.
func (m *Machine) startRound(r int32, u *Update) {
	m.round, m.step = r, StepPropose
	m.proposeAt = m.now.Add(grow(m.to.Propose, m.to.ProposeDelta, r))
	m.prevoteAt, m.precommitAt = time.Time{}, time.Time{}
	if m.mayPropose() && m.roundState(r).proposal == nil {
		if !m.valid.IsZero() {
			m.propose(m.valid, m.validRound, u)
		} else {
			u.NeedBlock = true
		}
	}
}

// propose signs and sends a proposal for the current round, with the
// prevotes of its proof of lock when pol >= 0.
func (m *Machine) propose(hash chain.Hash, pol int32, u *Update) {
	p := &Proposal{Height: m.height, Round: m.round, Hash: hash, POLRound: pol}
	p.Sign(m.net, m.key)
	m.roundState(m.round).proposal = p
	m.proposed[hash] = true
	m.send(p, u)
	if pol >= 0 {
		for _, v := range m.roundState(pol).prevotes.of(hash) {
			if v != nil {
				m.send(v, u)
			}
		}
	}
}

// send sends msg and keeps it to resend (and in State, to persist).
func (m *Machine) send(msg Message, u *Update) {
	u.Messages = append(u.Messages, msg)
	if !slices.Contains(m.own, msg) {
		m.own = append(m.own, msg)
		m.dirty = true
	}
	m.resendAt = m.now.Add(m.to.Resend)
}

// vote signs, records and sends this node's vote, if it is an authority.
func (m *Machine) vote(k Kind, hash chain.Hash, u *Update) {
	if m.self < 0 {
		return
	}
	v := &Vote{Type: k, Height: m.height, Round: m.round, Hash: hash, Index: uint16(m.self)}
	v.Sign(m.net, m.key)
	m.send(v, u)
	m.addVote(v, u)
}

func (m *Machine) prevote(hash chain.Hash, u *Update) {
	m.step, m.proposeAt = StepPrevote, time.Time{}
	m.vote(KindPrevote, hash, u)
}

func (m *Machine) precommit(hash chain.Hash, u *Update) {
	m.step, m.prevoteAt = StepPrecommit, time.Time{}
	m.vote(KindPrecommit, hash, u)
}

// run applies the rules of the paper until none fires.
func (m *Machine) run(u *Update) {
	for m.decided == nil && m.fire(u) {
	}
}

// fire applies the first rule that holds and reports whether one did.
// Line numbers are those of Algorithm 1 in Buchman, Kwon and Milosevic,
// "The latest gossip on BFT consensus" (2018).
func (m *Machine) fire(u *Update) bool {
	// Line 55: f+1 authorities are in a later round: go there.
	if r := m.skipRound(); r > m.round {
		m.startRound(r, u)
		return true
	}
	q := m.set.Quorum()
	rs := m.roundState(m.round)
	switch m.step {
	case StepPropose:
		// Lines 22 and 28: the round's proposal, with its proof of lock if
		// it names one, and a block the owner has judged.
		p := rs.proposal
		if p == nil || (p.POLRound >= 0 && m.roundState(p.POLRound).prevotes.count(p.Hash) < q) {
			break
		}
		ok, known := m.validity[p.Hash]
		if !known {
			break
		}
		vote := chain.Hash{}
		if ok && (m.lockedRound <= p.POLRound || m.locked == p.Hash) {
			vote = p.Hash
		}
		m.prevote(vote, u)
		return true
	case StepPrevote:
		// Line 34: a quorum of prevotes, mixed: wait a while for more.
		if rs.prevotes.total >= q && !rs.prevoteTimer {
			rs.prevoteTimer = true
			m.prevoteAt = m.now.Add(grow(m.to.Prevote, m.to.PrevoteDelta, m.round))
		}
		// Line 44: a quorum of prevotes for nil.
		if rs.prevotes.count(chain.Hash{}) >= q {
			m.precommit(chain.Hash{}, u)
			return true
		}
	}
	// Line 36: a quorum of prevotes for a valid block, first time in the
	// round: lock on it (if still at prevote) and remember it as valid.
	if m.step >= StepPrevote && !rs.polSeen && !rs.prevotes.maj.IsZero() && m.validity[rs.prevotes.maj] {
		rs.polSeen = true
		h := rs.prevotes.maj
		if m.step == StepPrevote {
			m.locked, m.lockedRound = h, m.round
			m.precommit(h, u)
		}
		m.valid, m.validRound = h, m.round
		m.dirty = true
		return true
	}
	// Line 47: a quorum of precommits, mixed: wait a while, then next round.
	if rs.precommits.total >= q && !rs.precommitTimer {
		rs.precommitTimer = true
		m.precommitAt = m.now.Add(grow(m.to.Precommit, m.to.PrecommitDelta, m.round))
	}
	return false
}

// skipRound returns the highest round that at least f+1 authorities have
// sent a verified message for: at least one correct authority is there.
func (m *Machine) skipRound() int32 {
	if !m.skipOK {
		r := slices.Clone(m.maxRound)
		slices.Sort(r)
		m.skip, m.skipOK = r[len(r)-1-m.set.MaxFaulty()], true
	}
	return m.skip
}

func (m *Machine) seen(index int, round int32) {
	if round > m.maxRound[index] {
		m.maxRound[index] = round
		m.skipOK = false
	}
}

// receive checks and records one message; run applies the rules after.
func (m *Machine) receive(msg Message, u *Update) error {
	if !m.started {
		return ruleErr(ErrFutureHeight, "not started")
	}
	if _, err := DecodeMessage(msg.AppendBinary(nil)); err != nil {
		return err // a struct no decoder would have produced
	}
	h, _ := msg.At()
	switch {
	case h < m.height:
		if h+1 == m.height && m.last != nil && msg.Kind() != KindCommit {
			m.reply(m.last, u)
		}
		return ruleErr(ErrOldHeight, "%s for height %d at height %d", msg.Kind(), h, m.height)
	case h > m.height:
		known := h - 1 // a peer at h has decided h-1
		if msg.Kind() == KindCommit {
			known = h
		}
		// Each Behind makes the node ask its peers, and a message of a
		// height ahead costs nothing to forge: one is taken on trust at
		// most once per behindGap (its signer may be of a set that
		// changed since our height, which we cannot check yet); between
		// those, only one that verifies and shows a higher height.
		var checked, valid bool
		verified := func() bool { // at most one signature check per message, within futureCheck's budget
			if !checked {
				checked = true
				if valid = m.futureCheck() && m.verifies(msg, h); valid {
					m.futureRefund() // only failed checks spend the budget
				}
			}
			return valid
		}
		if known > m.height || (known == m.height && m.decided == nil) {
			switch {
			case m.blindBehind.IsZero() || m.now.Sub(m.blindBehind) >= behindGap || m.now.Before(m.blindBehind):
				m.blindBehind = m.now
				u.Behind = max(u.Behind, known)
			case known > m.behind && verified():
				m.behind = known
				u.Behind = max(u.Behind, known)
			}
		}
		// Kept for the next height only if it verifies (a forged one
		// would take the place of a real one) and is not kept already (a
		// resent one would).
		if h == m.height+1 && len(m.stash) < maxStash(m.set.Len()) {
			if enc := string(msg.AppendBinary(nil)); !m.stashKeys[enc] && verified() {
				if m.stashKeys == nil {
					m.stashKeys = map[string]bool{}
				}
				m.stash = append(m.stash, msg)
				m.stashKeys[enc] = true
			}
		}
		return ruleErr(ErrFutureHeight, "%s for height %d at height %d", msg.Kind(), h, m.height)
	case m.decided != nil:
		if msg.Kind() != KindCommit {
			m.reply(m.decided, u)
		}
		return ruleErr(ErrOldHeight, "height %d is decided", h)
	}
	switch x := msg.(type) {
	case *Proposal:
		return m.onProposal(x, u)
	case *Vote:
		return m.onVote(x, u)
	case *Commit:
		if err := VerifyCommit(m.net, m.set, m.height, x.Hash, x); err != nil {
			return err
		}
		m.decide(x, u)
		return nil
	}
	return ruleErr(ErrMalformed, "%T is not a message", msg)
}

// futureCheck takes one of the signature checks that messages of later
// heights may cost, and reports false when none is left: at most
// maxStash(n) failed checks a second, as many at once (futureRefund). A
// bad signature on such a message is no fault of its sender (it may be
// signed by an authority of a set that changes before that height, which
// this machine cannot check yet), so without a budget every forged
// message of a later height, free to make, cost a check, in the one loop
// that takes all consensus messages, while real ones waited behind. Past the budget such a message counts as
// not verified: it is not stashed (it comes again with its signer's
// resends once the height starts) and shows nothing but blindly, at most
// once per behindGap, that the node is behind.
func (m *Machine) futureCheck() bool {
	most := float64(maxStash(m.set.Len()))
	switch {
	case m.futureAt.IsZero():
		m.futureChecks = most
	case m.now.After(m.futureAt):
		m.futureChecks = min(most, m.futureChecks+m.now.Sub(m.futureAt).Seconds()*most)
	}
	m.futureAt = m.now
	if m.futureChecks < 1 {
		return false
	}
	m.futureChecks--
	return true
}

// futureRefund gives back the check futureCheck took for a message that
// verified: real messages of a later height (peers ahead of this node)
// never spend the budget that forged ones do.
func (m *Machine) futureRefund() {
	m.futureChecks = min(float64(maxStash(m.set.Len())), m.futureChecks+1)
}

// verifies reports whether msg, of height h, is signed by an authority of
// the current set (a commit: by a quorum of it). The set may have changed
// by h; a message it refuses then is only not taken as a sign that the
// node is behind (its periodic status poll finds that too).
func (m *Machine) verifies(msg Message, h uint64) bool {
	switch x := msg.(type) {
	case *Proposal:
		return x.Verify(m.net, m.set) == nil
	case *Vote:
		return x.Verify(m.net, m.set) == nil
	case *Commit:
		return VerifyCommit(m.net, m.set, h, x.Hash, x) == nil
	}
	return false
}

// reply sends c to a peer that lags, at most once per Timeouts.Resend.
func (m *Machine) reply(c *Commit, u *Update) {
	if m.lastReply.IsZero() || m.now.Sub(m.lastReply) >= m.to.Resend || m.now.Before(m.lastReply) {
		u.Messages = append(u.Messages, c)
		m.lastReply = m.now
	}
}

// far handles a verified-to-be message of a round beyond the next: it is
// not kept, it only counts towards line 55. The signature is checked only
// when it would raise the sender's round.
func (m *Machine) far(index int, round int32, verify func() error) error {
	if round <= m.maxRound[index] {
		return ruleErr(ErrFutureRound, "round %d from authority %d", round, index)
	}
	if err := verify(); err != nil {
		return err
	}
	m.seen(index, round)
	return nil
}

func (m *Machine) onProposal(p *Proposal, u *Update) error {
	pi := m.set.Proposer(p.Height, p.Round)
	if p.Round > m.round+1 {
		return m.far(pi, p.Round, func() error { return p.Verify(m.net, m.set) })
	}
	rs := m.roundState(p.Round)
	if old := rs.proposal; old != nil {
		if sameStatement(old, p) && old.Sig == p.Sig {
			return ruleErr(ErrRepeat, "proposal of round %d", p.Round)
		}
		if sameStatement(old, p) || m.reported[evKey{KindProposal, p.Round, pi}] {
			return ruleErr(ErrDuplicate, "proposal of round %d", p.Round)
		}
		if err := p.Verify(m.net, m.set); err != nil {
			return err
		}
		m.evidence(old, p, pi, u)
		return nil
	}
	if err := p.Verify(m.net, m.set); err != nil {
		return err
	}
	rs.proposal = p
	m.proposed[p.Hash] = true
	m.seen(pi, p.Round)
	if _, known := m.validity[p.Hash]; !known && !m.asked[p.Hash] && len(m.asked) < maxValidity {
		m.asked[p.Hash] = true
		u.Validate = append(u.Validate, p.Hash)
	}
	return nil
}

func (m *Machine) onVote(v *Vote, u *Update) error {
	if int(v.Index) >= m.set.Len() {
		return ruleErr(ErrUnknownAuthority, "vote by index %d in a set of %d", v.Index, m.set.Len())
	}
	if v.Round > m.round+1 {
		return m.far(int(v.Index), v.Round, func() error { return v.Verify(m.net, m.set) })
	}
	vs := m.roundState(v.Round).votes(v.Type)
	if by := vs.of(v.Hash); by != nil && by[v.Index] != nil {
		if by[v.Index].Sig == v.Sig {
			return ruleErr(ErrRepeat, "%s of %d in round %d", v.Type, v.Index, v.Round)
		}
		return ruleErr(ErrDuplicate, "%s of %d in round %d", v.Type, v.Index, v.Round)
	}
	if old := vs.first[v.Index]; old != nil {
		// A contradiction. Count it for its block if that block matters
		// here (proposed or judged at this height: junk blocks would cost
		// memory); otherwise, once reported, it tells nothing new.
		_, judged := m.validity[v.Hash]
		counts := v.Hash.IsZero() || m.proposed[v.Hash] || judged
		if !counts && m.reported[evKey{v.Type, v.Round, int(v.Index)}] {
			return ruleErr(ErrDuplicate, "%s of %d in round %d contradicts one already reported", v.Type, v.Index, v.Round)
		}
		if err := v.Verify(m.net, m.set); err != nil {
			return err
		}
		m.evidence(old, v, int(v.Index), u)
		if counts {
			m.addVote(v, u)
		}
		return nil
	}
	if err := v.Verify(m.net, m.set); err != nil {
		return err
	}
	m.addVote(v, u)
	return nil
}

// addVote records a verified vote; a quorum of precommits for a block in
// any round decides the height (line 49).
func (m *Machine) addVote(v *Vote, u *Update) {
	vs := m.roundState(v.Round).votes(v.Type)
	if vs.first[v.Index] == nil {
		vs.first[v.Index] = v
		vs.total++
	}
	t := vs.votes[v.Hash]
	if t == nil {
		t = &tally{by: make([]*Vote, m.set.Len())}
		vs.votes[v.Hash] = t
	}
	if t.by[v.Index] != nil {
		return
	}
	t.by[v.Index] = v
	t.count++
	if !v.Hash.IsZero() && vs.maj.IsZero() && t.count >= m.set.Quorum() {
		vs.maj = v.Hash
	}
	m.seen(int(v.Index), v.Round)
	if v.Type == KindPrecommit && !v.Hash.IsZero() && vs.maj == v.Hash && m.decided == nil {
		c := &Commit{Height: m.height, Round: v.Round, Hash: v.Hash}
		for _, p := range t.by {
			if p != nil {
				c.Sigs = append(c.Sigs, CommitSig{Index: p.Index, Sig: p.Sig})
			}
		}
		m.decide(c, u)
	}
}

func (m *Machine) decide(c *Commit, u *Update) {
	m.decided = c
	u.Commit = c
	m.proposeAt, m.prevoteAt, m.precommitAt, m.resendAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
}

func (m *Machine) evidence(old, msg Message, index int, u *Update) {
	_, r := msg.At()
	k := evKey{kind: msg.Kind(), round: r, index: index}
	if !m.reported[k] {
		m.reported[k] = true
		u.Evidence = append(u.Evidence, NewEvidence(old, msg))
	}
}

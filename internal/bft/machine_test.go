package bft_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/bft"
	"github.com/p2pchain/p2pchain/internal/chain"
)

// rig drives one machine by hand: the scripted tests of the rules.
type rig struct {
	t   *testing.T
	m   *bft.Machine
	set *bft.Set
	now time.Time
}

// newRig returns a machine of authority self (-1: a follower) in a set
// of n, started at height.
func newRig(t *testing.T, n, self int, height uint64) (*rig, bft.Update) {
	r := &rig{t: t, set: testSet(t, n), now: simEpoch}
	cfg := bft.Config{Network: simNetwork}
	if self >= 0 {
		cfg.Key = simKey(self)
	}
	r.m = bft.NewMachine(cfg)
	return r, r.m.Start(height, r.set, r.now)
}

// recv delivers messages that must be accepted; it returns the last update.
func (r *rig) recv(msgs ...bft.Message) bft.Update {
	r.t.Helper()
	var u bft.Update
	for _, msg := range msgs {
		var err error
		u, err = r.m.Receive(msg, r.now)
		if err != nil {
			r.t.Fatalf("%s refused: %v", msg.Kind(), err)
		}
	}
	return u
}

// tick moves the clock to the update's deadline and ticks.
func (r *rig) tick(u bft.Update) bft.Update {
	r.t.Helper()
	if u.Deadline.IsZero() {
		r.t.Fatal("no deadline")
	}
	r.now = u.Deadline
	return r.m.Tick(r.now)
}

// vote returns the machine's own vote of kind k in u, or fails.
func (r *rig) vote(u bft.Update, k bft.Kind) *bft.Vote {
	r.t.Helper()
	for _, msg := range u.Messages {
		if v, ok := msg.(*bft.Vote); ok && v.Type == k && int(v.Index) == r.m.Index() {
			return v
		}
	}
	r.t.Fatalf("no %s in %d messages (round %d, step %v)", k, len(u.Messages), r.m.Round(), r.m.Step())
	return nil
}

func votes(k bft.Kind, height uint64, round int32, hash chain.Hash, by ...int) []bft.Message {
	var out []bft.Message
	for _, i := range by {
		out = append(out, signedVote(k, height, round, hash, i))
	}
	return out
}

// TestLockAndUnlock walks authority 0 of four through the locking rules
// at height 1 (proposers: round 0 → 1, round 1 → 2, round 2 → 3):
//
//	round 0: proposal A; it prevotes A; prevotes for A from 1 and 2 make
//	         a quorum: it locks on A and precommits A; nil precommits from
//	         1 and 2: timeout, round 1.
//	round 1: proposal B: locked on A, it prevotes nil; prevotes for B from
//	         2 and 3 (no quorum for anything): timeout, precommit nil;
//	         nil precommits: timeout, round 2.
//	round 2: proposal B with a proof of lock from round 1: it waits until
//	         the POL is complete (1's late prevote for B in round 1), then,
//	         its lock (round 0) being older than the POL, prevotes B.
func TestLockAndUnlock(t *testing.T) {
	a, b := testHash("A"), testHash("B")
	r, u := newRig(t, 4, 0, 1)
	if u.NeedBlock || len(u.Messages) != 0 || !u.Deadline.Equal(simEpoch.Add(time.Second)) {
		t.Fatalf("start: %+v", u)
	}
	u = r.recv(signedProposal(r.set, 1, 0, a, -1))
	if len(u.Validate) != 1 || u.Validate[0] != a || len(u.Messages) != 0 {
		t.Fatalf("proposal A: validate %v, %d messages", u.Validate, len(u.Messages))
	}
	u = r.m.Validated(a, true, r.now)
	if r.vote(u, bft.KindPrevote).Hash != a || u.State == nil || u.State.Step != bft.StepPrevote {
		t.Fatal("did not prevote A")
	}
	u = r.recv(votes(bft.KindPrevote, 1, 0, a, 1, 2)...)
	if r.vote(u, bft.KindPrecommit).Hash != a || u.State.LockedHash != a || u.State.LockedRound != 0 {
		t.Fatalf("did not lock on A: %+v", u.State)
	}
	u = r.recv(votes(bft.KindPrecommit, 1, 0, chain.Hash{}, 1, 2)...)
	if u.Commit != nil {
		t.Fatal("decided on mixed precommits")
	}
	u = r.tick(u)
	if r.m.Round() != 1 {
		t.Fatalf("round %d after the precommit timeout", r.m.Round())
	}

	r.recv(signedProposal(r.set, 1, 1, b, -1))
	u = r.m.Validated(b, true, r.now)
	if r.vote(u, bft.KindPrevote).Hash != (chain.Hash{}) {
		t.Fatal("locked on A, prevoted B without a proof of lock")
	}
	u = r.recv(votes(bft.KindPrevote, 1, 1, b, 2, 3)...)
	u = r.tick(u) // prevote timeout
	if r.vote(u, bft.KindPrecommit).Hash != (chain.Hash{}) {
		t.Fatal("no nil precommit after the prevote timeout")
	}
	u = r.recv(votes(bft.KindPrecommit, 1, 1, chain.Hash{}, 2, 3)...)
	r.tick(u)
	if r.m.Round() != 2 || r.m.State().LockedHash != a {
		t.Fatalf("round %d, lock %v", r.m.Round(), r.m.State().LockedHash.Short())
	}

	u = r.recv(signedProposal(r.set, 1, 2, b, 1))
	if len(u.Messages) != 0 {
		t.Fatal("prevoted on an incomplete proof of lock")
	}
	u = r.recv(signedVote(bft.KindPrevote, 1, 1, b, 1))
	if r.vote(u, bft.KindPrevote).Hash != b {
		t.Fatal("a proof of lock newer than the lock did not unlock")
	}
	if st := r.m.State(); st.LockedHash != a || st.LockedRound != 0 {
		t.Fatalf("the lock moves only on a quorum in the current round: %+v", st)
	}
	// A quorum of prevotes for B in round 2 now locks on B.
	u = r.recv(votes(bft.KindPrevote, 1, 2, b, 1, 3)...)
	if r.vote(u, bft.KindPrecommit).Hash != b || u.State.LockedHash != b || u.State.LockedRound != 2 {
		t.Fatal("did not lock on B in round 2")
	}
	u = r.recv(votes(bft.KindPrecommit, 1, 2, b, 1, 3)...)
	if u.Commit == nil || u.Commit.Hash != b || u.Commit.Round != 2 || len(u.Commit.Sigs) != 3 {
		t.Fatalf("no commit of B: %+v", u.Commit)
	}
	if err := bft.VerifyCommit(simNetwork, r.set, 1, b, u.Commit); err != nil {
		t.Fatal(err)
	}
	if !u.Deadline.IsZero() {
		t.Fatal("a decided height still has a deadline")
	}
}

// TestReproposeValidValue: an authority that saw a quorum of prevotes for
// A proposes A again in its turn, with the proof of lock and its votes.
func TestReproposeValidValue(t *testing.T) {
	a := testHash("A")
	r, _ := newRig(t, 4, 0, 1) // authority 0 proposes round 3 of height 1
	r.recv(signedProposal(r.set, 1, 0, a, -1))
	r.m.Validated(a, true, r.now)
	r.recv(votes(bft.KindPrevote, 1, 0, a, 1, 2)...)
	// f+1 = 2 authorities in round 3: skip there.
	u := r.recv(votes(bft.KindPrevote, 1, 3, chain.Hash{}, 1, 2)...)
	if r.m.Round() != 3 {
		t.Fatalf("round %d, want 3", r.m.Round())
	}
	var p *bft.Proposal
	pol := 0
	for _, msg := range u.Messages {
		switch x := msg.(type) {
		case *bft.Proposal:
			p = x
		case *bft.Vote:
			if x.Type == bft.KindPrevote && x.Round == 0 && x.Hash == a {
				pol++
			}
		}
	}
	if p == nil || p.Hash != a || p.POLRound != 0 || pol != 3 || u.NeedBlock {
		t.Fatalf("proposal %+v with %d proof-of-lock votes, need block %v", p, pol, u.NeedBlock)
	}
	if err := p.Verify(simNetwork, r.set); err != nil {
		t.Fatal(err)
	}
	if r.vote(u, bft.KindPrevote).Hash != a {
		t.Fatal("did not prevote its own proposal")
	}
}

// TestNeedBlockAndPropose: the proposer asks for a block, proposes the
// hash it is given once, and ignores hashes for another height.
func TestNeedBlockAndPropose(t *testing.T) {
	x, y := testHash("X"), testHash("Y")
	r, u := newRig(t, 4, 1, 1) // authority 1 proposes round 0 of height 1
	if !u.NeedBlock {
		t.Fatal("the proposer was not asked for a block")
	}
	if u = r.m.Propose(2, x, r.now); len(u.Messages) != 0 {
		t.Fatal("proposed a block of another height")
	}
	if u = r.m.Propose(1, chain.Hash{}, r.now); len(u.Messages) != 0 {
		t.Fatal("proposed the zero hash")
	}
	u = r.m.Propose(1, x, r.now)
	if len(u.Messages) != 2 || u.Messages[0].Kind() != bft.KindProposal || r.vote(u, bft.KindPrevote).Hash != x {
		t.Fatalf("propose: %d messages", len(u.Messages))
	}
	if u.State == nil || len(u.State.Sent) != 2 {
		t.Fatal("the state to persist does not hold what was sent")
	}
	if u = r.m.Propose(1, y, r.now); len(u.Messages) != 0 {
		t.Fatal("proposed twice in one round")
	}
	// Silence for Resend: both messages go again, unchanged.
	r.now = r.now.Add(time.Second)
	u = r.m.Tick(r.now)
	if len(u.Messages) != 2 || u.Messages[0].(*bft.Proposal).Hash != x {
		t.Fatalf("resend: %d messages", len(u.Messages))
	}
}

// TestInvalidBlockPrevotesNil: a block the owner finds invalid gets a nil
// prevote at once; an unjudged one gets none until the propose timeout.
func TestInvalidBlockPrevotesNil(t *testing.T) {
	x := testHash("X")
	r, u := newRig(t, 4, 0, 1)
	r.recv(signedProposal(r.set, 1, 0, x, -1))
	if u = r.m.Validated(x, false, r.now); r.vote(u, bft.KindPrevote).Hash != (chain.Hash{}) {
		t.Fatal("prevoted an invalid block")
	}
	r, u = newRig(t, 4, 0, 1)
	u = r.recv(signedProposal(r.set, 1, 0, x, -1))
	if len(u.Messages) != 0 {
		t.Fatal("prevoted before the owner judged the block")
	}
	if u = r.tick(u); r.vote(u, bft.KindPrevote).Hash != (chain.Hash{}) {
		t.Fatal("no nil prevote at the propose timeout")
	}
}

// TestFollower: a machine without a key decides from the authorities'
// votes, and never sends anything or asks to persist anything.
func TestFollower(t *testing.T) {
	x := testHash("X")
	r, u := newRig(t, 4, -1, 1)
	if u.NeedBlock || u.State != nil || r.m.Index() != -1 {
		t.Fatal("a follower acts as an authority")
	}
	r.recv(signedProposal(r.set, 1, 0, x, -1))
	r.m.Validated(x, true, r.now)
	var all []bft.Message
	all = append(all, votes(bft.KindPrevote, 1, 0, x, 0, 1, 2)...)
	all = append(all, votes(bft.KindPrecommit, 1, 0, x, 0, 1)...)
	for _, msg := range all {
		u = r.recv(msg)
		if len(u.Messages) != 0 || u.State != nil || u.Commit != nil {
			t.Fatal("a follower sent, persisted or decided too early")
		}
	}
	u = r.recv(signedVote(bft.KindPrecommit, 1, 0, x, 3))
	if u.Commit == nil || u.Commit.Hash != x {
		t.Fatal("the follower did not decide")
	}
}

// TestReceiveErrors: the error contract of Receive.
func TestReceiveErrors(t *testing.T) {
	x := testHash("X")
	r, _ := newRig(t, 4, 0, 5)
	forged := signedVote(bft.KindPrevote, 5, 0, x, 1)
	forged.Sig[3] ^= 1
	outOfTurn := &bft.Proposal{Height: 5, Round: 0, Hash: x, POLRound: -1}
	outOfTurn.Sign(simNetwork, simKey(0)) // (5+0) mod 4 = 1 proposes
	stranger := &bft.Vote{Type: bft.KindPrevote, Height: 5, Hash: x, Index: 4}
	stranger.Sign(simNetwork, simKey(4))
	dup := signedVote(bft.KindPrevote, 5, 0, x, 2)
	r.recv(dup)
	dupForged := *dup // the same statement under another signature
	dupForged.Sig[0] ^= 1
	prop := &bft.Proposal{Height: 5, Round: 1, Hash: x, POLRound: -1}
	prop.Sign(simNetwork, simKey(2)) // (5+1) mod 4 = 2 proposes round 1
	r.recv(prop)
	propForged := *prop
	propForged.Sig[0] ^= 1
	far := signedVote(bft.KindPrevote, 5, 9, chain.Hash{}, 3)
	r.recv(far) // counts for the round skip only
	for _, c := range []struct {
		name   string
		msg    bft.Message
		code   bft.ErrorCode
		fault  bool
		behind uint64
	}{
		{"forged", forged, bft.ErrBadSignature, true, 0},
		{"out of turn", outOfTurn, bft.ErrBadSignature, true, 0},
		{"stranger", stranger, bft.ErrUnknownAuthority, true, 0},
		{"too few precommits", signedCommit(5, 0, x, 1, 2), bft.ErrTooFewSignatures, true, 0},
		{"not a vote type", &bft.Vote{Type: bft.KindCommit, Height: 5, Hash: x}, bft.ErrMalformed, true, 0},
		{"POL not below its round", &bft.Proposal{Height: 5, Round: 1, Hash: x, POLRound: 1}, bft.ErrMalformed, true, 0},
		{"repeat", dup, bft.ErrRepeat, false, 0},
		{"duplicate under another signature", &dupForged, bft.ErrDuplicate, false, 0},
		{"proposal repeated", prop, bft.ErrRepeat, false, 0},
		{"proposal under another signature", &propForged, bft.ErrDuplicate, false, 0},
		{"far round again", signedVote(bft.KindPrevote, 5, 8, chain.Hash{}, 3), bft.ErrFutureRound, false, 0},
		{"old height", signedVote(bft.KindPrevote, 4, 0, x, 1), bft.ErrOldHeight, false, 0},
		{"next height", signedVote(bft.KindPrevote, 6, 0, x, 1), bft.ErrFutureHeight, false, 5},
		{"commit of a later height", signedCommit(7, 0, x, 0, 1, 2), bft.ErrFutureHeight, false, 7},
		{"far height", signedVote(bft.KindPrevote, 9, 0, x, 1), bft.ErrFutureHeight, false, 8},
		{"far height, not higher", signedVote(bft.KindPrevote, 8, 0, x, 2), bft.ErrFutureHeight, false, 0},
	} {
		u, err := r.m.Receive(c.msg, r.now)
		if !errors.Is(err, c.code) || bft.IsPeerFault(err) != c.fault || u.Behind != c.behind {
			t.Errorf("%s: err = %v (fault %v), behind %d; want %v (fault %v), behind %d",
				c.name, err, bft.IsPeerFault(err), u.Behind, c.code, c.fault, c.behind)
		}
	}
	// A message of a later height that does not verify costs nothing to
	// forge, and each Behind makes the node ask its peers: within 10 s of
	// the last one taken on trust (the "next height" above) it is not
	// taken; after, one is (its signer may be of a set that changed).
	farForged := signedVote(bft.KindPrevote, 1<<40, 0, x, 1)
	farForged.Sig[3] ^= 1
	if u, err := r.m.Receive(farForged, r.now); !errors.Is(err, bft.ErrFutureHeight) || u.Behind != 0 {
		t.Errorf("forged far height within 10 s: err = %v, behind %d; want future height, behind 0", err, u.Behind)
	}
	if u, err := r.m.Receive(farForged, r.now.Add(10*time.Second)); !errors.Is(err, bft.ErrFutureHeight) || u.Behind != 1<<40-1 {
		t.Errorf("forged far height 10 s later: err = %v, behind %d; want future height, behind %d", err, u.Behind, uint64(1<<40-1))
	}
	var re *bft.RuleError
	_, err := r.m.Receive(forged, r.now)
	if !errors.As(err, &re) || re.Code != bft.ErrBadSignature || re.Code.String() != "bad signature" {
		t.Errorf("rule error detail: %v", err)
	}
}

// TestEquivocatorCounted: a vote that contradicts its signer's first vote
// is reported once as evidence and still counts for its block, so a proof
// of lock that rests on it is honoured.
func TestEquivocatorCounted(t *testing.T) {
	a, b := testHash("A"), testHash("B")
	r, _ := newRig(t, 4, 0, 1)
	r.recv(signedProposal(r.set, 1, 0, a, -1))
	u := r.recv(signedVote(bft.KindPrevote, 1, 0, b, 3))
	if len(u.Evidence) != 0 {
		t.Fatal("evidence from one vote")
	}
	u = r.recv(signedVote(bft.KindPrevote, 1, 0, a, 3))
	if len(u.Evidence) != 1 || u.Evidence[0].Verify(simNetwork, r.set) != nil || u.Evidence[0].Offender(r.set) != 3 {
		t.Fatalf("evidence: %+v", u.Evidence)
	}
	if u = r.recv(signedVote(bft.KindPrevote, 1, 0, chain.Hash{}, 3)); len(u.Evidence) != 0 {
		t.Fatal("one equivocation reported twice")
	}
	u = r.m.Validated(a, true, r.now)
	u = r.recv(signedVote(bft.KindPrevote, 1, 0, a, 1))
	// Prevotes for A: 0 (own), 1 and 3's second vote: a quorum.
	if r.vote(u, bft.KindPrecommit).Hash != a {
		t.Fatal("the equivocator's vote for A did not count")
	}
}

// TestStashAndReplay: messages for the next height that arrive before the
// owner starts it are kept and replayed by Start.
func TestStashAndReplay(t *testing.T) {
	x, y := testHash("X"), testHash("Y")
	r, _ := newRig(t, 4, 0, 1)
	u := r.recv(signedCommit(1, 0, x, 1, 2, 3))
	if u.Commit == nil {
		t.Fatal("a valid commit did not decide")
	}
	next := signedProposal(r.set, 2, 0, y, -1)
	u, err := r.m.Receive(next, r.now)
	if !errors.Is(err, bft.ErrFutureHeight) || u.Behind != 0 {
		t.Fatalf("next height while decided: %v, behind %d", err, u.Behind)
	}
	u = r.m.Start(2, r.set, r.now)
	if len(u.Validate) != 1 || u.Validate[0] != y {
		t.Fatalf("the early proposal was not replayed: %v", u.Validate)
	}
}

// TestStashKeepsOnlyVerified: forged messages for the next height (a
// stranger needs no key) and resent copies no longer fill the stash ahead
// of the real early proposal, which Start then replays. (The forged ones
// spend the checks such messages may cost, futureCheck's budget: the
// real proposal comes a second later, when it has refilled.)
func TestStashKeepsOnlyVerified(t *testing.T) {
	x, y := testHash("X"), testHash("Y")
	r, _ := newRig(t, 4, 0, 1)
	if u := r.recv(signedCommit(1, 0, x, 1, 2, 3)); u.Commit == nil {
		t.Fatal("a valid commit did not decide")
	}
	early := signedVote(bft.KindPrevote, 2, 0, y, 3)
	for i := range 40 { // 4n+4 = 20 slots, twice over
		forged := signedVote(bft.KindPrevote, 2, 0, testHash(fmt.Sprint("F", i)), 1)
		forged.Sig[3] ^= 1
		for _, m := range []bft.Message{forged, early} { // early: resent
			if _, err := r.m.Receive(m, r.now); !errors.Is(err, bft.ErrFutureHeight) {
				t.Fatalf("a message of the next height: %v, want future height", err)
			}
		}
	}
	r.now = r.now.Add(time.Second)
	next := signedProposal(r.set, 2, 0, y, -1)
	if _, err := r.m.Receive(next, r.now); !errors.Is(err, bft.ErrFutureHeight) {
		t.Fatal(err)
	}
	u := r.m.Start(2, r.set, r.now)
	if len(u.Validate) != 1 || u.Validate[0] != y {
		t.Fatalf("the early proposal was not replayed after forged and resent messages: %v", u.Validate)
	}
}

// TestForgedFutureMessagesCostBoundedChecks: a message of a later height
// whose signature fails is no fault of its sender (the set of that height
// may change before this machine gets there), so forging them is free; the
// signature checks they cost are bounded (4n+4 failed checks a second),
// not one per message. Before, each cost an Ed25519 verification in the
// loop that takes every consensus message: a few peers at their message
// budget (2,000 a second each) kept it busy, and real messages waited.
// Real messages of the next height still verify and are kept.
func TestForgedFutureMessagesCostBoundedChecks(t *testing.T) {
	r, _ := newRig(t, 4, 0, 1)
	const count = 5000
	forged := make([]bft.Message, 0, 2*count)
	old := make([]bft.Message, 0, 2*count)
	for i := range count {
		// Any bytes for a signature: forging costs nothing.
		for _, h := range []uint64{2, 7} { // the next height, and one far ahead
			v := &bft.Vote{Type: bft.KindPrevote, Height: h, Hash: testHash(fmt.Sprint("F", i)), Index: 1}
			v.Sig[0], v.Sig[1] = byte(i), byte(i>>8)
			forged = append(forged, v)
		}
		for _, idx := range []uint16{1, 2} {
			v := &bft.Vote{Type: bft.KindPrevote, Height: 0, Hash: testHash(fmt.Sprint("O", i)), Index: idx}
			v.Sig[0], v.Sig[1] = byte(i), byte(i>>8)
			old = append(old, v)
		}
	}
	cost := func(msgs []bft.Message, want error) time.Duration {
		start := time.Now()
		for i, m := range msgs {
			r.now = r.now.Add(time.Millisecond) // a second for every thousand
			if _, err := r.m.Receive(m, r.now); !errors.Is(err, want) || bft.IsPeerFault(err) {
				t.Fatalf("message %d: %v, want %v, no fault", i, err, want)
			}
		}
		return time.Since(start)
	}
	base := cost(old, bft.ErrOldHeight)
	spent := cost(forged, bft.ErrFutureHeight)
	t.Logf("%d messages of an old height: %v; %d forged ones of later heights: %v", len(old), base, len(forged), spent)
	// 10 s at 4n+4 = 20 failed checks a second: 200 checks, about 10 ms;
	// one check per message was 10,000, about half a second.
	if spent > 3*base+100*time.Millisecond {
		t.Fatalf("forged messages of later heights cost %v, messages of an old height %v: a signature check each", spent, base)
	}
	// The real ones still count (once the flood has left the budget a
	// moment to refill: during one, they wait for their signer's resend).
	r.now = r.now.Add(time.Second)
	y := testHash("Y")
	if _, err := r.m.Receive(signedProposal(r.set, 2, 0, y, -1), r.now); !errors.Is(err, bft.ErrFutureHeight) {
		t.Fatal(err)
	}
	r.recv(signedCommit(1, 0, testHash("X"), 1, 2, 3))
	if u := r.m.Start(2, r.set, r.now); len(u.Validate) != 1 || u.Validate[0] != y {
		t.Fatalf("the real early proposal was not kept among forged messages: %v", u.Validate)
	}
}

// TestCommitForLaggards: a decided machine answers a message of its height
// (or of the one before, once it moved on) with the commit, at most once
// per Resend.
func TestCommitForLaggards(t *testing.T) {
	x := testHash("X")
	r, _ := newRig(t, 4, 0, 1)
	c := signedCommit(1, 0, x, 1, 2, 3)
	r.recv(c)
	late := func(i int) []bft.Message {
		u, err := r.m.Receive(signedVote(bft.KindPrevote, 1, 0, chain.Hash{}, i), r.now)
		if !errors.Is(err, bft.ErrOldHeight) {
			t.Fatalf("late vote: %v", err)
		}
		return u.Messages
	}
	if m := late(1); len(m) != 1 || m[0] != c {
		t.Fatalf("no commit for a laggard: %v", m)
	}
	if m := late(2); len(m) != 0 {
		t.Fatal("answered twice within Resend")
	}
	r.now = r.now.Add(time.Second)
	r.m.Start(2, r.set, r.now)
	if m := late(3); len(m) != 1 || m[0] != c {
		t.Fatal("no commit of the previous height after moving on")
	}
}

// TestTimeoutsGrow: each round waits longer, up to MaxTimeout.
func TestTimeoutsGrow(t *testing.T) {
	r, u := newRig(t, 4, 0, 1)
	if want := simEpoch.Add(time.Second); !u.Deadline.Equal(want) {
		t.Fatalf("round 0 deadline %v, want %v", u.Deadline, want)
	}
	u = r.recv(votes(bft.KindPrevote, 1, 4, chain.Hash{}, 1, 2)...)
	if r.m.Round() != 4 || !u.Deadline.Equal(r.now.Add(time.Second+4*500*time.Millisecond)) {
		t.Fatalf("round %d deadline %v", r.m.Round(), u.Deadline.Sub(r.now))
	}
	u = r.recv(votes(bft.KindPrevote, 1, 1<<30, chain.Hash{}, 1, 2)...)
	if got := u.Deadline.Sub(r.now); got != bft.MaxTimeout {
		t.Fatalf("propose timeout of round 2^30 in %v, want %v", got, bft.MaxTimeout)
	}
}

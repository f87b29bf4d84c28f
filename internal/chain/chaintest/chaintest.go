// Package chaintest generates block vectors in the style of btcd's
// fullblocktests: a fixed sequence of named blocks, each with the outcome a
// node must reach when it receives the block (accepted to the main chain,
// accepted to a side branch, kept as an orphan, or refused with a rule
// error code) and the tip it must have afterwards.
//
// The same vectors drive the chain core ((*chain.Chain).Process, in
// internal/chain) and a live node over the wire (internal/testnet). The
// expected outcomes are written by hand from docs/PROTOCOL.md (sections 4.7
// and 5), never computed by the code under test.
//
// It imports the standard library and package chain only. Everything is
// deterministic: keys come from fixed seeds and the clock is the vectors'
// own (Step.Now), so two runs give the same blocks byte for byte.
package chaintest

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// Outcome is what a receiver does with a block.
type Outcome int

// The outcomes.
const (
	// Main: the block joins the tree and the main chain moves to it (it
	// extends the tip, or wins a reorganisation or a tie).
	Main Outcome = iota + 1
	// Side: the block joins the tree on a side branch; the tip stays.
	Side
	// Orphan: the parent is unknown (chain.ErrUnknownParent, not a fault).
	// A receiver keeps a valid orphan aside and processes it again once
	// its parent has been accepted, as the node's orphan pool does; the
	// Tip of the step that brings the parent says where that leads.
	Orphan
	// Rejected: the block is refused with Step.Code.
	Rejected
)

func (o Outcome) String() string {
	switch o {
	case Main:
		return "main"
	case Side:
		return "side"
	case Orphan:
		return "orphan"
	case Rejected:
		return "rejected"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Step is one block sent to the receiver and what must follow.
type Step struct {
	Name    string
	Block   *chain.Block
	Now     time.Time       // the receiver's clock when the block arrives
	Outcome Outcome         // what the receiver does with it
	Code    chain.ErrorCode // Rejected: the rule broken; Orphan: ErrUnknownParent
	Tip     chain.Hash      // the receiver's tip after the step
	Height  uint64          // its height
}

// Vectors is a network, a receiver's checkpoint, and the steps to send it
// in order.
type Vectors struct {
	Params     chain.Params
	Checkpoint chain.Checkpoint // the receiver's checkpoint (chain.SetCheckpoint, node.WithCheckpoint)
	Steps      []Step
}

// Codes returns the distinct codes of the Rejected steps, in first use.
func (v *Vectors) Codes() []chain.ErrorCode {
	var out []chain.ErrorCode
	seen := map[chain.ErrorCode]bool{}
	for _, s := range v.Steps {
		if s.Outcome == Rejected && !seen[s.Code] {
			seen[s.Code] = true
			out = append(out, s.Code)
		}
	}
	return out
}

// Count returns how many steps have outcome o.
func (v *Vectors) Count(o Outcome) int {
	n := 0
	for _, s := range v.Steps {
		if s.Outcome == o {
			n++
		}
	}
	return n
}

// Params returns the network of the vectors: a proof-of-work network of
// low difficulty (blocks are solved in microseconds, and a bad proof of
// work is still a bad one), at most four readings a block (so that a block
// over the size limit is cheap to make) and a final depth of three blocks.
func Params() chain.Params {
	p := chain.TestParams("vectors")
	p.Difficulty = 6
	p.MaxReadings = 4
	p.MaxReorgDepth = 3
	p.FinalAge = time.Minute
	p.MaxFutureDrift = 2 * time.Minute
	return p
}

// step is the clock's advance before each step: more than chain.TieWindow,
// so that no tie is decided by the clock unless a step says so.
const step = 3 * time.Second

// gen builds the steps.
type gen struct {
	p     chain.Params
	now   time.Time
	keys  []ed25519.PrivateKey
	seq   int
	steps []Step
}

// Generate returns the vectors. The fork diagram (main chain on the left,
// checkpoint at b2, final depth 3):
//
//	genesis ─ b1 ─ b2 ─ b3 ─ b4 ─ b5 ─ b6 ─ b7 ─ b8 ─ t9a
//	                     │    └── s4 ─ s5 ─ s6   │    ├── t9b ─ b10 ─ b11 ─ b12 ─ b13 ─ b14
//	                     │                       │    └── t9c       └── f11
//	                     └── (rejected candidates for height 4)     (f9: fork too deep)
//
// b4 is first main, loses to s5 (reorganisation), and wins again with b6;
// b8 arrives before b7 (an orphan) and connects with it; t9b displaces t9a
// within the tie window, t9c comes after it and stays on the side; f9 forks
// below the final height, f11 at it.
func Generate() (*Vectors, error) {
	p := Params()
	g := &gen{p: p, now: time.UnixMilli(p.GenesisTime).Add(time.Hour)}
	for i := range 3 {
		seed := sha256.Sum256([]byte(fmt.Sprintf("p2pchain chaintest key %d", i)))
		g.keys = append(g.keys, ed25519.NewKeyFromSeed(seed[:]))
	}
	genesis := p.Genesis()

	// The main chain up to the checkpoint and one block more.
	b1 := g.block(genesis, g.readings(1))
	g.main("b1", b1, b1)
	b2 := g.block(b1, g.readings(2))
	g.main("b2 (the checkpoint)", b2, b2)
	b3 := g.block(b2, g.readings(1))
	g.main("b3", b3, b3)
	v := &Vectors{Params: p, Checkpoint: chain.Checkpoint{Height: 2, Hash: b2.Hash()}}

	// Rule 2: known blocks. Rule 3: the header alone.
	g.reject("genesis again", genesis, chain.ErrDuplicateBlock, b3)
	g.reject("b2 again", b2, chain.ErrDuplicateBlock, b3)
	g.reject("a second genesis", g.edit(genesis, nil, func(b *chain.Block) {
		b.Header.Height, b.Header.Parent = 0, chain.Hash{}
	}), chain.ErrBadGenesis, b3)
	g.reject("height 0 on b3", g.edit(b3, g.readings(1), func(b *chain.Block) { b.Header.Height = 0 }), chain.ErrBadGenesis, b3)
	g.reject("bad version", g.edit(b3, g.readings(1), func(b *chain.Block) { b.Header.Version++ }), chain.ErrBadVersion, b3)
	g.reject("bad version and bad proof of work", g.badPoW(g.edit(b3, g.readings(1), func(b *chain.Block) { b.Header.Version = 0 })), chain.ErrBadVersion, b3)
	g.reject("difficulty above the network's", g.edit(b3, g.readings(1), func(b *chain.Block) { b.Header.Difficulty++ }), chain.ErrBadDifficulty, b3)
	g.reject("difficulty 0", g.edit(b3, g.readings(1), func(b *chain.Block) { b.Header.Difficulty = 0 }), chain.ErrBadDifficulty, b3)
	g.reject("header counts more readings than allowed", g.edit(b3, nil, func(b *chain.Block) { b.Header.Count = uint32(p.MaxReadings + 1) }), chain.ErrTooManyReadings, b3)
	g.reject("bad proof of work", g.badPoW(g.block(b3, g.readings(1))), chain.ErrBadPoW, b3)
	g.reject("bad proof of work on an unknown parent", g.badPoW(g.edit(b3, g.readings(1), func(b *chain.Block) {
		b.Header.Parent = chain.Hash{0xde, 0xad}
	})), chain.ErrBadPoW, b3)
	g.reject("more readings than allowed", g.block(b3, g.readings(p.MaxReadings+1)), chain.ErrTooManyReadings, b3)
	g.reject("over the block size limit", g.block(b3, g.longReadings(p.MaxReadings+1)), chain.ErrTooManyReadings, b3)

	// Rule 4: the parent. Rule 5: the link to it, the clock, the checkpoint.
	g.orphan("orphan whose parent never comes", g.edit(b3, g.readings(1), func(b *chain.Block) {
		b.Header.Parent, b.Header.Height = chain.Hash{0xbe, 0xef}, 9
	}), b3)
	g.reject("height two above the parent", g.edit(b3, g.readings(1), func(b *chain.Block) { b.Header.Height++ }), chain.ErrBadHeight, b3)
	g.reject("height of the parent", g.edit(b3, g.readings(1), func(b *chain.Block) { b.Header.Height-- }), chain.ErrBadHeight, b3)
	g.reject("time before the parent's", g.edit(b3, nil, func(b *chain.Block) { b.Header.Time = b3.Header.Time - 1 }), chain.ErrTimeBeforeParent, b3)
	ahead := g.now.Add(step).Add(p.MaxFutureDrift).UnixMilli() + 1
	g.reject("time too far ahead", g.edit(b3, nil, func(b *chain.Block) { b.Header.Time = ahead }), chain.ErrTimeTooNew, b3)
	g.reject("bad height and time too far ahead", g.edit(b3, nil, func(b *chain.Block) {
		b.Header.Time, b.Header.Height = ahead+step.Milliseconds(), 7
	}), chain.ErrBadHeight, b3)
	g.reject("another block at the checkpoint's height", g.block(b1, g.readings(1)), chain.ErrCheckpoint, b3)

	// Rule 6: the body against the header. Rule 7: readings of the
	// ancestors. Rule 8: signatures.
	g.reject("count above the readings", g.edit(b3, g.readings(1), func(b *chain.Block) { b.Header.Count = 2 }), chain.ErrBadCount, b3)
	g.reject("count below the readings, bad root", g.edit(b3, g.readings(2), func(b *chain.Block) {
		b.Header.Count, b.Header.Root = 1, chain.Hash{1}
	}), chain.ErrBadCount, b3)
	twice := g.readings(1)
	g.reject("one reading twice", g.block(b3, append(twice, twice[0])), chain.ErrDuplicateReading, b3)
	g.reject("a seal on a proof-of-work block", g.trailer(b3, nil, []byte{1, 2, 3}), chain.ErrBadSeal, b3)
	g.reject("membership changes on a proof-of-work block", g.trailer(b3, make([]byte, chain.ChangeSize), nil), chain.ErrBadSeal, b3)
	g.reject("bad readings root", g.edit(b3, g.readings(2), func(b *chain.Block) { b.Header.Root[0] ^= 1 }), chain.ErrBadRoot, b3)
	g.reject("bad root and a bad signature", g.edit(b3, g.spoilSig(g.readings(1)), func(b *chain.Block) { b.Header.Root[31] ^= 1 }), chain.ErrBadRoot, b3)
	g.reject("reading before genesis", g.block(b3, []chain.Reading{g.sign(0, "early", 70, p.GenesisTime-1)}), chain.ErrBadReadingTime, b3)
	g.reject("reading after its block", g.block(b3, []chain.Reading{g.sign(0, "late", 70, g.ms()+p.MaxFutureDrift.Milliseconds()+1)}), chain.ErrBadReadingTime, b3)
	g.reject("empty subject", g.block(b3, []chain.Reading{g.sign(0, "", 70, g.ms())}), chain.ErrBadSubject, b3)
	g.reject("subject with a space", g.block(b3, []chain.Reading{g.sign(0, "pat ient", 70, g.ms())}), chain.ErrBadSubject, b3)
	g.reject("bpm below the range", g.block(b3, []chain.Reading{g.sign(0, "slow", chain.MinBPM-1, g.ms())}), chain.ErrBadBPM, b3)
	g.reject("bpm above the range", g.block(b3, []chain.Reading{g.sign(0, "fast", chain.MaxBPM+1, g.ms())}), chain.ErrBadBPM, b3)
	g.reject("author key of small order", g.block(b3, []chain.Reading{g.withKey(g.sign(0, "small", 70, g.ms()), identityKey())}), chain.ErrBadKey, b3)
	g.reject("author key not canonical", g.block(b3, []chain.Reading{g.withKey(g.sign(0, "noncanon", 70, g.ms()), nonCanonicalKey())}), chain.ErrBadKey, b3)
	g.reject("bad signature", g.block(b3, g.spoilSig(g.readings(2))), chain.ErrBadSignature, b3)
	g.reject("signature of another key", g.block(b3, []chain.Reading{g.withKey(g.sign(0, "other", 70, g.ms()), g.keys[1].Public().(ed25519.PublicKey))}), chain.ErrBadSignature, b3)
	g.reject("bad signature before a bad key", g.block(b3, append(g.spoilSig(g.readings(1)), g.withKey(g.sign(1, "key", 70, g.ms()), identityKey()))), chain.ErrBadKey, b3)
	g.reject("reading of an ancestor", g.block(b3, []chain.Reading{b1.Readings[0]}), chain.ErrDuplicateReading, b3)

	// Forks and reorganisations.
	b4 := g.block(b3, []chain.Reading{g.sign(0, "at-genesis-time", 70, p.GenesisTime), g.sign(1, "at-the-drift", 71, g.ms()+p.MaxFutureDrift.Milliseconds())})
	g.main("b4 (reading times at both bounds)", b4, b4)
	s4 := g.block(b3, []chain.Reading{b4.Readings[0]})
	g.side("s4: sibling of b4 holding b4's reading", s4, b4)
	s5 := g.block(s4, g.readings(1))
	g.main("s5: reorganisation to the s branch", s5, s5)
	b5 := g.block(b4, g.readings(1))
	g.side("b5: equal work, later", b5, s5)
	b6 := g.block(b5, g.readings(1))
	g.main("b6: reorganisation back", b6, b6)
	g.reject("side block with a reading of its ancestor b3", g.block(s5, []chain.Reading{b3.Readings[0]}), chain.ErrDuplicateReading, b6)
	s6 := g.block(s5, []chain.Reading{b5.Readings[0]})
	g.side("s6: side block with a reading of the main branch", s6, b6)
	g.reject("s6 again", s6, chain.ErrDuplicateBlock, b6)

	// An orphan that connects when its parent comes.
	b7 := g.block(b6, g.readings(1))
	b8 := g.block(b7, g.readings(1))
	g.orphan("b8 before its parent", b8, b6)
	g.main("b7 connects b8", b7, b8)
	g.reject("b8 again", b8, chain.ErrDuplicateBlock, b8)

	// Ties: equal work, lower hash, within chain.TieWindow of the tip.
	t9a, t9b, t9c := g.siblings(b8)
	g.main("t9a", t9a, t9a)
	g.now = g.now.Add(chain.TieWindow / 2).Add(-step) // the next step comes TieWindow/2 after t9a
	g.main("t9b: lower hash within the tie window", t9b, t9b)
	g.side("t9c: lowest hash after the tie window", t9c, t9b)

	// Finality: three blocks deep and a minute on the main chain.
	b10 := g.block(t9b, g.readings(1))
	g.main("b10", b10, b10)
	b11 := g.block(b10, g.readings(1))
	g.main("b11", b11, b11)
	b12 := g.block(b11, g.readings(1))
	g.main("b12", b12, b12)
	b13 := g.block(b12, g.readings(1))
	g.main("b13", b13, b13)
	g.now = g.now.Add(2 * p.FinalAge) // b10 is final from the next step on
	g.reject("f9: fork below the final height", g.block(b8, g.readings(1)), chain.ErrForkTooDeep, b13)
	f11 := g.block(b10, g.readings(1))
	g.side("f11: fork at the final height", f11, b13)
	b14 := g.block(b13, g.readings(4))
	g.main("b14", b14, b14)

	v.Steps = g.steps
	return v, nil
}

// ms is the time of a new block or reading: the clock of the next step.
func (g *gen) ms() int64 { return g.now.Add(step).UnixMilli() }

func (g *gen) add(s Step, tip *chain.Block) {
	g.now = g.now.Add(step)
	s.Now, s.Tip, s.Height = g.now, tip.Hash(), tip.Header.Height
	g.steps = append(g.steps, s)
}

func (g *gen) main(name string, b, tip *chain.Block) {
	g.add(Step{Name: name, Block: b, Outcome: Main}, tip)
}

func (g *gen) side(name string, b, tip *chain.Block) {
	g.add(Step{Name: name, Block: b, Outcome: Side}, tip)
}

func (g *gen) orphan(name string, b, tip *chain.Block) {
	g.add(Step{Name: name, Block: b, Outcome: Orphan, Code: chain.ErrUnknownParent}, tip)
}

func (g *gen) reject(name string, b *chain.Block, code chain.ErrorCode, tip *chain.Block) {
	g.add(Step{Name: name, Block: b, Outcome: Rejected, Code: code}, tip)
}

// sign returns a reading with any fields, signed by key i as section 4.1
// of docs/PROTOCOL.md says: Ed25519 over the domain "p2pchain/reading/v1"
// and the content (subject length, subject, BPM, time, author key).
func (g *gen) sign(i int, subject string, bpm int, ms int64) chain.Reading {
	r := chain.Reading{Subject: subject, BPM: uint16(bpm), Time: ms}
	copy(r.Author[:], g.keys[i].Public().(ed25519.PublicKey))
	return g.resign(r, g.keys[i])
}

func (g *gen) resign(r chain.Reading, key ed25519.PrivateKey) chain.Reading {
	msg := []byte("p2pchain/reading/v1")
	msg = append(msg, byte(len(r.Subject)))
	msg = append(msg, r.Subject...)
	msg = binary.BigEndian.AppendUint16(msg, r.BPM)
	msg = binary.BigEndian.AppendUint64(msg, uint64(r.Time))
	msg = append(msg, r.Author[:]...)
	copy(r.Sig[:], ed25519.Sign(key, msg))
	return r
}

// withKey sets r's author key to k, keeping the signature made by another.
func (g *gen) withKey(r chain.Reading, k []byte) chain.Reading {
	copy(r.Author[:], k)
	return r
}

// readings returns n new valid readings, taken at the next step.
func (g *gen) readings(n int) []chain.Reading {
	out := make([]chain.Reading, n)
	for i := range out {
		g.seq++
		out[i] = g.sign(g.seq%len(g.keys), fmt.Sprintf("p%d", g.seq), chain.MinBPM+g.seq%200, g.ms())
	}
	return out
}

// longReadings returns n new valid readings of the largest size.
func (g *gen) longReadings(n int) []chain.Reading {
	out := make([]chain.Reading, n)
	for i := range out {
		g.seq++
		s := fmt.Sprintf("p%d-", g.seq)
		out[i] = g.sign(0, s+strings.Repeat("x", chain.MaxSubjectLen-len(s)), 70, g.ms())
	}
	return out
}

// spoilSig flips a bit of the first reading's signature.
func (g *gen) spoilSig(rs []chain.Reading) []chain.Reading {
	rs[0].Sig[7] ^= 0x10
	return rs
}

// block returns a valid block on parent holding rs (as far as the header
// goes: the readings are what they are), its proof of work solved.
func (g *gen) block(parent *chain.Block, rs []chain.Reading) *chain.Block {
	return g.edit(parent, rs, nil)
}

// edit is block with the header or readings changed by f after the root
// and count are set from rs, and before the proof of work is solved.
func (g *gen) edit(parent *chain.Block, rs []chain.Reading, f func(*chain.Block)) *chain.Block {
	b := &chain.Block{Readings: rs}
	b.Header = chain.Header{
		Version:    chain.HeaderVersion,
		Height:     parent.Header.Height + 1,
		Parent:     parent.Hash(),
		Time:       max(g.ms(), parent.Header.Time),
		Difficulty: g.p.Difficulty,
	}
	b.Header.Root, b.Header.Count = b.ReadingsRoot(), uint32(len(rs))
	if f != nil {
		f(b)
	}
	return g.solve(b)
}

// trailer returns a block on parent with membership changes or a seal,
// its root committing to them.
func (g *gen) trailer(parent *chain.Block, changes, seal []byte) *chain.Block {
	return g.edit(parent, g.readings(1), func(b *chain.Block) {
		b.Changes, b.Seal = changes, seal
		b.Header.Root = b.ReadingsRoot()
	})
}

// solve finds the first nonce from 0 whose hash meets the header's own
// difficulty.
func (g *gen) solve(b *chain.Block) *chain.Block {
	b.Header.Nonce = 0
	if err := chain.Solve(context.Background(), &b.Header); err != nil {
		panic(err) // a difficulty of a few bits always has a solution
	}
	return b
}

// badPoW moves b's nonce to the first one whose hash misses the network's
// target (and the header's own).
func (g *gen) badPoW(b *chain.Block) *chain.Block {
	d := max(g.p.Difficulty, b.Header.Difficulty)
	for chain.MeetsTarget(b.Hash(), d) {
		b.Header.Nonce++
	}
	return b
}

// siblings returns three valid blocks on parent whose hashes are in
// decreasing order.
func (g *gen) siblings(parent *chain.Block) (a, b, c *chain.Block) {
	var bs []*chain.Block
	for len(bs) < 3 {
		n := g.block(parent, g.readings(1))
		i := 0
		for i < len(bs) && bs[i].Hash().Less(n.Hash()) {
			i++
		}
		bs = append(bs[:i], append([]*chain.Block{n}, bs[i:]...)...)
	}
	return bs[2], bs[1], bs[0]
}

// identityKey is the encoding of the identity point: of small order.
func identityKey() []byte {
	k := make([]byte, ed25519.PublicKeySize)
	k[0] = 1
	return k
}

// nonCanonicalKey encodes y = 2^255 - 19 + 1, which is not below p.
func nonCanonicalKey() []byte {
	k := make([]byte, ed25519.PublicKeySize)
	for i := range k {
		k[i] = 0xff
	}
	k[0], k[31] = 0xee, 0x7f
	return k
}

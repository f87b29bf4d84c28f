package chain_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// orderFixture is a main chain to test the order of the rules against, at a
// difficulty where proof of work is real, with a final depth of 2:
//
//	g ── a1 ── a2 ── a3 ── a4 ── a5     readings ra[1] … ra[5]; FinalHeight 3
type orderFixture struct {
	p     chain.Params
	c     *chain.Chain
	g     *chain.Block
	a     []*chain.Block // a[0] is g
	ra    []chain.Reading
	fresh []chain.Reading
	now   time.Time
}

func newOrderFixture(t *testing.T) *orderFixture {
	t.Helper()
	p := testParams(8)
	p.MaxReadings = 3
	p.MaxReorgDepth = 2
	f := &orderFixture{p: p, c: mustChain(t, p)}
	f.g = f.c.Tip()
	f.a = []*chain.Block{f.g}
	rs := poolReadings(16)
	f.ra, f.fresh = append([]chain.Reading{{}}, rs[:5]...), rs[5:]
	for i := 1; i <= 5; i++ {
		b := solve(t, blockOn(f.a[i-1], p, f.ra[i:i+1], p.GenesisTime+int64(i)*60_000))
		f.now = time.UnixMilli(b.Header.Time)
		mustAdd(t, f.c, b, f.now)
		f.a = append(f.a, b)
	}
	f.now = f.now.Add(10 * time.Minute)
	if f.c.FinalHeight() != 3 {
		t.Fatalf("fixture: FinalHeight %d, want 3", f.c.FinalHeight())
	}
	return f
}

// violation is one broken rule: edits of a block on the tip a5 holding one
// fresh reading, before its proof of work is solved (pre) or after (post),
// and the clock to process it with.
type violation struct {
	code    chain.ErrorCode
	pre     func(f *orderFixture, b *chain.Block)
	post    func(f *orderFixture, b *chain.Block)
	clock   func(f *orderFixture) time.Time
	noSolve bool // the block is one the chain knows: solving would change it
}

// editReading changes reading i of the block, signs it again if its author
// is one of the test keys, and sets the count and the root.
func editReading(i int, change func(r *chain.Reading)) func(f *orderFixture, b *chain.Block) {
	return func(f *orderFixture, b *chain.Block) {
		b.Readings = append([]chain.Reading(nil), b.Readings...)
		r := &b.Readings[i]
		change(r)
		for k := range 4 {
			if key := testKey(k); bytes.Equal(r.Author[:], key.Public().(ed25519.PublicKey)) {
				*r = sign(key, r.Subject, r.BPM, r.Time)
			}
		}
		resetRoot(b)
	}
}

// The violations, one per rule in the order of the package doc.
var (
	vKnown = violation{code: chain.ErrDuplicateBlock, noSolve: true,
		pre: func(f *orderFixture, b *chain.Block) { *b = *f.g }}
	vHeight0 = violation{code: chain.ErrBadGenesis,
		pre: func(_ *orderFixture, b *chain.Block) { b.Header.Height = 0 }}
	vVersion = violation{code: chain.ErrBadVersion,
		pre: func(_ *orderFixture, b *chain.Block) { b.Header.Version = 1 }}
	vDifficulty = violation{code: chain.ErrBadDifficulty,
		pre: func(_ *orderFixture, b *chain.Block) { b.Header.Difficulty = 9 }}
	vCountLimit = violation{code: chain.ErrTooManyReadings,
		pre: func(f *orderFixture, b *chain.Block) { b.Header.Count = uint32(f.p.MaxReadings + 1) }}
	vPoW = violation{code: chain.ErrBadPoW,
		post: func(_ *orderFixture, b *chain.Block) { breakPoW(b) }}
	vParent = violation{code: chain.ErrUnknownParent,
		pre: func(_ *orderFixture, b *chain.Block) { b.Header.Parent = sha256.Sum256([]byte("nowhere")) }}
	vHeight = violation{code: chain.ErrBadHeight,
		pre: func(_ *orderFixture, b *chain.Block) { b.Header.Height++ }}
	vBeforeParent = violation{code: chain.ErrTimeBeforeParent,
		pre: func(f *orderFixture, b *chain.Block) { b.Header.Time = f.a[5].Header.Time - 1 }}
	// The clock is behind the tip by more than the drift, so that even a
	// block at the parent's time is too new.
	vTooNewClock = violation{code: chain.ErrTimeTooNew,
		clock: func(f *orderFixture) time.Time {
			return time.UnixMilli(f.a[5].Header.Time).Add(-f.p.MaxFutureDrift - 5*time.Second)
		}}
	vTooNew = violation{code: chain.ErrTimeTooNew,
		pre: func(f *orderFixture, b *chain.Block) {
			b.Header.Time = f.now.Add(f.p.MaxFutureDrift).UnixMilli() + 1
		}}
	// The block moves onto a2: at height 3, the final height, it would
	// disconnect a final block.
	vTooDeep = violation{code: chain.ErrForkTooDeep,
		pre: func(f *orderFixture, b *chain.Block) {
			b.Header.Parent, b.Header.Height, b.Header.Time = f.a[2].Hash(), 3, f.a[2].Header.Time+1000
		}}
	vCount = violation{code: chain.ErrBadCount,
		pre: func(_ *orderFixture, b *chain.Block) { b.Header.Count = uint32(len(b.Readings) + 1) }}
	vDupInBlock = violation{code: chain.ErrDuplicateReading,
		pre: func(_ *orderFixture, b *chain.Block) {
			b.Readings = append(b.Readings[:len(b.Readings):len(b.Readings)], b.Readings[0])
			b.Header.Count = uint32(len(b.Readings))
		}}
	vRoot = violation{code: chain.ErrBadRoot,
		pre: func(_ *orderFixture, b *chain.Block) { b.Header.Root[0] ^= 1 }}
	vReadingTime = violation{code: chain.ErrBadReadingTime,
		pre: editReading(0, func(r *chain.Reading) { r.Time = 0 })}
	vSubject = violation{code: chain.ErrBadSubject,
		pre: editReading(0, func(r *chain.Reading) { r.Subject = "two words" })}
	vBPM = violation{code: chain.ErrBadBPM,
		pre: editReading(0, func(r *chain.Reading) { r.BPM = chain.MaxBPM + 1 })}
	vKey = violation{code: chain.ErrBadKey,
		pre: editReading(0, func(r *chain.Reading) { r.Author = smallOrderKeys[6] })}
	// A second reading whose author is of small order: the key of every
	// reading is checked before any signature.
	vKey1 = violation{code: chain.ErrBadKey,
		pre: func(f *orderFixture, b *chain.Block) {
			r := f.fresh[3]
			r.Author = smallOrderKeys[6]
			b.Readings = append(b.Readings[:len(b.Readings):len(b.Readings)], r)
			resetRoot(b)
		}}
	vSignature = violation{code: chain.ErrBadSignature,
		pre: func(_ *orderFixture, b *chain.Block) {
			b.Readings = append([]chain.Reading(nil), b.Readings...)
			b.Readings[0].Sig[0] ^= 1
			resetRoot(b)
		}}
	vAncestry = violation{code: chain.ErrDuplicateReading,
		pre: func(f *orderFixture, b *chain.Block) {
			b.Readings = append(b.Readings[:len(b.Readings):len(b.Readings)], f.ra[3])
			resetRoot(b)
		}}
)

// TestRuleOrder checks the order of the rules in the package doc, one case
// per pair of rules that follow each other: a block that breaks only the
// second rule of the pair is refused with its code, and the same block
// breaking the first rule too is refused with the first rule's code.
func TestRuleOrder(t *testing.T) {
	f := newOrderFixture(t)
	for _, row := range []struct {
		name          string
		first, second violation
	}{
		{"2 known, 3 height 0", vKnown, vHeight0},
		{"3 height 0, 3 version", vHeight0, vVersion},
		{"3 version, 3 difficulty", vVersion, vDifficulty},
		{"3 difficulty, 3 count limit", vDifficulty, vCountLimit},
		{"3 count limit, 3 proof of work", vCountLimit, vPoW},
		{"3 proof of work, 4 unknown parent", vPoW, vParent},
		{"4 unknown parent, 5 height", vParent, vHeight},
		{"5 height, 5 time before parent", vHeight, vBeforeParent},
		{"5 time before parent, 5 time too new", vBeforeParent, vTooNewClock},
		{"5 time too new, 5 fork too deep", vTooNew, vTooDeep},
		{"5 fork too deep, 6 count", vTooDeep, vCount},
		{"6 count, 6 duplicate in block", vCount, vDupInBlock},
		{"6 duplicate in block, 6 root", vDupInBlock, vRoot},
		{"6 root, 6 reading time", vRoot, vReadingTime},
		{"6 reading time, 6 subject", vReadingTime, vSubject},
		{"6 subject, 6 bpm", vSubject, vBPM},
		{"6 bpm, 6 key", vBPM, vKey},
		{"6 key of reading 1, 8 signature of reading 0", vKey1, vSignature},
		{"6 bpm, 7 ancestry", vBPM, vAncestry},
		{"7 ancestry, 8 signature", vAncestry, vSignature},
	} {
		t.Run(row.name, func(t *testing.T) {
			for _, tc := range []struct {
				what string
				vs   []violation
				want chain.ErrorCode
			}{
				{"second alone", []violation{row.second}, row.second.code},
				{"first alone", []violation{row.first}, row.first.code},
				{"both", []violation{row.second, row.first}, row.first.code},
			} {
				b, now := f.build(t, tc.vs)
				before, lenBefore := f.c.TipHash(), f.c.Len()
				_, err := f.c.Process(b, now, 0)
				if chain.CodeOf(err) != tc.want {
					t.Fatalf("%s: %v, want %v", tc.what, err, tc.want)
				}
				checkCode(t, err, tc.want)
				if f.c.TipHash() != before || f.c.Len() != lenBefore {
					t.Fatalf("%s: a refused block changed the chain", tc.what)
				}
			}
		})
	}

	// Rule 1 comes before all: the encoding of a known block with a byte
	// added does not decode, so nothing else is asked.
	enc, err := f.a[5].MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	_, err = chain.DecodeBlock(append(enc, 0), f.p.MaxReadings)
	checkCode(t, err, chain.ErrMalformed)
}

// build makes a block on the tip a5 holding one fresh reading, with the
// violations' edits applied in order, solved unless one says not to.
func (f *orderFixture) build(t *testing.T, vs []violation) (*chain.Block, time.Time) {
	t.Helper()
	b := blockOn(f.a[5], f.p, f.fresh[:1], f.a[5].Header.Time+1000)
	now := f.now
	solveIt := true
	for _, v := range vs {
		if v.pre != nil {
			v.pre(f, b)
		}
		if v.clock != nil {
			now = v.clock(f)
		}
		solveIt = solveIt && !v.noSolve
	}
	if solveIt {
		solve(t, b)
	}
	for _, v := range vs {
		if v.post != nil {
			v.post(f, b)
		}
	}
	return b, now
}

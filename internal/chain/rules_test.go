package chain_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// ruleFixture is a block tree to test the rules against:
//
//	g ── a1 ── a2 ── a3     main chain (readings ra1, ra2, ra3)
//	 └── s1 ── s2           side branch (readings rs1, rs2), less work
//
// c is the chain under test; the builder chains have one branch each, so that
// (*Chain).NewBlock makes a block on any of the tips.
type ruleFixture struct {
	p                       chain.Params
	now                     time.Time
	c                       *chain.Chain
	g                       *chain.Block
	a1, a2, a3, s1, s2      *chain.Block
	ra1, ra2, ra3, rs1, rs2 chain.Reading
	fresh                   []chain.Reading // valid readings in no block
	onG, onS1, onS2, onA3   *chain.Chain
}

const ruleMaxReadings = 3

func newRuleFixture(t *testing.T, difficulty uint32) *ruleFixture {
	t.Helper()
	p := testParams(difficulty)
	p.MaxReadings = ruleMaxReadings
	f := &ruleFixture{p: p, now: at(p, time.Hour.Milliseconds())}
	min := time.Minute.Milliseconds()
	rd := func(i int) chain.Reading {
		return sign(testKey(i%3), fmt.Sprintf("patient-%d", i), uint16(60+i), p.GenesisTime+int64(i)*1000)
	}
	f.ra1, f.ra2, f.ra3, f.rs1, f.rs2 = rd(1), rd(2), rd(3), rd(4), rd(5)
	for i := 10; i < 20; i++ {
		f.fresh = append(f.fresh, rd(i))
	}
	f.c, f.onG = mustChain(t, p), mustChain(t, p)
	f.g = f.c.Tip()
	f.onA3, f.onS2, f.onS1 = mustChain(t, p), mustChain(t, p), mustChain(t, p)
	grow := func(b **chain.Block, on []*chain.Chain, r chain.Reading, ms int64) {
		*b = mine(t, on[0], []chain.Reading{r}, at(p, ms))
		for _, c := range on {
			mustAdd(t, c, *b, f.now)
		}
	}
	grow(&f.a1, []*chain.Chain{f.onA3, f.c}, f.ra1, 10*min)
	grow(&f.s1, []*chain.Chain{f.onS2, f.onS1, f.c}, f.rs1, 15*min)
	grow(&f.a2, []*chain.Chain{f.onA3, f.c}, f.ra2, 20*min)
	grow(&f.s2, []*chain.Chain{f.onS2, f.c}, f.rs2, 25*min)
	grow(&f.a3, []*chain.Chain{f.onA3, f.c}, f.ra3, 30*min)
	if f.c.TipHash() != f.a3.Hash() || f.c.Len() != 6 || f.c.IsMain(f.s2.Hash()) {
		t.Fatalf("fixture: tip %s at %d, %d blocks; want a3 at 3 with s1, s2 on a side branch",
			f.c.TipHash().Short(), f.c.Height(), f.c.Len())
	}
	return f
}

// breakPoW moves the nonce on until the header misses its target.
func breakPoW(b *chain.Block) {
	for leadingZeroBits(&b.Header) >= int(b.Header.Difficulty) {
		b.Header.Nonce++
	}
}

// resetRoot sets the header's count and readings root to the block's readings.
func resetRoot(b *chain.Block) {
	b.Header.Count = uint32(len(b.Readings))
	b.Header.Root = blockRoot(b.Readings)
}

// notPeerFault lists the codes the package doc says do not prove misbehaviour.
var notPeerFault = map[chain.ErrorCode]bool{
	chain.ErrUnknownParent: true, chain.ErrDuplicateBlock: true, chain.ErrTimeTooNew: true,
	chain.ErrPoolFull: true, chain.ErrKnownReading: true, chain.ErrForkTooDeep: true, chain.ErrTooManyForks: true,
	chain.ErrCheckpoint: true,
}

type ruleRow struct {
	name string
	// on is the builder whose tip the block extends (default onA3).
	on func(f *ruleFixture) *chain.Chain
	// reads are the readings passed to NewBlock (default: one fresh reading).
	reads func(f *ruleFixture) []chain.Reading
	// edit changes the block before it is solved; post after.
	edit, post func(f *ruleFixture, b *chain.Block)
	// block replaces the whole construction.
	block func(f *ruleFixture) *chain.Block
	want  chain.ErrorCode
	// sane: CheckBlock fails with want too (rules 3, 6 and 7). Otherwise
	// CheckBlock must accept the block: the rule needs the chain.
	sane bool
	// pow: the row is about proof of work and needs a difficulty above 0.
	pow bool
	// noCheck: the block is not meant for CheckBlock (a genesis, or a block
	// refused before CheckBlock runs, whatever else is wrong with it).
	noCheck bool
}

func ruleRows() []ruleRow {
	onS1 := func(f *ruleFixture) *chain.Chain { return f.onS1 }
	onS2 := func(f *ruleFixture) *chain.Chain { return f.onS2 }
	onG := func(f *ruleFixture) *chain.Chain { return f.onG }
	reads := func(pick func(f *ruleFixture) []chain.Reading) func(f *ruleFixture) []chain.Reading { return pick }
	one := func(mk func(f *ruleFixture) chain.Reading) func(f *ruleFixture) []chain.Reading {
		return func(f *ruleFixture) []chain.Reading { return []chain.Reading{mk(f)} }
	}
	// badReading signs a reading with the given fields correctly, so that
	// only the named rule is broken.
	badReading := func(subject string, bpm uint16, ms func(f *ruleFixture) int64) func(f *ruleFixture) []chain.Reading {
		return one(func(f *ruleFixture) chain.Reading { return sign(testKey(0), subject, bpm, ms(f)) })
	}
	early := func(f *ruleFixture) int64 { return f.p.GenesisTime + 1000 }
	tampered := func(change func(r *chain.Reading)) func(f *ruleFixture) []chain.Reading {
		return one(func(f *ruleFixture) chain.Reading { r := f.fresh[0]; change(&r); return r })
	}
	blockTime := func(ms func(f *ruleFixture) int64) func(f *ruleFixture, b *chain.Block) {
		return func(f *ruleFixture, b *chain.Block) { b.Header.Time = ms(f) }
	}
	drift := func(f *ruleFixture) int64 { return f.p.MaxFutureDrift.Milliseconds() }
	setCount := func(n func(b *chain.Block) int) func(f *ruleFixture, b *chain.Block) {
		return func(_ *ruleFixture, b *chain.Block) { b.Header.Count = uint32(n(b)) }
	}
	author := func(key [32]byte) func(f *ruleFixture) []chain.Reading {
		return tampered(func(r *chain.Reading) { r.Author = key })
	}
	return []ruleRow{
		// Accepted blocks, at the edges of the rules.
		{name: "valid block", want: 0},
		{name: "empty block", reads: reads(func(*ruleFixture) []chain.Reading { return nil })},
		{name: "max readings", reads: reads(func(f *ruleFixture) []chain.Reading { return f.fresh[:ruleMaxReadings] })},
		{name: "reading of a competing main block", on: onS2, reads: one(func(f *ruleFixture) chain.Reading { return f.ra1 })},
		{name: "reading of a competing side block", reads: one(func(f *ruleFixture) chain.Reading { return f.rs2 })},
		{name: "main reading above the fork point", on: onS1, reads: one(func(f *ruleFixture) chain.Reading { return f.ra2 })},
		{name: "reading at genesis time", reads: badReading("p", 70, func(f *ruleFixture) int64 { return f.p.GenesisTime })},
		{name: "reading at block time plus drift", reads: badReading("p", 70, func(f *ruleFixture) int64 { return f.a3.Header.Time + drift(f) }),
			edit: blockTime(func(f *ruleFixture) int64 { return f.a3.Header.Time })},
		{name: "bpm at minimum", reads: badReading("p", chain.MinBPM, early)},
		{name: "bpm at maximum", reads: badReading("p", chain.MaxBPM, early)},
		{name: "longest subject", reads: badReading(strings.Repeat("~", chain.MaxSubjectLen), 70, early)},
		{name: "time equal to parent", edit: blockTime(func(f *ruleFixture) int64 { return f.a3.Header.Time })},
		{name: "time at now plus drift", edit: blockTime(func(f *ruleFixture) int64 { return f.now.UnixMilli() + drift(f) })},
		{name: "block on side tip", on: onS2},

		// Rule 3: the header alone.
		{name: "version 1 (retired)", edit: func(_ *ruleFixture, b *chain.Block) { b.Header.Version = 1 }, want: chain.ErrBadVersion, sane: true},
		{name: "version 3", edit: func(_ *ruleFixture, b *chain.Block) { b.Header.Version = 3 }, want: chain.ErrBadVersion, sane: true},
		{name: "version 0", edit: func(_ *ruleFixture, b *chain.Block) { b.Header.Version = 0 }, want: chain.ErrBadVersion, sane: true},
		{name: "difficulty above network's", edit: func(_ *ruleFixture, b *chain.Block) { b.Header.Difficulty++ }, want: chain.ErrBadDifficulty, sane: true},
		{name: "difficulty below network's", pow: true, edit: func(_ *ruleFixture, b *chain.Block) { b.Header.Difficulty-- }, want: chain.ErrBadDifficulty, sane: true},
		{name: "too many readings", edit: func(f *ruleFixture, b *chain.Block) {
			b.Readings = f.fresh[:ruleMaxReadings+1]
			resetRoot(b)
		}, want: chain.ErrTooManyReadings, sane: true},
		{name: "header count above the limit", edit: setCount(func(*chain.Block) int { return ruleMaxReadings + 1 }), want: chain.ErrTooManyReadings, sane: true},
		{name: "header count 2^32-1", edit: setCount(func(*chain.Block) int { return 1<<32 - 1 }), want: chain.ErrTooManyReadings, sane: true},
		{name: "hash above target", pow: true, post: func(_ *ruleFixture, b *chain.Block) { breakPoW(b) }, want: chain.ErrBadPoW, sane: true},

		// Rule 6: the body against the header.
		{name: "header count one above", edit: setCount(func(b *chain.Block) int { return len(b.Readings) + 1 }), want: chain.ErrBadCount, sane: true},
		{name: "header count one below", edit: setCount(func(b *chain.Block) int { return len(b.Readings) - 1 }), want: chain.ErrBadCount, sane: true},
		{name: "reading dropped", reads: reads(func(f *ruleFixture) []chain.Reading { return f.fresh[:2] }),
			edit: func(_ *ruleFixture, b *chain.Block) { b.Readings = b.Readings[:1] }, want: chain.ErrBadCount, sane: true},
		{name: "empty block with a count", edit: func(_ *ruleFixture, b *chain.Block) { b.Readings = nil }, want: chain.ErrBadCount, sane: true},
		{name: "reading twice in block", reads: reads(func(f *ruleFixture) []chain.Reading { return []chain.Reading{f.fresh[0], f.fresh[1], f.fresh[0]} }),
			want: chain.ErrDuplicateReading, sane: true},
		{name: "root bit flipped", edit: func(_ *ruleFixture, b *chain.Block) { b.Header.Root[31] ^= 1 }, want: chain.ErrBadRoot, sane: true},
		{name: "readings reordered", reads: reads(func(f *ruleFixture) []chain.Reading { return f.fresh[:2] }),
			edit: func(_ *ruleFixture, b *chain.Block) { b.Readings[0], b.Readings[1] = b.Readings[1], b.Readings[0] }, want: chain.ErrBadRoot, sane: true},
		{name: "reading dropped, count fixed", reads: reads(func(f *ruleFixture) []chain.Reading { return f.fresh[:2] }),
			edit: func(_ *ruleFixture, b *chain.Block) { b.Readings = b.Readings[:1]; b.Header.Count = 1 }, want: chain.ErrBadRoot, sane: true},
		{name: "reading replaced", edit: func(f *ruleFixture, b *chain.Block) { b.Readings = []chain.Reading{f.fresh[1]} }, want: chain.ErrBadRoot, sane: true},
		{name: "empty block with a root", edit: func(_ *ruleFixture, b *chain.Block) { b.Readings = nil; b.Header.Count = 0 }, want: chain.ErrBadRoot, sane: true},
		{name: "signature byte changed under the header", edit: func(_ *ruleFixture, b *chain.Block) {
			b.Readings[0].Sig[17] ^= 0x04 // NewBlock copied the readings
		}, want: chain.ErrBadRoot, sane: true},
		{name: "reading before genesis", reads: badReading("p", 70, func(f *ruleFixture) int64 { return f.p.GenesisTime - 1 }), want: chain.ErrBadReadingTime, sane: true},
		{name: "reading after block plus drift", reads: badReading("p", 70, func(f *ruleFixture) int64 { return f.a3.Header.Time + drift(f) + 1 }),
			edit: blockTime(func(f *ruleFixture) int64 { return f.a3.Header.Time }), want: chain.ErrBadReadingTime, sane: true},
		{name: "empty subject", reads: badReading("", 70, early), want: chain.ErrBadSubject, sane: true},
		{name: "subject too long", reads: badReading(strings.Repeat("x", chain.MaxSubjectLen+1), 70, early), want: chain.ErrBadSubject, sane: true},
		{name: "subject with space", reads: badReading("jane doe", 70, early), want: chain.ErrBadSubject, sane: true},
		{name: "subject with control byte", reads: badReading("p\n", 70, early), want: chain.ErrBadSubject, sane: true},
		{name: "subject with DEL", reads: badReading("p\x7f", 70, early), want: chain.ErrBadSubject, sane: true},
		{name: "subject not ASCII", reads: badReading("zoë", 70, early), want: chain.ErrBadSubject, sane: true},
		{name: "bpm below minimum", reads: badReading("p", chain.MinBPM-1, early), want: chain.ErrBadBPM, sane: true},
		{name: "bpm above maximum", reads: badReading("p", chain.MaxBPM+1, early), want: chain.ErrBadBPM, sane: true},
		{name: "bpm zero", reads: badReading("p", 0, early), want: chain.ErrBadBPM, sane: true},
		{name: "bpm 65535", reads: badReading("p", 65535, early), want: chain.ErrBadBPM, sane: true},
		{name: "author key of small order", reads: author(smallOrderKeys[0]), want: chain.ErrBadKey, sane: true},
		{name: "author key of order 8", reads: author(smallOrderKeys[9]), want: chain.ErrBadKey, sane: true},
		{name: "author key not canonical", reads: author(nonCanonicalKey(2, false)), want: chain.ErrBadKey, sane: true},

		// Rule 8: signatures.
		{name: "signature bit flipped", reads: tampered(func(r *chain.Reading) { r.Sig[10] ^= 0x40 }), want: chain.ErrBadSignature, sane: true},
		{name: "signature zero", reads: tampered(func(r *chain.Reading) { r.Sig = [64]byte{} }), want: chain.ErrBadSignature, sane: true},
		{name: "bpm changed after signing", reads: tampered(func(r *chain.Reading) { r.BPM++ }), want: chain.ErrBadSignature, sane: true},
		{name: "time changed after signing", reads: tampered(func(r *chain.Reading) { r.Time++ }), want: chain.ErrBadSignature, sane: true},
		{name: "subject changed after signing", reads: tampered(func(r *chain.Reading) { r.Subject += "x" }), want: chain.ErrBadSignature, sane: true},
		{name: "author replaced", reads: tampered(func(r *chain.Reading) {
			copy(r.Author[:], testKey(7).Public().(ed25519.PublicKey))
		}), want: chain.ErrBadSignature, sane: true},

		// Rules 2, 4 and 5: they need the chain.
		{name: "unknown parent", edit: func(_ *ruleFixture, b *chain.Block) { b.Header.Parent = sha256.Sum256([]byte("nowhere")) }, want: chain.ErrUnknownParent},
		{name: "height skips one", edit: func(_ *ruleFixture, b *chain.Block) { b.Header.Height++ }, want: chain.ErrBadHeight},
		{name: "height of parent", edit: func(_ *ruleFixture, b *chain.Block) { b.Header.Height-- }, want: chain.ErrBadHeight},
		{name: "height huge", edit: func(_ *ruleFixture, b *chain.Block) { b.Header.Height = ^uint64(0) }, want: chain.ErrBadHeight},
		{name: "height 0 on genesis", on: onG, edit: func(_ *ruleFixture, b *chain.Block) { b.Header.Height = 0 }, want: chain.ErrBadGenesis},
		{name: "height 0 deep in the tree", edit: func(_ *ruleFixture, b *chain.Block) { b.Header.Height = 0 }, want: chain.ErrBadGenesis},
		{name: "another network's genesis", block: func(f *ruleFixture) *chain.Block {
			p := f.p
			p.Name = "other"
			return p.Genesis()
		}, want: chain.ErrBadGenesis, noCheck: true},
		{name: "time before parent", edit: blockTime(func(f *ruleFixture) int64 { return f.a3.Header.Time - 1 }), want: chain.ErrTimeBeforeParent},
		{name: "time before genesis", on: onG, reads: reads(func(*ruleFixture) []chain.Reading { return nil }),
			edit: blockTime(func(f *ruleFixture) int64 { return f.p.GenesisTime - 1 }), want: chain.ErrTimeBeforeParent},
		{name: "time past now plus drift", edit: blockTime(func(f *ruleFixture) int64 { return f.now.UnixMilli() + drift(f) + 1 }), want: chain.ErrTimeTooNew},
		{name: "time at the int64 limit", edit: blockTime(func(*ruleFixture) int64 { return math.MaxInt64 }), want: chain.ErrTimeTooNew},
		{name: "duplicate block", block: func(f *ruleFixture) *chain.Block { return f.a3 }, want: chain.ErrDuplicateBlock},
		{name: "duplicate side block", block: func(f *ruleFixture) *chain.Block { return f.s1 }, want: chain.ErrDuplicateBlock},
		{name: "genesis again", block: func(f *ruleFixture) *chain.Block { return f.g }, want: chain.ErrDuplicateBlock, noCheck: true},

		// Rule 7: readings of ancestors.
		{name: "reading of parent", reads: one(func(f *ruleFixture) chain.Reading { return f.ra3 }), want: chain.ErrDuplicateReading},
		{name: "reading of main ancestor", reads: one(func(f *ruleFixture) chain.Reading { return f.ra1 }), want: chain.ErrDuplicateReading},
		{name: "reading of side parent", on: onS2, reads: one(func(f *ruleFixture) chain.Reading { return f.rs2 }), want: chain.ErrDuplicateReading},
		{name: "reading of side ancestor", on: onS2, reads: one(func(f *ruleFixture) chain.Reading { return f.rs1 }), want: chain.ErrDuplicateReading},
		{name: "ancestor reading among fresh ones", reads: reads(func(f *ruleFixture) []chain.Reading {
			return []chain.Reading{f.fresh[0], f.fresh[1], f.ra2}
		}), want: chain.ErrDuplicateReading},
	}
}

// TestBlockRules runs every rule of CheckBlock and (*Chain).AddBlock, once
// without proof of work and once at difficulty 8 where the target is real.
func TestBlockRules(t *testing.T) {
	for _, difficulty := range []uint32{0, 8} {
		for _, row := range ruleRows() {
			t.Run(fmt.Sprintf("d%d/%s", difficulty, row.name), func(t *testing.T) {
				if row.pow && difficulty == 0 {
					t.Skip("needs proof of work")
				}
				f := newRuleFixture(t, difficulty)
				b := buildRuleBlock(t, f, row)

				if !row.noCheck {
					wantSane := chain.ErrorCode(0)
					if row.sane {
						wantSane = row.want
					}
					checkCode(t, chain.CheckBlock(b, f.p), wantSane)
				}

				before := f.c.Status()
				lenBefore := f.c.Len()
				u, err := f.c.AddBlock(b, f.now)
				checkCode(t, err, row.want)
				if row.want != 0 {
					if u != nil {
						t.Errorf("AddBlock returned an update with the error")
					}
					if got, want := chain.IsPeerFault(err), !notPeerFault[row.want]; got != want {
						t.Errorf("IsPeerFault(%v) = %v, want %v", err, got, want)
					}
					if f.c.Len() != lenBefore || f.c.TipHash() != before.Tip {
						t.Errorf("a refused block changed the chain")
					}
					return
				}
				// Accepted: the block is in the tree with the right update.
				hash := b.Hash()
				if u.Hash != hash || u.Height != b.Header.Height || !f.c.HasBlock(hash) || f.c.Len() != lenBefore+1 {
					t.Fatalf("update %+v, HasBlock %v, Len %d", u, f.c.HasBlock(hash), f.c.Len())
				}
				if difficulty > 0 && leadingZeroBits(&b.Header) < int(difficulty) {
					t.Fatalf("accepted a block with %d leading zero bits", leadingZeroBits(&b.Header))
				}
				// Work per block is equal, so the higher block wins, and at
				// equal height the lower hash.
				wantTip := b.Header.Height > before.Height || (b.Header.Height == before.Height && hashLess(hash, before.Tip))
				if u.TipChanged != wantTip || (f.c.TipHash() == hash) != wantTip {
					t.Fatalf("TipChanged %v, tip is block: %v; want %v", u.TipChanged, f.c.TipHash() == hash, wantTip)
				}
				if _, err := f.c.AddBlock(b, f.now); !errors.Is(err, chain.ErrDuplicateBlock) {
					t.Fatalf("second AddBlock: %v, want duplicate block", err)
				}
			})
		}
	}
}

func buildRuleBlock(t *testing.T, f *ruleFixture, row ruleRow) *chain.Block {
	t.Helper()
	if row.block != nil {
		return row.block(f)
	}
	on := f.onA3
	if row.on != nil {
		on = row.on(f)
	}
	reads := []chain.Reading{f.fresh[0]}
	if row.reads != nil {
		reads = row.reads(f)
	}
	b := on.NewBlock(reads, f.now.Add(-10*time.Minute))
	if row.edit != nil {
		row.edit(f, b)
	}
	solve(t, b)
	if row.post != nil {
		row.post(f, b)
	}
	return b
}

func TestCheckReading(t *testing.T) {
	p := testParams(0)
	now := at(p, 24*time.Hour.Milliseconds())
	nowMs, drift := now.UnixMilli(), p.MaxFutureDrift.Milliseconds()
	key := testKey(1)
	valid := sign(key, "patient-1", 72, nowMs-1000)
	tamper := func(change func(r *chain.Reading)) chain.Reading { r := valid; change(&r); return r }
	rows := []struct {
		name string
		r    chain.Reading
		want chain.ErrorCode
	}{
		{"valid", valid, 0},
		{"at genesis", sign(key, "p", 72, p.GenesisTime), 0},
		{"at now plus drift", sign(key, "p", 72, nowMs+drift), 0},
		{"bpm at minimum", sign(key, "p", chain.MinBPM, nowMs), 0},
		{"bpm at maximum", sign(key, "p", chain.MaxBPM, nowMs), 0},
		{"subject of every printable byte", sign(key, printable()[:chain.MaxSubjectLen], 72, nowMs), 0},
		{"subject rest of printable bytes", sign(key, printable()[chain.MaxSubjectLen:], 72, nowMs), 0},
		{"before genesis", sign(key, "p", 72, p.GenesisTime-1), chain.ErrBadReadingTime},
		{"negative time", sign(key, "p", 72, -1), chain.ErrBadReadingTime},
		{"past now plus drift", sign(key, "p", 72, nowMs+drift+1), chain.ErrBadReadingTime},
		{"empty subject", sign(key, "", 72, nowMs), chain.ErrBadSubject},
		{"subject too long", sign(key, strings.Repeat("a", chain.MaxSubjectLen+1), 72, nowMs), chain.ErrBadSubject},
		{"subject with space", sign(key, "a b", 72, nowMs), chain.ErrBadSubject},
		{"subject with NUL", sign(key, "a\x00", 72, nowMs), chain.ErrBadSubject},
		{"subject with high byte", sign(key, "a\xff", 72, nowMs), chain.ErrBadSubject},
		{"bpm below minimum", sign(key, "p", chain.MinBPM-1, nowMs), chain.ErrBadBPM},
		{"bpm above maximum", sign(key, "p", chain.MaxBPM+1, nowMs), chain.ErrBadBPM},
		{"signature flipped", tamper(func(r *chain.Reading) { r.Sig[63] ^= 0x80 }), chain.ErrBadSignature},
		{"author flipped", tamper(func(r *chain.Reading) { r.Author[0] ^= 1 }), chain.ErrBadSignature},
		{"author of small order", tamper(func(r *chain.Reading) { r.Author = smallOrderKeys[4] }), chain.ErrBadKey},
		{"author not canonical", tamper(func(r *chain.Reading) { r.Author = nonCanonicalKey(0, true) }), chain.ErrBadKey},
		{"bpm changed", tamper(func(r *chain.Reading) { r.BPM = 73 }), chain.ErrBadSignature},
		{"subject changed", tamper(func(r *chain.Reading) { r.Subject = "patient-2" }), chain.ErrBadSignature},
		{"time changed", tamper(func(r *chain.Reading) { r.Time-- }), chain.ErrBadSignature},
		{"signed without the domain", func() chain.Reading {
			r := valid
			copy(r.Sig[:], ed25519.Sign(key, readingContent(&r)))
			return r
		}(), chain.ErrBadSignature},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			err := chain.CheckReading(&row.r, p, nowMs, nil)
			checkCode(t, err, row.want)
			if row.want != 0 && !chain.IsPeerFault(err) {
				t.Errorf("IsPeerFault(%v) = false", err)
			}
			// Check alone ignores the time but applies every other rule.
			wantCheck := row.want
			if wantCheck == chain.ErrBadReadingTime {
				wantCheck = 0
			}
			checkCode(t, row.r.Check(), wantCheck)
		})
	}
}

// printable returns every byte a subject may hold: '!' to '~'.
func printable() string {
	var s []byte
	for c := byte('!'); c <= '~'; c++ {
		s = append(s, c)
	}
	return string(s)
}

func TestNewReading(t *testing.T) {
	key := testKey(2)
	when := time.UnixMilli(1_800_000_000_123)
	r, err := chain.NewReading(key, "patient-7", 88, when)
	if err != nil {
		t.Fatal(err)
	}
	// Ed25519 signatures are deterministic: NewReading must sign exactly the
	// documented content under the documented domain.
	if want := sign(key, "patient-7", 88, when.UnixMilli()); r != want {
		t.Fatalf("NewReading = %+v\nwant          %+v", r, want)
	}
	if r.ID() != readingID(&r) {
		t.Fatalf("ID %s, want SHA-256 of the content %s", r.ID(), readingID(&r))
	}
	// The id does not depend on the signature.
	r2 := r
	r2.Sig[0] ^= 1
	if r2.ID() != r.ID() {
		t.Fatal("id depends on the signature")
	}
	for _, row := range []struct {
		name    string
		key     ed25519.PrivateKey
		subject string
		bpm     int
		want    chain.ErrorCode // 0: a non-rule error
	}{
		{"empty subject", key, "", 70, chain.ErrBadSubject},
		{"subject with space", key, "a b", 70, chain.ErrBadSubject},
		{"bpm low", key, "p", chain.MinBPM - 1, chain.ErrBadBPM},
		{"bpm high", key, "p", chain.MaxBPM + 1, chain.ErrBadBPM},
		{"bpm overflowing uint16", key, "p", 65536 + 70, chain.ErrBadBPM},
		{"negative bpm", key, "p", -70, chain.ErrBadBPM},
		{"short key", key[:32], "p", 70, 0},
		{"nil key", nil, "p", 70, 0},
	} {
		t.Run(row.name, func(t *testing.T) {
			_, err := chain.NewReading(row.key, row.subject, row.bpm, when)
			if row.want == 0 {
				if err == nil || chain.CodeOf(err) != 0 {
					t.Fatalf("err = %v, want a non-rule error", err)
				}
				return
			}
			checkCode(t, err, row.want)
		})
	}
}

func TestGenesis(t *testing.T) {
	p := chain.DefaultParams()
	g1, g2 := p.Genesis(), p.Genesis()
	if g1.Hash() != g2.Hash() {
		t.Fatal("genesis differs between two calls")
	}
	c1, c2 := mustChain(t, p), mustChain(t, p)
	if c1.Genesis() != g1.Hash() || c2.Genesis() != g1.Hash() || c1.TipHash() != g1.Hash() {
		t.Fatal("chains of the same parameters do not share the genesis")
	}
	if c1.Height() != 0 || c1.Len() != 1 || !c1.IsMain(g1.Hash()) {
		t.Fatalf("new chain: height %d, %d blocks", c1.Height(), c1.Len())
	}
	if st := c1.Status(); st.Genesis != g1.Hash() || st.Tip != g1.Hash() || st.Height != 0 ||
		st.Work.Cmp(new(big.Int).Lsh(big.NewInt(1), uint(p.Difficulty))) != 0 {
		t.Fatalf("status %+v", st)
	}

	// The genesis header, derived by hand from the documented layout.
	// parent = SHA-256("p2pchain/genesis/v2" || u32 max readings ||
	// u64 max future drift in ms || u32 max reorganisation depth ||
	// u64 final age in ms || name), integers big-endian.
	rules := binary.BigEndian.AppendUint32(nil, uint32(p.MaxReadings))
	rules = binary.BigEndian.AppendUint64(rules, uint64(p.MaxFutureDrift.Milliseconds()))
	rules = binary.BigEndian.AppendUint32(rules, p.MaxReorgDepth)
	rules = binary.BigEndian.AppendUint64(rules, uint64(p.FinalAge.Milliseconds()))
	parent := sha256.Sum256(append(append([]byte("p2pchain/genesis/v2"), rules...), p.Name...))
	want := chain.Header{Version: 2, Height: 0, Parent: parent, Time: p.GenesisTime,
		Root: sha256.Sum256(nil), Count: 0, Difficulty: p.Difficulty}
	if g1.Header != want || len(g1.Readings) != 0 {
		t.Fatalf("genesis header %+v\nwant %+v", g1.Header, want)
	}
	if g1.Hash() != sha256.Sum256(headerBytes(&want)) {
		t.Fatal("genesis hash is not SHA-256 of its documented encoding")
	}
	if p.GenesisTime != time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli() {
		t.Fatalf("default genesis time moved: %d", p.GenesisTime)
	}

	// Any parameter that goes into the genesis changes it.
	for name, change := range map[string]func(p *chain.Params){
		"name":         func(p *chain.Params) { p.Name += "x" },
		"difficulty":   func(p *chain.Params) { p.Difficulty-- },
		"time":         func(p *chain.Params) { p.GenesisTime++ },
		"test params":  func(p *chain.Params) { *p = chain.TestParams(p.Name) },
		"max readings": func(p *chain.Params) { p.MaxReadings-- },
		"drift":        func(p *chain.Params) { p.MaxFutureDrift += time.Millisecond },
		"reorg depth":  func(p *chain.Params) { p.MaxReorgDepth++ },
		"final age":    func(p *chain.Params) { p.FinalAge += time.Millisecond },
	} {
		q := p
		change(&q)
		if q.Genesis().Hash() == g1.Hash() {
			t.Errorf("changing the %s keeps the genesis", name)
		}
	}

	// A block of another network has an unknown parent here.
	other := chain.TestParams("other")
	oc := mustChain(t, other)
	ob := mine(t, oc, nil, at(other, 1000))
	_, err := mustChain(t, chain.TestParams("mine")).AddBlock(ob, at(other, 2000))
	checkCode(t, err, chain.ErrUnknownParent)
}

func TestParamsValidate(t *testing.T) {
	for _, row := range []struct {
		name   string
		change func(p *chain.Params)
		ok     bool
	}{
		{"default", func(*chain.Params) {}, true},
		{"test", func(p *chain.Params) { *p = chain.TestParams("t") }, true},
		{"longest name", func(p *chain.Params) { p.Name = strings.Repeat("n", 64) }, true},
		{"max difficulty", func(p *chain.Params) { p.Difficulty = chain.MaxDifficulty }, true},
		{"one reading", func(p *chain.Params) { p.MaxReadings = 1 }, true},
		{"readings limit", func(p *chain.Params) { p.MaxReadings = chain.MaxReadingsLimit }, true},
		{"no drift", func(p *chain.Params) { p.MaxFutureDrift = 0 }, true},
		{"reorg depth 1", func(p *chain.Params) { p.MaxReorgDepth = 1 }, true},
		{"reorg depth limit", func(p *chain.Params) { p.MaxReorgDepth = chain.MaxDepthLimit }, true},
		{"reorg depth 0", func(p *chain.Params) { p.MaxReorgDepth = 0 }, false},
		{"no final age", func(p *chain.Params) { p.FinalAge = 0 }, true},
		{"final age a day", func(p *chain.Params) { p.FinalAge = 24 * time.Hour }, true},
		{"final age over a day", func(p *chain.Params) { p.FinalAge = 24*time.Hour + 1 }, false},
		{"negative final age", func(p *chain.Params) { p.FinalAge = -1 }, false},
		{"reorg depth above limit", func(p *chain.Params) { p.MaxReorgDepth = chain.MaxDepthLimit + 1 }, false},
		{"empty name", func(p *chain.Params) { p.Name = "" }, false},
		{"name too long", func(p *chain.Params) { p.Name = strings.Repeat("n", 65) }, false},
		{"difficulty too high", func(p *chain.Params) { p.Difficulty = chain.MaxDifficulty + 1 }, false},
		{"no readings", func(p *chain.Params) { p.MaxReadings = 0 }, false},
		{"too many readings", func(p *chain.Params) { p.MaxReadings = chain.MaxReadingsLimit + 1 }, false},
		{"negative drift", func(p *chain.Params) { p.MaxFutureDrift = -1 }, false},
	} {
		p := chain.DefaultParams()
		row.change(&p)
		_, errNew := chain.New(p)
		if errV := p.Validate(); (errV == nil) != row.ok || (errNew == nil) != row.ok {
			t.Errorf("%s: Validate %v, New %v; want ok=%v", row.name, errV, errNew, row.ok)
		}
	}
	p := chain.DefaultParams()
	if p.MaxReorgDepth != 6 || chain.DefaultMaxReorgDepth != 6 {
		t.Errorf("default max reorganisation depth %d, want 6", p.MaxReorgDepth)
	}
	if got, want := p.MaxBlockSize(), 100+4+p.MaxReadings*(1+64+2+8+32+64); got != want {
		t.Errorf("MaxBlockSize = %d, want %d", got, want)
	}
}

func TestErrorCodes(t *testing.T) {
	names := map[string]bool{}
	for c := chain.ErrMalformed; c <= chain.ErrBadSeal; c++ {
		s := c.String()
		if s == "" || strings.HasPrefix(s, "ErrorCode(") || names[s] {
			t.Errorf("code %d has name %q (empty, missing or repeated)", int(c), s)
		}
		names[s] = true
		if c.Error() != s {
			t.Errorf("%d: Error %q, String %q", int(c), c.Error(), s)
		}
		err := error(&chain.RuleError{Code: c, Detail: "why"})
		if err.Error() != s+": why" {
			t.Errorf("RuleError text %q", err.Error())
		}
		if (&chain.RuleError{Code: c}).Error() != s {
			t.Errorf("RuleError without detail: %q", (&chain.RuleError{Code: c}).Error())
		}
		if got, want := chain.IsPeerFault(err), !notPeerFault[c]; got != want {
			t.Errorf("IsPeerFault(%v) = %v, want %v", c, got, want)
		}
		if got := chain.IsPeerFault(fmt.Errorf("handling block: %w", err)); got != !notPeerFault[c] {
			t.Errorf("IsPeerFault lost through wrapping for %v", c)
		}
		// Other codes do not match.
		if c != chain.ErrBadPoW && errors.Is(err, chain.ErrBadPoW) {
			t.Errorf("%v matches ErrBadPoW", c)
		}
	}
	if s := chain.ErrorCode(99).String(); s != "ErrorCode(99)" {
		t.Errorf("unknown code: %q", s)
	}
	if next := chain.ErrBadSeal + 1; next.String() != fmt.Sprintf("ErrorCode(%d)", int(next)) {
		t.Error("a code after ErrBadSeal has a name: extend the loop above")
	}
	if len(notPeerFault) != 8 {
		t.Fatal("notPeerFault table edited without the tests")
	}
	for _, err := range []error{nil, errors.New("disk full"), context.Canceled} {
		if chain.IsPeerFault(err) || chain.CodeOf(err) != 0 {
			t.Errorf("%v: classified as a rule error", err)
		}
	}
}

func TestSolve(t *testing.T) {
	p := testParams(0)
	for d := uint32(0); d <= 12; d += 4 {
		h := p.Genesis().Header
		h.Height, h.Difficulty, h.Nonce = 1, d, 1000
		if err := chain.Solve(context.Background(), &h); err != nil {
			t.Fatal(err)
		}
		if h.Nonce < 1000 {
			t.Errorf("d%d: nonce %d is below the start", d, h.Nonce)
		}
		if leadingZeroBits(&h) < int(d) || !chain.MeetsTarget(h.Hash(), d) {
			t.Errorf("d%d: solved header has %d leading zero bits", d, leadingZeroBits(&h))
		}
		// Solve returns the first nonce that works.
		for n := uint64(1000); n < h.Nonce; n++ {
			g := h
			g.Nonce = n
			if leadingZeroBits(&g) >= int(d) {
				t.Fatalf("d%d: nonce %d works and is before %d", d, n, h.Nonce)
			}
		}
	}
	// A cancelled search stops and leaves the nonce where to resume.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h := p.Genesis().Header
	h.Difficulty = chain.MaxDifficulty
	if err := chain.Solve(ctx, &h); !errors.Is(err, context.Canceled) {
		t.Fatalf("Solve with a cancelled context: %v", err)
	}
	if h.Nonce == 0 {
		t.Fatal("cancelled Solve did not move the nonce on")
	}
}

func TestLeadingZerosAndWork(t *testing.T) {
	for _, row := range []struct {
		at   int
		b    byte
		want int
	}{
		{0, 0x80, 0}, {0, 0x01, 7}, {1, 0xff, 8}, {7, 0x01, 63}, {8, 0x80, 64},
		{8, 0x40, 65}, {16, 0x01, 135}, {31, 0x01, 255}, {-1, 0, 256},
	} {
		var h chain.Hash
		if row.at >= 0 {
			h[row.at] = row.b
			h[31] |= 1 // lower bits do not count
			if row.at == 31 {
				h[31] = row.b
			}
		}
		if got := chain.LeadingZeros(h); got != row.want {
			t.Errorf("LeadingZeros(%s) = %d, want %d", h, got, row.want)
		}
		if !chain.MeetsTarget(h, uint32(row.want)) || (row.want < 256 && chain.MeetsTarget(h, uint32(row.want+1))) {
			t.Errorf("MeetsTarget wrong at %d bits", row.want)
		}
	}
	for d, want := range map[uint32]string{0: "1", 1: "2", 8: "256", 18: "262144", 64: "18446744073709551616"} {
		if got := chain.BlockWork(d).String(); got != want {
			t.Errorf("BlockWork(%d) = %s, want %s", d, got, want)
		}
	}
}

func TestStatusBetter(t *testing.T) {
	lo, hi := chain.Hash{0x01}, chain.Hash{0x02}
	w := func(n int64) *big.Int { return big.NewInt(n) }
	for _, row := range []struct {
		a, b chain.Status
		want bool
	}{
		{chain.Status{Tip: hi, Work: w(5)}, chain.Status{Tip: lo, Work: w(4)}, true},
		{chain.Status{Tip: lo, Work: w(4)}, chain.Status{Tip: hi, Work: w(5)}, false},
		{chain.Status{Tip: lo, Work: w(4)}, chain.Status{Tip: hi, Work: w(4)}, true},
		{chain.Status{Tip: hi, Work: w(4)}, chain.Status{Tip: lo, Work: w(4)}, false},
		{chain.Status{Tip: lo, Work: w(4)}, chain.Status{Tip: lo, Work: w(4)}, false},
	} {
		if got := row.a.Better(row.b); got != row.want {
			t.Errorf("%v/%s better than %v/%s: %v", row.a.Work, row.a.Tip.Short(), row.b.Work, row.b.Tip.Short(), got)
		}
	}
}

func TestHashText(t *testing.T) {
	h := sha256.Sum256([]byte("x"))
	var hh chain.Hash = h
	s := hh.String()
	if len(s) != 64 || s != fmt.Sprintf("%x", h[:]) || hh.Short() != s[:10] {
		t.Fatalf("String %q Short %q", s, hh.Short())
	}
	back, err := chain.ParseHash(s)
	if err != nil || back != hh {
		t.Fatalf("ParseHash: %v %v", back, err)
	}
	text, _ := hh.MarshalText()
	var u chain.Hash
	if err := u.UnmarshalText(text); err != nil || u != hh {
		t.Fatalf("UnmarshalText: %v", err)
	}
	for _, bad := range []string{"", s[:63], s + "0", "zz" + s[2:]} {
		if _, err := chain.ParseHash(bad); err == nil {
			t.Errorf("ParseHash(%q) accepted", bad)
		}
		if err := u.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) accepted", bad)
		}
	}
	if !(chain.Hash{}).IsZero() || hh.IsZero() {
		t.Error("IsZero")
	}
	if !(chain.Hash{0, 1}).Less(chain.Hash{1}) || (chain.Hash{1}).Less(chain.Hash{0, 1}) || hh.Less(hh) {
		t.Error("Less is not big-endian order")
	}
}

// TestSubjectErrorNamesTheCharacter: a refused subject's error names the
// character as the client typed it, or the byte when it is not UTF-8.
func TestSubjectErrorNamesTheCharacter(t *testing.T) {
	for _, tc := range []struct{ subject, want string }{
		{"al ice", `character ' ' at byte 2`},
		{"alé", `character 'é' at byte 2`},
		{"a\x00", `character '\x00' at byte 1`},
		{"a\xff", `byte 0xff (not UTF-8) at byte 1`},
		{"ab\xc3", `byte 0xc3 (not UTF-8) at byte 2`},
	} {
		err := chain.CheckSubject(tc.subject)
		if !errors.Is(err, chain.ErrBadSubject) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("subject %q: %v, want %s", tc.subject, err, tc.want)
		}
	}
}

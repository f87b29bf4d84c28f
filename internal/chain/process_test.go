package chain_test

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// TestSignatureInRoot: the readings root commits to every signature byte,
// so the header (and the block hash) of a block admits one body only. A
// body with any signature byte altered, under the same header, is refused
// with ErrBadRoot before any signature is verified, by AddBlock and by
// Restore alike.
func TestSignatureInRoot(t *testing.T) {
	p := testParams(0)
	rs := poolReadings(3)
	now := at(p, 60_000)
	c := mustChain(t, p)
	b := mine(t, c, rs, now)
	for i := range b.Readings {
		for k := range 64 {
			alt := *b
			alt.Readings = append([]chain.Reading(nil), b.Readings...)
			alt.Readings[i].Sig[k] ^= 1 << (k % 8)
			if alt.Hash() != b.Hash() {
				t.Fatal("the header changed")
			}
			if alt.ReadingsRoot() == b.Header.Root || blockRoot(alt.Readings) == b.Header.Root {
				t.Fatalf("reading %d, signature byte %d: the root does not change", i, k)
			}
			checkCode(t, chain.CheckBlock(&alt, p), chain.ErrBadRoot)
			_, err := c.AddBlock(&alt, now)
			checkCode(t, err, chain.ErrBadRoot)
			_, err = c.Restore(&alt, now)
			checkCode(t, err, chain.ErrBadRoot)
		}
	}
	if c.Len() != 1 {
		t.Fatal("a refused body was stored")
	}
	mustAdd(t, c, b, now)
}

// TestRestoreChecks: Restore trusts the node's own store for what is costly
// (signatures) and what depends on the clock (the future-time rule), but
// checks the rest: a stored block with a forged proof of work, another
// difficulty or a body that does not match its header is refused.
func TestRestoreChecks(t *testing.T) {
	p := testParams(0)
	rs := poolReadings(3)
	now := at(p, 60_000)

	// Proof of work and difficulty: a network of difficulty 64, where no
	// block is ever solved, and one of difficulty 0.
	hard := testParams(chain.MaxDifficulty)
	unsolved := blockOn(hard.Genesis(), hard, rs[:1], hard.GenesisTime+1000)
	_, err := mustChain(t, hard).Restore(unsolved, now)
	checkCode(t, err, chain.ErrBadPoW)
	claims := blockOn(p.Genesis(), p, rs[:1], p.GenesisTime+1000)
	claims.Header.Difficulty = chain.MaxDifficulty
	_, err = mustChain(t, p).Restore(claims, now)
	checkCode(t, err, chain.ErrBadDifficulty)

	// The body: a reading replaced by another, validly signed one, or a
	// signature altered. The header is unchanged in both.
	good := mine(t, mustChain(t, p), rs[:2], now)
	for name, change := range map[string]func(b *chain.Block){
		"reading replaced":    func(b *chain.Block) { b.Readings[1] = rs[2] },
		"signature altered":   func(b *chain.Block) { b.Readings[0].Sig[40] ^= 0x20 },
		"readings reordered":  func(b *chain.Block) { b.Readings[0], b.Readings[1] = b.Readings[1], b.Readings[0] },
		"signature of a peer": func(b *chain.Block) { b.Readings[0].Sig = b.Readings[1].Sig },
	} {
		alt := *good
		alt.Readings = append([]chain.Reading(nil), good.Readings...)
		change(&alt)
		_, err := mustChain(t, p).Restore(&alt, now)
		if chain.CodeOf(err) != chain.ErrBadRoot {
			t.Errorf("%s: Restore gave %v, want %v", name, err, chain.ErrBadRoot)
		}
	}

	// Other rules of the body and the tree still hold.
	count := blockOn(p.Genesis(), p, rs[:2], p.GenesisTime+1000)
	count.Header.Count = 1
	_, err = mustChain(t, p).Restore(count, now)
	checkCode(t, err, chain.ErrBadCount)
	badKey := rs[0]
	badKey.Author = smallOrderKeys[0]
	_, err = mustChain(t, p).Restore(blockOn(p.Genesis(), p, []chain.Reading{badKey}, p.GenesisTime+1000), now)
	checkCode(t, err, chain.ErrBadKey)
	_, err = mustChain(t, p).Restore(blockOn(good, p, nil, good.Header.Time), now)
	checkCode(t, err, chain.ErrUnknownParent)

	// What Restore does not check: a signature (the root over it matches)
	// and the block time against a clock.
	forged := rs[0]
	forged.BPM++ // the signature no longer verifies
	unsigned := blockOn(p.Genesis(), p, []chain.Reading{forged}, p.GenesisTime+1000)
	_, err = mustChain(t, p).AddBlock(unsigned, now)
	checkCode(t, err, chain.ErrBadSignature)
	if _, err := mustChain(t, p).Restore(unsigned, now); err != nil {
		t.Fatalf("Restore verified a signature: %v", err)
	}
	future := blockOn(p.Genesis(), p, nil, time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli())
	_, err = mustChain(t, p).AddBlock(future, now)
	checkCode(t, err, chain.ErrTimeTooNew)
	if _, err := mustChain(t, p).Restore(future, now); err != nil {
		t.Fatalf("Restore applied the future-time rule: %v", err)
	}
}

// TestTimeNearLimit: times come from peers and cannot wrap around. A block
// time at or near the int64 limit is too new, whatever else is wrong with
// the block; checked without a clock, a reading time up to the limit is in
// range of such a block.
func TestTimeNearLimit(t *testing.T) {
	p := testParams(0)
	now := at(p, 60_000)
	drift := p.MaxFutureDrift.Milliseconds()
	r := poolReadings(1)[0]
	for _, ms := range []int64{
		math.MaxInt64, math.MaxInt64 - 1, math.MaxInt64 - drift, math.MaxInt64 - drift + 1,
		math.MaxInt64 / 2, now.UnixMilli() + drift + 1,
	} {
		c := mustChain(t, p)
		g := c.Tip()
		b := blockOn(g, p, []chain.Reading{r}, ms)
		_, err := c.AddBlock(b, now)
		checkCode(t, err, chain.ErrTimeTooNew)
		// Also when the body is wrong: rule 5 comes first.
		late := r
		late.Time = math.MaxInt64
		bad := blockOn(g, p, []chain.Reading{late, late}, ms)
		_, err = c.AddBlock(bad, now)
		checkCode(t, err, chain.ErrTimeTooNew)
		// Without a clock the body alone is judged: the reading's latest
		// time saturates at the limit rather than wrapping below genesis.
		checkCode(t, chain.CheckBlock(b, p), 0)
		checkCode(t, chain.CheckBlock(blockOn(g, p, []chain.Reading{sign(testKey(2), "p", 70, math.MaxInt64)}, ms), p),
			map[bool]chain.ErrorCode{true: 0, false: chain.ErrBadReadingTime}[ms >= math.MaxInt64-drift])
	}
	// A clock at the limit: nothing wraps either.
	checkCode(t, chain.CheckReading(&r, p, math.MaxInt64, nil), 0)
	checkCode(t, chain.CheckReading(&r, p, math.MaxInt64-1, nil), 0)
	huge := sign(testKey(3), "p", 70, math.MaxInt64)
	checkCode(t, chain.CheckReading(&huge, p, math.MaxInt64-drift, nil), 0)
	checkCode(t, chain.CheckReading(&huge, p, math.MaxInt64-drift-1, nil), chain.ErrBadReadingTime)
	checkCode(t, chain.CheckReading(&huge, p, now.UnixMilli(), nil), chain.ErrBadReadingTime)
}

// TestSigCache: with a SigCache, each signature is verified once. A second
// block with the same readings (a sibling) verifies none, and an entry in
// the cache is trusted: the cache is consulted, keyed by the reading id and
// the exact signature.
func TestSigCache(t *testing.T) {
	p := testParams(0)
	rs := poolReadings(3)
	now := at(p, 60_000)
	cache := chain.NewSigCache(100)
	c := mustChain(t, p)
	c.SetSigCache(cache)
	g := c.Tip()
	a1 := blockOn(g, p, rs, p.GenesisTime+1000)
	mustAdd(t, c, a1, now)
	if cache.Len() != 3 || cache.Added() != 3 {
		t.Fatalf("after a block of 3 readings: %d cached, %d added", cache.Len(), cache.Added())
	}
	b1 := blockOn(g, p, rs, p.GenesisTime+1000)
	b1.Header.Nonce = 1
	mustAdd(t, c, b1, now.Add(time.Hour))
	if cache.Len() != 3 || cache.Added() != 3 {
		t.Fatalf("a sibling with the same readings verified %d signatures again", cache.Added()-3)
	}
	// CheckReading fills the cache too: the block that carries the reading
	// then verifies nothing.
	fresh := poolReadings(4)[3]
	checkCode(t, chain.CheckReading(&fresh, p, now.UnixMilli(), cache), 0)
	if cache.Added() != 4 {
		t.Fatalf("CheckReading added %d signatures", cache.Added()-3)
	}
	mustAdd(t, c, blockOn(a1, p, []chain.Reading{fresh}, a1.Header.Time), now)
	if cache.Added() != 4 {
		t.Fatal("a reading checked before was verified again in its block")
	}

	// An entry is trusted: a reading whose signature does not verify passes
	// once the cache holds it. (Only what verified is ever added.)
	bad := poolReadings(5)[4]
	bad.Sig[3] ^= 1
	block := func() *chain.Block { return blockOn(g, p, []chain.Reading{bad}, p.GenesisTime+2000) }
	_, err := mustChain(t, p).AddBlock(block(), now)
	checkCode(t, err, chain.ErrBadSignature)
	trusting := mustChain(t, p)
	trusting.SetSigCache(cache)
	cache.Add(readingID(&bad), &bad.Sig)
	if _, err := trusting.AddBlock(block(), now); err != nil {
		t.Fatalf("the cache was not consulted: %v", err)
	}
	checkCode(t, chain.CheckReading(&bad, p, now.UnixMilli(), cache), 0)
	// The key is the exact signature: another signature of the same
	// reading is verified.
	other := bad
	other.Sig[3] ^= 2
	checkCode(t, chain.CheckReading(&other, p, now.UnixMilli(), cache), chain.ErrBadSignature)
	checkCode(t, chain.CheckSignatures(blockOn(g, p, []chain.Reading{other}, p.GenesisTime), []chain.Hash{readingID(&other)}, cache), chain.ErrBadSignature)
}

func TestSigCacheLimits(t *testing.T) {
	rs := poolReadings(4)
	add := func(c *chain.SigCache, i int) { c.Add(readingID(&rs[i]), &rs[i].Sig) }
	has := func(c *chain.SigCache, i int) bool { return c.Has(readingID(&rs[i]), &rs[i].Sig) }

	c := chain.NewSigCache(2)
	add(c, 0)
	add(c, 1)
	add(c, 1) // known: no eviction
	if !has(c, 0) || !has(c, 1) || c.Len() != 2 {
		t.Fatal("a repeated Add evicted an entry")
	}
	add(c, 2) // evicts the oldest, 0
	if has(c, 0) || !has(c, 1) || !has(c, 2) || c.Len() != 2 {
		t.Fatal("the oldest entry was not the one forgotten")
	}
	add(c, 3) // evicts 1
	if has(c, 1) || !has(c, 2) || !has(c, 3) || c.Len() != 2 || c.Added() != 4 {
		t.Fatalf("second eviction: len %d, added %d", c.Len(), c.Added())
	}
	// A nil cache and caches of no size remember nothing.
	for _, c := range []*chain.SigCache{nil, chain.NewSigCache(0), chain.NewSigCache(-1)} {
		add(c, 0)
		if has(c, 0) || c.Len() != 0 {
			t.Fatal("an empty cache remembered")
		}
	}
	// Safe for concurrent use (run with -race).
	shared := chain.NewSigCache(3)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				add(shared, (w+i)%4)
				has(shared, i%4)
				shared.Len()
			}
		}()
	}
	wg.Wait()
	if shared.Len() != 3 {
		t.Fatalf("%d entries in a cache of 3", shared.Len())
	}
}

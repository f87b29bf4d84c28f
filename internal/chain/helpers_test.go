package chain_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// Shared fixtures and helpers of the chain tests. The helpers that encode or
// sign follow the layouts documented in the package (header.go, reading.go)
// and are written from that documentation, not by calling the code under
// test, so that a change of the wire format makes the tests fail.

// testKey returns a deterministic Ed25519 key numbered i.
func testKey(i int) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	binary.BigEndian.PutUint64(seed, uint64(i)+1)
	copy(seed[8:], "p2pchain test key")
	return ed25519.NewKeyFromSeed(seed)
}

// testParams returns parameters for a network with the given difficulty.
func testParams(difficulty uint32) chain.Params {
	p := chain.TestParams("test")
	p.Difficulty = difficulty
	return p
}

// deepParams returns testParams(0) with a final depth large enough for tests
// that are about something else than finality and make long forks.
func deepParams() chain.Params {
	p := testParams(0)
	p.MaxReorgDepth = 1000
	return p
}

// at returns the time ms milliseconds after the genesis of p.
func at(p chain.Params, ms int64) time.Time { return time.UnixMilli(p.GenesisTime + ms) }

// readingContent is the signed content of a reading as documented: subject
// length (1 byte), subject, BPM (2 bytes), time (8 bytes), author key (32
// bytes), all integers big-endian.
func readingContent(r *chain.Reading) []byte {
	b := []byte{byte(len(r.Subject))}
	b = append(b, r.Subject...)
	b = binary.BigEndian.AppendUint16(b, r.BPM)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Time))
	return append(b, r.Author[:]...)
}

// sign returns a reading with any field values (valid or not) and a correct
// signature over them, made without NewReading so that rule violations other
// than a bad signature can be tested.
func sign(key ed25519.PrivateKey, subject string, bpm uint16, ms int64) chain.Reading {
	r := chain.Reading{Subject: subject, BPM: bpm, Time: ms}
	copy(r.Author[:], key.Public().(ed25519.PublicKey))
	msg := append([]byte("p2pchain/reading/v1"), readingContent(&r)...)
	copy(r.Sig[:], ed25519.Sign(key, msg))
	return r
}

// readingID is the documented reading id: SHA-256 of the signed content.
func readingID(r *chain.Reading) chain.Hash { return sha256.Sum256(readingContent(r)) }

// headerBytes is the documented 100-byte header encoding: version (4),
// height (8), parent (32), time (8), readings root (32), reading count (4),
// difficulty (4), nonce (8), all integers big-endian.
func headerBytes(h *chain.Header) []byte {
	b := binary.BigEndian.AppendUint32(nil, h.Version)
	b = binary.BigEndian.AppendUint64(b, h.Height)
	b = append(b, h.Parent[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(h.Time))
	b = append(b, h.Root[:]...)
	b = binary.BigEndian.AppendUint32(b, h.Count)
	b = binary.BigEndian.AppendUint32(b, h.Difficulty)
	return binary.BigEndian.AppendUint64(b, h.Nonce)
}

// leafHash is the documented Merkle leaf of the reading with id id and
// signature sig at position index of a block of size readings:
// SHA-256(0x00 || index (4, BE) || size (4, BE) || id || signature).
func leafHash(id chain.Hash, sig [64]byte, index, size int) chain.Hash {
	b := []byte{0}
	b = binary.BigEndian.AppendUint32(b, uint32(index))
	b = binary.BigEndian.AppendUint32(b, uint32(size))
	b = append(b, id[:]...)
	return sha256.Sum256(append(b, sig[:]...))
}

// readingLeaves returns the documented Merkle leaves of readings, in order.
func readingLeaves(rs []chain.Reading) []chain.Hash {
	out := make([]chain.Hash, len(rs))
	for i := range rs {
		out[i] = leafHash(readingID(&rs[i]), rs[i].Sig, i, len(rs))
	}
	return out
}

// blockRoot is the documented readings root of readings (refRoot over
// readingLeaves, merkle_test.go).
func blockRoot(rs []chain.Reading) chain.Hash { return refRoot(readingLeaves(rs)) }

// blockOn returns an unsolved block on parent holding readings, with the
// header fields set from the documentation rather than by NewBlock.
func blockOn(parent *chain.Block, p chain.Params, rs []chain.Reading, ms int64) *chain.Block {
	return &chain.Block{Readings: rs, Header: chain.Header{
		Version:    chain.HeaderVersion,
		Height:     parent.Header.Height + 1,
		Parent:     sha256.Sum256(headerBytes(&parent.Header)),
		Time:       ms,
		Root:       blockRoot(rs),
		Count:      uint32(len(rs)),
		Difficulty: p.Difficulty,
	}}
}

// leadingZeroBits counts the leading zero bits of SHA-256(headerBytes(h)).
func leadingZeroBits(h *chain.Header) int {
	sum := sha256.Sum256(headerBytes(h))
	n := 0
	for _, c := range sum {
		for bit := 7; bit >= 0; bit-- {
			if c>>bit&1 != 0 {
				return n
			}
			n++
		}
	}
	return n
}

// solve re-solves a block's header from nonce 0, after the test changed it.
func solve(t testing.TB, b *chain.Block) *chain.Block {
	t.Helper()
	b.Header.Nonce = 0
	if err := chain.Solve(context.Background(), &b.Header); err != nil {
		t.Fatalf("solve: %v", err)
	}
	return b
}

// mine makes a solved block holding readings on c's tip.
func mine(t testing.TB, c *chain.Chain, readings []chain.Reading, now time.Time) *chain.Block {
	t.Helper()
	return solve(t, c.NewBlock(readings, now))
}

// mustAdd adds b to c and fails the test on error.
func mustAdd(t testing.TB, c *chain.Chain, b *chain.Block, now time.Time) *chain.Update {
	t.Helper()
	u, err := c.AddBlock(b, now)
	if err != nil {
		t.Fatalf("AddBlock(height %d): %v", b.Header.Height, err)
	}
	return u
}

// mustChain returns a new chain of p.
func mustChain(t testing.TB, p chain.Params) *chain.Chain {
	t.Helper()
	c, err := chain.New(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkCode asserts that err is a rule error with code want (0: no error),
// through errors.Is, errors.As and CodeOf, and that it is still recognised
// when wrapped by a caller.
func checkCode(t testing.TB, err error, want chain.ErrorCode) {
	t.Helper()
	if want == 0 {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want %v", want)
	}
	for _, e := range []error{err, fmt.Errorf("caller: %w", err)} {
		if !errors.Is(e, want) {
			t.Fatalf("error %q: errors.Is(%v) is false", e, want)
		}
		var re *chain.RuleError
		if !errors.As(e, &re) {
			t.Fatalf("error %q (%T) is not a *RuleError", e, e)
		}
		if re.Code != want {
			t.Fatalf("RuleError.Code = %v, want %v", re.Code, want)
		}
		if got := chain.CodeOf(e); got != want {
			t.Fatalf("CodeOf = %v, want %v", got, want)
		}
	}
}

// mainIDs returns every reading id of c's main chain, in chain order.
func mainIDs(c *chain.Chain) []chain.Hash {
	var ids []chain.Hash
	for h := uint64(0); h <= c.Height(); h++ {
		b, ok := c.BlockAt(h)
		if !ok {
			panic(fmt.Sprintf("no main-chain block at height %d of %d", h, c.Height()))
		}
		for i := range b.Readings {
			ids = append(ids, readingID(&b.Readings[i]))
		}
	}
	return ids
}

// hashLess orders hashes as big-endian numbers, independently of Hash.Less.
func hashLess(a, b chain.Hash) bool { return bytes.Compare(a[:], b[:]) < 0 }

package chain_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/p2pchain/p2pchain/internal/chain"
)

func seq(from byte) (h chain.Hash) {
	for i := range h {
		h[i] = from + byte(i)
	}
	return h
}

// TestHeaderKnownAnswer checks the header encoding against bytes written out
// by hand from the documented layout: version (4), height (8), parent (32),
// time (8), root (32), reading count (4), difficulty (4), nonce (8),
// big-endian.
func TestHeaderKnownAnswer(t *testing.T) {
	h := chain.Header{
		Version:    0x01020304,
		Height:     0x1112131415161718,
		Parent:     seq(0x20),
		Time:       -2,
		Root:       seq(0x60),
		Count:      0x8a8b8c8d,
		Difficulty: 0x0a0b0c0d,
		Nonce:      0xf1f2f3f4f5f6f7f8,
	}
	want, err := hex.DecodeString(strings.Join([]string{
		"01020304",
		"1112131415161718",
		"202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f",
		"fffffffffffffffe",
		"606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f",
		"8a8b8c8d",
		"0a0b0c0d",
		"f1f2f3f4f5f6f7f8",
	}, ""))
	if err != nil {
		t.Fatal(err)
	}
	if chain.HeaderSize != 100 || len(want) != 100 {
		t.Fatalf("HeaderSize %d, vector %d bytes; want 100", chain.HeaderSize, len(want))
	}
	got, err := h.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding\n got %x\nwant %x", got, want)
	}
	// Spot checks at the documented offsets.
	for _, c := range []struct {
		off  int
		want byte
	}{{0, 0x01}, {3, 0x04}, {4, 0x11}, {11, 0x18}, {12, 0x20}, {43, 0x3f}, {44, 0xff}, {51, 0xfe},
		{52, 0x60}, {83, 0x7f}, {84, 0x8a}, {87, 0x8d}, {88, 0x0a}, {91, 0x0d}, {92, 0xf1}, {99, 0xf8}} {
		if got[c.off] != c.want {
			t.Errorf("byte %d = %#02x, want %#02x", c.off, got[c.off], c.want)
		}
	}
	if h.Hash() != sha256.Sum256(want) {
		t.Fatal("Hash is not SHA-256 of the encoding")
	}
	if app := h.AppendBinary([]byte("prefix")); string(app[:6]) != "prefix" || !bytes.Equal(app[6:], want) {
		t.Fatal("AppendBinary does not append")
	}
	var back chain.Header
	if err := back.UnmarshalBinary(want); err != nil || back != h {
		t.Fatalf("UnmarshalBinary: %+v, %v", back, err)
	}
	// Every field is covered by the hash.
	for i := range want {
		mod := bytes.Clone(want)
		mod[i] ^= 1
		var m chain.Header
		if err := m.UnmarshalBinary(mod); err != nil {
			t.Fatal(err)
		}
		if m == h || m.Hash() == h.Hash() {
			t.Fatalf("flipping byte %d does not change the header or its hash", i)
		}
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	for _, h := range []chain.Header{
		{},
		chain.DefaultParams().Genesis().Header,
		{Version: math.MaxUint32, Height: math.MaxUint64, Parent: seq(1), Time: math.MinInt64, Root: seq(2), Count: math.MaxUint32, Difficulty: math.MaxUint32, Nonce: math.MaxUint64},
		{Version: chain.HeaderVersion, Height: 1, Time: math.MaxInt64, Count: 1, Nonce: 1},
	} {
		enc, err := h.MarshalBinary()
		if err != nil || len(enc) != chain.HeaderSize {
			t.Fatalf("MarshalBinary: %d bytes, %v", len(enc), err)
		}
		if !bytes.Equal(enc, headerBytes(&h)) {
			t.Fatalf("encoding differs from the documented layout:\n got %x\nwant %x", enc, headerBytes(&h))
		}
		var back chain.Header
		if err := back.UnmarshalBinary(enc); err != nil || back != h {
			t.Fatalf("round trip: %+v, %v; want %+v", back, err, h)
		}
	}
	enc := headerBytes(&chain.Header{Version: chain.HeaderVersion})
	for _, n := range []int{0, 1, chain.HeaderSize - 1} {
		var h chain.Header
		checkCode(t, h.UnmarshalBinary(enc[:n]), chain.ErrMalformed)
	}
	var h chain.Header
	checkCode(t, h.UnmarshalBinary(append(enc, 0)), chain.ErrMalformed)
}

// TestReadingEncoding checks the reading layout by hand: subject length (1),
// subject, BPM (2), time (8), author (32), signature (64).
func TestReadingEncoding(t *testing.T) {
	r := sign(testKey(3), "ab", 0x0102, 0x0a0b0c0d0e0f1011)
	enc, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(enc) != 1+2+2+8+32+64 || r.EncodedSize() != len(enc) {
		t.Fatalf("%d bytes, EncodedSize %d", len(enc), r.EncodedSize())
	}
	want := append([]byte{2, 'a', 'b', 0x01, 0x02, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11}, r.Author[:]...)
	want = append(want, r.Sig[:]...)
	if !bytes.Equal(enc, want) {
		t.Fatalf("encoding\n got %x\nwant %x", enc, want)
	}
	if r.ID() != sha256.Sum256(enc[:len(enc)-64]) {
		t.Fatal("id is not SHA-256 of the encoding without the signature")
	}
	if app, _ := r.AppendBinary([]byte{9}); app[0] != 9 || !bytes.Equal(app[1:], want) {
		t.Fatal("AppendBinary does not append")
	}

	for _, r := range []chain.Reading{
		r,
		sign(testKey(1), "x", 20, 0),
		sign(testKey(2), strings.Repeat("~", chain.MaxSubjectLen), 300, math.MaxInt64),
		{Subject: "raw", BPM: 65535, Time: math.MinInt64}, // encoding does not check the rules
		{},
	} {
		enc, err := r.MarshalBinary()
		if err != nil || len(enc) != r.EncodedSize() {
			t.Fatalf("MarshalBinary(%q): %d bytes, %v", r.Subject, len(enc), err)
		}
		var back chain.Reading
		if err := back.UnmarshalBinary(enc); err != nil || back != r {
			t.Fatalf("round trip of %q: %+v, %v", r.Subject, back, err)
		}
		for n := 0; n < len(enc); n++ {
			var x chain.Reading
			checkCode(t, x.UnmarshalBinary(enc[:n]), chain.ErrMalformed)
		}
		var x chain.Reading
		checkCode(t, x.UnmarshalBinary(append(bytes.Clone(enc), 0)), chain.ErrMalformed)
	}

	// A subject longer than the limit neither encodes nor decodes.
	long := chain.Reading{Subject: strings.Repeat("x", chain.MaxSubjectLen+1)}
	_, err = long.MarshalBinary()
	checkCode(t, err, chain.ErrBadSubject)
	bad := make([]byte, 1+chain.MaxSubjectLen+1+2+8+32+64)
	bad[0] = chain.MaxSubjectLen + 1
	var x chain.Reading
	err = x.UnmarshalBinary(bad)
	if chain.CodeOf(err) == 0 || !chain.IsPeerFault(err) {
		t.Fatalf("subject length %d: %v, want a peer-fault rule error", bad[0], err)
	}
}

func testBlock(t *testing.T, n int) *chain.Block {
	t.Helper()
	p := testParams(0)
	c := mustChain(t, p)
	var rs []chain.Reading
	for i := 0; i < n; i++ {
		rs = append(rs, sign(testKey(i), strings.Repeat("s", i%5+1), uint16(60+i), p.GenesisTime+int64(i)))
	}
	return mine(t, c, rs, at(p, 5000))
}

func TestBlockEncoding(t *testing.T) {
	for _, n := range []int{0, 1, 3, 7} {
		b := testBlock(t, n)
		enc, err := b.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		// Header, count, readings, by hand.
		want := headerBytes(&b.Header)
		want = binary.BigEndian.AppendUint32(want, uint32(n))
		for i := range b.Readings {
			r := &b.Readings[i]
			want = append(append(want, readingContent(r)...), r.Sig[:]...)
		}
		if !bytes.Equal(enc, want) || b.EncodedSize() != len(enc) {
			t.Fatalf("%d readings: encoding differs from the layout (EncodedSize %d, len %d)", n, b.EncodedSize(), len(enc))
		}
		back, err := chain.DecodeBlock(enc, n)
		if err != nil {
			t.Fatalf("%d readings: %v", n, err)
		}
		if b.Header.Count != uint32(n) {
			t.Fatalf("%d readings: header count %d", n, b.Header.Count)
		}
		if back.Header != b.Header || len(back.Readings) != n || back.Hash() != b.Hash() {
			t.Fatalf("%d readings: round trip changed the block", n)
		}
		for i := range b.Readings {
			if back.Readings[i] != b.Readings[i] {
				t.Fatalf("reading %d changed", i)
			}
		}
		if err := chain.CheckBlock(back, testParams(0)); err != nil {
			t.Fatalf("decoded block fails CheckBlock: %v", err)
		}
		// Every truncation and any trailing byte is malformed.
		for cut := 0; cut < len(enc); cut++ {
			_, err := chain.DecodeBlock(enc[:cut], n)
			checkCode(t, err, chain.ErrMalformed)
		}
		for _, tail := range [][]byte{{0}, {1, 2, 3}, enc[chain.HeaderSize:]} {
			_, err := chain.DecodeBlock(append(bytes.Clone(enc), tail...), n+1)
			checkCode(t, err, chain.ErrMalformed)
		}
		if n > 0 {
			// More readings than the caller allows.
			_, err := chain.DecodeBlock(enc, n-1)
			checkCode(t, err, chain.ErrTooManyReadings)
			// A count one too high or too low.
			mod := bytes.Clone(enc)
			binary.BigEndian.PutUint32(mod[chain.HeaderSize:], uint32(n+1))
			_, err = chain.DecodeBlock(mod, n+1)
			checkCode(t, err, chain.ErrMalformed)
			binary.BigEndian.PutUint32(mod[chain.HeaderSize:], uint32(n-1))
			_, err = chain.DecodeBlock(mod, n+1)
			checkCode(t, err, chain.ErrMalformed)
		}
	}
	// The header's count and the block's count field are written apart: a
	// block whose header says one thing and whose body holds another decodes
	// (decoding checks the layout only) and breaks a rule.
	b := testBlock(t, 2)
	b.Header.Count = 3
	enc, err := b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if got := binary.BigEndian.Uint32(enc[chain.HeaderSize:]); got != 2 {
		t.Fatalf("count field %d, want the number of readings, 2", got)
	}
	back, err := chain.DecodeBlock(enc, 8)
	if err != nil || back.Header.Count != 3 || len(back.Readings) != 2 {
		t.Fatalf("decoding a block with two counts: %v", err)
	}
	checkCode(t, chain.CheckBlock(back, testParams(0)), chain.ErrBadCount)

	// A reading with a too long subject does not encode into a block.
	b = testBlock(t, 1)
	b.Readings[0].Subject = strings.Repeat("x", 300)
	_, err = b.MarshalBinary()
	checkCode(t, err, chain.ErrBadSubject)
}

// TestDecodeBlockHugeCount feeds counts far beyond what the data holds: they
// must be refused before any allocation proportional to the count.
func TestDecodeBlockHugeCount(t *testing.T) {
	head := headerBytes(&chain.Header{Version: chain.HeaderVersion, Height: 1})
	withCount := func(n uint32, extra int) []byte {
		b := binary.BigEndian.AppendUint32(bytes.Clone(head), n)
		return append(b, make([]byte, extra)...)
	}
	for _, n := range []uint32{1, 2, math.MaxUint32 / 107, math.MaxUint32} {
		_, err := chain.DecodeBlock(withCount(n, 0), math.MaxInt)
		checkCode(t, err, chain.ErrMalformed)
		_, err = chain.DecodeBlock(withCount(n, 200), math.MaxInt)
		checkCode(t, err, chain.ErrMalformed)
	}
	_, err := chain.DecodeBlock(withCount(math.MaxUint32, 0), chain.MaxReadingsLimit)
	checkCode(t, err, chain.ErrTooManyReadings)

	// Without the guard, each call would allocate MaxReadingsLimit readings
	// (over 400 KB); with it, a few small objects.
	data := withCount(chain.MaxReadingsLimit, 300)
	const runs = 50
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < runs; i++ {
		if _, err := chain.DecodeBlock(data, chain.MaxReadingsLimit); chain.CodeOf(err) != chain.ErrMalformed {
			t.Fatalf("err = %v", err)
		}
	}
	runtime.ReadMemStats(&after)
	if perRun := (after.TotalAlloc - before.TotalAlloc) / runs; perRun > 4096 {
		t.Fatalf("DecodeBlock allocated %d bytes per call for a count the data cannot hold", perRun)
	}
}

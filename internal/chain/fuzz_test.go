package chain_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// The fuzz targets decode arbitrary bytes. A decoder must never panic, must
// refuse with a *RuleError, and whatever it accepts must re-encode to the
// very same bytes: otherwise two encodings of one block would exist, with
// one hash but different bytes on the wire.

// fuzzReadings returns encodings of readings to seed the fuzzers with.
func fuzzReadings(f *testing.F) [][]byte {
	var out [][]byte
	for i, subject := range []string{"a", "patient-42", strings.Repeat("~", chain.MaxSubjectLen)} {
		r := sign(testKey(i), subject, uint16(60+i), int64(1_767_225_600_000+i))
		enc, err := r.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, enc)
	}
	return out
}

func requireRuleError(t *testing.T, err error) {
	t.Helper()
	var re *chain.RuleError
	if !errors.As(err, &re) || re.Code == 0 {
		t.Fatalf("error %v (%T) is not a rule error", err, err)
	}
}

func FuzzHeaderUnmarshal(f *testing.F) {
	g := chain.DefaultParams().Genesis().Header
	f.Add(headerBytes(&g))
	f.Add(headerBytes(&chain.Header{Version: 1, Height: 7, Time: -1, Nonce: 1 << 63}))
	f.Add([]byte{})
	f.Add(make([]byte, chain.HeaderSize-1))
	f.Add(make([]byte, chain.HeaderSize+1))
	f.Fuzz(func(t *testing.T, data []byte) {
		var h chain.Header
		err := h.UnmarshalBinary(data)
		if len(data) != chain.HeaderSize {
			if !errors.Is(err, chain.ErrMalformed) {
				t.Fatalf("%d bytes: err = %v, want malformed", len(data), err)
			}
			return
		}
		if err != nil {
			t.Fatalf("%d bytes refused: %v", len(data), err)
		}
		enc, err := h.MarshalBinary()
		if err != nil || !bytes.Equal(enc, data) {
			t.Fatalf("re-encoding differs (%v):\n got %x\nwant %x", err, enc, data)
		}
		if h.Hash() != sha256.Sum256(data) {
			t.Fatal("hash is not SHA-256 of the bytes")
		}
	})
}

func FuzzReadingUnmarshal(f *testing.F) {
	for _, enc := range fuzzReadings(f) {
		f.Add(enc)
		f.Add(enc[:len(enc)-1])
		f.Add(append(bytes.Clone(enc), 0))
	}
	f.Add([]byte{})
	f.Add([]byte{chain.MaxSubjectLen + 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		var r chain.Reading
		if err := r.UnmarshalBinary(data); err != nil {
			requireRuleError(t, err)
			return
		}
		enc, err := r.MarshalBinary()
		if err != nil || !bytes.Equal(enc, data) {
			t.Fatalf("re-encoding differs (%v):\n got %x\nwant %x", err, enc, data)
		}
		if r.EncodedSize() != len(data) {
			t.Fatalf("EncodedSize %d, decoded %d bytes", r.EncodedSize(), len(data))
		}
		if r.ID() != sha256.Sum256(data[:len(data)-64]) {
			t.Fatal("id is not SHA-256 of the content")
		}
		_ = r.Check() // must not panic on any decoded reading
	})
}

func FuzzDecodeBlock(f *testing.F) {
	const maxReadings = 8
	p := testParams(0)
	seedChain := mustChain(f, p)
	var rs []chain.Reading
	for _, enc := range fuzzReadings(f) {
		var r chain.Reading
		if err := r.UnmarshalBinary(enc); err != nil {
			f.Fatal(err)
		}
		rs = append(rs, r)
	}
	for n := 0; n <= len(rs); n++ {
		b := seedChain.NewBlock(rs[:n], at(p, 10_000))
		enc, err := b.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
		f.Add(enc[:len(enc)-1])
	}
	f.Add(headerBytes(&chain.Header{}))
	f.Add(append(headerBytes(&chain.Header{}), 0xff, 0xff, 0xff, 0xff))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := chain.DecodeBlock(data, maxReadings)
		if err != nil {
			requireRuleError(t, err)
			if b != nil {
				t.Fatal("a block returned with an error")
			}
			return
		}
		if len(b.Readings) > maxReadings {
			t.Fatalf("%d readings decoded, limit %d", len(b.Readings), maxReadings)
		}
		enc, err := b.MarshalBinary()
		if err != nil || !bytes.Equal(enc, data) {
			t.Fatalf("re-encoding differs (%v):\n got %x\nwant %x", err, enc, data)
		}
		if b.EncodedSize() != len(data) {
			t.Fatalf("EncodedSize %d, decoded %d bytes", b.EncodedSize(), len(data))
		}
		if b.Hash() != sha256.Sum256(data[:chain.HeaderSize]) {
			t.Fatal("block hash is not SHA-256 of the header bytes")
		}
		_ = chain.CheckBlock(b, p) // must not panic on any decoded block
	})
}

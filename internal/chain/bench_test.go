package chain

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"
)

// BenchmarkHeaderHash measures the proof-of-work inner loop: one header hash.
func BenchmarkHeaderHash(b *testing.B) {
	h := DefaultParams().Genesis().Header
	b.SetBytes(HeaderSize)
	for i := 0; b.Loop(); i++ {
		h.Nonce = uint64(i)
		_ = h.Hash()
	}
}

// BenchmarkSolveDefault measures the time to mine one block at the default
// difficulty.
func BenchmarkSolveDefault(b *testing.B) {
	h := DefaultParams().Genesis().Header
	h.Height = 1
	for i := 0; b.Loop(); i++ {
		h.Time = int64(i)
		h.Nonce = 0
		if err := Solve(context.Background(), &h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadingCheck measures checking one reading, mostly its Ed25519
// signature: the limit on how fast a node can verify readings.
func BenchmarkReadingCheck(b *testing.B) {
	_, key, _ := ed25519.GenerateKey(nil)
	r, err := NewReading(key, "alice", 72, time.Unix(1800000000, 0))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := r.Check(); err != nil {
			b.Fatal(err)
		}
	}
}

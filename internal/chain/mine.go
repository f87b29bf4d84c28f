package chain

import (
	"context"
	"errors"
)

// checkEvery is how many nonces Solve tries between looks at ctx.
const checkEvery = 1 << 12

// ErrNonceSpace is returned when every nonce was tried without success.
var ErrNonceSpace = errors.New("nonce space exhausted")

// Solve searches nonces from h.Nonce upwards until the header hash meets its
// difficulty, leaving the winning nonce in h. It stops early with ctx's error.
func Solve(ctx context.Context, h *Header) error {
	var buf [HeaderSize]byte
	enc := h.AppendBinary(buf[:0])
	for n := h.Nonce; ; n++ {
		putNonce(enc, n)
		if MeetsTarget(sha256Sum(enc), h.Difficulty) {
			h.Nonce = n
			return nil
		}
		if n%checkEvery == checkEvery-1 {
			if err := ctx.Err(); err != nil {
				h.Nonce = n + 1
				return err
			}
		}
		if n == ^uint64(0) {
			return ErrNonceSpace
		}
	}
}

func putNonce(enc []byte, n uint64) {
	for i := 0; i < 8; i++ {
		enc[HeaderSize-1-i] = byte(n >> (8 * i))
	}
}

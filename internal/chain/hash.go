package chain

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// HashSize is the size of a block hash or reading id in bytes.
const HashSize = sha256.Size

// Hash is a SHA-256 digest: a block header hash, a reading id or a Merkle node.
type Hash [HashSize]byte

// String returns the lower-case hex form of h.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Short returns the first 10 hex digits of h, for logs and prompts.
func (h Hash) Short() string { return hex.EncodeToString(h[:5]) }

// IsZero reports whether h is all zero bytes.
func (h Hash) IsZero() bool { return h == Hash{} }

// Less reports whether h sorts before o as a big-endian number.
func (h Hash) Less(o Hash) bool {
	for i := range h {
		if h[i] != o[i] {
			return h[i] < o[i]
		}
	}
	return false
}

// MarshalText encodes h as hex, so hashes read well in JSON.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText decodes a 64-digit hex string.
func (h *Hash) UnmarshalText(b []byte) error {
	p, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = p
	return nil
}

// ParseHash decodes a 64-digit hex string.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*HashSize {
		return h, fmt.Errorf("hash %q: want %d hex digits, got %d", s, 2*HashSize, len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("hash %q: %w", s, err)
	}
	return h, nil
}

// taggedHash returns SHA-256(tag || data...), used to keep hashes of different
// kinds of data apart.
func taggedHash(tag string, data ...[]byte) Hash {
	d := sha256.New()
	d.Write([]byte(tag))
	for _, b := range data {
		d.Write(b)
	}
	var h Hash
	d.Sum(h[:0])
	return h
}

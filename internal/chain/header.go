package chain

import (
	"crypto/sha256"
	"encoding/binary"
	"math/big"
	"math/bits"
)

// HeaderVersion is the header version of protocol version 2, the only one a
// node accepts. Version 1 (no reading count, a readings root over ids only)
// let one block have many encodings under one hash and is retired.
const HeaderVersion = 2

// HeaderSize is the size of an encoded header: version (4), height (8),
// parent (32), time (8), readings root (32), reading count (4),
// difficulty (4), nonce (8).
const HeaderSize = 4 + 8 + HashSize + 8 + HashSize + 4 + 4 + 8

// Header is the hashed part of a block. All integers are encoded big-endian
// at fixed widths, in this field order, so the hash is the same everywhere.
type Header struct {
	Version    uint32
	Height     uint64
	Parent     Hash
	Time       int64  // Unix milliseconds
	Root       Hash   // Merkle root of the readings, signatures included (merkle.go)
	Count      uint32 // number of readings: the Merkle tree's size
	Difficulty uint32
	Nonce      uint64
}

// AppendBinary appends the canonical HeaderSize-byte encoding of h.
func (h *Header) AppendBinary(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, h.Version)
	b = binary.BigEndian.AppendUint64(b, h.Height)
	b = append(b, h.Parent[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(h.Time))
	b = append(b, h.Root[:]...)
	b = binary.BigEndian.AppendUint32(b, h.Count)
	b = binary.BigEndian.AppendUint32(b, h.Difficulty)
	return binary.BigEndian.AppendUint64(b, h.Nonce)
}

// MarshalBinary returns the canonical encoding of h.
func (h *Header) MarshalBinary() ([]byte, error) {
	return h.AppendBinary(make([]byte, 0, HeaderSize)), nil
}

// UnmarshalBinary decodes exactly HeaderSize bytes.
func (h *Header) UnmarshalBinary(b []byte) error {
	if len(b) != HeaderSize {
		return ruleErr(ErrMalformed, "header: %d bytes, want %d", len(b), HeaderSize)
	}
	h.Version = binary.BigEndian.Uint32(b[0:])
	h.Height = binary.BigEndian.Uint64(b[4:])
	copy(h.Parent[:], b[12:44])
	h.Time = int64(binary.BigEndian.Uint64(b[44:]))
	copy(h.Root[:], b[52:84])
	h.Count = binary.BigEndian.Uint32(b[84:])
	h.Difficulty = binary.BigEndian.Uint32(b[88:])
	h.Nonce = binary.BigEndian.Uint64(b[92:])
	return nil
}

// Hash returns SHA-256 of the canonical encoding.
func (h *Header) Hash() Hash {
	var buf [HeaderSize]byte
	return sha256.Sum256(h.AppendBinary(buf[:0]))
}

// MeetsTarget reports whether hash has at least difficulty leading zero bits.
func MeetsTarget(hash Hash, difficulty uint32) bool {
	return LeadingZeros(hash) >= int(difficulty)
}

// LeadingZeros counts the leading zero bits of hash.
func LeadingZeros(hash Hash) int {
	for i := 0; i < len(hash); i += 8 {
		if w := binary.BigEndian.Uint64(hash[i:]); w != 0 {
			return i*8 + bits.LeadingZeros64(w)
		}
	}
	return 8 * len(hash)
}

// BlockWork is the expected number of hashes to find a block at difficulty:
// 2^difficulty.
func BlockWork(difficulty uint32) *big.Int {
	return new(big.Int).Lsh(big.NewInt(1), uint(difficulty))
}

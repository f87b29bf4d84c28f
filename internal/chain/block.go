package chain

import (
	"encoding/binary"
)

// Block is a header and the readings it commits to. On an authority
// network a block may also carry membership changes (committed to by the
// header's Root, see ReadingsRoot) and carries a seal: the commit of the
// authorities that decided it. The seal is outside the block hash (the
// authorities sign the hash), so one block may travel with different
// seals, each of which a node checks before it accepts the block.
type Block struct {
	Header   Header
	Readings []Reading
	// Changes holds whole membership changes of ChangeSize bytes each, in
	// the order they apply (package bft decodes them).
	Changes []byte
	// Seal is the encoded commit that made the block final (package bft).
	Seal []byte
}

// hasTrailer reports whether b's encoding carries the trailer of changes
// and seal.
func (b *Block) hasTrailer() bool { return len(b.Changes) > 0 || len(b.Seal) > 0 }

// Hash returns the block hash: the hash of its header.
func (b *Block) Hash() Hash { return b.Header.Hash() }

// ReadingIDs returns the ids of the readings, in block order.
func (b *Block) ReadingIDs() []Hash {
	ids := make([]Hash, len(b.Readings))
	for i := range b.Readings {
		ids[i] = b.Readings[i].ID()
	}
	return ids
}

// EncodedSize is the size of b on the wire.
func (b *Block) EncodedSize() int {
	n := HeaderSize + 4
	for i := range b.Readings {
		n += b.Readings[i].EncodedSize()
	}
	if b.hasTrailer() {
		n += 2 + len(b.Changes) + 4 + len(b.Seal)
	}
	return n
}

// AppendBinary appends the wire encoding of b: the header, the number of
// readings as a big-endian uint32, then each reading; then, only if the
// block has changes or a seal, the trailer: the number of changes as a
// uint16, the changes, the seal's length as a uint32 and the seal.
func (b *Block) AppendBinary(buf []byte) ([]byte, error) {
	buf = b.Header.AppendBinary(buf)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(b.Readings)))
	var err error
	for i := range b.Readings {
		if buf, err = b.Readings[i].AppendBinary(buf); err != nil {
			return buf, err
		}
	}
	if b.hasTrailer() {
		if len(b.Changes)%ChangeSize != 0 || len(b.Changes) > MaxChanges*ChangeSize || len(b.Seal) > MaxSealSize {
			return buf, ruleErr(ErrMalformed, "block: %d bytes of changes and a %d-byte seal", len(b.Changes), len(b.Seal))
		}
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(b.Changes)/ChangeSize))
		buf = append(buf, b.Changes...)
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(b.Seal)))
		buf = append(buf, b.Seal...)
	}
	return buf, nil
}

// MarshalBinary returns the wire encoding of b.
func (b *Block) MarshalBinary() ([]byte, error) {
	return b.AppendBinary(make([]byte, 0, b.EncodedSize()))
}

// DecodeBlock decodes exactly one block from data, refusing more than
// maxReadings readings. It checks the encoding only; CheckBlock and
// (*Chain).AddBlock check the rules.
func DecodeBlock(data []byte, maxReadings int) (*Block, error) {
	if len(data) < HeaderSize+4 {
		return nil, ruleErr(ErrMalformed, "block: %d bytes is shorter than a header", len(data))
	}
	b := new(Block)
	if err := b.Header.UnmarshalBinary(data[:HeaderSize]); err != nil {
		return nil, err
	}
	count := binary.BigEndian.Uint32(data[HeaderSize:])
	if uint64(count) > uint64(maxReadings) {
		return nil, ruleErr(ErrTooManyReadings, "%d readings, at most %d", count, maxReadings)
	}
	rest := data[HeaderSize+4:]
	// Each reading takes at least readingFixedSize bytes: refuse a count the
	// data cannot hold before allocating for it.
	if uint64(count)*readingFixedSize > uint64(len(rest)) {
		return nil, ruleErr(ErrMalformed, "block: %d readings cannot fit in %d bytes", count, len(rest))
	}
	if count > 0 {
		b.Readings = make([]Reading, count)
	}
	for i := range b.Readings {
		n, err := b.Readings[i].decode(rest)
		if err != nil {
			return nil, err
		}
		rest = rest[n:]
	}
	if len(rest) != 0 {
		if err := b.decodeTrailer(rest); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// decodeTrailer decodes the changes and seal that follow the readings. A
// trailer with neither is not canonical (the block would encode without it).
func (b *Block) decodeTrailer(rest []byte) error {
	if len(rest) < 6 {
		return ruleErr(ErrMalformed, "block: %d trailing bytes", len(rest))
	}
	n := int(binary.BigEndian.Uint16(rest))
	if n > MaxChanges {
		return ruleErr(ErrMalformed, "block: %d membership changes, at most %d", n, MaxChanges)
	}
	rest = rest[2:]
	if len(rest) < n*ChangeSize+4 {
		return ruleErr(ErrMalformed, "block: %d changes cannot fit in %d bytes", n, len(rest))
	}
	changes, rest := rest[:n*ChangeSize], rest[n*ChangeSize:]
	size := binary.BigEndian.Uint32(rest)
	rest = rest[4:]
	if size > MaxSealSize || uint64(size) != uint64(len(rest)) {
		return ruleErr(ErrMalformed, "block: a %d-byte seal in %d bytes (at most %d)", size, len(rest), MaxSealSize)
	}
	if n == 0 && size == 0 {
		return ruleErr(ErrMalformed, "block: empty trailer")
	}
	if n > 0 {
		b.Changes = append([]byte(nil), changes...)
	}
	if size > 0 {
		b.Seal = append([]byte(nil), rest...)
	}
	return nil
}

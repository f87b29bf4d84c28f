package chain

import (
	"encoding/binary"
)

// Block is a header and the readings it commits to.
type Block struct {
	Header   Header
	Readings []Reading
}

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
	return n
}

// AppendBinary appends the wire encoding of b: the header, the number of
// readings as a big-endian uint32, then each reading.
func (b *Block) AppendBinary(buf []byte) ([]byte, error) {
	buf = b.Header.AppendBinary(buf)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(b.Readings)))
	var err error
	for i := range b.Readings {
		if buf, err = b.Readings[i].AppendBinary(buf); err != nil {
			return buf, err
		}
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
		return nil, ruleErr(ErrMalformed, "block: %d trailing bytes", len(rest))
	}
	return b, nil
}

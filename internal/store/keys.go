package store

import (
	"encoding/binary"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// The layout (see docs/STORAGE.md): one ordered key space, partitioned by
// the first byte of the key.
//
//	'm' + name            meta records (below)
//	'b' + block hash      block, chain's binary encoding (all blocks, every branch)
//	'h' + height (8, BE)  hash of the main-chain block at that height (0: genesis)
//	'r' + reading id      hash of the main-chain block holding the reading
//	'p' + reading id      pending reading: arrival number (8, BE) + reading encoding
//	's' + block hash      empty: the block is off the main chain (side index; see msideindex)
//	'e' + SHA-256(e)      evidence of an equivocating authority (authority networks), its encoding
//	'c' + block hash      a block the consensus state of its height needs after a restart (the
//	                      locked and valid blocks, the node's own proposals), its encoding
//	'j' + subject + 0x00 + height (8, BE) + index (2, BE)
//	                      a main-chain reading of the subject: BPM (2) + time (8) + id (32) (see subjects.go)
//	'k' + subject + 0x00 + time (8, BE, sign bit flipped) + id (32)
//	                      the same reading by time: height (8) + index (2) (see subjects.go)
const (
	prefixEvidence = 'e'
	prefixConsBlk  = 'c'
	prefixMeta     = 'm'
	prefixBlock    = 'b'
	prefixHeight   = 'h'
	prefixReading  = 'r'
	prefixPending  = 'p'
	prefixSide     = 's'
	prefixSubject  = 'j'
	prefixByTime   = 'k'
)

// Meta records.
var (
	keyVersion  = []byte("mversion")  // schemaVersion, 4 bytes BE
	keyNetwork  = []byte("mnetwork")  // network name, for messages
	keyGenesis  = []byte("mgenesis")  // genesis block hash
	keyTip      = []byte("mtip")      // tip hash (32) + tip height (8, BE)
	keyCommits  = []byte("mcommits")  // number of write batches committed so far, 8 bytes BE
	keyBFT      = []byte("mbft")      // an authority's consensus state (bft.State encoding)
	keyApproved = []byte("mapproved") // membership changes an authority's operator approved, not yet in a block (bft.EncodeChanges)
	keyFinal    = []byte("mfinal")    // the chain's final height as of the last commit (chain.Update.Final), 8 bytes BE
	// keySideIndex, empty, says that the side index names every side block:
	// LoadRecent writes it once it indexed the side blocks of a store
	// written before the index (commits keep the index since).
	keySideIndex = []byte("msideindex")
	// keySubjectIndex, empty, says that the subject index holds every
	// main-chain reading (a store written before it gets it at Open).
	keySubjectIndex = []byte("msubjects")
	// keyTimeIndex, empty, says the same of the subject time index.
	keyTimeIndex = []byte("msubjecttimes")
)

// commitsFile, beside the engine's files, repeats the commit count after
// each durable write (without a sync of its own). Pebble takes a damaged end
// of its newest log for the torn tail of a crash and drops it silently; a
// count on disk ahead of the store's shows that committed writes were lost.
// The count carries a CRC-32C, so that a damaged file is not taken for lost
// writes: commitsFileSize bytes, the count (8, BE) then its checksum (4,
// BE). Files of 8 bytes, the count alone, were written before the checksum.
const (
	commitsFile     = "COMMITS"
	commitsFileSize = 12
)

// schemaVersion is the version of this layout. A store of another version
// is refused. Version 2 holds blocks of protocol version 2 (100-byte
// headers); version 1 stores hold blocks of the retired protocol 1.
const schemaVersion = 2

func hashKey(prefix byte, h chain.Hash) []byte {
	k := make([]byte, 1+chain.HashSize)
	k[0] = prefix
	copy(k[1:], h[:])
	return k
}

func keyBlock(h chain.Hash) []byte    { return hashKey(prefixBlock, h) }
func keyReading(id chain.Hash) []byte { return hashKey(prefixReading, id) }
func keyPending(id chain.Hash) []byte { return hashKey(prefixPending, id) }
func keySide(h chain.Hash) []byte     { return hashKey(prefixSide, h) }

func keyHeight(n uint64) []byte {
	return binary.BigEndian.AppendUint64(append(make([]byte, 0, 9), prefixHeight), n)
}

// prefixBounds returns the key range holding every key of prefix.
func prefixBounds(prefix byte) (lower, upper []byte) {
	return []byte{prefix}, []byte{prefix + 1}
}

func encodeTip(h chain.Hash, height uint64) []byte {
	return binary.BigEndian.AppendUint64(append(make([]byte, 0, chain.HashSize+8), h[:]...), height)
}

// readTip reads the tip record (encodeTip): its hash and height.
func (s *Store) readTip(r reader) (chain.Hash, uint64, error) {
	tip, err := s.get(r, keyTip)
	if err != nil {
		return chain.Hash{}, 0, s.missing(err, "the tip record")
	}
	if len(tip) != chain.HashSize+8 {
		return chain.Hash{}, 0, corrupt(s.path, "tip record of %d bytes", len(tip))
	}
	return chain.Hash(tip[:chain.HashSize]), binary.BigEndian.Uint64(tip[chain.HashSize:]), nil
}

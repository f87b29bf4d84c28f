package chain

import (
	"encoding/binary"
	"errors"
)

// The readings root is a Merkle tree over a block's readings in block order,
// in the shape of RFC 6962 (Certificate Transparency): leaves and inner
// nodes are hashed with different prefixes, so a leaf can never pass for a
// node, and an odd node is carried up instead of duplicated, so no two lists
// share a root. Each leaf commits to the whole reading (its id and its
// signature), to its position and to the size of the tree, so that the block
// hash commits to every byte of the block (one encoding per block) and a
// proof holds for one position of one tree only.
//
//	leaf  = SHA-256(0x00 || index (4, BE) || size (4, BE) || reading id || signature)
//	node  = SHA-256(0x01 || left || right)
//	split = the largest power of two smaller than n
//	empty = SHA-256("")

// LeafHash returns the Merkle leaf of a reading with id id and signature sig
// at position index of a block of size readings.
func LeafHash(id Hash, sig *[64]byte, index, size int) Hash {
	var pos [8]byte
	binary.BigEndian.PutUint32(pos[0:], uint32(index))
	binary.BigEndian.PutUint32(pos[4:], uint32(size))
	return taggedHash("\x00", pos[:], id[:], sig[:])
}

// Leaves returns the Merkle leaves of b's readings, whose ids are ids.
func (b *Block) leaves(ids []Hash) []Hash {
	out := make([]Hash, len(b.Readings))
	for i := range b.Readings {
		out[i] = LeafHash(ids[i], &b.Readings[i].Sig, i, len(b.Readings))
	}
	return out
}

// Leaves returns the Merkle leaves of b's readings, in block order.
func (b *Block) Leaves() []Hash { return b.leaves(b.ReadingIDs()) }

// ReadingsRoot returns the value b's header's Root must hold: the Merkle
// root of its readings or, when the block carries membership changes,
// SHA-256(0x02 || that Merkle root || the changes).
func (b *Block) ReadingsRoot() Hash { return BodyRoot(MerkleRoot(b.Leaves()), b.Changes) }

// BodyRoot is a header's Root for a block whose readings have the Merkle
// root readings: that root, or with membership changes SHA-256(0x02 ||
// readings || changes).
func BodyRoot(readings Hash, changes []byte) Hash {
	if len(changes) == 0 {
		return readings
	}
	return taggedHash("\x02", readings[:], changes)
}

// MerkleRoot returns the root of the tree over leaves (see LeafHash).
func MerkleRoot(leaves []Hash) Hash {
	if len(leaves) == 0 {
		return taggedHash("")
	}
	return subtreeRoot(leaves)
}

func nodeHash(l, r Hash) Hash { return taggedHash("\x01", l[:], r[:]) }
func splitPoint(n int) int {
	k := 1
	for k*2 < n {
		k *= 2
	}
	return k
}

// subtreeRoot hashes a non-empty list of leaf hashes.
func subtreeRoot(leaves []Hash) Hash {
	if len(leaves) == 1 {
		return leaves[0]
	}
	k := splitPoint(len(leaves))
	return nodeHash(subtreeRoot(leaves[:k]), subtreeRoot(leaves[k:]))
}

// MerkleProof returns the audit path proving that leaves[index] is in the
// tree: the sibling hashes from the leaf up to the root.
func MerkleProof(leaves []Hash, index int) ([]Hash, error) {
	if index < 0 || index >= len(leaves) {
		return nil, errors.New("merkle proof: index out of range")
	}
	return auditPath(leaves, index), nil
}

func auditPath(leaves []Hash, index int) []Hash {
	if len(leaves) <= 1 {
		return nil
	}
	k := splitPoint(len(leaves))
	if index < k {
		return append(auditPath(leaves[:k], index), subtreeRoot(leaves[k:]))
	}
	return append(auditPath(leaves[k:], index-k), subtreeRoot(leaves[:k]))
}

// VerifyMerkleProof reports whether proof shows that leaf is position index
// of a tree of size leaves with the given root (RFC 6962, section 2.1.1).
// The leaf must have been computed for the same index and size (LeafHash),
// so a proof never holds for another position or another tree size.
func VerifyMerkleProof(root, leaf Hash, index, size int, proof []Hash) bool {
	r, ok := MerkleRootFromProof(leaf, index, size, proof)
	return ok && r == root
}

// MerkleRootFromProof returns the root of a tree of size leaves that the
// audit path proof gives for leaf at position index, and false when the
// path cannot be one of such a tree (its length, or index out of range).
func MerkleRootFromProof(leaf Hash, index, size int, proof []Hash) (Hash, bool) {
	if index < 0 || index >= size || len(proof) > 32 {
		return Hash{}, false
	}
	fn, sn := index, size-1
	r := leaf
	for _, p := range proof {
		if sn == 0 {
			return Hash{}, false
		}
		if fn%2 == 1 || fn == sn {
			r = nodeHash(p, r)
			for fn%2 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			r = nodeHash(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	return r, sn == 0
}

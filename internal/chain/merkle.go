package chain

import "errors"

// The readings root is a Merkle tree over the reading ids in block order, in
// the shape of RFC 6962 (Certificate Transparency): leaves and inner nodes are
// hashed with different prefixes, so a leaf can never pass for a node, and an
// odd node is carried up instead of duplicated, so no two lists share a root.
//
//	leaf  = SHA-256(0x00 || id)
//	node  = SHA-256(0x01 || left || right)
//	split = the largest power of two smaller than n
//	empty = SHA-256("")

// MerkleRoot returns the root of the tree over ids.
func MerkleRoot(ids []Hash) Hash {
	if len(ids) == 0 {
		return taggedHash("")
	}
	level := make([]Hash, len(ids))
	for i := range ids {
		level[i] = leafHash(ids[i])
	}
	return subtreeRoot(level)
}

func leafHash(id Hash) Hash   { return taggedHash("\x00", id[:]) }
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

// MerkleProof returns the audit path proving that ids[index] is in the tree:
// the sibling hashes from the leaf up to the root.
func MerkleProof(ids []Hash, index int) ([]Hash, error) {
	if index < 0 || index >= len(ids) {
		return nil, errors.New("merkle proof: index out of range")
	}
	leaves := make([]Hash, len(ids))
	for i := range ids {
		leaves[i] = leafHash(ids[i])
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

// VerifyMerkleProof reports whether proof shows that id is leaf index of a
// tree of size leaves with the given root (RFC 6962, section 2.1.1).
func VerifyMerkleProof(root, id Hash, index, size int, proof []Hash) bool {
	if index < 0 || index >= size {
		return false
	}
	fn, sn := index, size-1
	r := leafHash(id)
	for _, p := range proof {
		if sn == 0 {
			return false
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
	return sn == 0 && r == root
}

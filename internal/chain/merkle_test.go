package chain_test

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"testing"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// refRoot is the RFC 6962 Merkle tree hash, written straight from section
// 2.1 of the RFC, over ids as leaf data:
//
//	MTH({})    = SHA-256()
//	MTH({d0})  = SHA-256(0x00 || d0)
//	MTH(D[n])  = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n])), k the largest power of two < n
func refRoot(ids []chain.Hash) chain.Hash {
	switch len(ids) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return sha256.Sum256(append([]byte{0}, ids[0][:]...))
	}
	k := refSplit(len(ids))
	l, r := refRoot(ids[:k]), refRoot(ids[k:])
	return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
}

func refSplit(n int) int {
	k := 1
	for 2*k < n {
		k *= 2
	}
	return k
}

// refPath is the RFC 6962 audit path PATH(m, D[n]), section 2.1.1.
func refPath(m int, ids []chain.Hash) []chain.Hash {
	if len(ids) <= 1 {
		return nil
	}
	k := refSplit(len(ids))
	if m < k {
		return append(refPath(m, ids[:k]), refRoot(ids[k:]))
	}
	return append(refPath(m-k, ids[k:]), refRoot(ids[:k]))
}

// refShape lists, leaf to root, on which side the siblings of leaf m of a
// tree of n leaves are: true when the sibling is on the right. Two (m, n)
// with the same shape have proofs that are interchangeable, because a tree's
// root does not commit to its size.
func refShape(m, n int) []bool {
	if n <= 1 {
		return nil
	}
	k := refSplit(n)
	if m < k {
		return append(refShape(m, k), true)
	}
	return append(refShape(m-k, n-k), false)
}

func testIDs(n int) []chain.Hash {
	ids := make([]chain.Hash, n)
	for i := range ids {
		ids[i] = sha256.Sum256(binary.BigEndian.AppendUint64([]byte("id"), uint64(i)))
	}
	return ids
}

func TestMerkleRoot(t *testing.T) {
	roots := map[chain.Hash]int{}
	for n := 0; n <= 17; n++ {
		ids := testIDs(n)
		got := chain.MerkleRoot(ids)
		if want := refRoot(ids); got != want {
			t.Fatalf("%d ids: root %s, want %s", n, got.Short(), want.Short())
		}
		if m, seen := roots[got]; seen {
			t.Fatalf("%d and %d ids share a root", m, n)
		}
		roots[got] = n
	}
	// Hand-written cases.
	ids := testIDs(3)
	leaf := func(id chain.Hash) chain.Hash { return sha256.Sum256(append([]byte{0}, id[:]...)) }
	node := func(l, r chain.Hash) chain.Hash { return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...)) }
	if chain.MerkleRoot(nil) != sha256.Sum256([]byte{}) {
		t.Error("empty root is not SHA-256 of nothing")
	}
	if chain.MerkleRoot(ids[:1]) != leaf(ids[0]) {
		t.Error("one id: root is not its leaf hash")
	}
	if chain.MerkleRoot(ids) != node(node(leaf(ids[0]), leaf(ids[1])), leaf(ids[2])) {
		t.Error("three ids: the odd leaf is not carried up")
	}
	// Unlike Bitcoin's tree, a list and the list with its last id repeated
	// differ, and order matters.
	if chain.MerkleRoot(ids) == chain.MerkleRoot(append(slices.Clone(ids), ids[2])) {
		t.Error("[a b c] and [a b c c] share a root")
	}
	if chain.MerkleRoot(ids[:2]) == chain.MerkleRoot([]chain.Hash{ids[1], ids[0]}) {
		t.Error("root does not depend on order")
	}
	// A leaf cannot pass for an inner node.
	inner := node(leaf(ids[0]), leaf(ids[1]))
	if chain.MerkleRoot([]chain.Hash{inner}) == chain.MerkleRoot(ids[:2]) {
		t.Error("a leaf equal to an inner node gives the same root")
	}
}

func TestMerkleProof(t *testing.T) {
	const maxSize = 33
	all := testIDs(maxSize + 1)
	stranger := sha256.Sum256([]byte("not in the tree"))
	for size := 1; size <= maxSize; size++ {
		ids := all[:size]
		root := chain.MerkleRoot(ids)
		for i := range ids {
			proof, err := chain.MerkleProof(ids, i)
			if err != nil {
				t.Fatalf("size %d index %d: %v", size, i, err)
			}
			if want := refPath(i, ids); !slices.Equal(proof, want) {
				t.Fatalf("size %d index %d: proof differs from RFC 6962 PATH", size, i)
			}
			if !chain.VerifyMerkleProof(root, ids[i], i, size, proof) {
				t.Fatalf("size %d index %d: valid proof refused", size, i)
			}
			// Wrong id: every other id of the tree, and one from outside.
			for _, id := range []chain.Hash{stranger, ids[(i+1)%size], all[maxSize]} {
				if id != ids[i] && chain.VerifyMerkleProof(root, id, i, size, proof) {
					t.Fatalf("size %d index %d: proof accepted for a wrong id", size, i)
				}
			}
			// Wrong index: never accepted within the same tree.
			for j := -1; j <= size; j++ {
				if j != i && chain.VerifyMerkleProof(root, ids[i], j, size, proof) {
					t.Fatalf("size %d index %d: proof accepted at index %d", size, i, j)
				}
			}
			// Wrong size: accepted exactly when the path has the same shape
			// (the root does not commit to the size; the id is in the tree
			// either way), never when the index is outside the size.
			for n := -1; n <= maxSize+8; n++ {
				if n == size {
					continue
				}
				want := i < n && slices.Equal(refShape(i, n), refShape(i, size))
				if got := chain.VerifyMerkleProof(root, ids[i], i, n, proof); got != want {
					t.Fatalf("size %d index %d: claimed size %d accepted=%v, want %v", size, i, n, got, want)
				}
			}
			// Wrong root, and proofs that are too short, too long or altered.
			if chain.VerifyMerkleProof(chain.MerkleRoot(all[:size+1]), ids[i], i, size, proof) ||
				chain.VerifyMerkleProof(chain.Hash{}, ids[i], i, size, proof) {
				t.Fatalf("size %d index %d: proof accepted for a wrong root", size, i)
			}
			if len(proof) > 0 && chain.VerifyMerkleProof(root, ids[i], i, size, proof[:len(proof)-1]) {
				t.Fatalf("size %d index %d: truncated proof accepted", size, i)
			}
			if chain.VerifyMerkleProof(root, ids[i], i, size, append(slices.Clone(proof), root)) {
				t.Fatalf("size %d index %d: extended proof accepted", size, i)
			}
			for k := range proof {
				bad := slices.Clone(proof)
				bad[k][0] ^= 1
				if chain.VerifyMerkleProof(root, ids[i], i, size, bad) {
					t.Fatalf("size %d index %d: proof with element %d altered accepted", size, i, k)
				}
			}
		}
		for _, i := range []int{-1, size} {
			if _, err := chain.MerkleProof(ids, i); err == nil {
				t.Fatalf("size %d: MerkleProof(%d) gave no error", size, i)
			}
		}
	}
	if _, err := chain.MerkleProof(nil, 0); err == nil {
		t.Fatal("proof in an empty tree")
	}
	// A block's receipt: prove one reading of a block against its header.
	b := testBlock(t, 5)
	proof, err := chain.MerkleProof(b.ReadingIDs(), 3)
	if err != nil || !chain.VerifyMerkleProof(b.Header.Root, readingID(&b.Readings[3]), 3, 5, proof) {
		t.Fatalf("receipt for reading 3 of a block fails: %v", err)
	}
}

package chain_test

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"slices"
	"testing"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// refRoot is the RFC 6962 Merkle tree hash, written straight from section
// 2.1 of the RFC, over leaves that are already hashed (leafHash,
// helpers_test.go, is the protocol's leaf hash):
//
//	MTH({})    = SHA-256()
//	MTH({l0})  = l0
//	MTH(L[n])  = SHA-256(0x01 || MTH(L[0:k]) || MTH(L[k:n])), k the largest power of two < n
func refRoot(leaves []chain.Hash) chain.Hash {
	switch len(leaves) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return leaves[0]
	}
	k := refSplit(len(leaves))
	return refNode(refRoot(leaves[:k]), refRoot(leaves[k:]))
}

func refNode(l, r chain.Hash) chain.Hash {
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
func refPath(m int, leaves []chain.Hash) []chain.Hash {
	if len(leaves) <= 1 {
		return nil
	}
	k := refSplit(len(leaves))
	if m < k {
		return append(refPath(m, leaves[:k]), refRoot(leaves[k:]))
	}
	return append(refPath(m-k, leaves[k:]), refRoot(leaves[:k]))
}

// refShape lists, leaf to root, on which side the siblings of leaf m of a
// tree of n leaves are: true when the sibling is on the right. Two (m, n)
// with the same shape have interchangeable audit paths: the tree alone does
// not commit to its size, which is why the leaf does.
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

// vectorID and vectorSig are the inputs of the Merkle test vectors
// (PROTOCOL.md 6.4): id[i] = SHA-256(one byte i), sig[i] = SHA-512(one byte i).
func vectorID(i int) chain.Hash { return sha256.Sum256([]byte{byte(i)}) }
func vectorSig(i int) (s [64]byte) {
	return sha512.Sum512([]byte{byte(i)})
}

// vectorLeaves returns the leaves of a tree of n vector readings.
func vectorLeaves(n int) []chain.Hash {
	out := make([]chain.Hash, n)
	for i := range out {
		out[i] = leafHash(vectorID(i), vectorSig(i), i, n)
	}
	return out
}

func testLeaves(n int) []chain.Hash {
	out := make([]chain.Hash, n)
	for i := range out {
		out[i] = sha256.Sum256(binary.BigEndian.AppendUint64([]byte("leaf"), uint64(i)))
	}
	return out
}

func TestMerkleRoot(t *testing.T) {
	roots := map[chain.Hash]int{}
	for n := 0; n <= 17; n++ {
		leaves := testLeaves(n)
		got := chain.MerkleRoot(leaves)
		if want := refRoot(leaves); got != want {
			t.Fatalf("%d leaves: root %s, want %s", n, got.Short(), want.Short())
		}
		if m, seen := roots[got]; seen {
			t.Fatalf("%d and %d leaves share a root", m, n)
		}
		roots[got] = n
	}
	// Hand-written cases.
	l := testLeaves(3)
	if chain.MerkleRoot(nil) != sha256.Sum256([]byte{}) {
		t.Error("empty root is not SHA-256 of nothing")
	}
	if chain.MerkleRoot(l[:1]) != l[0] {
		t.Error("one leaf: root is not the leaf")
	}
	if chain.MerkleRoot(l) != refNode(refNode(l[0], l[1]), l[2]) {
		t.Error("three leaves: the odd leaf is not carried up")
	}
	// Unlike Bitcoin's tree, a list and the list with its last leaf repeated
	// differ, and order matters.
	if chain.MerkleRoot(l) == chain.MerkleRoot(append(slices.Clone(l), l[2])) {
		t.Error("[a b c] and [a b c c] share a root")
	}
	if chain.MerkleRoot(l[:2]) == chain.MerkleRoot([]chain.Hash{l[1], l[0]}) {
		t.Error("root does not depend on order")
	}
}

// TestLeafHash checks LeafHash, (*Block).Leaves and (*Block).ReadingsRoot
// against the documented leaf, and that the leaf commits to each of its
// inputs: the id, every signature byte, the position and the tree size.
func TestLeafHash(t *testing.T) {
	id, sig := vectorID(7), vectorSig(7)
	want := leafHash(id, sig, 2, 5)
	if got := chain.LeafHash(id, &sig, 2, 5); got != want {
		t.Fatalf("LeafHash = %s, want %s", got, want)
	}
	seen := map[chain.Hash]string{want: "original"}
	note := func(h chain.Hash, what string) {
		t.Helper()
		if prev, dup := seen[h]; dup {
			t.Fatalf("leaf of %s equals leaf of %s", what, prev)
		}
		seen[h] = what
	}
	note(chain.LeafHash(vectorID(8), &sig, 2, 5), "another id")
	note(chain.LeafHash(id, &sig, 3, 5), "another index")
	note(chain.LeafHash(id, &sig, 2, 6), "another size")
	note(chain.LeafHash(id, &sig, 5, 2), "index and size swapped")
	for i := range sig {
		s := sig
		s[i] ^= 0x10
		note(chain.LeafHash(id, &s, 2, 5), "a signature byte changed")
	}

	for _, n := range []int{0, 1, 2, 5} {
		b := testBlock(t, n)
		leaves := b.Leaves()
		if !slices.Equal(leaves, readingLeaves(b.Readings)) {
			t.Fatalf("%d readings: Leaves differs from the documented leaves", n)
		}
		if got := b.ReadingsRoot(); got != blockRoot(b.Readings) || got != b.Header.Root || got != chain.MerkleRoot(leaves) {
			t.Fatalf("%d readings: ReadingsRoot %s, documented %s, header %s", n, got.Short(), blockRoot(b.Readings).Short(), b.Header.Root.Short())
		}
	}
}

// TestMerkleProof checks the audit paths against RFC 6962, and that a proof
// holds for its own reading at its own position of its own tree size only.
// A verifier computes the leaf from the reading and the position it is
// told (LeafHash); that leaf commits to both, so a proof shown for any other
// index or any other size fails, even where the tree shapes agree.
func TestMerkleProof(t *testing.T) {
	const maxSize = 17
	for size := 1; size <= maxSize; size++ {
		leaves := vectorLeaves(size)
		root := chain.MerkleRoot(leaves)
		for i := range leaves {
			id, sig := vectorID(i), vectorSig(i)
			proof, err := chain.MerkleProof(leaves, i)
			if err != nil {
				t.Fatalf("size %d index %d: %v", size, i, err)
			}
			if want := refPath(i, leaves); !slices.Equal(proof, want) {
				t.Fatalf("size %d index %d: proof differs from RFC 6962 PATH", size, i)
			}
			if !chain.VerifyMerkleProof(root, leafHash(id, sig, i, size), i, size, proof) {
				t.Fatalf("size %d index %d: valid proof refused", size, i)
			}
			// Every other position and size, indexes up to 2n and sizes 1 to
			// 2n, with the leaf a verifier computes for that claim.
			for j := -1; j < 2*size; j++ {
				for n := 1; n <= 2*size; n++ {
					if j == i && n == size {
						continue
					}
					if chain.VerifyMerkleProof(root, leafHash(id, sig, j, n), j, n, proof) {
						t.Fatalf("size %d index %d: proof accepted as index %d of size %d", size, i, j, n)
					}
					// The leaf of the true position, with a false claim: the
					// path's shape is all that tells the claims apart, so one
					// of the same shape in a tree of another size passes.
					// That is why the leaf commits to the index and the size.
					want := j >= 0 && j < n && slices.Equal(refShape(j, n), refShape(i, size))
					if want && n == size {
						t.Fatalf("size %d: indexes %d and %d have paths of one shape", size, i, j)
					}
					if got := chain.VerifyMerkleProof(root, leaves[i], j, n, proof); got != want {
						t.Fatalf("size %d index %d: raw leaf claimed at %d of %d: accepted %v, want %v", size, i, j, n, got, want)
					}
				}
			}
			// Another reading: another id, or any signature byte changed.
			if chain.VerifyMerkleProof(root, leafHash(vectorID(i+1), sig, i, size), i, size, proof) {
				t.Fatalf("size %d index %d: proof accepted for another id", size, i)
			}
			for k := range sig {
				s := sig
				s[k] ^= 1
				if chain.VerifyMerkleProof(root, leafHash(id, s, i, size), i, size, proof) {
					t.Fatalf("size %d index %d: proof accepted with signature byte %d changed", size, i, k)
				}
			}
			// Wrong root, and proofs that are too short, too long or altered.
			if chain.VerifyMerkleProof(chain.MerkleRoot(vectorLeaves(size+1)), leaves[i], i, size, proof) ||
				chain.VerifyMerkleProof(chain.Hash{}, leaves[i], i, size, proof) {
				t.Fatalf("size %d index %d: proof accepted for a wrong root", size, i)
			}
			if len(proof) > 0 && chain.VerifyMerkleProof(root, leaves[i], i, size, proof[:len(proof)-1]) {
				t.Fatalf("size %d index %d: truncated proof accepted", size, i)
			}
			if chain.VerifyMerkleProof(root, leaves[i], i, size, append(slices.Clone(proof), root)) {
				t.Fatalf("size %d index %d: extended proof accepted", size, i)
			}
			for k := range proof {
				bad := slices.Clone(proof)
				bad[k][0] ^= 1
				if chain.VerifyMerkleProof(root, leaves[i], i, size, bad) {
					t.Fatalf("size %d index %d: proof with element %d altered accepted", size, i, k)
				}
			}
		}
		for _, i := range []int{-1, size} {
			if _, err := chain.MerkleProof(leaves, i); err == nil {
				t.Fatalf("size %d: MerkleProof(%d) gave no error", size, i)
			}
		}
	}
	if _, err := chain.MerkleProof(nil, 0); err == nil {
		t.Fatal("proof in an empty tree")
	}
	if chain.VerifyMerkleProof(chain.MerkleRoot(nil), chain.MerkleRoot(nil), 0, 0, nil) {
		t.Fatal("proof in an empty tree accepted")
	}

	// A receipt: prove reading 3 of a block against its header, knowing only
	// the reading, its position, the block's reading count and the proof.
	b := testBlock(t, 5)
	proof, err := chain.MerkleProof(b.Leaves(), 3)
	if err != nil {
		t.Fatal(err)
	}
	r := &b.Readings[3]
	size := int(b.Header.Count)
	if !chain.VerifyMerkleProof(b.Header.Root, leafHash(readingID(r), r.Sig, 3, size), 3, size, proof) {
		t.Fatal("receipt for reading 3 of a block fails")
	}
	for _, other := range []int{0, 1, 2, 4} {
		o := &b.Readings[other]
		if chain.VerifyMerkleProof(b.Header.Root, leafHash(readingID(o), o.Sig, 3, size), 3, size, proof) {
			t.Fatalf("receipt for reading 3 holds for reading %d", other)
		}
	}
}

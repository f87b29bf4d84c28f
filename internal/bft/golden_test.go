package bft_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/p2pchain/p2pchain/internal/bft"
	"github.com/p2pchain/p2pchain/internal/chain"
)

// The test vectors of docs/BFT.md: four authorities whose Ed25519 seeds are
// 32 bytes of 0x01, 0x02, 0x03 and 0x04 (the first is the key of
// docs/PROTOCOL.md section 6.1), the default network's genesis hash as the
// network, and block 1 of that network (PROTOCOL.md 6.3) as the block.

func vectorKey(i int) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(i + 1)}, ed25519.SeedSize))
}

func mustHash(s string) chain.Hash {
	h, err := chain.ParseHash(s)
	if err != nil {
		panic(err)
	}
	return h
}

var (
	vectorNetwork = mustHash("f8495d179707ef8eae495491fa224239427d2b3e63168f602087d4fcc6d047fb")
	vectorBlock   = mustHash("00002efa83851a5942442bbfa8266d7123b8775715bdf5951c039a4599dc1ebf")
)

func vectorSet(t testing.TB) *bft.Set {
	keys := make([]bft.Key, 4)
	for i := range keys {
		keys[i] = bft.KeyOf(vectorKey(i))
	}
	set, err := bft.NewSet(keys)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func vectorVote(k bft.Kind, index int, hash chain.Hash) *bft.Vote {
	v := &bft.Vote{Type: k, Height: 1, Round: 0, Hash: hash, Index: uint16(index)}
	v.Sign(vectorNetwork, vectorKey(index))
	return v
}

// vectors computes every pinned value.
func vectors(t testing.TB) map[string][]byte {
	set := vectorSet(t)
	out := map[string][]byte{}
	for i := range 4 {
		k := set.Key(i)
		out["key "+string(rune('0'+i))] = k[:]
	}
	h := set.Hash()
	out["set hash"] = h[:]
	p := &bft.Proposal{Height: 1, Round: 0, Hash: vectorBlock, POLRound: -1}
	p.Sign(vectorNetwork, vectorKey(set.Proposer(1, 0)))
	out["proposal"] = p.AppendBinary(nil)
	prevote := vectorVote(bft.KindPrevote, 0, vectorBlock)
	out["prevote signed bytes"] = append(append([]byte(bft.Domain), vectorNetwork[:]...), prevote.AppendBinary(nil)[:45]...)
	out["prevote"] = prevote.AppendBinary(nil)
	out["nil precommit"] = vectorVote(bft.KindPrecommit, 2, chain.Hash{}).AppendBinary(nil)
	c := &bft.Commit{Height: 1, Round: 0, Hash: vectorBlock}
	for i := range 3 {
		v := vectorVote(bft.KindPrecommit, i, vectorBlock)
		c.Sigs = append(c.Sigs, bft.CommitSig{Index: v.Index, Sig: v.Sig})
	}
	out["commit"] = c.AppendBinary(nil)
	e := bft.NewEvidence(vectorVote(bft.KindPrevote, 3, vectorBlock), vectorVote(bft.KindPrevote, 3, chain.Hash{}))
	out["evidence"] = e.AppendBinary(nil)
	out["change"] = bft.Change{Op: bft.OpAdd, Height: 10, Key: bft.KeyOf(vectorKey(4))}.AppendBinary(nil)
	return out
}

// golden pins the vectors of docs/BFT.md section 9.
var golden = []struct{ name, hex string }{
	{"key 0", "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"},
	{"key 1", "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394"},
	{"key 2", "ed4928c628d1c2c6eae90338905995612959273a5c63f93636c14614ac8737d1"},
	{"key 3", "ca93ac1705187071d67b83c7ff0efe8108e8ec4530575d7726879333dbdabe7c"},
	{"set hash", "7b2ec9d8b5b772d43c8dca1d84153cc8c3d655925c48b0fbc59018a5eb9ba2be"},
	{"proposal", "0100000000000000010000000000002efa83851a5942442bbfa8266d7123b8775715bdf5951c039a4599dc1ebfffffffff0aee1f99293ca9c361368f9605a6c55b750f6d5f8707bdbdb9574c3eb97eb58273bcb2021ec8fb310a90dda29c37da745bc3700b406cb03c9e1eb6ba0b8c5604"},
	{"prevote signed bytes", "703270636861696e2f6266742f7631f8495d179707ef8eae495491fa224239427d2b3e63168f602087d4fcc6d047fb0200000000000000010000000000002efa83851a5942442bbfa8266d7123b8775715bdf5951c039a4599dc1ebf"},
	{"prevote", "0200000000000000010000000000002efa83851a5942442bbfa8266d7123b8775715bdf5951c039a4599dc1ebf00003ae6f616b66e1d699d4227e788271a5daac8e96d7d1cd644cc79f5aedadc79af2ad71911d8f3cab791f4ce02dc0be8daab8255ff1d3dd5a42f5d85f6146fea07"},
	{"nil precommit", "0300000000000000010000000000000000000000000000000000000000000000000000000000000000000000000002302c11277a98797657f39f311bb995ebd844e72bf145e2c563b053144c9f9e2f456878e12c151a1048409c7e716553ab40460d6d338ebfb5fe7bb926432cc404"},
	{"commit", "0400000000000000010000000000002efa83851a5942442bbfa8266d7123b8775715bdf5951c039a4599dc1ebf000300002e653af1f152261a6b9890f42c61bef50bd950b8d81cfabc125e1b5c18ca8b209734e25d8e366b1f3626f95698950a1e9fb6130bd8952208e912cf29e638960c0001acfac89aeb91462263e5a3b7b7cad0e462a45284ee0ccc54ecb2101aee2239cfcebe5ff1f4478018f02ccff02f6d8dc3a1bb82beb83c51a33b23cc4a631b8d0f0002cce6915f3d0e89fc0d80ae53a27358553a2f2d956dc07745de7ff0f8c0dfff1d9995bde186f34c976fbc1fdd1723fcc90d92bb95c982109a1245fe4f151d5e0c"},
	{"evidence", "050200000000000000010000000000000000000000000000000000000000000000000000000000000000000000000003aeeaecfd4dba2d4b95db2b6708b9849f7f86ac168bc44f8ce1b7df77365603e87d7dccf1cad35b161d8727f0dece387a3cc68f8d545d28741fb0d1cf0c32c80b0200000000000000010000000000002efa83851a5942442bbfa8266d7123b8775715bdf5951c039a4599dc1ebf00032e4a52dbf2bb4537a0fba81851ec782eb2c54decec7a585e2b963dd077abe5e228fcdb8fe120c59e166f50e104cf22e0c14cb640ac16b5790ffd7503559f3707"},
	{"change", "01000000000000000a6e7a1cdd29b0b78fd13af4c5598feff4ef2a97166e3ca6f2e4fbfccd80505bf1"},
}

// fromLayout computes the vectors again from the layouts the document
// gives, with crypto/ed25519 and byte slices only.
func fromLayout() map[string][]byte {
	u16 := func(v uint16) []byte { return []byte{byte(v >> 8), byte(v)} }
	u32 := func(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }
	u64 := func(v uint64) []byte { return append(u32(uint32(v>>32)), u32(uint32(v))...) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	pub := func(i int) []byte { return vectorKey(i).Public().(ed25519.PublicKey) }
	sign := func(i int, statement []byte) []byte {
		return ed25519.Sign(vectorKey(i), cat([]byte("p2pchain/bft/v1"), vectorNetwork[:], statement))
	}
	var zero [32]byte
	out := map[string][]byte{}
	for i := range 4 {
		out["key "+string(rune('0'+i))] = pub(i)
	}
	sh := sha256.Sum256(cat([]byte("p2pchain/bft/set/v1"), u16(4), pub(0), pub(1), pub(2), pub(3)))
	out["set hash"] = sh[:]
	// Proposer of height 1, round 0: (1 + 0) mod 4 = authority 1.
	ps := cat([]byte{1}, u64(1), u32(0), vectorBlock[:], u32(0xffffffff))
	out["proposal"] = cat(ps, sign(1, ps))
	pv := cat([]byte{2}, u64(1), u32(0), vectorBlock[:])
	out["prevote signed bytes"] = cat([]byte("p2pchain/bft/v1"), vectorNetwork[:], pv)
	out["prevote"] = cat(pv, u16(0), sign(0, pv))
	npc := cat([]byte{3}, u64(1), u32(0), zero[:])
	out["nil precommit"] = cat(npc, u16(2), sign(2, npc))
	pc := cat([]byte{3}, u64(1), u32(0), vectorBlock[:])
	out["commit"] = cat([]byte{4}, u64(1), u32(0), vectorBlock[:], u16(3), u16(0), sign(0, pc), u16(1), sign(1, pc), u16(2), sign(2, pc))
	nilPV := cat([]byte{2}, u64(1), u32(0), zero[:])
	a, b := cat(nilPV, u16(3), sign(3, nilPV)), cat(pv, u16(3), sign(3, pv)) // nil sorts first
	out["evidence"] = cat([]byte{5}, a, b)
	out["change"] = cat([]byte{1}, u64(10), pub(4))
	return out
}

func TestGoldenVectors(t *testing.T) {
	code, layout := vectors(t), fromLayout()
	for _, g := range golden {
		if got := hex.EncodeToString(code[g.name]); got != g.hex {
			t.Errorf("%s from the code:\n got %s\nwant %s", g.name, got, g.hex)
		}
		if got := hex.EncodeToString(layout[g.name]); got != g.hex {
			t.Errorf("%s from the documented layout:\n got %s\nwant %s", g.name, got, g.hex)
		}
	}
	if len(code) != len(golden) || len(layout) != len(golden) {
		t.Errorf("%d and %d vectors computed, %d pinned", len(code), len(layout), len(golden))
	}
	// The pinned messages decode, verify and name the right authority.
	set := vectorSet(t)
	for _, name := range []string{"proposal", "prevote", "nil precommit", "commit"} {
		msg, err := bft.DecodeMessage(code[name])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		switch m := msg.(type) {
		case *bft.Proposal:
			err = m.Verify(vectorNetwork, set)
		case *bft.Vote:
			err = m.Verify(vectorNetwork, set)
		case *bft.Commit:
			err = bft.VerifyCommit(vectorNetwork, set, 1, vectorBlock, m)
		}
		if err != nil {
			t.Errorf("%s does not verify: %v", name, err)
		}
	}
	var e bft.Evidence
	if err := e.UnmarshalBinary(code["evidence"]); err != nil || e.Verify(vectorNetwork, set) != nil || e.Offender(set) != 3 {
		t.Errorf("evidence: %v", err)
	}
}

// TestDocVectors checks that docs/BFT.md shows every pinned value.
func TestDocVectors(t *testing.T) {
	doc, err := os.ReadFile("../../docs/BFT.md")
	if err != nil {
		t.Fatal(err)
	}
	flat := strings.Join(strings.Fields(string(doc)), "")
	for _, g := range golden {
		if !strings.Contains(flat, g.hex) {
			t.Errorf("docs/BFT.md does not show %s = %s", g.name, g.hex)
		}
	}
}

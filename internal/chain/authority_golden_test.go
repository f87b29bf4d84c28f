package chain_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/bft"
	"github.com/p2pchain/p2pchain/internal/chain"
)

// authorityGolden pins the test vectors of the authority network of
// docs/PROTOCOL.md section 16.11: the network "clinic" whose authorities
// are the four keys of docs/BFT.md section 12 (Ed25519 seeds of 32 bytes
// 01, 02, 03 and 04), and its block 1, which carries the reading of
// PROTOCOL.md 6.2 and one membership change (add the key of seed 05 from
// height 2), sealed by the commit of authorities 0, 1 and 2.
// TestAuthorityGoldenVectors computes each value with the code (packages
// chain and bft) and again from the documented layouts (byte slices,
// crypto/sha256 and crypto/ed25519 only); TestAuthorityProtocolDocVectors
// checks that the document shows every one.
var authorityGolden = []struct{ name, hex string }{
	{"authority set hash", "7b2ec9d8b5b772d43c8dca1d84153cc8c3d655925c48b0fbc59018a5eb9ba2be"},
	{"authority commitment preimage", "703270636861696e2f6e6574776f726b2f76317b2ec9d8b5b772d43c8dca1d84153cc8c3d655925c48b0fbc59018a5eb9ba2be000000000000138800000000000003e800000000000001f400000000000001f400000000000000fa00000000000001f400000000000000fa"},
	{"authority commitment", "71f09405347a7d27421149a2d9edd550ca8bca1f23d347b3aa590319c26dcef8"},
	{"authority genesis parent preimage", "703270636861696e2f67656e657369732f763200000400000000000001d4c00000000100000000000000000171f09405347a7d27421149a2d9edd550ca8bca1f23d347b3aa590319c26dcef8636c696e6963"},
	{"authority genesis parent", "27e4812cce01992b127ecae4a47e28115182180c4918fdecddbe59b647be0727"},
	{"authority genesis header", "00000002000000000000000027e4812cce01992b127ecae4a47e28115182180c4918fdecddbe59b647be07270000019b76daa800e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85500000000000000000000000000000000"},
	{"authority genesis hash", "149b12702f656ad1f9230163f514468c37508f36881cdb851c503a092c6336b5"},
	{"authority change", "0100000000000000026e7a1cdd29b0b78fd13af4c5598feff4ef2a97166e3ca6f2e4fbfccd80505bf1"},
	{"authority block 1 root", "43cd25d761ad5acb9f5e6a6b1d523ccd1468b0dc91cb802302fdeaaca2e8cab2"},
	{"authority block 1 header", "000000020000000000000001149b12702f656ad1f9230163f514468c37508f36881cdb851c503a092c6336b50000019b76db926043cd25d761ad5acb9f5e6a6b1d523ccd1468b0dc91cb802302fdeaaca2e8cab200000001000000000000000000000000"},
	{"authority block 1 hash", "7dc21073719c168291127299d9b4c60c6fed2e1861dbc8f42f114eb3117d6f50"},
	{"authority proposal", "010000000000000001000000007dc21073719c168291127299d9b4c60c6fed2e1861dbc8f42f114eb3117d6f50ffffffff41ee179460acb4f56aed55e65149897d9d5d559b9c393512717b155c18a251f81a03d15561b620dbd37b24fec32f72d5591fcc7d0f838d4f3cf29d0fedb70a01"},
	{"authority proposal message", "010000000000000001000000007dc21073719c168291127299d9b4c60c6fed2e1861dbc8f42f114eb3117d6f50ffffffff41ee179460acb4f56aed55e65149897d9d5d559b9c393512717b155c18a251f81a03d15561b620dbd37b24fec32f72d5591fcc7d0f838d4f3cf29d0fedb70a01000000020000000000000001149b12702f656ad1f9230163f514468c37508f36881cdb851c503a092c6336b50000019b76db926043cd25d761ad5acb9f5e6a6b1d523ccd1468b0dc91cb802302fdeaaca2e8cab200000001000000000000000000000000000000010970617469656e742d3100480000019b76db1d308a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c74f69ae1fd8ff993f98eef840d73005662e44b4d772f801f62d2bc1c2d0d8d1c996a2c982ae4984965e1b2ddbe3c369876315655c053c114209b8887defacc0c00010100000000000000026e7a1cdd29b0b78fd13af4c5598feff4ef2a97166e3ca6f2e4fbfccd80505bf100000000"},
	{"authority seal", "040000000000000001000000007dc21073719c168291127299d9b4c60c6fed2e1861dbc8f42f114eb3117d6f5000030000ee14da4071794958f21da9b970e6daa31297126edd9c29567088b8f9401fdf9de2e91f1bb2dbc1468794901cabb0034308537ebdfc6f064fd16ba1db1ddfda0400015701065ff9abcf72ef8ab5fc71a0a78e3a68c9f9443c1d9cec754d0ed9bae74a1bc5b9eaa057eb858bd849bc76f56001dc24f3c9b31b57208bca2c93a342880000025ef8664acdc4ac42faeeb88985d73a912cf56e4dab8d75ad3f03d44e844ba30450ad65d63d22f45d2614eb9856dd4f2a46a7cf93e7f37e66e392f21ef8d72a0f"},
	{"authority block 1 encoding", "000000020000000000000001149b12702f656ad1f9230163f514468c37508f36881cdb851c503a092c6336b50000019b76db926043cd25d761ad5acb9f5e6a6b1d523ccd1468b0dc91cb802302fdeaaca2e8cab200000001000000000000000000000000000000010970617469656e742d3100480000019b76db1d308a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c74f69ae1fd8ff993f98eef840d73005662e44b4d772f801f62d2bc1c2d0d8d1c996a2c982ae4984965e1b2ddbe3c369876315655c053c114209b8887defacc0c00010100000000000000026e7a1cdd29b0b78fd13af4c5598feff4ef2a97166e3ca6f2e4fbfccd80505bf1000000f5040000000000000001000000007dc21073719c168291127299d9b4c60c6fed2e1861dbc8f42f114eb3117d6f5000030000ee14da4071794958f21da9b970e6daa31297126edd9c29567088b8f9401fdf9de2e91f1bb2dbc1468794901cabb0034308537ebdfc6f064fd16ba1db1ddfda0400015701065ff9abcf72ef8ab5fc71a0a78e3a68c9f9443c1d9cec754d0ed9bae74a1bc5b9eaa057eb858bd849bc76f56001dc24f3c9b31b57208bca2c93a342880000025ef8664acdc4ac42faeeb88985d73a912cf56e4dab8d75ad3f03d44e844ba30450ad65d63d22f45d2614eb9856dd4f2a46a7cf93e7f37e66e392f21ef8d72a0f"},
}

// authorityPeerIDs are the libp2p peer IDs of the keys of seeds 01 to 05,
// as the network file lists authorities (netfile.PeerIDOf computed them;
// the test computes them again from PROTOCOL.md section 8).
var authorityPeerIDs = []string{
	"12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5",
	"12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq",
	"12D3KooWRndVhVZPCiQwHBBBdg769GyrPUW13zxwqQyf9r3ANaba",
	"12D3KooWPT98FXMfDQYavZm66EeVjTqP9Nnehn1gyaydqV8L8BQw",
	"12D3KooWHFd1gyNYFqxt7ke9FY2VoVVWY2XSPhvL9vg2pB6wQGfa",
}

// docPeerID is the documented peer ID of an Ed25519 key: base58btc of the
// identity multihash 00 24 08 01 12 20 || key.
func docPeerID(pub []byte) string {
	const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	b := cat([]byte{0x00, 0x24, 0x08, 0x01, 0x12, 0x20}, pub)
	n := new(big.Int).SetBytes(b)
	var out []byte
	for mod, base := new(big.Int), big.NewInt(58); n.Sign() > 0; {
		n.DivMod(n, base, mod)
		out = append(out, alphabet[mod.Int64()])
	}
	for _, c := range b {
		if c != 0 {
			break
		}
		out = append(out, '1')
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return string(out)
}

// The inputs of the authority vectors: the network file values of
// PROTOCOL.md 16.11 (netfile's defaults, name "clinic", genesis time
// 2026-01-01T00:00:00Z), which the chain package cannot read itself
// (netfile imports it).
const authorityName = "clinic"

var authorityIntervalAndTimeouts = []time.Duration{
	5 * time.Second,        // block_interval
	time.Second,            // timeouts.propose
	500 * time.Millisecond, // timeouts.propose_delta
	500 * time.Millisecond, // timeouts.prevote
	250 * time.Millisecond, // timeouts.prevote_delta
	500 * time.Millisecond, // timeouts.precommit
	250 * time.Millisecond, // timeouts.precommit_delta
}

// authorityKey returns the key of seed i+1 (32 bytes of i+1): 0 to 3 are
// the genesis authorities, 4 the key the membership change adds.
func authorityKey(i int) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(i + 1)}, ed25519.SeedSize))
}

func authorityPub(i int) []byte { return authorityKey(i).Public().(ed25519.PublicKey) }

// cat concatenates byte strings.
func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// authorityParams returns the documented parameters of the network: the
// defaults of the network file, Difficulty 0, MaxReorgDepth 1, FinalAge 0,
// Consensus 1 and the commitment.
func authorityParams(commitment chain.Hash) chain.Params {
	p := chain.DefaultParams()
	p.Name = authorityName
	p.Difficulty = 0
	p.MaxReorgDepth = 1
	p.FinalAge = 0
	p.Consensus = chain.Authority
	p.Commitment = commitment
	return p
}

// commitmentPreimage is the documented input of the commitment:
// "p2pchain/network/v1" || set hash || block interval || the six
// timeouts, each in milliseconds as a uint64 BE.
func commitmentPreimage(setHash []byte) []byte {
	b := cat([]byte("p2pchain/network/v1"), setHash)
	for _, d := range authorityIntervalAndTimeouts {
		b = append(b, be64(uint64(d.Milliseconds()))...)
	}
	return b
}

// authorityGenesisPreimage is the documented input of an authority
// network's genesis parent: "p2pchain/genesis/v2" || u32 MaxReadings ||
// u64 MaxFutureDrift (ms) || u32 MaxReorgDepth || u64 FinalAge (ms) ||
// consensus (1 byte) || commitment (32) || Name.
func authorityGenesisPreimage(q chain.Params) []byte {
	return cat([]byte("p2pchain/genesis/v2"), be32(uint32(q.MaxReadings)), be64(uint64(q.MaxFutureDrift.Milliseconds())),
		be32(q.MaxReorgDepth), be64(uint64(q.FinalAge.Milliseconds())), []byte{1}, q.Commitment[:], []byte(q.Name))
}

// computeAuthorityVectors returns every authority vector, each computed by
// the code and checked against the computation from the documentation.
func computeAuthorityVectors(t *testing.T) (map[string]string, map[string][]byte) {
	t.Helper()
	out := map[string]string{}
	raw := map[string][]byte{}
	put := func(name string, code, doc []byte) {
		t.Helper()
		if !bytes.Equal(code, doc) {
			t.Fatalf("%s: the code gives %x, the documentation %x", name, code, doc)
		}
		out[name] = hex.EncodeToString(code)
		raw[name] = code
	}
	h := func(x chain.Hash) []byte { return x[:] }

	// The authority set and the commitment (BFT.md 2; PROTOCOL.md 16.1).
	keys := make([]bft.Key, 4)
	for i := range keys {
		keys[i] = bft.KeyOf(authorityKey(i))
	}
	set, err := bft.NewSet(keys)
	if err != nil {
		t.Fatal(err)
	}
	docSet := sha256.Sum256(cat([]byte("p2pchain/bft/set/v1"), be16(4), authorityPub(0), authorityPub(1), authorityPub(2), authorityPub(3)))
	sh := set.Hash()
	put("authority set hash", sh[:], docSet[:])
	put("authority commitment preimage", commitmentPreimage(sh[:]), commitmentPreimage(docSet[:]))
	commitment := chain.Hash(sha256.Sum256(commitmentPreimage(docSet[:])))
	put("authority commitment", h(sha256.Sum256(commitmentPreimage(sh[:]))), h(commitment))

	// The genesis (PROTOCOL.md 3.2 and 16.2).
	p := authorityParams(commitment)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	pre := authorityGenesisPreimage(p)
	g := p.Genesis()
	put("authority genesis parent preimage", pre, pre)
	put("authority genesis parent", h(g.Header.Parent), h(sha256.Sum256(pre)))
	genesis := chain.Header{Version: 2, Height: 0, Parent: sha256.Sum256(pre), Time: p.GenesisTime,
		Root: sha256.Sum256(nil), Count: 0, Difficulty: 0, Nonce: 0}
	enc, _ := g.Header.MarshalBinary()
	put("authority genesis header", enc, headerBytes(&genesis))
	network := g.Hash()
	docNetwork := sha256.Sum256(headerBytes(&genesis))
	put("authority genesis hash", network[:], docNetwork[:])

	// The membership change: add the key of seed 05 from height 2, the
	// height after its block (what an approval of height 0 becomes).
	change := bft.Change{Op: bft.OpAdd, Height: 2, Key: bft.KeyOf(authorityKey(4))}
	docChange := cat([]byte{1}, be64(2), authorityPub(4))
	put("authority change", bft.EncodeChanges([]bft.Change{change}), docChange)

	// Block 1: the reading of 6.2 and the change, built as a proposer
	// builds it (internal/node buildBlock), at genesis + 60 s.
	c := mustChain(t, p)
	r, err := chain.NewReading(authorityKey(0), "patient-1", 72, time.UnixMilli(vectorReadingTime))
	if err != nil {
		t.Fatal(err)
	}
	blk := c.NewBlock([]chain.Reading{r}, time.UnixMilli(vectorBlockTime))
	blk.Changes = bft.EncodeChanges([]bft.Change{change})
	blk.Header.Root = blk.ReadingsRoot()
	leaf := leafHash(readingID(&r), r.Sig, 0, 1)
	docRoot := sha256.Sum256(cat([]byte{2}, leaf[:], docChange))
	put("authority block 1 root", h(blk.Header.Root), docRoot[:])
	want := chain.Header{Version: 2, Height: 1, Parent: docNetwork, Time: vectorBlockTime, Root: docRoot,
		Count: 1, Difficulty: 0, Nonce: 0}
	enc, _ = blk.Header.MarshalBinary()
	put("authority block 1 header", enc, headerBytes(&want))
	hash := blk.Hash()
	docHash := sha256.Sum256(headerBytes(&want))
	put("authority block 1 hash", hash[:], docHash[:])

	// The proposal of block 1 (height 1, round 0, POL round -1) by its
	// proposer, (1 + 0) mod 4 = authority 1, and the consensus message
	// that carries it: the proposal, then the block without a seal.
	docSign := func(i int, statement []byte) []byte {
		return ed25519.Sign(authorityKey(i), cat([]byte("p2pchain/bft/v1"), docNetwork[:], statement))
	}
	if set.Proposer(1, 0) != 1 {
		t.Fatalf("proposer of height 1, round 0 is %d, the document says 1", set.Proposer(1, 0))
	}
	prop := &bft.Proposal{Height: 1, Round: 0, Hash: hash, POLRound: -1}
	prop.Sign(network, authorityKey(1))
	ps := cat([]byte{1}, be64(1), be32(0), docHash[:], be32(0xffffffff))
	docProp := cat(ps, docSign(1, ps))
	put("authority proposal", prop.AppendBinary(nil), docProp)
	unsealed := cat(headerBytes(&want), be32(1), readingEncoding(&r), be16(1), docChange, be32(0))
	msg, err := blk.AppendBinary(prop.AppendBinary(nil))
	if err != nil {
		t.Fatal(err)
	}
	put("authority proposal message", msg, cat(docProp, unsealed))

	// The seal: the commit of authorities 0, 1 and 2 (their precommits of
	// block 1 at height 1, round 0).
	cm := &bft.Commit{Height: 1, Round: 0, Hash: hash}
	for i := range 3 {
		v := &bft.Vote{Type: bft.KindPrecommit, Height: 1, Round: 0, Hash: hash, Index: uint16(i)}
		v.Sign(network, authorityKey(i))
		cm.Sigs = append(cm.Sigs, bft.CommitSig{Index: v.Index, Sig: v.Sig})
	}
	pc := cat([]byte{3}, be64(1), be32(0), docHash[:])
	docSeal := cat([]byte{4}, be64(1), be32(0), docHash[:], be16(3),
		be16(0), docSign(0, pc), be16(1), docSign(1, pc), be16(2), docSign(2, pc))
	put("authority seal", cm.AppendBinary(nil), docSeal)

	// The sealed block as the blocks topic and the blocks protocol carry it.
	sealed := *blk
	sealed.Seal = cm.AppendBinary(nil)
	blockEnc, err := sealed.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	put("authority block 1 encoding", blockEnc,
		cat(headerBytes(&want), be32(1), readingEncoding(&r), be16(1), docChange, be32(uint32(len(docSeal))), docSeal))
	return out, raw
}

// readingEncoding is the documented wire encoding of a reading: its
// content, then its signature.
func readingEncoding(r *chain.Reading) []byte { return cat(readingContent(r), r.Sig[:]) }

func TestAuthorityGoldenVectors(t *testing.T) {
	got, raw := computeAuthorityVectors(t)
	if len(got) != len(authorityGolden) {
		t.Fatalf("%d vectors computed, %d pinned", len(got), len(authorityGolden))
	}
	for _, v := range authorityGolden {
		if got[v.name] != v.hex {
			t.Errorf("%s:\n got %s\npin %s", v.name, got[v.name], v.hex)
		}
	}

	for i, id := range authorityPeerIDs {
		if got := docPeerID(authorityPub(i)); got != id {
			t.Errorf("peer ID of seed %02x: %s from the layout, %s pinned", i+1, got, id)
		}
	}

	// What the document says the vectors do: the sealed block decodes to
	// the same block, its seal and change pass bft.CheckSeal under the
	// genesis set, and the chain takes it only as Sealed, final at once.
	var commitment chain.Hash
	copy(commitment[:], raw["authority commitment"])
	p := authorityParams(commitment)
	network := p.Genesis().Hash()
	b, err := chain.DecodeBlock(raw["authority block 1 encoding"], p.MaxReadings)
	if err != nil {
		t.Fatal(err)
	}
	if enc, _ := b.MarshalBinary(); !bytes.Equal(enc, raw["authority block 1 encoding"]) {
		t.Fatal("the sealed block does not encode back to its bytes")
	}
	if !bytes.Equal(b.Changes, raw["authority change"]) || !bytes.Equal(b.Seal, raw["authority seal"]) {
		t.Fatal("the decoded block lost its change or seal")
	}
	if err := chain.CheckBlock(b, p); err != nil {
		t.Fatalf("block 1: %v", err)
	}
	keys := make([]bft.Key, 4)
	for i := range keys {
		keys[i] = bft.KeyOf(authorityKey(i))
	}
	set, _ := bft.NewSet(keys)
	sched := bft.NewSchedule(set)
	if _, changes, err := bft.CheckSeal(network, sched, b); err != nil || len(changes) != 1 {
		t.Fatalf("CheckSeal: %v (%d changes)", err, len(changes))
	}
	// The seal is outside the hash: without it the block is the same
	// block, and CheckSeal refuses it; a commit of two of four is short.
	unsealed := *b
	unsealed.Seal = nil
	if unsealed.Hash() != b.Hash() {
		t.Fatal("the seal changes the block hash")
	}
	if _, _, err := bft.CheckSeal(network, sched, &unsealed); bft.CodeOf(err) != bft.ErrTooFewSignatures {
		t.Fatalf("CheckSeal of the unsealed block: %v", err)
	}
	var cm bft.Commit
	if err := cm.UnmarshalBinary(b.Seal); err != nil {
		t.Fatal(err)
	}
	short := cm
	short.Sigs = cm.Sigs[:2]
	twoOfFour := unsealed
	twoOfFour.Seal = short.AppendBinary(nil)
	if _, _, err := bft.CheckSeal(network, sched, &twoOfFour); bft.CodeOf(err) != bft.ErrTooFewSignatures {
		t.Fatalf("CheckSeal of a commit of two: %v", err)
	}
	// On another network (another genesis hash) the seal does not verify.
	if _, _, err := bft.CheckSeal(chain.DefaultParams().Genesis().Hash(), sched, b); bft.CodeOf(err) != bft.ErrBadSignature {
		t.Fatalf("CheckSeal under another network: %v", err)
	}

	c := mustChain(t, p)
	now := time.UnixMilli(vectorBlockTime)
	if _, err := c.Process(&unsealed, now, 0); !errors.Is(err, chain.ErrBadSeal) {
		t.Fatalf("unsealed block without the Sealed flag: %v, want ErrBadSeal", err)
	}
	if _, err := c.Process(b, now, 0); !errors.Is(err, chain.ErrBadSeal) {
		t.Fatalf("sealed block without the Sealed flag: %v, want ErrBadSeal", err)
	}
	if _, err := c.Process(b, now, chain.Sealed); err != nil {
		t.Fatal(err)
	}
	if c.Height() != 1 || c.FinalHeight() != 1 {
		t.Fatalf("height %d, final %d: a sealed block is final at once", c.Height(), c.FinalHeight())
	}
	if err := sched.Apply(1, bft.Change{Op: bft.OpAdd, Height: 2, Key: bft.KeyOf(authorityKey(4))}); err != nil {
		t.Fatal(err)
	}
	if sched.SetAt(1).Len() != 4 || sched.SetAt(2).Len() != 5 || sched.SetAt(2).Key(4) != bft.KeyOf(authorityKey(4)) {
		t.Fatal("the change does not add the key of seed 05 last from height 2")
	}
	// A sibling of block 1 (another time), even sealed, conflicts with a
	// final block.
	sib := *b
	sib.Header.Time++
	if _, err := c.Process(&sib, now, chain.Sealed); !errors.Is(err, chain.ErrForkTooDeep) {
		t.Fatalf("sibling of a final block: %v, want ErrForkTooDeep", err)
	}

	// The largest block of the network (PROTOCOL.md 16.3).
	if got, want := p.MaxBlockSize(), 100+4+1024*171+2+16*41+4+47+66*256; got != want {
		t.Fatalf("MaxBlockSize %d, documented %d", got, want)
	}
	// A proof-of-work network refuses any trailer (rule 6c).
	pow := chain.TestParams("test")
	pb := mustChain(t, pow).NewBlock([]chain.Reading{r0(t)}, now)
	pb.Seal = b.Seal
	if err := chain.CheckBlock(pb, pow); !errors.Is(err, chain.ErrBadSeal) {
		t.Fatalf("trailer on a proof-of-work network: %v, want ErrBadSeal", err)
	}
}

// r0 is the reading of PROTOCOL.md 6.2.
func r0(t *testing.T) chain.Reading {
	r, err := chain.NewReading(authorityKey(0), "patient-1", 72, time.UnixMilli(vectorReadingTime))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestAuthorityTrailerDecoding checks the decoding rules of the trailer
// that PROTOCOL.md 16.3 states.
func TestAuthorityTrailerDecoding(t *testing.T) {
	_, raw := computeAuthorityVectors(t)
	enc := raw["authority block 1 encoding"]
	body := len(enc) - 2 - 41 - 4 - len(raw["authority seal"]) // header, count, reading
	base := enc[:body]
	for _, tc := range []struct {
		name    string
		trailer []byte
	}{
		{"empty trailer", cat(be16(0), be32(0))},
		{"fewer than 6 bytes", []byte{0, 0, 0, 0, 0}},
		{"17 changes", cat(be16(17), make([]byte, 17*41), be32(0))},
		{"changes cut short", cat(be16(2), raw["authority change"], be32(0))},
		{"seal longer than the rest", cat(be16(1), raw["authority change"], be32(10), make([]byte, 9))},
		{"bytes after the seal", cat(be16(1), raw["authority change"], be32(1), make([]byte, 2))},
		{"seal over MaxSealSize", cat(be16(0), be32(47+66*256+1), make([]byte, 47+66*256+1))},
	} {
		if _, err := chain.DecodeBlock(cat(base, tc.trailer), 1024); !errors.Is(err, chain.ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", tc.name, err)
		}
	}
	// Changes alone, a seal alone: both decode.
	for _, trailer := range [][]byte{cat(be16(1), raw["authority change"], be32(0)), cat(be16(0), be32(1), []byte{4})} {
		if _, err := chain.DecodeBlock(cat(base, trailer), 1024); err != nil {
			t.Errorf("trailer %x: %v", trailer, err)
		}
	}
}

// TestAuthorityProtocolDocVectors keeps docs/PROTOCOL.md in step with the
// pinned authority vectors: every one must appear in it, as contiguous hex.
func TestAuthorityProtocolDocVectors(t *testing.T) {
	doc, err := os.ReadFile("../../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range authorityGolden {
		if v.hex == "" || !strings.Contains(string(doc), v.hex) {
			t.Errorf("docs/PROTOCOL.md lacks the %s: %s", v.name, v.hex)
		}
	}
	for i, id := range authorityPeerIDs {
		if !strings.Contains(string(doc), id) {
			t.Errorf("docs/PROTOCOL.md lacks the peer ID of seed %02x: %s", i+1, id)
		}
	}
}

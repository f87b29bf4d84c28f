package chain_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// golden pins the test vectors of docs/PROTOCOL.md section 6 (and 3.2).
// TestGoldenVectors computes each value twice, with the code and from the
// documented layouts (the helpers of helpers_test.go), and compares both
// with the pinned one; TestProtocolDocVectors checks that the document
// shows every pinned value. A change of any encoding or hash breaks both.
var golden = []struct{ name, hex string }{
	{"genesis parent preimage", "703270636861696e2f67656e657369732f763200000400000000000001d4c000000006000000000000ea60703270636861696e"},
	{"genesis parent", "3333a38d5eebc6d3e5f9b48cd97f59f67d0b87506df797b3fd5c45225d339322"},
	{"genesis header", "0000000200000000000000003333a38d5eebc6d3e5f9b48cd97f59f67d0b87506df797b3fd5c45225d3393220000019b76daa800e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85500000000000000120000000000000000"},
	{"genesis hash", "f8495d179707ef8eae495491fa224239427d2b3e63168f602087d4fcc6d047fb"},
	{"genesis hash, difficulty 0", "8f6aa83240e890229f02d87132777eeb0bc9179fc415bc33b40d43d4d686195d"},
	{"genesis hash, network test", "69998ccb2f6336f1ddf90df361de6dcaf350aef6f38c75404177469f7564f3f4"},
	{"genesis hash, 512 readings", "60522a51202e86bfa2d2e4def9e0a07c4d5ef3bdcc950d4076c8cea76e699548"},
	{"genesis hash, reorg depth 12", "a5365b9068efba00c63f37a9ca80ed9597a27db71c7a55f2359c6836eb11714b"},
	{"genesis hash, final age 0", "3ad756d65f2558031be48bba37f25a4a8f210005bc3824cfedee11c661fc3a28"},
	{"key seed", "0101010101010101010101010101010101010101010101010101010101010101"},
	{"public key", "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"},
	{"reading content", "0970617469656e742d3100480000019b76db1d308a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"},
	{"reading id", "e3186ac0b3a2eb8ca1be6393851b5979d93c9089488a7d2a4d8bcd5525ad843b"},
	{"reading signature", "74f69ae1fd8ff993f98eef840d73005662e44b4d772f801f62d2bc1c2d0d8d1c996a2c982ae4984965e1b2ddbe3c369876315655c053c114209b8887defacc0c"},
	{"reading encoding", "0970617469656e742d3100480000019b76db1d308a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c74f69ae1fd8ff993f98eef840d73005662e44b4d772f801f62d2bc1c2d0d8d1c996a2c982ae4984965e1b2ddbe3c369876315655c053c114209b8887defacc0c"},
	{"block 1 root", "036a9255478dea89db76a87db746846acd8336b0ca1fd01db5f873199f637b0b"},
	{"block 1 header", "000000020000000000000001f8495d179707ef8eae495491fa224239427d2b3e63168f602087d4fcc6d047fb0000019b76db9260036a9255478dea89db76a87db746846acd8336b0ca1fd01db5f873199f637b0b00000001000000120000000000016889"},
	{"block 1 nonce", "0000000000016889"},
	{"block 1 hash", "00002efa83851a5942442bbfa8266d7123b8775715bdf5951c039a4599dc1ebf"},
	{"block 1 hash, nonce 0", "709b9bd23605c3197dca29395f0884fe35780a76171b82f56e3f4228be681f0d"},
	{"block 1 encoding", "000000020000000000000001f8495d179707ef8eae495491fa224239427d2b3e63168f602087d4fcc6d047fb0000019b76db9260036a9255478dea89db76a87db746846acd8336b0ca1fd01db5f873199f637b0b00000001000000120000000000016889000000010970617469656e742d3100480000019b76db1d308a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c74f69ae1fd8ff993f98eef840d73005662e44b4d772f801f62d2bc1c2d0d8d1c996a2c982ae4984965e1b2ddbe3c369876315655c053c114209b8887defacc0c"},
	{"block 1 gossip id", "35e755d95f53fde26a93861798f52c017b811e8894f131dabc59319375107fcb"},
	{"block 1 header, difficulty 0", "0000000200000000000000018f6aa83240e890229f02d87132777eeb0bc9179fc415bc33b40d43d4d686195d0000019b76db9260036a9255478dea89db76a87db746846acd8336b0ca1fd01db5f873199f637b0b00000001000000000000000000000000"},
	{"block 1 hash, difficulty 0", "83a172292a2eb1672ed3f1fcfb82a1b62f85302991dbdb70d0f0855801dfe719"},
	{"block 1 encoding, difficulty 0", "0000000200000000000000018f6aa83240e890229f02d87132777eeb0bc9179fc415bc33b40d43d4d686195d0000019b76db9260036a9255478dea89db76a87db746846acd8336b0ca1fd01db5f873199f637b0b00000001000000000000000000000000000000010970617469656e742d3100480000019b76db1d308a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c74f69ae1fd8ff993f98eef840d73005662e44b4d772f801f62d2bc1c2d0d8d1c996a2c982ae4984965e1b2ddbe3c369876315655c053c114209b8887defacc0c"},
	{"merkle leaf 0 of 3", "2eb83f443a13cf5a1a538b91c74a739ea80fd852dd593de526e0b7a47fc2481f"},
	{"merkle leaf 1 of 3", "c9b07df4961652858b94368d6438c833eb2167ea0a9e35e44b8d1af56cde92a9"},
	{"merkle leaf 2 of 3", "bffd4cbb335b094616eac942860a9f56e86c2d95c50689db211bef615ce1bf97"},
	{"merkle root 0", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	{"merkle root 1", "6068b4f45b4e03e4e070e8d028b7ecd20d7bfc0a3fb88336fe21e5912d55fef2"},
	{"merkle root 2", "0ee3a1576e6452afa7259728f56017b85f24f1fdb3a07b2a04694fb358307ed7"},
	{"merkle root 3", "98c8bceaf436f00d1562a67f6a715f8402bb69f4a0d42d2263d4c8abd0c53bff"},
	{"merkle root 5", "f709c6e1aa1a8010abdf3ff2c42755d4e425553d8dc2f85863b7e9816f2c5674"},
	{"status message", "68f8495d179707ef8eae495491fa224239427d2b3e63168f602087d4fcc6d047fb00002efa83851a5942442bbfa8266d7123b8775715bdf5951c039a4599dc1ebf00000000000000010000000000000000000000000000000000000000000000000000000000080000"},
	{"blocks request", "4302000200002efa83851a5942442bbfa8266d7123b8775715bdf5951c039a4599dc1ebff8495d179707ef8eae495491fa224239427d2b3e63168f602087d4fcc6d047fb"},
}

// The inputs of the vectors (PROTOCOL.md 6.1 to 6.3).
var (
	vectorSeed        = bytes.Repeat([]byte{1}, ed25519.SeedSize)
	vectorReadingTime = chain.DefaultParams().GenesisTime + 30_000
	vectorBlockTime   = chain.DefaultParams().GenesisTime + 60_000
)

// genesisPreimage is the documented input of the genesis parent hash:
// "p2pchain/genesis/v2" || u32 MaxReadings || u64 MaxFutureDrift (ms) ||
// u32 MaxReorgDepth || u64 FinalAge (ms) || Name, integers big-endian.
func genesisPreimage(q chain.Params) []byte {
	pre := []byte("p2pchain/genesis/v2")
	pre = binary.BigEndian.AppendUint32(pre, uint32(q.MaxReadings))
	pre = binary.BigEndian.AppendUint64(pre, uint64(q.MaxFutureDrift.Milliseconds()))
	pre = binary.BigEndian.AppendUint32(pre, q.MaxReorgDepth)
	pre = binary.BigEndian.AppendUint64(pre, uint64(q.FinalAge.Milliseconds()))
	return append(pre, q.Name...)
}

// docGenesis is the documented genesis header of q.
func docGenesis(q chain.Params) chain.Header {
	return chain.Header{Version: 2, Height: 0, Parent: sha256.Sum256(genesisPreimage(q)), Time: q.GenesisTime,
		Root: sha256.Sum256(nil), Count: 0, Difficulty: q.Difficulty, Nonce: 0}
}

// computeVectors returns every vector, each computed by the code and checked
// against an independent computation from the documentation.
func computeVectors(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	put := func(name string, code, doc []byte) {
		t.Helper()
		if !bytes.Equal(code, doc) {
			t.Fatalf("%s: the code gives %x, the documentation %x", name, code, doc)
		}
		out[name] = hex.EncodeToString(code)
	}
	h := func(x chain.Hash) []byte { return x[:] }

	// 3.2: the genesis block.
	p := chain.DefaultParams()
	pre := genesisPreimage(p)
	g := p.Genesis()
	put("genesis parent preimage", pre, pre)
	put("genesis parent", h(g.Header.Parent), h(sha256.Sum256(pre)))
	genesis := docGenesis(p)
	enc, _ := g.Header.MarshalBinary()
	put("genesis header", enc, headerBytes(&genesis))
	put("genesis hash", h(g.Hash()), h(sha256.Sum256(headerBytes(&genesis))))
	for name, change := range map[string]func(q *chain.Params){
		"genesis hash, difficulty 0":   func(q *chain.Params) { q.Difficulty = 0 },
		"genesis hash, network test":   func(q *chain.Params) { *q = chain.TestParams("test") },
		"genesis hash, 512 readings":   func(q *chain.Params) { q.MaxReadings = 512 },
		"genesis hash, reorg depth 12": func(q *chain.Params) { q.MaxReorgDepth = 12 },
		"genesis hash, final age 0":    func(q *chain.Params) { q.FinalAge = 0 },
	} {
		q := p
		change(&q)
		want := docGenesis(q)
		put(name, h(q.Genesis().Hash()), h(sha256.Sum256(headerBytes(&want))))
	}

	// 6.1 and 6.2: the key and the reading.
	key := ed25519.NewKeyFromSeed(vectorSeed)
	put("key seed", vectorSeed, vectorSeed)
	put("public key", key.Public().(ed25519.PublicKey), key[32:])
	r, err := chain.NewReading(key, "patient-1", 72, time.UnixMilli(vectorReadingTime))
	if err != nil {
		t.Fatal(err)
	}
	rEnc, _ := r.MarshalBinary()
	content := readingContent(&r)
	put("reading content", rEnc[:len(rEnc)-64], content)
	put("reading id", h(r.ID()), h(sha256.Sum256(content)))
	put("reading signature", r.Sig[:], ed25519.Sign(key, append([]byte("p2pchain/reading/v1"), content...)))
	put("reading encoding", rEnc, append(bytes.Clone(content), r.Sig[:]...))

	// 6.3: block 1 at the default difficulty, with the lowest nonce that
	// meets it, and at difficulty 0 (nonce 0) on that network's genesis.
	c := mustChain(t, p)
	b := c.NewBlock([]chain.Reading{r}, time.UnixMilli(vectorBlockTime))
	if err := chain.Solve(context.Background(), &b.Header); err != nil {
		t.Fatal(err)
	}
	mustAdd(t, c, b, time.UnixMilli(vectorBlockTime))
	leaf := leafHash(sha256.Sum256(content), r.Sig, 0, 1)
	put("block 1 root", h(b.Header.Root), h(leaf))
	want := chain.Header{Version: 2, Height: 1, Parent: sha256.Sum256(headerBytes(&genesis)), Time: vectorBlockTime,
		Root: leaf, Count: 1, Difficulty: 18, Nonce: b.Header.Nonce}
	enc, _ = b.Header.MarshalBinary()
	put("block 1 header", enc, headerBytes(&want))
	put("block 1 nonce", binary.BigEndian.AppendUint64(nil, b.Header.Nonce), binary.BigEndian.AppendUint64(nil, want.Nonce))
	put("block 1 hash", h(b.Hash()), h(sha256.Sum256(headerBytes(&want))))
	if leadingZeroBits(&want) < 18 {
		t.Fatal("block 1 misses the target")
	}
	for n := uint64(0); n < want.Nonce; n++ {
		x := want
		x.Nonce = n
		if leadingZeroBits(&x) >= 18 {
			t.Fatalf("nonce %d meets the target and is lower than %d", n, want.Nonce)
		}
	}
	unsolved := want
	unsolved.Nonce = 0
	x := b.Header
	x.Nonce = 0
	put("block 1 hash, nonce 0", h(x.Hash()), h(sha256.Sum256(headerBytes(&unsolved))))
	blockEnc, _ := b.MarshalBinary()
	docEnc := append(append(headerBytes(&want), 0, 0, 0, 1), rEnc...)
	put("block 1 encoding", blockEnc, docEnc)
	put("block 1 gossip id", h(sha256.Sum256(blockEnc)), h(sha256.Sum256(docEnc)))

	p0 := p
	p0.Difficulty = 0
	c0 := mustChain(t, p0)
	b0 := c0.NewBlock([]chain.Reading{r}, time.UnixMilli(vectorBlockTime))
	mustAdd(t, c0, b0, time.UnixMilli(vectorBlockTime))
	g0 := docGenesis(p0)
	want0 := want
	want0.Parent, want0.Difficulty, want0.Nonce = sha256.Sum256(headerBytes(&g0)), 0, 0
	enc, _ = b0.Header.MarshalBinary()
	put("block 1 header, difficulty 0", enc, headerBytes(&want0))
	put("block 1 hash, difficulty 0", h(b0.Hash()), h(sha256.Sum256(headerBytes(&want0))))
	blockEnc0, _ := b0.MarshalBinary()
	put("block 1 encoding, difficulty 0", blockEnc0, append(append(headerBytes(&want0), 0, 0, 0, 1), rEnc...))

	// 6.4: Merkle roots of n vector readings (merkle_test.go).
	for i, l := range vectorLeaves(3) {
		sig := vectorSig(i)
		put(fmt.Sprintf("merkle leaf %d of 3", i), h(chain.LeafHash(vectorID(i), &sig, i, 3)), h(l))
	}
	for _, n := range []int{0, 1, 2, 3, 5} {
		var leaves []chain.Hash
		for i := range n {
			sig := vectorSig(i)
			leaves = append(leaves, chain.LeafHash(vectorID(i), &sig, i, n))
		}
		put(fmt.Sprintf("merkle root %d", n), h(chain.MerkleRoot(leaves)), h(refRoot(vectorLeaves(n))))
	}

	// 6.5: the status of the chain of block 1 and a blocks request from
	// it, framed (sections 7, 9.1 and 10.1), written from the layouts only.
	status := []byte{104}
	status = append(status, h(g.Hash())...)
	status = append(status, h(b.Hash())...)
	status = binary.BigEndian.AppendUint64(status, 1)
	status = append(status, new(big.Int).Mul(big.NewInt(2), chain.BlockWork(18)).FillBytes(make([]byte, 32))...)
	st := c.Status()
	ours := []byte{104}
	ours = append(ours, h(st.Genesis)...)
	ours = append(ours, h(st.Tip)...)
	ours = binary.BigEndian.AppendUint64(ours, st.Height)
	ours = append(ours, st.Work.FillBytes(make([]byte, 32))...)
	put("status message", ours, status)
	req := []byte{67, 0x02, 0x00, 2}
	req = append(append(req, h(b.Hash())...), h(g.Hash())...)
	loc := c.Locator()
	got := []byte{67, 0x02, 0x00, byte(len(loc))}
	for _, l := range loc {
		got = append(got, l[:]...)
	}
	put("blocks request", got, req)
	return out
}

func TestGoldenVectors(t *testing.T) {
	got := computeVectors(t)
	if len(got) != len(golden) {
		t.Fatalf("%d vectors computed, %d pinned", len(got), len(golden))
	}
	for _, v := range golden {
		if got[v.name] != v.hex {
			t.Errorf("%s:\n got %s\npin %s", v.name, got[v.name], v.hex)
		}
	}
}

// TestProtocolDocVectors keeps docs/PROTOCOL.md in step with the pinned
// vectors: every one must appear in it, as contiguous hex.
func TestProtocolDocVectors(t *testing.T) {
	doc, err := os.ReadFile("../../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range golden {
		if v.hex == "" || !strings.Contains(string(doc), v.hex) {
			t.Errorf("docs/PROTOCOL.md lacks the %s: %s", v.name, v.hex)
		}
	}
}

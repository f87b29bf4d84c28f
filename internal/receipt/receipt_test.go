package receipt_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/bft"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/receipt"
)

func key(i byte) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte{'r', i})
	return ed25519.NewKeyFromSeed(seed[:])
}

// testDifficulty makes a block cost about 256 hashes: real proof of work,
// cheap enough for tests.
const testDifficulty = 8

// powChain mines a real chain of n blocks on a network of difficulty 8;
// block i holds i readings (so block 5 has a tree of 5 leaves).
func powChain(t testing.TB, n int) (chain.Params, []*chain.Block) {
	t.Helper()
	p := chain.TestParams("receipts")
	p.Difficulty = testDifficulty
	c, err := chain.New(p)
	if err != nil {
		t.Fatal(err)
	}
	var out []*chain.Block
	for i := 1; i <= n; i++ {
		at := time.UnixMilli(p.GenesisTime).Add(time.Duration(i) * time.Minute)
		var rs []chain.Reading
		for j := 0; j < i%7; j++ {
			r, err := chain.NewReading(key(1), fmt.Sprintf("subject-%d", j), 60+i+j, at)
			if err != nil {
				t.Fatal(err)
			}
			rs = append(rs, r)
		}
		b := c.NewBlock(rs, at)
		if err := chain.Solve(context.Background(), &b.Header); err != nil {
			t.Fatal(err)
		}
		if _, err := c.AddBlock(b, at); err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return p, out
}

func headers(blocks []*chain.Block) []chain.Header {
	var hs []chain.Header
	for _, b := range blocks {
		hs = append(hs, b.Header)
	}
	return hs
}

// powReceipt is the receipt of reading 3 of block 5 of a 9-block chain.
func powReceipt(t testing.TB) (*receipt.Receipt, []*chain.Block) {
	t.Helper()
	_, blocks := powChain(t, 9)
	r, err := receipt.Build(blocks[4], 3, headers(blocks[5:]), nil)
	if err != nil {
		t.Fatal(err)
	}
	return r, blocks
}

// authorityChain makes an authority network of four keys and n sealed
// blocks; block 2 carries a membership change. Each block is sealed by
// authorities 0, 1 and 3.
func authorityChain(t testing.TB, n int) (chain.Hash, []bft.Key, []*chain.Block) {
	t.Helper()
	keys := []ed25519.PrivateKey{key(11), key(12), key(13), key(14)}
	var set []bft.Key
	for _, k := range keys {
		set = append(set, bft.KeyOf(k))
	}
	p := chain.TestParams("ward")
	p.Consensus, p.Commitment, p.MaxReorgDepth, p.FinalAge = chain.Authority, sha256.Sum256([]byte("set")), 1, 0
	genesis := p.Genesis()
	network := genesis.Hash()
	parent := genesis
	var out []*chain.Block
	for i := 1; i <= n; i++ {
		at := time.UnixMilli(parent.Header.Time).Add(5 * time.Second)
		var rs []chain.Reading
		for j := 0; j < 3; j++ {
			r, err := chain.NewReading(key(2), "bob", 70+j+i, at)
			if err != nil {
				t.Fatal(err)
			}
			rs = append(rs, r)
		}
		b := &chain.Block{Readings: rs}
		if i == 2 {
			b.Changes = bft.EncodeChanges([]bft.Change{{Op: bft.OpAdd, Height: 3, Key: bft.KeyOf(key(15))}})
		}
		b.Header = chain.Header{Version: chain.HeaderVersion, Height: uint64(i), Parent: parent.Hash(), Time: at.UnixMilli(),
			Root: b.ReadingsRoot(), Count: uint32(len(rs))}
		c := bft.Commit{Height: b.Header.Height, Hash: b.Hash()}
		for _, idx := range []int{0, 1, 3} {
			v := bft.Vote{Type: bft.KindPrecommit, Height: c.Height, Hash: c.Hash, Index: uint16(idx)}
			v.Sign(network, keys[idx])
			c.Sigs = append(c.Sigs, bft.CommitSig{Index: v.Index, Sig: v.Sig})
		}
		b.Seal = c.AppendBinary(nil)
		out = append(out, b)
		parent = b
	}
	return network, set, out
}

// authorityReceipt is the receipt of reading 1 of block 2 (which carries a
// change) of a 4-block authority chain, with block 2's own seal.
func authorityReceipt(t testing.TB) *receipt.Receipt {
	t.Helper()
	network, set, blocks := authorityChain(t, 4)
	var c bft.Commit
	if err := c.UnmarshalBinary(blocks[1].Seal); err != nil {
		t.Fatal(err)
	}
	r, err := receipt.Build(blocks[1], 1, headers(blocks[2:]), &receipt.Authority{Network: network, Commit: &c, Keys: set})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// roundTrip encodes r and parses it back.
func roundTrip(t testing.TB, r *receipt.Receipt) *receipt.Receipt {
	t.Helper()
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	back, err := receipt.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := json.Marshal(back)
	if !bytes.Equal(data, again) {
		t.Fatalf("receipt does not survive JSON:\n%s\n%s", data, again)
	}
	return back
}

func TestProofOfWorkReceipt(t *testing.T) {
	r, blocks := powReceipt(t)
	r = roundTrip(t, r)
	b := blocks[4]
	res, err := receipt.Check(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	rd := b.Readings[3]
	if res.ReadingID != rd.ID() || res.Subject != rd.Subject || res.BPM != int(rd.BPM) || res.Height != 5 ||
		res.Block != b.Hash() || res.Depth != 5 || res.TipHeight != 9 || res.Tip != blocks[8].Hash() ||
		res.Difficulty != testDifficulty || res.Final || res.Trusted || res.Capped {
		t.Fatalf("result %+v", res)
	}
	want := fmt.Sprintf("reading %s of subject %s: %d bpm at %s, in block #5 %s, 5 blocks deep as of tip #9 %s",
		rd.ID(), rd.Subject, rd.BPM, time.UnixMilli(rd.Time).UTC().Format("2006-01-02T15:04:05.000Z"), b.Hash(), blocks[8].Hash())
	if got := res.Proves(); got != want {
		t.Fatalf("proves\n%s\nwant\n%s", got, want)
	}
	// The reading is in the JSON form of package chain.
	var fromChain, fromReceipt map[string]any
	cj, err := json.Marshal(rd)
	if err != nil {
		t.Fatal(err)
	}
	rj, err := json.Marshal(r.Reading)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(cj, &fromChain); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(rj, &fromReceipt); err != nil {
		t.Fatal(err)
	}
	if len(fromChain) == 0 || fmt.Sprint(fromChain) != fmt.Sprint(fromReceipt) {
		t.Fatalf("reading JSON %s, chain's %s", rj, cj)
	}
	// The proof is the chain's.
	var path []chain.Hash
	for _, p := range r.Proof.Path {
		path = append(path, chain.Hash(p))
	}
	if !chain.VerifyMerkleProof(b.Header.Root, chain.LeafHash(rd.ID(), &rd.Sig, 3, 5), 3, 5, path) {
		t.Fatal("chain.VerifyMerkleProof refuses the receipt's proof")
	}

	for i, trusted := range []*chain.Block{blocks[4], blocks[6], blocks[8]} {
		h := trusted.Hash()
		res, err := receipt.Check(r, &h)
		if err != nil || !res.Trusted || res.TrustedHeight != trusted.Header.Height {
			t.Fatalf("trust %d: %v %+v", i, err, res)
		}
		if !strings.HasSuffix(res.Proves(), ", reaching trusted block "+h.String()) {
			t.Fatalf("trust %d: %s", i, res.Proves())
		}
	}
	for _, wrong := range []chain.Hash{blocks[3].Hash(), {1}} {
		_, err := receipt.Check(r, &wrong)
		if !errors.Is(err, receipt.ErrTrust) || !strings.HasPrefix(err.Error(), "trusted block not in receipt") {
			t.Fatalf("trust of a block below or elsewhere: %v", err)
		}
	}
}

// A receipt of the only reading of a block (an empty path) and of the tip
// (no headers above) is one header deep.
func TestTipReceipt(t *testing.T) {
	_, blocks := powChain(t, 8)
	r, err := receipt.Build(blocks[7], 0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := receipt.Check(roundTrip(t, r), nil)
	if err != nil || res.Depth != 1 || res.Tip != res.Block || !strings.Contains(res.Proves(), ", 1 block deep as of tip #8 ") {
		t.Fatalf("%v %s", err, res.Proves())
	}
	if _, err := receipt.Build(blocks[6], 6, nil, nil); err == nil {
		t.Fatal("built a receipt of reading 6 of a block of 6")
	}
	if _, err := receipt.Build(blocks[2], 0, headers(blocks[4:]), nil); err == nil {
		t.Fatal("built a receipt with a gap in its headers")
	}
}

func TestAuthorityReceipt(t *testing.T) {
	r := roundTrip(t, authorityReceipt(t))
	res, err := receipt.Check(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Final || res.Signers != 3 || res.Authorities != 4 || res.CommitHeight != 2 || res.Depth != 3 || res.Difficulty != 0 {
		t.Fatalf("result %+v", res)
	}
	if !strings.HasSuffix(res.Proves(), ", final by commit of 3/4 authorities") {
		t.Fatal(res.Proves())
	}
	if len(r.Proof.Changes) != bft.ChangeSize {
		t.Fatalf("changes %x", r.Proof.Changes)
	}
}

// mutation changes one field of a good receipt; Check must then fail with
// an error of kind kind whose message starts with what.
type mutation struct {
	name string
	mut  func(r *receipt.Receipt)
	kind error
	what string
}

func flip(b []byte) { b[len(b)/2] ^= 1 }

// remine gives header i a nonce that meets its difficulty again and fixes
// its hash field, so that a change to it is caught by what it breaks
// rather than by the hash field.
func remine(r *receipt.Receipt, i int) {
	h := &r.Headers[i]
	ch := chain.Header{Version: h.Version, Height: h.Height, Parent: chain.Hash(h.Parent), Time: h.Time,
		Root: chain.Hash(h.Root), Count: h.Count, Difficulty: h.Difficulty, Nonce: h.Nonce + 1}
	if err := chain.Solve(context.Background(), &ch); err != nil {
		panic(err)
	}
	h.Nonce, h.Hash = ch.Nonce, receipt.Bytes32(ch.Hash())
}

func powMutations() []mutation {
	hdr := func(i int, f func(h *receipt.Header)) func(r *receipt.Receipt) {
		return func(r *receipt.Receipt) { f(&r.Headers[i]) }
	}
	ms := []mutation{
		{"format", func(r *receipt.Receipt) { r.Format = "p2pchain-receipt/2" }, receipt.ErrFormat, "format"},
		{"reading bpm", func(r *receipt.Receipt) { r.Reading.BPM++ }, receipt.ErrReadingID, "reading id"},
		{"reading time", func(r *receipt.Receipt) { r.Reading.Time++ }, receipt.ErrReadingID, "reading id"},
		{"reading subject", func(r *receipt.Receipt) { r.Reading.Subject += "x" }, receipt.ErrReadingID, "reading id"},
		{"reading author", func(r *receipt.Receipt) { flip(r.Reading.Author[:]) }, receipt.ErrReadingID, "reading id"},
		{"reading id", func(r *receipt.Receipt) { flip(r.Reading.ID[:]) }, receipt.ErrReadingID, "reading id"},
		{"reading sig R", func(r *receipt.Receipt) { r.Reading.Sig[0] ^= 1 }, receipt.ErrMerkleProof, "merkle proof"},
		{"reading sig S", func(r *receipt.Receipt) { r.Reading.Sig[40] ^= 1 }, receipt.ErrMerkleProof, "merkle proof"},
		{"reading bpm and id", func(r *receipt.Receipt) {
			r.Reading.BPM++
			rd := chain.Reading{Subject: r.Reading.Subject, BPM: r.Reading.BPM, Time: r.Reading.Time, Author: r.Reading.Author}
			r.Reading.ID = receipt.Bytes32(rd.ID())
		}, receipt.ErrMerkleProof, "merkle proof"},
		{"reading bpm out of range", func(r *receipt.Receipt) {
			r.Reading.BPM = 400
			rd := chain.Reading{Subject: r.Reading.Subject, BPM: r.Reading.BPM, Time: r.Reading.Time, Author: r.Reading.Author}
			r.Reading.ID = receipt.Bytes32(rd.ID())
		}, receipt.ErrReading, "reading"},
		{"proof index", func(r *receipt.Receipt) { r.Proof.Index++ }, receipt.ErrMerkleProof, "merkle proof"},
		{"proof index past size", func(r *receipt.Receipt) { r.Proof.Index = r.Proof.Size }, receipt.ErrMerkleProof, "merkle proof index"},
		{"proof size", func(r *receipt.Receipt) { r.Proof.Size++ }, receipt.ErrMerkleProof, "merkle proof size"},
		{"proof path shorter", func(r *receipt.Receipt) { r.Proof.Path = r.Proof.Path[1:] }, receipt.ErrMerkleProof, "merkle proof"},
		{"proof path longer", func(r *receipt.Receipt) { r.Proof.Path = append(r.Proof.Path, r.Proof.Path[0]) }, receipt.ErrMerkleProof, "merkle proof"},
		{"proof changes", func(r *receipt.Receipt) { r.Proof.Changes = make([]byte, bft.ChangeSize) }, receipt.ErrMerkleProof, "merkle proof changes"},
		{"no headers", func(r *receipt.Receipt) { r.Headers = nil }, receipt.ErrMalformed, "headers"},
		{"header removed", func(r *receipt.Receipt) { r.Headers = append(r.Headers[:2], r.Headers[3:]...) }, receipt.ErrHeader, "header 8 height"},
		{"headers swapped", func(r *receipt.Receipt) { r.Headers[2], r.Headers[3] = r.Headers[3], r.Headers[2] }, receipt.ErrHeader, "header 8 height"},
		{"header changed and mined again", func(r *receipt.Receipt) {
			r.Headers[3].Parent[0] ^= 1
			remine(r, 3)
		}, receipt.ErrPrevHash, "header 8 prev hash"},
		{"header time before parent, mined again", func(r *receipt.Receipt) {
			r.Headers[3].Time = r.Headers[2].Time - 1
			remine(r, 3)
		}, receipt.ErrHeader, "header 8 time"},
		{"block root changed and mined again", func(r *receipt.Receipt) {
			r.Headers[0].Root[0] ^= 1
			remine(r, 0)
		}, receipt.ErrPrevHash, "header 6 prev hash"},
		{"difficulty lowered", func(r *receipt.Receipt) {
			for i := range r.Headers {
				r.Headers[i].Difficulty = 0
				r.Headers[i].Hash = receipt.Bytes32(chainHeader(&r.Headers[i]).Hash())
			}
		}, receipt.ErrPrevHash, "header 6 prev hash"},
		{"one header's difficulty", hdr(2, func(h *receipt.Header) { h.Difficulty--; h.Hash = receipt.Bytes32(chainHeader(h).Hash()) }), receipt.ErrHeader, "header 7 difficulty"},
		{"nonce with a hash that matches", hdr(1, func(h *receipt.Header) {
			for h.Nonce++; chain.MeetsTarget(chainHeader(h).Hash(), h.Difficulty); h.Nonce++ {
			}
			h.Hash = receipt.Bytes32(chainHeader(h).Hash())
		}), receipt.ErrProofOfWork, "header 6 proof of work"},
		{"version", hdr(0, func(h *receipt.Header) { h.Version = 1; remineHeader(h) }), receipt.ErrHeader, "header 5 version"},
		{"count over the limit", hdr(4, func(h *receipt.Header) { h.Count = 5000; remineHeader(h) }), receipt.ErrHeader, "header 9 count"},
	}
	// Every field of every header, changed alone, breaks its hash field.
	for i := 0; i < 5; i++ {
		h := 5 + i
		name := fmt.Sprintf("header %d hash", h)
		ms = append(ms,
			mutation{fmt.Sprintf("header %d height", h), hdr(i, func(h *receipt.Header) { h.Height += 10 }), receipt.ErrHeader, ""},
			mutation{fmt.Sprintf("header %d hash field", h), hdr(i, func(h *receipt.Header) { flip(h.Hash[:]) }), receipt.ErrHeader, name},
			mutation{fmt.Sprintf("header %d parent", h), hdr(i, func(h *receipt.Header) { flip(h.Parent[:]) }), receipt.ErrHeader, name},
			mutation{fmt.Sprintf("header %d time", h), hdr(i, func(h *receipt.Header) { h.Time++ }), receipt.ErrHeader, name},
			mutation{fmt.Sprintf("header %d root", h), hdr(i, func(h *receipt.Header) { flip(h.Root[:]) }), receipt.ErrHeader, name},
			mutation{fmt.Sprintf("header %d count", h), hdr(i, func(h *receipt.Header) { h.Count++ }), receipt.ErrHeader, name},
			mutation{fmt.Sprintf("header %d difficulty", h), hdr(i, func(h *receipt.Header) { h.Difficulty++ }), receipt.ErrHeader, name},
			mutation{fmt.Sprintf("header %d nonce", h), hdr(i, func(h *receipt.Header) { h.Nonce++ }), receipt.ErrHeader, name},
			mutation{fmt.Sprintf("header %d version", h), hdr(i, func(h *receipt.Header) { h.Version++ }), receipt.ErrHeader, name},
		)
	}
	return ms
}

func chainHeader(h *receipt.Header) *chain.Header {
	return &chain.Header{Version: h.Version, Height: h.Height, Parent: chain.Hash(h.Parent), Time: h.Time,
		Root: chain.Hash(h.Root), Count: h.Count, Difficulty: h.Difficulty, Nonce: h.Nonce}
}

func remineHeader(h *receipt.Header) {
	ch := chainHeader(h)
	if err := chain.Solve(context.Background(), ch); err != nil {
		panic(err)
	}
	h.Nonce, h.Hash = ch.Nonce, receipt.Bytes32(ch.Hash())
}

func authorityMutations() []mutation {
	return []mutation{
		{"commit signature", func(r *receipt.Receipt) { r.Commit.Signatures[2].Sig[5] ^= 1 }, receipt.ErrCommitSignature, "commit signature 2"},
		{"commit signature S", func(r *receipt.Receipt) { r.Commit.Signatures[0].Sig[60] ^= 1 }, receipt.ErrCommitSignature, "commit signature 0"},
		{"commit index", func(r *receipt.Receipt) { r.Commit.Signatures[2].Index = 2 }, receipt.ErrCommitSignature, "commit signature 2"},
		{"commit index twice", func(r *receipt.Receipt) { r.Commit.Signatures[2].Index = 1 }, receipt.ErrCommit, "commit signature 2 index"},
		{"commit index outside the set", func(r *receipt.Receipt) { r.Commit.Signatures[2].Index = 4 }, receipt.ErrCommit, "commit signature 2 index"},
		{"commit too few", func(r *receipt.Receipt) { r.Commit.Signatures = r.Commit.Signatures[:2] }, receipt.ErrCommit, "commit quorum"},
		{"commit round", func(r *receipt.Receipt) { r.Commit.Round = 1 }, receipt.ErrCommitSignature, "commit signature 0"},
		{"commit negative round", func(r *receipt.Receipt) { r.Commit.Round = -1 }, receipt.ErrCommit, "commit round"},
		{"commit height", func(r *receipt.Receipt) { r.Commit.Height = 3 }, receipt.ErrCommitSignature, "commit signature 0"},
		{"commit height outside", func(r *receipt.Receipt) { r.Commit.Height = 1 }, receipt.ErrCommit, "commit height"},
		{"commit network", func(r *receipt.Receipt) { flip(r.Commit.Network[:]) }, receipt.ErrCommitSignature, "commit signature 0"},
		{"commit authority key", func(r *receipt.Receipt) { r.Commit.Authorities[1] = receipt.Bytes32(bft.KeyOf(key(99))) }, receipt.ErrCommitSignature, "commit signature 1"},
		{"commit authority twice", func(r *receipt.Receipt) { r.Commit.Authorities[1] = r.Commit.Authorities[0] }, receipt.ErrCommit, "commit authorities"},
		{"commit bigger set", func(r *receipt.Receipt) {
			r.Commit.Authorities = append(r.Commit.Authorities, receipt.Bytes32(bft.KeyOf(key(98))), receipt.Bytes32(bft.KeyOf(key(97))))
		}, receipt.ErrCommit, "commit quorum"},
		{"no commit", func(r *receipt.Receipt) { r.Commit = nil }, receipt.ErrMerkleProof, "merkle proof changes"},
		{"changes", func(r *receipt.Receipt) { r.Proof.Changes[10] ^= 1 }, receipt.ErrMerkleProof, "merkle proof"},
		{"changes dropped", func(r *receipt.Receipt) { r.Proof.Changes = nil }, receipt.ErrMerkleProof, "merkle proof"},
		{"changes malformed", func(r *receipt.Receipt) { r.Proof.Changes = r.Proof.Changes[1:] }, receipt.ErrMerkleProof, "merkle proof changes"},
		{"reading sig", func(r *receipt.Receipt) { r.Reading.Sig[63] ^= 1 }, receipt.ErrMerkleProof, "merkle proof"},
		{"header parent", func(r *receipt.Receipt) {
			// Difficulty 0: a changed header with its hash field fixed
			// passes on its own; its child no longer links to it.
			r.Headers[1].Parent[0] ^= 1
			r.Headers[1].Hash = receipt.Bytes32(chainHeader(&r.Headers[1]).Hash())
		}, receipt.ErrPrevHash, "header 3 prev hash"},
		{"block root", func(r *receipt.Receipt) {
			r.Headers[0].Root[0] ^= 1
			r.Headers[0].Hash = receipt.Bytes32(chainHeader(&r.Headers[0]).Hash())
		}, receipt.ErrPrevHash, "header 3 prev hash"},
	}
}

// Every change to a field of a good receipt makes Check fail, naming what
// did not match.
func TestTampering(t *testing.T) {
	pow, _ := powReceipt(t)
	auth := authorityReceipt(t)
	for _, c := range []struct {
		base *receipt.Receipt
		ms   []mutation
	}{{pow, powMutations()}, {auth, authorityMutations()}} {
		data, _ := json.Marshal(c.base)
		for _, m := range c.ms {
			r, err := receipt.Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			m.mut(r)
			_, err = receipt.Check(r, nil)
			var ce *receipt.Error
			switch {
			case err == nil:
				t.Errorf("%s: Check passed", m.name)
			case !errors.Is(err, m.kind) || !errors.As(err, &ce):
				t.Errorf("%s: %v, want kind %v", m.name, err, m.kind)
			case !strings.HasPrefix(err.Error(), m.what):
				t.Errorf("%s: %v, want it to name %q", m.name, err, m.what)
			}
		}
	}
}

// Every single-byte change of the JSON text of a receipt fails to parse or
// fails Check: no byte of a receipt goes unchecked. The one exception is
// the key of an authority that did not sign the commit: no signature
// checks it, and it shows only in the set's hash (Result.SetHash), which
// the user compares with the network's.
func TestByteFlips(t *testing.T) {
	for _, base := range []*receipt.Receipt{firstOf(powReceipt(t)), authorityReceipt(t)} {
		data, _ := json.Marshal(base)
		want, err := receipt.Check(base, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range data {
			for _, x := range []byte{0x01, 0x02, 0x10} {
				bad := bytes.Clone(data)
				bad[i] ^= x
				r, err := receipt.Parse(bad)
				if err != nil {
					continue
				}
				if res, err := receipt.Check(r, nil); err == nil && (!res.Final || res.SetHash == want.SetHash) {
					t.Errorf("byte %d (%q) ^ %#x: Check passed: ...%s...", i, data[i], x, bad[max(0, i-20):min(len(bad), i+20)])
				}
			}
		}
	}
}

func firstOf(r *receipt.Receipt, _ []*chain.Block) *receipt.Receipt { return r }

// Anyone can make a receipt of a made-up chain without proof of work: it
// passes Check, and the result says its difficulty is 0. Only a trusted
// hash (or a look at the difficulty) tells it apart.
func TestMadeUpChain(t *testing.T) {
	r, blocks := powReceipt(t)
	for i := range r.Headers {
		h := &r.Headers[i]
		if i > 0 {
			h.Parent = r.Headers[i-1].Hash
		}
		h.Difficulty = 0
		h.Hash = receipt.Bytes32(chainHeader(h).Hash())
	}
	res, err := receipt.Check(r, nil)
	if err != nil || res.Difficulty != 0 {
		t.Fatalf("%v %+v", err, res)
	}
	tip := blocks[8].Hash()
	if _, err := receipt.Check(r, &tip); !errors.Is(err, receipt.ErrTrust) {
		t.Fatalf("made-up chain with the real tip trusted: %v", err)
	}
}

// Parse refuses what a receipt never holds.
func TestParseStrict(t *testing.T) {
	r, _ := powReceipt(t)
	data, _ := json.Marshal(r)
	s := string(data)
	id := r.Reading.ID.String()
	for name, bad := range map[string]string{
		"upper-case hex":  strings.Replace(s, id, strings.ToUpper(id), 1),
		"short hex":       strings.Replace(s, id, id[2:], 1),
		"unknown field":   strings.Replace(s, `"format"`, `"extra":1,"format"`, 1),
		"trailing data":   s + "{}",
		"not an object":   "[]",
		"negative height": strings.Replace(s, `"height":5`, `"height":-5`, 1),
	} {
		if _, err := receipt.Parse([]byte(bad)); !errors.Is(err, receipt.ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := receipt.Check(nil, nil); !errors.Is(err, receipt.ErrMalformed) {
		t.Errorf("nil receipt: %v", err)
	}
}

// A receipt holds at most MaxHeaders headers: Build keeps the lowest, and
// Check says the chain may go on; Check refuses more.
func TestHeaderCap(t *testing.T) {
	p := chain.TestParams("long")
	rd, err := chain.NewReading(key(3), "carol", 80, time.UnixMilli(p.GenesisTime).Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	b := &chain.Block{Readings: []chain.Reading{rd}}
	b.Header = chain.Header{Version: chain.HeaderVersion, Height: 1, Parent: p.Genesis().Hash(), Time: rd.Time, Root: b.ReadingsRoot(), Count: 1}
	above := make([]chain.Header, receipt.MaxHeaders+5)
	prev := b.Header
	for i := range above {
		above[i] = chain.Header{Version: chain.HeaderVersion, Height: prev.Height + 1, Parent: prev.Hash(), Time: prev.Time, Root: chain.MerkleRoot(nil)}
		prev = above[i]
	}
	r, err := receipt.Build(b, 0, above, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Headers) != receipt.MaxHeaders {
		t.Fatalf("%d headers", len(r.Headers))
	}
	res, err := receipt.Check(r, nil)
	if err != nil || !res.Capped || res.TipHeight != receipt.MaxHeaders || !strings.Contains(res.Proves(), " deep as of block #10000 ") {
		t.Fatalf("%v %+v", err, res)
	}
	r.Headers = append(r.Headers, r.Headers[0])
	if _, err := receipt.Check(r, nil); !errors.Is(err, receipt.ErrMalformed) {
		t.Fatalf("over the cap: %v", err)
	}
}

// FuzzParseCheck: Parse and Check never panic on any input, and a receipt
// that parses encodes back to what parses alike.
func FuzzParseCheck(f *testing.F) {
	pow, _ := powReceipt(f)
	for _, r := range []*receipt.Receipt{pow, authorityReceipt(f)} {
		data, _ := json.Marshal(r)
		f.Add(data)
	}
	f.Add([]byte(`{"format":"p2pchain-receipt/1","headers":[{}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := receipt.Parse(data)
		if err != nil {
			return
		}
		if res, err := receipt.Check(r, &chain.Hash{}); err == nil {
			t.Fatalf("a receipt reached the zero hash: %+v", res)
		}
		enc, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := receipt.Parse(enc); err != nil {
			t.Fatalf("re-encoded receipt does not parse: %v", err)
		}
	})
}

// Parse stops at MaxHeaders+1 headers, whatever the file holds after them,
// and refuses the receipt as malformed; MaxHeaders of them decode.
func TestParseHeadersBounded(t *testing.T) {
	list := func(n int) []byte {
		var b bytes.Buffer
		b.WriteString(`{"format":"p2pchain-receipt/1","headers":[`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{}`)
		}
		b.WriteString(`]}`)
		return b.Bytes()
	}
	if r, err := receipt.Parse(list(receipt.MaxHeaders)); err != nil || len(r.Headers) != receipt.MaxHeaders {
		t.Fatalf("%d headers: %v", receipt.MaxHeaders, err)
	}
	if _, err := receipt.Parse(list(receipt.MaxHeaders + 1)); !errors.Is(err, receipt.ErrMalformed) || !strings.Contains(err.Error(), "more than 10000") {
		t.Fatalf("%d headers: %v, want malformed: more than %d", receipt.MaxHeaders+1, err, receipt.MaxHeaders)
	}
	if _, err := receipt.Parse([]byte(`{"headers":[{"height":1,"extra":2}]}`)); !errors.Is(err, receipt.ErrMalformed) {
		t.Fatalf("a header with an unknown field: %v, want malformed", err)
	}
}

// TestResultJSONTime: the JSON of a result (check-receipt --json) gives
// the reading's time as the sentence and the JavaScript checker do (RFC
// 3339, UTC, milliseconds: Date.toISOString); it gave Go's default,
// "2026-12-02T01:16:36.93Z", with the trailing zeros dropped.
func TestResultJSONTime(t *testing.T) {
	for ms, want := range map[int64]string{1796174196930: "2026-12-02T01:16:36.930Z", 1796174196000: "2026-12-02T01:16:36.000Z"} {
		data, err := json.Marshal(receipt.Result{Time: time.UnixMilli(ms), BPM: 72})
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatal(err)
		}
		if v["time"] != want || v["bpm"] != 72.0 {
			t.Errorf("%d: time %v, bpm %v in %s; want %s", ms, v["time"], v["bpm"], data, want)
		}
	}
}

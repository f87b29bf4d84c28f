package bft_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/p2pchain/p2pchain/internal/bft"
	"github.com/p2pchain/p2pchain/internal/chain"
)

func testHash(s string) chain.Hash { return chain.Hash(sha256Sum([]byte(s))) }

func signedVote(k bft.Kind, height uint64, round int32, hash chain.Hash, index int) *bft.Vote {
	v := &bft.Vote{Type: k, Height: height, Round: round, Hash: hash, Index: uint16(index)}
	v.Sign(simNetwork, simKey(index))
	return v
}

func signedProposal(set *bft.Set, height uint64, round int32, hash chain.Hash, pol int32) *bft.Proposal {
	p := &bft.Proposal{Height: height, Round: round, Hash: hash, POLRound: pol}
	p.Sign(simNetwork, simKey(set.Proposer(height, round)))
	return p
}

func signedCommit(height uint64, round int32, hash chain.Hash, signers ...int) *bft.Commit {
	c := &bft.Commit{Height: height, Round: round, Hash: hash}
	for _, i := range signers {
		v := signedVote(bft.KindPrecommit, height, round, hash, i)
		c.Sigs = append(c.Sigs, bft.CommitSig{Index: v.Index, Sig: v.Sig})
	}
	return c
}

// TestRoundTrip: every message decodes to itself and re-encodes to the
// same bytes, of the documented size, and still verifies.
func TestRoundTrip(t *testing.T) {
	set := testSet(t, 4)
	block := testHash("block")
	msgs := []bft.Message{
		signedProposal(set, 7, 0, block, -1),
		signedProposal(set, 7, 3, block, 2),
		signedVote(bft.KindPrevote, 7, 1, block, 0),
		signedVote(bft.KindPrevote, 7, 1, chain.Hash{}, 3),
		signedVote(bft.KindPrecommit, 1<<40, 1<<30, block, 2),
		signedCommit(7, 2, block, 0, 1, 3),
	}
	sizes := map[bft.Kind]int{bft.KindProposal: bft.ProposalSize, bft.KindPrevote: bft.VoteSize, bft.KindPrecommit: bft.VoteSize, bft.KindCommit: 47 + 3*66}
	for _, m := range msgs {
		enc := m.AppendBinary(nil)
		if len(enc) != sizes[m.Kind()] {
			t.Errorf("%s: %d bytes, want %d", m.Kind(), len(enc), sizes[m.Kind()])
		}
		d, err := bft.DecodeMessage(enc)
		if err != nil {
			t.Fatalf("%s: %v", m.Kind(), err)
		}
		if !bytes.Equal(d.AppendBinary(nil), enc) {
			t.Fatalf("%s: re-encoding differs", m.Kind())
		}
		switch x := d.(type) {
		case *bft.Proposal:
			err = x.Verify(simNetwork, set)
		case *bft.Vote:
			err = x.Verify(simNetwork, set)
		case *bft.Commit:
			err = bft.VerifyCommit(simNetwork, set, 7, block, x)
		}
		if err != nil {
			t.Errorf("%s after decoding: %v", m.Kind(), err)
		}
	}
	ch := bft.Change{Op: bft.OpRemove, Height: 99, Key: simKeys(1)[0]}
	var d bft.Change
	if err := d.UnmarshalBinary(ch.AppendBinary(nil)); err != nil || d != ch {
		t.Fatalf("change: %v, %+v", err, d)
	}
}

// TestDecodeRefuses: one non-canonical or out-of-bounds variant of each
// field; every one is refused as malformed.
func TestDecodeRefuses(t *testing.T) {
	set := testSet(t, 4)
	block := testHash("block")
	prop := signedProposal(set, 7, 3, block, 2).AppendBinary(nil)
	vote := signedVote(bft.KindPrevote, 7, 1, block, 0).AppendBinary(nil)
	commit := signedCommit(7, 2, block, 0, 1, 3).AppendBinary(nil)
	ev := bft.NewEvidence(signedVote(bft.KindPrevote, 7, 1, block, 0), signedVote(bft.KindPrevote, 7, 1, chain.Hash{}, 0)).AppendBinary(nil)
	with := func(b []byte, at int, v ...byte) []byte {
		c := bytes.Clone(b)
		copy(c[at:], v)
		return c
	}
	u32 := func(v int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }
	zero := make([]byte, 32)
	cases := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"unknown kind", with(vote, 0, 9)},
		{"proposal short", prop[:len(prop)-1]},
		{"proposal long", append(bytes.Clone(prop), 0)},
		{"proposal negative round", with(prop, 9, 0x80)},
		{"proposal zero hash", with(prop, 13, zero...)},
		{"proposal POL = round", with(prop, 45, u32(3)...)},
		{"proposal POL < -1", with(prop, 45, u32(-2)...)},
		{"vote short", vote[:len(vote)-1]},
		{"vote long", append(bytes.Clone(vote), 0)},
		{"vote negative round", with(vote, 9, 0xff)},
		{"vote index 256", with(vote, 45, 0x01, 0x00)},
		{"commit head only", commit[:47]},
		{"commit zero count", append(with(commit[:47], 45, 0, 0), commit[47:]...)},
		{"commit count too big", with(commit, 45, 0, 4)},
		{"commit count too small", with(commit, 45, 0, 2)},
		{"commit zero hash", with(commit, 13, zero...)},
		{"commit negative round", with(commit, 9, 0x80)},
		{"commit indexes out of order", with(commit, 47+66, 0, 3)},
		{"commit index twice", with(commit, 47+66, 0, 0)},
		{"commit index 256", with(commit, 47+132, 1, 0)},
		{"commit cut", commit[:len(commit)-1]},
		{"commit of 257", append(with(commit[:47], 45, 0x01, 0x01), make([]byte, 257*66)...)},
	}
	for _, c := range cases {
		if _, err := bft.DecodeMessage(c.data); !errors.Is(err, bft.ErrMalformed) {
			t.Errorf("%s: err = %v, want malformed", c.name, err)
		}
	}
	swapped := append([]byte{5}, append(bytes.Clone(ev[1+111:]), ev[1:1+111]...)...)
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"evidence empty", nil},
		{"evidence kind only", []byte{5}},
		{"evidence not evidence", append([]byte{4}, ev[1:]...)},
		{"evidence out of order", swapped},
		{"evidence twice the same", append(append([]byte{5}, ev[1:112]...), ev[1:112]...)},
		{"evidence mixed kinds", append(append([]byte{5}, ev[1:112]...), with(ev[112:], 0, 3)...)},
		{"evidence short", ev[:len(ev)-1]},
		{"evidence of commits", append([]byte{5}, append(bytes.Clone(commit), commit...)...)},
		{"evidence with a bad vote", with(ev, 1+111+45, 0x01)},
	} {
		var e bft.Evidence
		if err := e.UnmarshalBinary(c.data); !errors.Is(err, bft.ErrMalformed) {
			t.Errorf("%s: err = %v, want malformed", c.name, err)
		}
	}
	var ch bft.Change
	for _, b := range [][]byte{nil, make([]byte, bft.ChangeSize), append([]byte{1}, make([]byte, bft.ChangeSize)...)} {
		if err := ch.UnmarshalBinary(b); !errors.Is(err, bft.ErrMalformed) {
			t.Errorf("change %x: err = %v", b, err)
		}
	}
}

// TestSignatures: what a signature covers. The network, the kind, the
// height, the round and the block are signed; a vote moved to another
// index is checked against another key; a proposal is checked against
// the proposer of its round only.
func TestSignatures(t *testing.T) {
	set := testSet(t, 4)
	block := testHash("block")
	v := signedVote(bft.KindPrevote, 5, 1, block, 2)
	if err := v.Verify(simNetwork, set); err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(testHash("another network"), set); !errors.Is(err, bft.ErrBadSignature) {
		t.Errorf("vote of another network: %v", err)
	}
	for name, mut := range map[string]func(*bft.Vote){
		"kind":   func(v *bft.Vote) { v.Type = bft.KindPrecommit },
		"height": func(v *bft.Vote) { v.Height++ },
		"round":  func(v *bft.Vote) { v.Round++ },
		"block":  func(v *bft.Vote) { v.Hash = chain.Hash{} },
		"index":  func(v *bft.Vote) { v.Index = 1 },
	} {
		w := *v
		mut(&w)
		if err := w.Verify(simNetwork, set); !errors.Is(err, bft.ErrBadSignature) {
			t.Errorf("vote with another %s: %v", name, err)
		}
	}
	w := *v
	w.Index = 4
	if err := w.Verify(simNetwork, set); !errors.Is(err, bft.ErrUnknownAuthority) {
		t.Errorf("vote by index 4 of 4: %v", err)
	}
	p := signedProposal(set, 5, 1, block, -1)
	if err := p.Verify(simNetwork, set); err != nil {
		t.Fatal(err)
	}
	q := *p
	q.Round = 2 // another proposer's turn
	if err := q.Verify(simNetwork, set); !errors.Is(err, bft.ErrBadSignature) {
		t.Errorf("proposal moved to another round: %v", err)
	}
	notProposer := &bft.Proposal{Height: 5, Round: 1, Hash: block, POLRound: -1}
	notProposer.Sign(simNetwork, simKey((set.Proposer(5, 1)+1)%4))
	if err := notProposer.Verify(simNetwork, set); !errors.Is(err, bft.ErrBadSignature) {
		t.Errorf("proposal by an authority out of turn: %v", err)
	}
}

// TestVerifyCommit: a commit a follower accepts, and one refusal per rule.
func TestVerifyCommit(t *testing.T) {
	set := testSet(t, 4) // quorum 3
	block := testHash("block")
	good := signedCommit(9, 1, block, 0, 2, 3)
	if err := bft.VerifyCommit(simNetwork, set, 9, block, good); err != nil {
		t.Fatal(err)
	}
	if err := bft.VerifyCommit(simNetwork, set, 9, block, signedCommit(9, 1, block, 0, 1, 2, 3)); err != nil {
		t.Fatalf("all four: %v", err)
	}
	forged := signedCommit(9, 1, block, 0, 2, 3)
	forged.Sigs[1].Sig[0] ^= 1
	swapped := signedCommit(9, 1, block, 0, 2, 3)
	swapped.Sigs[1].Index = 1 // authority 2's signature under index 1
	dup := signedCommit(9, 1, block, 0, 2, 3)
	dup.Sigs[2] = dup.Sigs[1]
	prevotes := &bft.Commit{Height: 9, Round: 1, Hash: block}
	for _, i := range []int{0, 2, 3} {
		v := signedVote(bft.KindPrevote, 9, 1, block, i)
		prevotes.Sigs = append(prevotes.Sigs, bft.CommitSig{Index: v.Index, Sig: v.Sig})
	}
	otherRound := signedCommit(9, 1, block, 0, 2, 3)
	otherRound.Round = 2
	unknown := signedCommit(9, 1, block, 0, 2, 3)
	unknown.Sigs = append(unknown.Sigs, bft.CommitSig{Index: 4})
	nilBlock := signedCommit(9, 1, chain.Hash{}, 0, 2, 3)
	for _, c := range []struct {
		name   string
		height uint64
		hash   chain.Hash
		c      *bft.Commit
		code   bft.ErrorCode
	}{
		{"too few", 9, block, signedCommit(9, 1, block, 0, 2), bft.ErrTooFewSignatures},
		{"none", 9, block, &bft.Commit{Height: 9, Round: 1, Hash: block}, bft.ErrTooFewSignatures},
		{"forged signature", 9, block, forged, bft.ErrBadSignature},
		{"signature under another index", 9, block, swapped, bft.ErrBadSignature},
		{"duplicated signer", 9, block, dup, bft.ErrDuplicateSigner},
		{"prevotes, not precommits", 9, block, prevotes, bft.ErrBadSignature},
		{"round changed", 9, block, otherRound, bft.ErrBadSignature},
		{"wrong height", 10, block, good, bft.ErrWrongHeight},
		{"wrong block", 9, testHash("other"), good, bft.ErrWrongBlock},
		{"nil block", 9, chain.Hash{}, nilBlock, bft.ErrWrongBlock},
		{"unknown index", 9, block, unknown, bft.ErrUnknownAuthority},
		{"another network", 9, block, good, bft.ErrBadSignature},
		{"a set of 7 needs 5", 9, block, good, bft.ErrTooFewSignatures},
	} {
		network, s := simNetwork, set
		switch c.name {
		case "another network":
			network = testHash("another network")
		case "a set of 7 needs 5":
			s = testSet(t, 7)
		}
		err := bft.VerifyCommit(network, s, c.height, c.hash, c.c)
		if !errors.Is(err, c.code) || !bft.IsPeerFault(err) {
			t.Errorf("%s: err = %v, want %v (a peer fault)", c.name, err, c.code)
		}
	}
}

// TestEvidenceVerify: what counts as an equivocation, and what does not.
func TestEvidenceVerify(t *testing.T) {
	set := testSet(t, 4)
	a, b := testHash("a"), testHash("b")
	resigned := signedVote(bft.KindPrevote, 3, 0, a, 1)
	resigned.Sig[5] ^= 1 // same statement: not evidence, whatever the signature
	forged := signedVote(bft.KindPrevote, 3, 0, b, 1)
	forged.Sig[0] ^= 1
	good := []*bft.Evidence{
		bft.NewEvidence(signedVote(bft.KindPrevote, 3, 0, a, 1), signedVote(bft.KindPrevote, 3, 0, b, 1)),
		bft.NewEvidence(signedVote(bft.KindPrecommit, 3, 2, a, 0), signedVote(bft.KindPrecommit, 3, 2, chain.Hash{}, 0)),
		bft.NewEvidence(signedProposal(set, 3, 1, a, -1), signedProposal(set, 3, 1, b, -1)),
		bft.NewEvidence(signedProposal(set, 3, 1, a, -1), signedProposal(set, 3, 1, a, 0)),
	}
	for i, e := range good {
		if err := e.Verify(simNetwork, set); err != nil {
			t.Errorf("evidence %d: %v", i, err)
		}
		var d bft.Evidence
		enc := e.AppendBinary(nil)
		if err := d.UnmarshalBinary(enc); err != nil || !bytes.Equal(d.AppendBinary(nil), enc) {
			t.Errorf("evidence %d round trip: %v", i, err)
		}
	}
	if o := good[2].Offender(set); o != set.Proposer(3, 1) {
		t.Errorf("proposal evidence names %d", o)
	}
	for _, c := range []struct {
		name string
		e    *bft.Evidence
		code bft.ErrorCode
	}{
		{"same statement", &bft.Evidence{A: signedVote(bft.KindPrevote, 3, 0, a, 1), B: resigned}, bft.ErrBadEvidence},
		{"other rounds", bft.NewEvidence(signedVote(bft.KindPrevote, 3, 0, a, 1), signedVote(bft.KindPrevote, 3, 1, b, 1)), bft.ErrBadEvidence},
		{"other heights", bft.NewEvidence(signedVote(bft.KindPrevote, 3, 0, a, 1), signedVote(bft.KindPrevote, 4, 0, b, 1)), bft.ErrBadEvidence},
		{"other signers", bft.NewEvidence(signedVote(bft.KindPrevote, 3, 0, a, 1), signedVote(bft.KindPrevote, 3, 0, b, 2)), bft.ErrBadEvidence},
		{"prevote and precommit", bft.NewEvidence(signedVote(bft.KindPrevote, 3, 0, a, 1), signedVote(bft.KindPrecommit, 3, 0, b, 1)), bft.ErrBadEvidence},
		{"proposal and vote", bft.NewEvidence(signedProposal(set, 3, 0, a, -1), signedVote(bft.KindPrevote, 3, 0, b, 1)), bft.ErrBadEvidence},
		{"forged", bft.NewEvidence(signedVote(bft.KindPrevote, 3, 0, a, 1), forged), bft.ErrBadSignature},
		{"missing", &bft.Evidence{A: signedVote(bft.KindPrevote, 3, 0, a, 1)}, bft.ErrBadEvidence},
	} {
		if err := c.e.Verify(simNetwork, set); !errors.Is(err, c.code) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.code)
		}
	}
	// A vote by an index the set does not have.
	big := testSet(t, 5)
	e := bft.NewEvidence(signedVote(bft.KindPrevote, 3, 0, a, 4), signedVote(bft.KindPrevote, 3, 0, b, 4))
	if err := e.Verify(simNetwork, big); err != nil {
		t.Fatal(err)
	}
	if err := e.Verify(simNetwork, set); !errors.Is(err, bft.ErrUnknownAuthority) {
		t.Errorf("evidence against index 4 of 4: %v", err)
	}
}

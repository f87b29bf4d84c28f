package bft

import (
	"bytes"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// Evidence is two signed messages by one authority that contradict each
// other: two proposals for one (height, round) that differ in block or POL
// round, or two votes of one type for one (height, round) that differ in
// block (nil included). A correct authority never signs both, so evidence
// proves its signer faulty; it is checkable on its own with the set of its
// height (Verify). A and B are in the order of their encodings, so one
// equivocation has one encoding.
type Evidence struct {
	A, B Message // both *Proposal or both *Vote
}

// NewEvidence returns the evidence of x and y, in canonical order.
func NewEvidence(x, y Message) *Evidence {
	if bytes.Compare(x.AppendBinary(nil), y.AppendBinary(nil)) > 0 {
		x, y = y, x
	}
	return &Evidence{A: x, B: y}
}

// Height returns the height of the equivocation.
func (e *Evidence) Height() uint64 { h, _ := e.A.At(); return h }

// Offender returns the index in set (the set of e's height) of the
// authority that signed both messages.
func (e *Evidence) Offender(set *Set) int {
	switch a := e.A.(type) {
	case *Proposal:
		return set.Proposer(a.Height, a.Round)
	case *Vote:
		return int(a.Index)
	}
	return -1
}

// Verify checks that e proves an equivocation under set, the authority set
// of e's height: both messages are proposals, or votes of one type, for
// the same height and round (and, for votes, by the same index), they say
// different things, and both signatures verify.
func (e *Evidence) Verify(network chain.Hash, set *Set) error {
	if e.A == nil || e.B == nil {
		return ruleErr(ErrBadEvidence, "missing message")
	}
	ha, ra := e.A.At()
	hb, rb := e.B.At()
	if e.A.Kind() != e.B.Kind() || ha != hb || ra != rb {
		return ruleErr(ErrBadEvidence, "%s at %d/%d and %s at %d/%d are not for one step", e.A.Kind(), ha, ra, e.B.Kind(), hb, rb)
	}
	if sameStatement(e.A, e.B) {
		return ruleErr(ErrBadEvidence, "both messages say the same")
	}
	switch a := e.A.(type) {
	case *Proposal:
		b := e.B.(*Proposal)
		if err := a.Verify(network, set); err != nil {
			return err
		}
		return b.Verify(network, set)
	case *Vote:
		b := e.B.(*Vote)
		if a.Index != b.Index {
			return ruleErr(ErrBadEvidence, "votes by %d and %d", a.Index, b.Index)
		}
		if err := a.Verify(network, set); err != nil {
			return err
		}
		return b.Verify(network, set)
	}
	return ruleErr(ErrBadEvidence, "%s is not a proposal or vote", e.A.Kind())
}

// AppendBinary appends the encoding: kind 5, then the encodings of A and B
// (each a proposal or a vote, whose first byte gives its size).
func (e *Evidence) AppendBinary(b []byte) []byte {
	b = append(b, byte(KindEvidence))
	return e.B.AppendBinary(e.A.AppendBinary(b))
}

// MarshalBinary returns the encoding of e.
func (e *Evidence) MarshalBinary() ([]byte, error) { return e.AppendBinary(nil), nil }

// UnmarshalBinary decodes evidence: kind 5, two proposals or two votes of
// one kind, A's bytes sorting strictly before B's, and nothing after. It
// checks the layout only; Verify checks the equivocation.
func (e *Evidence) UnmarshalBinary(b []byte) error {
	if len(b) < 1 || Kind(b[0]) != KindEvidence {
		return ruleErr(ErrMalformed, "not evidence")
	}
	size := 0
	if len(b) > 1 {
		switch Kind(b[1]) {
		case KindProposal:
			size = ProposalSize
		case KindPrevote, KindPrecommit:
			size = VoteSize
		}
	}
	if size == 0 || len(b) != 1+2*size {
		return ruleErr(ErrMalformed, "evidence of %d bytes", len(b))
	}
	ab, bb := b[1:1+size], b[1+size:]
	if ab[0] != bb[0] || bytes.Compare(ab, bb) >= 0 {
		return ruleErr(ErrMalformed, "evidence messages of kinds %d and %d, or not in order", ab[0], bb[0])
	}
	x, err := DecodeMessage(ab)
	if err != nil {
		return err
	}
	y, err := DecodeMessage(bb)
	if err != nil {
		return err
	}
	e.A, e.B = x, y
	return nil
}

package bft

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// Kind is the first byte of every encoded message; for a vote it is also
// the vote's type.
type Kind uint8

// The kinds of message.
const (
	KindProposal  Kind = 1
	KindPrevote   Kind = 2
	KindPrecommit Kind = 3
	KindCommit    Kind = 4
	KindEvidence  Kind = 5
)

func (k Kind) String() string {
	switch k {
	case KindProposal:
		return "proposal"
	case KindPrevote:
		return "prevote"
	case KindPrecommit:
		return "precommit"
	case KindCommit:
		return "commit"
	case KindEvidence:
		return "evidence"
	}
	return "unknown"
}

// Domain is the domain tag in front of every signed consensus statement. It
// keeps these signatures apart from readings ("p2pchain/reading/v1") and
// from libp2p's own use of the same key.
const Domain = "p2pchain/bft/v1"

// Sizes of the encodings (section "Messages" of docs/BFT.md).
const (
	headSize        = 1 + 8 + 4 + chain.HashSize // kind, height, round, hash
	SigSize         = ed25519.SignatureSize
	ProposalSize    = headSize + 4 + SigSize // 113
	VoteSize        = headSize + 2 + SigSize // 111
	commitHeadSize  = headSize + 2           // 47
	commitSigSize   = 2 + SigSize            // 66
	MaxCommitSize   = commitHeadSize + MaxAuthorities*commitSigSize
	MaxEvidenceSize = 1 + 2*ProposalSize // two proposals; two votes take 223
	// MaxMessageSize bounds every message of this package: a transport
	// refuses longer ones before decoding.
	MaxMessageSize = MaxCommitSize
)

// Message is a *Proposal, *Vote or *Commit.
type Message interface {
	Kind() Kind
	// At returns the height and round the message is about.
	At() (height uint64, round int32)
	// AppendBinary appends the canonical encoding.
	AppendBinary(b []byte) []byte
}

// Proposal proposes the block Hash for (Height, Round). POLRound is the
// round of the proof of lock the proposer holds for that block (at least a
// quorum of prevotes for it), or -1. It is signed by the proposer of
// (Height, Round), which the authority set determines.
type Proposal struct {
	Height   uint64
	Round    int32
	Hash     chain.Hash
	POLRound int32
	Sig      [SigSize]byte
}

// Vote is a prevote or precommit by authority Index for block Hash at
// (Height, Round); the zero hash votes for no block (nil).
type Vote struct {
	Type   Kind // KindPrevote or KindPrecommit
	Height uint64
	Round  int32
	Hash   chain.Hash
	Index  uint16
	Sig    [SigSize]byte
}

// CommitSig is one precommit signature of a Commit.
type CommitSig struct {
	Index uint16
	Sig   [SigSize]byte
}

// Commit certifies that block Hash is decided at Height: the precommit
// signatures for it of more than two thirds of that height's authorities,
// all from Round, in ascending index order.
type Commit struct {
	Height uint64
	Round  int32
	Hash   chain.Hash
	Sigs   []CommitSig
}

func (p *Proposal) Kind() Kind                     { return KindProposal }
func (p *Proposal) At() (uint64, int32)            { return p.Height, p.Round }
func (v *Vote) Kind() Kind                         { return v.Type }
func (v *Vote) At() (uint64, int32)                { return v.Height, v.Round }
func (c *Commit) Kind() Kind                       { return KindCommit }
func (c *Commit) At() (uint64, int32)              { return c.Height, c.Round }
func (p *Proposal) MarshalBinary() ([]byte, error) { return p.AppendBinary(nil), nil }
func (v *Vote) MarshalBinary() ([]byte, error)     { return v.AppendBinary(nil), nil }
func (c *Commit) MarshalBinary() ([]byte, error)   { return c.AppendBinary(nil), nil }

func appendHead(b []byte, k Kind, height uint64, round int32, hash chain.Hash) []byte {
	b = append(b, byte(k))
	b = binary.BigEndian.AppendUint64(b, height)
	b = binary.BigEndian.AppendUint32(b, uint32(round))
	return append(b, hash[:]...)
}

// signBytes returns Domain || network || statement: what is signed.
func signBytes(network chain.Hash, statement []byte) []byte {
	b := make([]byte, 0, len(Domain)+chain.HashSize+len(statement))
	b = append(append([]byte(Domain), network[:]...), statement...)
	return b
}

// statement is the signed part of the proposal: its encoding without the
// signature.
func (p *Proposal) statement() []byte {
	b := appendHead(make([]byte, 0, ProposalSize), KindProposal, p.Height, p.Round, p.Hash)
	return binary.BigEndian.AppendUint32(b, uint32(p.POLRound))
}

// AppendBinary appends the 113-byte encoding: kind 1, height, round, hash,
// POL round, signature.
func (p *Proposal) AppendBinary(b []byte) []byte {
	return append(append(b, p.statement()...), p.Sig[:]...)
}

// Sign signs p with key for network (the network's genesis hash).
func (p *Proposal) Sign(network chain.Hash, key ed25519.PrivateKey) {
	copy(p.Sig[:], ed25519.Sign(key, signBytes(network, p.statement())))
}

// Verify checks p's signature against the key of the proposer of
// (Height, Round) in set, the set of that height.
func (p *Proposal) Verify(network chain.Hash, set *Set) error {
	k := set.Key(set.Proposer(p.Height, p.Round))
	if !ed25519.Verify(k[:], signBytes(network, p.statement()), p.Sig[:]) {
		return ruleErr(ErrBadSignature, "proposal at height %d round %d", p.Height, p.Round)
	}
	return nil
}

// voteStatement is what a vote signs: kind, height, round, hash. The index
// is not signed (it only says which key to check), so a commit can carry a
// precommit as an index and a signature.
func voteStatement(k Kind, height uint64, round int32, hash chain.Hash) []byte {
	return appendHead(make([]byte, 0, headSize), k, height, round, hash)
}

// AppendBinary appends the 111-byte encoding: type, height, round, hash,
// index, signature.
func (v *Vote) AppendBinary(b []byte) []byte {
	b = appendHead(b, v.Type, v.Height, v.Round, v.Hash)
	b = binary.BigEndian.AppendUint16(b, v.Index)
	return append(b, v.Sig[:]...)
}

// Sign signs v with key for network.
func (v *Vote) Sign(network chain.Hash, key ed25519.PrivateKey) {
	copy(v.Sig[:], ed25519.Sign(key, signBytes(network, voteStatement(v.Type, v.Height, v.Round, v.Hash))))
}

// Verify checks that v.Index is in set (the set of v's height) and that the
// signature is that authority's.
func (v *Vote) Verify(network chain.Hash, set *Set) error {
	if int(v.Index) >= set.Len() {
		return ruleErr(ErrUnknownAuthority, "vote by index %d in a set of %d", v.Index, set.Len())
	}
	k := set.Key(int(v.Index))
	if !ed25519.Verify(k[:], signBytes(network, voteStatement(v.Type, v.Height, v.Round, v.Hash)), v.Sig[:]) {
		return ruleErr(ErrBadSignature, "%s by %d at height %d round %d", v.Type, v.Index, v.Height, v.Round)
	}
	return nil
}

// AppendBinary appends the encoding: kind 4, height, round, hash, uint16
// count, then count × (uint16 index, signature).
func (c *Commit) AppendBinary(b []byte) []byte {
	b = appendHead(b, KindCommit, c.Height, c.Round, c.Hash)
	b = binary.BigEndian.AppendUint16(b, uint16(len(c.Sigs)))
	for _, s := range c.Sigs {
		b = binary.BigEndian.AppendUint16(b, s.Index)
		b = append(b, s.Sig[:]...)
	}
	return b
}

// Precommit returns the i-th signature of c as the precommit vote it is.
func (c *Commit) Precommit(i int) *Vote {
	return &Vote{Type: KindPrecommit, Height: c.Height, Round: c.Round, Hash: c.Hash, Index: c.Sigs[i].Index, Sig: c.Sigs[i].Sig}
}

// VerifyCommit checks that c certifies block hash at height under set, the
// authority set of that height: the hash and height are those, the
// indexes are in the set, each appears once, there are at least
// set.Quorum() of them, and every signature verifies (one bad signature
// refuses the commit, however many good ones it has). Cheap checks come
// first: no signature is verified unless the rest holds.
func VerifyCommit(network chain.Hash, set *Set, height uint64, hash chain.Hash, c *Commit) error {
	if c.Hash != hash || hash.IsZero() {
		return ruleErr(ErrWrongBlock, "commit for %s, want %s", c.Hash.Short(), hash.Short())
	}
	if c.Height != height {
		return ruleErr(ErrWrongHeight, "commit at height %d, want %d", c.Height, height)
	}
	if c.Round < 0 {
		return ruleErr(ErrMalformed, "commit round %d", c.Round)
	}
	seen := make([]bool, set.Len())
	for _, s := range c.Sigs {
		if int(s.Index) >= set.Len() {
			return ruleErr(ErrUnknownAuthority, "commit signed by index %d in a set of %d", s.Index, set.Len())
		}
		if seen[s.Index] {
			return ruleErr(ErrDuplicateSigner, "authority %d signs the commit twice", s.Index)
		}
		seen[s.Index] = true
	}
	if len(c.Sigs) < set.Quorum() {
		return ruleErr(ErrTooFewSignatures, "%d signatures, want %d of %d", len(c.Sigs), set.Quorum(), set.Len())
	}
	msg := signBytes(network, voteStatement(KindPrecommit, c.Height, c.Round, c.Hash))
	for _, s := range c.Sigs {
		k := set.Key(int(s.Index))
		if !ed25519.Verify(k[:], msg, s.Sig[:]) {
			return ruleErr(ErrBadSignature, "commit signature of authority %d", s.Index)
		}
	}
	return nil
}

// DecodeMessage decodes a proposal, vote or commit by its first byte.
func DecodeMessage(b []byte) (Message, error) {
	if len(b) == 0 {
		return nil, ruleErr(ErrMalformed, "empty message")
	}
	switch Kind(b[0]) {
	case KindProposal:
		p := new(Proposal)
		return p, p.UnmarshalBinary(b)
	case KindPrevote, KindPrecommit:
		v := new(Vote)
		return v, v.UnmarshalBinary(b)
	case KindCommit:
		c := new(Commit)
		return c, c.UnmarshalBinary(b)
	}
	return nil, ruleErr(ErrMalformed, "unknown message kind %d", b[0])
}

// readHead decodes kind, height, round and hash; the round must be at
// least 0 (the top bit of its 4 bytes clear).
func readHead(b []byte) (Kind, uint64, int32, chain.Hash, error) {
	var h chain.Hash
	if len(b) < headSize {
		return 0, 0, 0, h, ruleErr(ErrMalformed, "%d bytes, shorter than a message head", len(b))
	}
	round := int32(binary.BigEndian.Uint32(b[9:13]))
	if round < 0 {
		return 0, 0, 0, h, ruleErr(ErrMalformed, "negative round %d", round)
	}
	copy(h[:], b[13:headSize])
	return Kind(b[0]), binary.BigEndian.Uint64(b[1:9]), round, h, nil
}

// UnmarshalBinary decodes exactly ProposalSize bytes: kind 1, a round of
// at least 0, a non-zero hash and a POL round from -1 to round-1.
func (p *Proposal) UnmarshalBinary(b []byte) error {
	if len(b) != ProposalSize {
		return ruleErr(ErrMalformed, "proposal of %d bytes, want %d", len(b), ProposalSize)
	}
	k, height, round, hash, err := readHead(b)
	if err != nil {
		return err
	}
	pol := int32(binary.BigEndian.Uint32(b[headSize:]))
	switch {
	case k != KindProposal:
		return ruleErr(ErrMalformed, "kind %d is not a proposal", k)
	case hash.IsZero():
		return ruleErr(ErrMalformed, "proposal of the zero hash")
	case pol < -1 || pol >= round:
		return ruleErr(ErrMalformed, "POL round %d in round %d", pol, round)
	}
	*p = Proposal{Height: height, Round: round, Hash: hash, POLRound: pol}
	copy(p.Sig[:], b[headSize+4:])
	return nil
}

// UnmarshalBinary decodes exactly VoteSize bytes: kind 2 or 3, a round of
// at least 0 and an index below MaxAuthorities.
func (v *Vote) UnmarshalBinary(b []byte) error {
	if len(b) != VoteSize {
		return ruleErr(ErrMalformed, "vote of %d bytes, want %d", len(b), VoteSize)
	}
	k, height, round, hash, err := readHead(b)
	if err != nil {
		return err
	}
	if k != KindPrevote && k != KindPrecommit {
		return ruleErr(ErrMalformed, "kind %d is not a vote", k)
	}
	idx := binary.BigEndian.Uint16(b[headSize:])
	if idx >= MaxAuthorities {
		return ruleErr(ErrMalformed, "validator index %d", idx)
	}
	*v = Vote{Type: k, Height: height, Round: round, Hash: hash, Index: idx}
	copy(v.Sig[:], b[headSize+2:])
	return nil
}

// UnmarshalBinary decodes a commit: kind 4, a round of at least 0, a
// non-zero hash, a count from 1 to MaxAuthorities checked against the
// length before anything is allocated, and indexes strictly ascending and
// below MaxAuthorities (so no index twice, and one encoding per commit).
func (c *Commit) UnmarshalBinary(b []byte) error {
	if len(b) < commitHeadSize || len(b) > MaxCommitSize {
		return ruleErr(ErrMalformed, "commit of %d bytes", len(b))
	}
	k, height, round, hash, err := readHead(b)
	if err != nil {
		return err
	}
	n := int(binary.BigEndian.Uint16(b[headSize:]))
	switch {
	case k != KindCommit:
		return ruleErr(ErrMalformed, "kind %d is not a commit", k)
	case hash.IsZero():
		return ruleErr(ErrMalformed, "commit of the zero hash")
	case n == 0 || n > MaxAuthorities:
		return ruleErr(ErrMalformed, "commit with %d signatures", n)
	case len(b) != commitHeadSize+n*commitSigSize:
		return ruleErr(ErrMalformed, "commit of %d bytes for %d signatures", len(b), n)
	}
	sigs := make([]CommitSig, n)
	for i := range sigs {
		at := commitHeadSize + i*commitSigSize
		sigs[i].Index = binary.BigEndian.Uint16(b[at:])
		if sigs[i].Index >= MaxAuthorities || (i > 0 && sigs[i].Index <= sigs[i-1].Index) {
			return ruleErr(ErrMalformed, "commit index %d at position %d", sigs[i].Index, i)
		}
		copy(sigs[i].Sig[:], b[at+2:at+commitSigSize])
	}
	*c = Commit{Height: height, Round: round, Hash: hash, Sigs: sigs}
	return nil
}

// sameStatement reports whether two proposals or two votes say the same
// thing (their signatures may differ).
func sameStatement(a, b Message) bool {
	switch x := a.(type) {
	case *Proposal:
		y, ok := b.(*Proposal)
		return ok && bytes.Equal(x.statement(), y.statement())
	case *Vote:
		y, ok := b.(*Vote)
		return ok && x.Type == y.Type && x.Height == y.Height && x.Round == y.Round && x.Hash == y.Hash && x.Index == y.Index
	}
	return false
}

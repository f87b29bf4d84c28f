package receipt

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/p2pchain/p2pchain/internal/bft"
	"github.com/p2pchain/p2pchain/internal/chain"
)

// The kinds of failure of Check and Parse. Every error Check returns is an
// *Error wrapping one of them; Parse's errors wrap ErrMalformed.
var (
	ErrMalformed       = errors.New("malformed receipt")
	ErrFormat          = errors.New("format")
	ErrHeader          = errors.New("header")        // a header field: hash, version, height, time, count, difficulty
	ErrPrevHash        = errors.New("prev hash")     // a header does not link to the one below
	ErrProofOfWork     = errors.New("proof of work") // a header's hash does not meet its difficulty
	ErrReading         = errors.New("reading")       // a reading field: subject, bpm, author key
	ErrReadingID       = errors.New("reading id")
	ErrReadingSig      = errors.New("reading signature")
	ErrMerkleProof     = errors.New("merkle proof")
	ErrCommit          = errors.New("commit") // the commit's height, set, round, indexes or quorum
	ErrCommitSignature = errors.New("commit signature")
	ErrTrust           = errors.New("trusted block not in receipt")
)

// Error is a failed check: What names what did not match ("header 12 prev
// hash", "merkle proof", "commit signature 2"), Kind is one of the sentinel
// errors, Detail says more.
type Error struct {
	What   string
	Kind   error
	Detail string
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return e.What + " did not match"
	}
	return e.What + " did not match: " + e.Detail
}

// Unwrap returns the kind, for errors.Is.
func (e *Error) Unwrap() error { return e.Kind }

func fail(kind error, what, format string, args ...any) error {
	return &Error{What: what, Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// Result is what a receipt that passed Check proves.
type Result struct {
	ReadingID chain.Hash `json:"reading_id"`
	Subject   string     `json:"subject"`
	BPM       int        `json:"bpm"`
	Time      time.Time  `json:"time"`   // when the reading was taken, UTC
	Author    Bytes32    `json:"author"` // the key that signed it

	Height     uint64     `json:"height"`     // of the reading's block
	Block      chain.Hash `json:"block"`      // its hash
	Depth      uint64     `json:"depth"`      // headers from the block up to the last one: confirmations
	TipHeight  uint64     `json:"tip_height"` // of the receipt's last header
	Tip        chain.Hash `json:"tip"`        // its hash
	Difficulty uint32     `json:"difficulty"` // the proof of work of every header (0: none)
	// Capped is true when the receipt holds MaxHeaders headers: the chain
	// may go on above its last header.
	Capped bool `json:"capped"`

	Final        bool       `json:"final"`         // authority networks: a commit covers the block
	CommitHeight uint64     `json:"commit_height"` // the height of the committed header
	Signers      int        `json:"signers"`       // K: authorities whose signatures verified
	Authorities  int        `json:"authorities"`   // N: the size of the set
	SetHash      chain.Hash `json:"set_hash"`      // the set's hash (docs/BFT.md): compare with the network's
	Network      chain.Hash `json:"network"`       // the genesis hash the signatures cover
	// Keys is the authority set of the commit, in order.
	Keys []Bytes32 `json:"keys,omitempty"`

	Trusted       bool       `json:"trusted"`        // the trusted hash is one of the headers
	TrustedHash   chain.Hash `json:"trusted_hash"`   // that hash
	TrustedHeight uint64     `json:"trusted_height"` // its height
}

// MarshalJSON writes the result as the JavaScript checker's has it: Time
// as Proves does (RFC 3339 in UTC with milliseconds, Date.toISOString), not
// in Go's default form, which drops trailing zeros ("01:16:36.93Z"); and
// SetHash, Network and TrustedHash empty when there is none (a
// proof-of-work receipt, no trusted hash), not 64 zeros.
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result // without this method
	orEmpty := func(h chain.Hash) string {
		if h.IsZero() {
			return ""
		}
		return h.String()
	}
	return json.Marshal(struct {
		plain
		Time        string `json:"time"`
		SetHash     string `json:"set_hash"`
		Network     string `json:"network"`
		TrustedHash string `json:"trusted_hash"`
	}{plain(r), r.Time.UTC().Format(TimeLayout), orEmpty(r.SetHash), orEmpty(r.Network), orEmpty(r.TrustedHash)})
}

// Proves returns the sentence that says what the receipt proves:
//
//	reading <id> of subject <s>: 72 bpm at <time>, in block #H <hash>, N blocks deep as of tip #T <hash>
//
// followed by ", final by commit of K/N authorities" on an authority
// network and ", reaching trusted block <hash>" when a trusted hash was
// given; a receipt at its header limit says "as of block #T" instead of
// "as of tip #T". The time is RFC 3339 in UTC with milliseconds.
func (r Result) Proves() string {
	var b strings.Builder
	fmt.Fprintf(&b, "reading %s of subject %s: %d bpm at %s, in block #%d %s, %d %s deep as of ",
		r.ReadingID, r.Subject, r.BPM, r.Time.UTC().Format(TimeLayout), r.Height, r.Block, r.Depth, plural(r.Depth, "block", "blocks"))
	if r.Capped {
		b.WriteString("block")
	} else {
		b.WriteString("tip")
	}
	fmt.Fprintf(&b, " #%d %s", r.TipHeight, r.Tip)
	if r.Final {
		fmt.Fprintf(&b, ", final by commit of %d/%d authorities", r.Signers, r.Authorities)
	}
	if r.Trusted {
		fmt.Fprintf(&b, ", reaching trusted block %s", r.TrustedHash)
	}
	return b.String()
}

// String returns Proves().
func (r Result) String() string { return r.Proves() }

// TimeLayout is the layout of reading times in Proves: RFC 3339 with
// milliseconds (JavaScript's Date.toISOString gives the same).
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

func plural(n uint64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// Check verifies r with no node and no network, in the order of the
// package documentation, and returns what it proves. trust, if not nil, is
// a block hash the caller trusts; it must be one of the receipt's headers.
func Check(r *Receipt, trust *chain.Hash) (Result, error) {
	var res Result
	if r == nil {
		return res, &Error{What: "receipt", Kind: ErrMalformed, Detail: "no receipt"}
	}
	if r.Format != Format {
		return res, fail(ErrFormat, "format", "%q, want %q", r.Format, Format)
	}
	hashes, err := checkHeaders(r.Headers)
	if err != nil {
		return res, err
	}
	block := &r.Headers[0]
	rd := r.Reading.chainReading()
	id := rd.ID()
	if chain.Hash(r.Reading.ID) != id {
		return res, fail(ErrReadingID, "reading id", "%s, but the reading's content hashes to %s", r.Reading.ID, id)
	}
	if err := rd.CheckFields(); err != nil {
		return res, fail(ErrReading, "reading", "%v", err)
	}
	if err := checkProof(&r.Proof, id, &rd.Sig, block, r.Commit != nil); err != nil {
		return res, err
	}
	if err := rd.CheckSignature(); err != nil {
		return res, fail(ErrReadingSig, "reading signature", "the author's key did not sign this reading")
	}
	last := &r.Headers[len(r.Headers)-1]
	res = Result{
		ReadingID: id, Subject: rd.Subject, BPM: int(rd.BPM), Time: time.UnixMilli(rd.Time).UTC(), Author: rd.Author,
		Height: block.Height, Block: hashes[0], Depth: last.Height - block.Height + 1,
		TipHeight: last.Height, Tip: hashes[len(hashes)-1], Difficulty: block.Difficulty,
		Capped: len(r.Headers) == MaxHeaders,
	}
	if r.Commit != nil {
		if err := checkCommit(r.Commit, r.Headers, hashes, &res); err != nil {
			return Result{}, err
		}
	}
	if trust != nil {
		for i, h := range hashes {
			if h == *trust {
				res.Trusted, res.TrustedHash, res.TrustedHeight = true, h, r.Headers[i].Height
			}
		}
		if !res.Trusted {
			return Result{}, fail(ErrTrust, "trusted block not in receipt",
				"%s is none of the %d headers from height %d to %d", *trust, len(hashes), block.Height, last.Height)
		}
	}
	return res, nil
}

// checkHeaders checks each header on its own and its link to the one
// below, and returns their hashes.
//
// A header's part is named only when it fails: "header 7 hash".
func checkHeaders(hs []Header) ([]chain.Hash, error) {
	if len(hs) == 0 || len(hs) > MaxHeaders {
		return nil, fail(ErrMalformed, "headers", "%d headers, want 1 to %d", len(hs), MaxHeaders)
	}
	hashes := make([]chain.Hash, len(hs))
	for i := range hs {
		h := &hs[i]
		ch := h.chainHeader()
		hashes[i] = ch.Hash()
		switch {
		case chain.Hash(h.Hash) != hashes[i]:
			return nil, fail(ErrHeader, headerPart(h, "hash"), "%s, but the header hashes to %s", h.Hash, hashes[i])
		case h.Version != chain.HeaderVersion:
			return nil, fail(ErrHeader, headerPart(h, "version"), "%d, want %d", h.Version, chain.HeaderVersion)
		case h.Count > chain.MaxReadingsLimit:
			return nil, fail(ErrHeader, headerPart(h, "count"), "%d readings, no network allows more than %d", h.Count, chain.MaxReadingsLimit)
		case h.Difficulty > chain.MaxDifficulty:
			return nil, fail(ErrHeader, headerPart(h, "difficulty"), "%d, at most %d", h.Difficulty, chain.MaxDifficulty)
		case h.Difficulty != hs[0].Difficulty:
			return nil, fail(ErrHeader, headerPart(h, "difficulty"), "%d, but the reading's block has %d (a network has one difficulty)", h.Difficulty, hs[0].Difficulty)
		case !chain.MeetsTarget(hashes[i], h.Difficulty):
			return nil, fail(ErrProofOfWork, headerPart(h, "proof of work"), "hash %s has %d leading zero bits, difficulty %d",
				hashes[i], chain.LeadingZeros(hashes[i]), h.Difficulty)
		case i == 0:
			continue
		case h.Height != hs[i-1].Height+1:
			return nil, fail(ErrHeader, headerPart(h, "height"), "follows height %d", hs[i-1].Height)
		case chain.Hash(h.Parent) != hashes[i-1]:
			return nil, fail(ErrPrevHash, headerPart(h, "prev hash"), "parent %s, but header %d hashes to %s", h.Parent, hs[i-1].Height, hashes[i-1])
		case h.Time < hs[i-1].Time:
			return nil, fail(ErrHeader, headerPart(h, "time"), "%d is before its parent's %d", h.Time, hs[i-1].Time)
		}
	}
	return hashes, nil
}

// checkProof checks that the reading's leaf, at the proof's index in a
// tree of the header's count, leads along the path to the readings root
// and, with the changes, to the header's root.
func checkProof(p *Proof, id chain.Hash, sig *[64]byte, h *Header, authority bool) error {
	switch {
	case p.Size != h.Count:
		return fail(ErrMerkleProof, "merkle proof size", "%d, but the block holds %d readings", p.Size, h.Count)
	case p.Index >= p.Size:
		return fail(ErrMerkleProof, "merkle proof index", "%d in a block of %d readings", p.Index, p.Size)
	case len(p.Path) > 32:
		return fail(ErrMerkleProof, "merkle proof", "a path of %d hashes", len(p.Path))
	case len(p.Changes) > 0 && !authority:
		return fail(ErrMerkleProof, "merkle proof changes", "membership changes in a receipt without a commit")
	case len(p.Changes) > chain.MaxChanges*chain.ChangeSize:
		return fail(ErrMerkleProof, "merkle proof changes", "%d bytes, at most %d changes", len(p.Changes), chain.MaxChanges)
	}
	if _, err := bft.DecodeChanges(p.Changes); err != nil {
		return fail(ErrMerkleProof, "merkle proof changes", "%v", err)
	}
	leaf := chain.LeafHash(id, sig, int(p.Index), int(p.Size))
	path := make([]chain.Hash, len(p.Path))
	for i := range p.Path {
		path[i] = chain.Hash(p.Path[i])
	}
	root, ok := chain.MerkleRootFromProof(leaf, int(p.Index), int(p.Size), path)
	root = chain.BodyRoot(root, p.Changes)
	if !ok || root != chain.Hash(h.Root) {
		return fail(ErrMerkleProof, "merkle proof", "reading %d of %d does not lead to the root %s of block %d", p.Index, p.Size, h.Root, h.Height)
	}
	return nil
}

// checkCommit checks the commit against the header of its height: more
// than two thirds of the set it lists signed a precommit of that header's
// hash for the network it names.
func checkCommit(c *Commit, hs []Header, hashes []chain.Hash, res *Result) error {
	first, last := hs[0].Height, hs[len(hs)-1].Height
	if c.Height < first || c.Height > last {
		return fail(ErrCommit, "commit height", "%d, but the receipt holds heights %d to %d", c.Height, first, last)
	}
	if c.Round < 0 {
		return fail(ErrCommit, "commit round", "%d", c.Round)
	}
	keys := make([]bft.Key, len(c.Authorities))
	for i := range keys {
		keys[i] = bft.Key(c.Authorities[i])
	}
	set, err := bft.NewSet(keys)
	if err != nil {
		return fail(ErrCommit, "commit authorities", "%v", err)
	}
	if len(c.Signatures) > set.Len() {
		return fail(ErrCommit, "commit signatures", "%d signatures from %d authorities", len(c.Signatures), set.Len())
	}
	for i, s := range c.Signatures {
		if int(s.Index) >= set.Len() || (i > 0 && s.Index <= c.Signatures[i-1].Index) {
			return fail(ErrCommit, fmt.Sprintf("commit signature %d index", i),
				"authority %d (indexes must ascend, below %d)", s.Index, set.Len())
		}
	}
	if len(c.Signatures) < set.Quorum() {
		return fail(ErrCommit, "commit quorum", "%d of %d authorities signed, more than two thirds is %d",
			len(c.Signatures), set.Len(), set.Quorum())
	}
	network, hash := chain.Hash(c.Network), hashes[c.Height-first]
	for i, s := range c.Signatures {
		v := bft.Vote{Type: bft.KindPrecommit, Height: c.Height, Round: c.Round, Hash: hash, Index: s.Index, Sig: s.Sig}
		if err := v.Verify(network, set); err != nil {
			return fail(ErrCommitSignature, fmt.Sprintf("commit signature %d", i),
				"authority %d did not sign block %d %s at round %d of network %s", s.Index, c.Height, hash, c.Round, network)
		}
	}
	res.Final, res.CommitHeight = true, c.Height
	res.Signers, res.Authorities = len(c.Signatures), set.Len()
	res.SetHash, res.Network = set.Hash(), network
	res.Keys = append([]Bytes32(nil), c.Authorities...)
	return nil
}

// headerPart names a part of header h in a refusal: "header 7 hash".
func headerPart(h *Header, part string) string { return fmt.Sprintf("header %d %s", h.Height, part) }

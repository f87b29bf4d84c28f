package receipt

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/p2pchain/p2pchain/internal/bft"
	"github.com/p2pchain/p2pchain/internal/chain"
)

// Format is the value of a receipt's "format" field.
const Format = "p2pchain-receipt/1"

// MaxHeaders is the most headers a receipt holds: the reading's block and
// up to MaxHeaders-1 above it. Build keeps the lowest MaxHeaders when given
// more, so the receipt of a reading deeper than that stops at an ancestor
// of the tip (Result.Capped); Check refuses a receipt with more.
const MaxHeaders = 10000

// MaxSize is the largest encoded receipt Parse reads: MaxHeaders headers
// take about 4.5 MB of JSON.
const MaxSize = 8 << 20

// Receipt is a self-contained proof that a reading is in a block of the
// chain. Its JSON form is the format of docs/RECEIPTS.md: hashes, keys,
// signatures and changes are lower-case hex, times Unix milliseconds.
type Receipt struct {
	Format  string  `json:"format"`
	Reading Reading `json:"reading"`
	Proof   Proof   `json:"proof"`
	Headers Headers `json:"headers"` // the reading's block first, then each block above it in order
	Commit  *Commit `json:"commit,omitempty"`
}

// Reading is the signed reading, in the JSON form of package chain.
type Reading struct {
	ID      Bytes32 `json:"id"`
	Subject string  `json:"subject"`
	BPM     uint16  `json:"bpm"`
	Time    int64   `json:"time"`
	Author  Bytes32 `json:"author"`
	Sig     Bytes64 `json:"sig"`
}

// Proof is the Merkle audit path of the reading in its block.
type Proof struct {
	Index uint32    `json:"index"` // the reading's position in the block
	Size  uint32    `json:"size"`  // the block's number of readings (the header's count)
	Path  []Bytes32 `json:"path"`  // sibling hashes, from the leaf up
	// Changes are the block's membership changes (authority networks),
	// which its header's root binds to the readings root.
	Changes Bytes `json:"changes,omitempty"`
}

// Header is a block header with its hash.
type Header struct {
	Height     uint64  `json:"height"`
	Hash       Bytes32 `json:"hash"`
	Parent     Bytes32 `json:"parent"`
	Time       int64   `json:"time"`
	Root       Bytes32 `json:"root"`
	Count      uint32  `json:"count"`
	Difficulty uint32  `json:"difficulty"`
	Nonce      uint64  `json:"nonce"`
	Version    uint32  `json:"version"`
}

// Commit is the commit of an authority network's block: the precommit
// signatures of the authorities of its height, and that set.
type Commit struct {
	Network     Bytes32     `json:"network"` // the genesis hash, which every signature covers
	Height      uint64      `json:"height"`  // the height of the header it commits (its hash is the header's)
	Round       int32       `json:"round"`
	Authorities []Bytes32   `json:"authorities"` // the authority set of Height, in set order
	Signatures  []CommitSig `json:"signatures"`
}

// CommitSig is one precommit signature of a commit.
type CommitSig struct {
	Index uint16  `json:"index"` // position of the signer in Authorities
	Sig   Bytes64 `json:"sig"`
}

// chainHeader returns h as a chain header.
func (h *Header) chainHeader() chain.Header {
	return chain.Header{Version: h.Version, Height: h.Height, Parent: chain.Hash(h.Parent), Time: h.Time,
		Root: chain.Hash(h.Root), Count: h.Count, Difficulty: h.Difficulty, Nonce: h.Nonce}
}

// headerOf returns the receipt form of a chain header.
func headerOf(h *chain.Header) Header {
	return Header{Height: h.Height, Hash: Bytes32(h.Hash()), Parent: Bytes32(h.Parent), Time: h.Time, Root: Bytes32(h.Root),
		Count: h.Count, Difficulty: h.Difficulty, Nonce: h.Nonce, Version: h.Version}
}

// chainReading returns r as a chain reading.
func (r *Reading) chainReading() chain.Reading {
	return chain.Reading{Subject: r.Subject, BPM: r.BPM, Time: r.Time, Author: r.Author, Sig: r.Sig}
}

// Authority is what Build needs on an authority network: the network (its
// genesis hash), the commit of one of the receipt's blocks, and the
// authority set of that commit's height.
type Authority struct {
	Network chain.Hash
	Commit  *bft.Commit
	Keys    []bft.Key
}

// Build makes the receipt of reading index of block b, whose main chain
// continues with the headers above (the block's child first, up to the tip;
// only the first MaxHeaders-1 are kept). auth is nil on a proof-of-work
// network. Build checks that the pieces fit together (index, links,
// commit height) but verifies no signature or proof of work: Check does.
func Build(b *chain.Block, index int, above []chain.Header, auth *Authority) (*Receipt, error) {
	if b == nil || index < 0 || index >= len(b.Readings) {
		return nil, fmt.Errorf("receipt: no reading %d in the block", index)
	}
	if len(above) > MaxHeaders-1 {
		above = above[:MaxHeaders-1]
	}
	rd := &b.Readings[index]
	path, err := chain.MerkleProof(b.Leaves(), index)
	if err != nil {
		return nil, fmt.Errorf("receipt: %w", err)
	}
	r := &Receipt{
		Format: Format,
		Reading: Reading{ID: Bytes32(rd.ID()), Subject: rd.Subject, BPM: rd.BPM, Time: rd.Time,
			Author: rd.Author, Sig: rd.Sig},
		Proof:   Proof{Index: uint32(index), Size: uint32(len(b.Readings)), Path: make([]Bytes32, len(path)), Changes: bytes.Clone(b.Changes)},
		Headers: make([]Header, 0, 1+len(above)),
	}
	for i := range path {
		r.Proof.Path[i] = Bytes32(path[i])
	}
	r.Headers = append(r.Headers, headerOf(&b.Header))
	for i := range above {
		prev := &r.Headers[len(r.Headers)-1]
		if above[i].Parent != chain.Hash(prev.Hash) || above[i].Height != prev.Height+1 {
			return nil, fmt.Errorf("receipt: header at height %d does not extend block %d", above[i].Height, prev.Height)
		}
		r.Headers = append(r.Headers, headerOf(&above[i]))
	}
	if auth != nil {
		c := auth.Commit
		if c == nil {
			return nil, errors.New("receipt: an authority network's receipt needs a commit")
		}
		top := r.Headers[len(r.Headers)-1].Height
		if c.Height < b.Header.Height || c.Height > top || chain.Hash(r.Headers[c.Height-b.Header.Height].Hash) != c.Hash {
			return nil, fmt.Errorf("receipt: the commit of height %d is not for a block of the receipt", c.Height)
		}
		rc := &Commit{Network: Bytes32(auth.Network), Height: c.Height, Round: c.Round,
			Authorities: make([]Bytes32, len(auth.Keys)), Signatures: make([]CommitSig, len(c.Sigs))}
		for i, k := range auth.Keys {
			rc.Authorities[i] = Bytes32(k)
		}
		for i, s := range c.Sigs {
			rc.Signatures[i] = CommitSig{Index: s.Index, Sig: s.Sig}
		}
		r.Commit = rc
	}
	return r, nil
}

// Parse decodes a receipt's JSON, refusing more than MaxSize bytes, unknown
// fields, hex that is not lower-case or of the wrong length, and data after
// the object. It checks the encoding only; Check checks the receipt.
func Parse(data []byte) (*Receipt, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformed, len(data), MaxSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	r := new(Receipt)
	if err := dec.Decode(r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the JSON object", ErrMalformed)
	}
	return r, nil
}

// Headers is a receipt's headers. Decoding one stops past MaxHeaders: an
// 8 MiB file of empty objects would otherwise become millions of headers
// (hundreds of megabytes) before Check counted them.
type Headers []Header

// UnmarshalJSON decodes the array one header at a time, as strictly as the
// rest of the receipt (no unknown fields), and refuses more than
// MaxHeaders.
func (hs *Headers) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		*hs = nil
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return fmt.Errorf("headers: %v, want an array", tok)
	}
	var out []Header
	for dec.More() {
		if len(out) == MaxHeaders {
			return fmt.Errorf("headers: more than %d", MaxHeaders)
		}
		var h Header
		if err := dec.Decode(&h); err != nil {
			return err
		}
		out = append(out, h)
	}
	if _, err := dec.Token(); err != nil {
		return err
	}
	*hs = out
	return nil
}

// Bytes32 is 32 bytes (a hash or an Ed25519 public key), 64 lower-case hex
// digits in JSON.
type Bytes32 [32]byte

// Bytes64 is 64 bytes (an Ed25519 signature), 128 lower-case hex digits in
// JSON.
type Bytes64 [64]byte

// Bytes is a byte string, lower-case hex in JSON.
type Bytes []byte

func (b Bytes32) String() string { return hex.EncodeToString(b[:]) }

// MarshalText encodes b as lower-case hex.
func (b Bytes32) MarshalText() ([]byte, error) { return hexText(b[:]), nil }

// UnmarshalText decodes exactly 64 lower-case hex digits.
func (b *Bytes32) UnmarshalText(t []byte) error { return unhex(b[:], t) }

// MarshalText encodes b as lower-case hex.
func (b Bytes64) MarshalText() ([]byte, error) { return hexText(b[:]), nil }

// UnmarshalText decodes exactly 128 lower-case hex digits.
func (b *Bytes64) UnmarshalText(t []byte) error { return unhex(b[:], t) }

// MarshalText encodes b as lower-case hex.
func (b Bytes) MarshalText() ([]byte, error) { return hexText(b), nil }

// UnmarshalText decodes lower-case hex of an even number of digits.
func (b *Bytes) UnmarshalText(t []byte) error {
	if len(t)%2 != 0 {
		return fmt.Errorf("odd number of hex digits")
	}
	*b = make([]byte, len(t)/2)
	return unhex(*b, t)
}

func hexText(b []byte) []byte {
	out := make([]byte, hex.EncodedLen(len(b)))
	hex.Encode(out, b)
	return out
}

// unhex decodes t into dst, which it must fill exactly, accepting only
// lower-case digits so that every value has one encoding.
func unhex(dst, t []byte) error {
	if len(t) != 2*len(dst) {
		return fmt.Errorf("want %d hex digits, got %d", 2*len(dst), len(t))
	}
	for _, c := range t {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("%q is not a lower-case hex digit", c)
		}
	}
	_, err := hex.Decode(dst, t)
	return err
}

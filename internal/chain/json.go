package chain

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"unicode/utf8"
)

// The JSON form of blocks and readings, used by export files (one block per
// line) and the HTTP API. It holds every field of the binary form, so a block
// goes to JSON and back to the very same bytes and hash. Hashes, keys and
// signatures are lower-case hex, times Unix milliseconds, and the fields come
// in this order:
//
//	{"height":1,"hash":"…","parent":"…","time":1767225600000,"root":"…",
//	 "difficulty":18,"nonce":210993,"version":2,"readings":[
//	  {"id":"…","subject":"alice","bpm":72,"time":1767225599000,
//	   "author":"…(64 hex digits)","sig":"…(128 hex digits)"}]}
//
// hash (the header hash) and id (the reading id) are informational: they
// follow from the other fields, and decoding checks that they match them.
// The header's reading count is not written: it is the length of
// "readings", so a block whose header count differs from its readings (which
// breaks a rule) has no JSON form that decodes.
// Decoding requires every field ("readings" may be []), refuses unknown fields,
// hex of the wrong length, a subject that has no binary form and more than
// MaxReadingsLimit readings, and fails with a *RuleError of code ErrMalformed
// (ErrBadSubject for a subject over MaxSubjectLen bytes). It checks the
// encoding only, not the consensus rules: CheckBlock and (*Chain).AddBlock do
// that. The nonce is a JSON number up to 2^64-1; readers in languages whose
// numbers are doubles need a big-integer parser for nonces above 2^53.

// blockJSON is the JSON form of a block, for encoding.
type blockJSON struct {
	Height     uint64        `json:"height"`
	Hash       Hash          `json:"hash"`
	Parent     Hash          `json:"parent"`
	Time       int64         `json:"time"`
	Root       Hash          `json:"root"`
	Difficulty uint32        `json:"difficulty"`
	Nonce      uint64        `json:"nonce"`
	Version    uint32        `json:"version"`
	Readings   []readingJSON `json:"readings"`
	Changes    string        `json:"changes,omitempty"` // authority networks: membership changes, hex
	Seal       string        `json:"seal,omitempty"`    // authority networks: the commit, hex
}

// blockJSONIn is the JSON form of a block, for decoding: a nil field was
// missing (or null).
type blockJSONIn struct {
	Height     *uint64            `json:"height"`
	Hash       *string            `json:"hash"`
	Parent     *string            `json:"parent"`
	Time       *int64             `json:"time"`
	Root       *string            `json:"root"`
	Difficulty *uint32            `json:"difficulty"`
	Nonce      *uint64            `json:"nonce"`
	Version    *uint32            `json:"version"`
	Readings   *[]json.RawMessage `json:"readings"`
	Changes    *string            `json:"changes"`
	Seal       *string            `json:"seal"`
}

// readingJSON is the JSON form of a reading, for encoding.
type readingJSON struct {
	ID      Hash   `json:"id"`
	Subject string `json:"subject"`
	BPM     uint16 `json:"bpm"`
	Time    int64  `json:"time"`
	Author  string `json:"author"`
	Sig     string `json:"sig"`
}

// readingJSONIn is the JSON form of a reading, for decoding.
type readingJSONIn struct {
	ID      *string `json:"id"`
	Subject *string `json:"subject"`
	BPM     *uint16 `json:"bpm"`
	Time    *int64  `json:"time"`
	Author  *string `json:"author"`
	Sig     *string `json:"sig"`
}

// MarshalJSON returns the JSON form of b. It fails only for a reading whose
// subject has no binary form (over MaxSubjectLen bytes) or is not UTF-8.
func (b Block) MarshalJSON() ([]byte, error) {
	h := &b.Header
	out := blockJSON{
		Height: h.Height, Hash: h.Hash(), Parent: h.Parent, Time: h.Time, Root: h.Root,
		Difficulty: h.Difficulty, Nonce: h.Nonce, Version: h.Version,
		Readings: make([]readingJSON, len(b.Readings)),
		Changes:  hex.EncodeToString(b.Changes), Seal: hex.EncodeToString(b.Seal),
	}
	// The readings' JSON forms as fields, not through Reading's
	// MarshalJSON: encoding/json would check and compact each one's
	// output again (a third of the cost of a large block).
	for i := range b.Readings {
		var err error
		if out.Readings[i], err = b.Readings[i].jsonForm(); err != nil {
			return nil, err
		}
	}
	return marshalJSON(out)
}

// UnmarshalJSON decodes the JSON form of a block into b; see MarshalJSON.
// On error b is unchanged.
func (b *Block) UnmarshalJSON(data []byte) error {
	var in blockJSONIn
	if err := unmarshalJSON(data, &in, "block"); err != nil {
		return err
	}
	var (
		nb   Block
		hash Hash
		err  error
	)
	h := &nb.Header
	switch {
	case in.Height == nil:
		err = missing("block", "height")
	case in.Time == nil:
		err = missing("block", "time")
	case in.Difficulty == nil:
		err = missing("block", "difficulty")
	case in.Nonce == nil:
		err = missing("block", "nonce")
	case in.Version == nil:
		err = missing("block", "version")
	case in.Readings == nil:
		err = missing("block", "readings")
	}
	if err == nil {
		err = firstErr(
			parseHex("block", "hash", in.Hash, hash[:]),
			parseHex("block", "parent", in.Parent, h.Parent[:]),
			parseHex("block", "root", in.Root, h.Root[:]))
	}
	if err != nil {
		return err
	}
	h.Height, h.Time, h.Difficulty, h.Nonce, h.Version = *in.Height, *in.Time, *in.Difficulty, *in.Nonce, *in.Version
	raws := *in.Readings
	if len(raws) > MaxReadingsLimit {
		return ruleErr(ErrMalformed, "block at height %d: %d readings, no network allows more than %d", h.Height, len(raws), MaxReadingsLimit)
	}
	h.Count = uint32(len(raws)) // the header's count is the length of "readings"
	if got := h.Hash(); got != hash {
		return ruleErr(ErrMalformed, "block at height %d: hash %s does not match its header, which hashes to %s", h.Height, hash, got)
	}
	if len(raws) > 0 {
		nb.Readings = make([]Reading, len(raws))
	}
	for i, raw := range raws {
		if err := nb.Readings[i].unmarshalJSON(raw, fmt.Sprintf("block at height %d, reading %d", h.Height, i)); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		name string
		in   *string
		max  int
		out  *[]byte
	}{{"changes", in.Changes, MaxChanges * ChangeSize, &nb.Changes}, {"seal", in.Seal, MaxSealSize, &nb.Seal}} {
		if f.in == nil || *f.in == "" {
			continue
		}
		if len(*f.in) > 2*f.max {
			return ruleErr(ErrMalformed, "block at height %d: field %q: over %d bytes", h.Height, f.name, f.max)
		}
		v, err := hex.DecodeString(*f.in)
		if err != nil {
			return ruleErr(ErrMalformed, "block at height %d: field %q: %v", h.Height, f.name, err)
		}
		*f.out = v
	}
	*b = nb
	return nil
}

// MarshalJSON returns the JSON form of r. It fails only if the subject has no
// binary form (over MaxSubjectLen bytes) or is not UTF-8.
func (r Reading) MarshalJSON() ([]byte, error) {
	out, err := r.jsonForm()
	if err != nil {
		return nil, err
	}
	return marshalJSON(out)
}

// jsonForm returns the reading's JSON form, for encoding.
func (r *Reading) jsonForm() (readingJSON, error) {
	if len(r.Subject) > MaxSubjectLen {
		return readingJSON{}, ruleErr(ErrBadSubject, "length %d is over %d", len(r.Subject), MaxSubjectLen)
	}
	if !utf8.ValidString(r.Subject) {
		return readingJSON{}, ruleErr(ErrBadSubject, "%q is not UTF-8 and has no JSON form", r.Subject)
	}
	return readingJSON{
		ID: r.ID(), Subject: r.Subject, BPM: r.BPM, Time: r.Time,
		Author: hex.EncodeToString(r.Author[:]), Sig: hex.EncodeToString(r.Sig[:]),
	}, nil
}

// UnmarshalJSON decodes the JSON form of a reading into r; see
// (Block).MarshalJSON. On error r is unchanged.
func (r *Reading) UnmarshalJSON(data []byte) error { return r.unmarshalJSON(data, "reading") }

// unmarshalJSON decodes a reading, naming it what in errors.
func (r *Reading) unmarshalJSON(data []byte, what string) error {
	var in readingJSONIn
	if err := unmarshalJSON(data, &in, what); err != nil {
		return err
	}
	var (
		nr  Reading
		id  Hash
		err error
	)
	switch {
	case in.Subject == nil:
		err = missing(what, "subject")
	case in.BPM == nil:
		err = missing(what, "bpm")
	case in.Time == nil:
		err = missing(what, "time")
	case len(*in.Subject) > MaxSubjectLen:
		err = ruleErr(ErrBadSubject, "%s: subject of %d bytes, at most %d", what, len(*in.Subject), MaxSubjectLen)
	}
	if err == nil {
		err = firstErr(
			parseHex(what, "id", in.ID, id[:]),
			parseHex(what, "author", in.Author, nr.Author[:]),
			parseHex(what, "sig", in.Sig, nr.Sig[:]))
	}
	if err != nil {
		return err
	}
	nr.Subject, nr.BPM, nr.Time = *in.Subject, *in.BPM, *in.Time
	if got := nr.ID(); got != id {
		return ruleErr(ErrMalformed, "%s: id %s does not match its content, which hashes to %s", what, id, got)
	}
	*r = nr
	return nil
}

// marshalJSON encodes v without escaping <, > and & (subjects are printable
// ASCII and read better as they are).
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// unmarshalJSON decodes exactly one JSON value from data into v, refusing
// unknown fields and trailing data.
func unmarshalJSON(data []byte, v any, what string) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			if te.Field == "" {
				return ruleErr(ErrMalformed, "%s: want a JSON object, got %s", what, te.Value)
			}
			return ruleErr(ErrMalformed, "%s: field %q: want %s, got %s", what, te.Field, kindName(te.Type), te.Value)
		}
		return ruleErr(ErrMalformed, "%s: %s", what, strings.TrimPrefix(err.Error(), "json: "))
	}
	if _, err := dec.Token(); err != io.EOF {
		return ruleErr(ErrMalformed, "%s: data after the JSON object", what)
	}
	return nil
}

// kindName describes the JSON value that decodes into t.
func kindName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return fmt.Sprintf("an integer from 0 to %d", ^uint64(0)>>(64-t.Bits()))
	case reflect.Int64:
		return "an integer"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "an array"
	}
	return "an object"
}

// firstErr returns the first non-nil error of errs.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func missing(what, field string) error {
	return ruleErr(ErrMalformed, "%s: field %q is missing", what, field)
}

// parseHex decodes the hex string s of field into dst, which it must fill
// exactly.
func parseHex(what, field string, s *string, dst []byte) error {
	switch {
	case s == nil:
		return missing(what, field)
	case len(*s) != 2*len(dst):
		return ruleErr(ErrMalformed, "%s: field %q: want %d hex digits, got %d", what, field, 2*len(dst), len(*s))
	}
	if _, err := hex.Decode(dst, []byte(*s)); err != nil {
		return ruleErr(ErrMalformed, "%s: field %q: %v", what, field, err)
	}
	return nil
}

package fhir

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// Limits of ParseBundle.
const (
	MaxBundleSize    = 64 << 20  // bytes of a Bundle to import
	MaxBundleEntries = 1_000_000 // entries of a Bundle to import
)

// Row is a reading to submit, from one entry of an imported Bundle.
type Row struct {
	Entry   int // the entry's position in the Bundle, from 1
	Subject string
	BPM     int
	Time    time.Time // when it was taken (never zero from ParseBundle)
	// Author and Sig, in hex, are the reading's author key and signature
	// when the Observation carries both (this package writes them: device
	// identifier urn:p2pchain:author and the signature extension): the
	// signed reading can then be submitted as it is, keeping its id and
	// author, instead of being signed anew by the importing node.
	Author, Sig string
}

// RowError says why an entry (Entry from 1), or the Bundle as a whole
// (Entry 0), cannot be imported.
type RowError struct {
	Entry int
	Msg   string
}

func (e RowError) Error() string {
	if e.Entry == 0 {
		return "bundle: " + e.Msg
	}
	return fmt.Sprintf("entry %d: %s", e.Entry, e.Msg)
}

// bundleIn and observationIn are the parts of a Bundle that import reads;
// other fields are allowed and ignored.
type bundleIn struct {
	ResourceType string `json:"resourceType"`
	Entry        []struct {
		Resource json.RawMessage `json:"resource"`
	} `json:"entry"`
}

type observationIn struct {
	ResourceType      string           `json:"resourceType"`
	Status            string           `json:"status"`
	Code              *CodeableConcept `json:"code"`
	Subject           *Reference       `json:"subject"`
	EffectiveDateTime *string          `json:"effectiveDateTime"`
	EffectiveInstant  *string          `json:"effectiveInstant"`
	EffectivePeriod   json.RawMessage  `json:"effectivePeriod"`
	Device            *Reference       `json:"device"`
	Extension         []Extension      `json:"extension"`
	ValueQuantity     *struct {
		Value  *json.Number `json:"value"`
		Unit   string       `json:"unit"`
		System string       `json:"system"`
		Code   string       `json:"code"`
	} `json:"valueQuantity"`
}

// ParseBundle reads the heart-rate readings of a Bundle of any type: each
// entry must be an Observation with code LOINC 8867-4, a valueQuantity of
// a whole number of beats in UCUM /min (within chain.MinBPM..MaxBPM), an
// effectiveDateTime precise to the second with a zone (or an
// effectiveInstant), and a subject that is a valid chain subject, given
// as subject.identifier.value or as subject.reference "Patient/S". It
// returns the good entries and an error for each bad one; an error with
// Entry 0 means the data is not a Bundle it can read, and then there are
// no rows.
func ParseBundle(data []byte) ([]Row, []RowError) {
	whole := func(format string, args ...any) ([]Row, []RowError) {
		return nil, []RowError{{Msg: fmt.Sprintf(format, args...)}}
	}
	if len(data) > MaxBundleSize {
		return whole("%d bytes, more than the %d MiB a Bundle to import may have: split it", len(data), MaxBundleSize>>20)
	}
	var b bundleIn
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&b); err != nil {
		return whole("not a FHIR Bundle in JSON: %v", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return whole("data after the Bundle's JSON object")
	}
	switch {
	case b.ResourceType == "":
		return whole("resourceType is missing: want a Bundle")
	case b.ResourceType != "Bundle":
		return whole("resourceType is %q, want \"Bundle\" (of Observations)", b.ResourceType)
	case len(b.Entry) > MaxBundleEntries:
		return whole("%d entries, more than the %d a Bundle to import may have: split it", len(b.Entry), MaxBundleEntries)
	}
	rows := make([]Row, 0, len(b.Entry))
	var bad []RowError
	for i, e := range b.Entry {
		r, err := parseEntry(e.Resource)
		if err != "" {
			bad = append(bad, RowError{Entry: i + 1, Msg: err})
			continue
		}
		r.Entry = i + 1
		rows = append(rows, r)
	}
	return rows, bad
}

// parseEntry reads one entry's resource, or says what is wrong with it.
func parseEntry(raw json.RawMessage) (Row, string) {
	var r Row
	if len(raw) == 0 || string(raw) == "null" {
		return r, "no resource"
	}
	var o observationIn
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&o); err != nil {
		return r, "not an Observation: " + strings.TrimPrefix(err.Error(), "json: ")
	}
	if o.ResourceType != "Observation" {
		return r, fmt.Sprintf("resourceType is %q, want \"Observation\"", o.ResourceType)
	}
	switch o.Status {
	case "entered-in-error", "cancelled":
		return r, fmt.Sprintf("status is %q: not a reading to keep", o.Status)
	}
	if o.Code == nil || !hasCoding(o.Code.Coding, SystemLOINC, LOINCHeartRate) {
		return r, fmt.Sprintf("code is not heart rate: want a coding with system %q and code %q", SystemLOINC, LOINCHeartRate)
	}

	// The value: a whole number of beats per minute.
	q := o.ValueQuantity
	if q == nil {
		return r, "valueQuantity is missing: want the heart rate in /min"
	}
	if q.Code != UnitPerMinute {
		return r, fmt.Sprintf("valueQuantity.code is %q, want %q", q.Code, UnitPerMinute)
	}
	if q.System != "" && q.System != SystemUCUM {
		return r, fmt.Sprintf("valueQuantity.system is %q, want %q", q.System, SystemUCUM)
	}
	if q.Value == nil {
		return r, "valueQuantity.value is missing"
	}
	v, err := q.Value.Float64()
	if err != nil || v != math.Trunc(v) {
		return r, fmt.Sprintf("valueQuantity.value %s is not a whole number of beats", q.Value)
	}
	if v < chain.MinBPM || v > chain.MaxBPM {
		return r, fmt.Sprintf("valueQuantity.value %s is outside %d-%d /min", q.Value, chain.MinBPM, chain.MaxBPM)
	}
	r.BPM = int(v)

	// The time: an instant.
	var when, field string
	switch {
	case o.EffectiveDateTime != nil:
		when, field = *o.EffectiveDateTime, "effectiveDateTime"
	case o.EffectiveInstant != nil:
		when, field = *o.EffectiveInstant, "effectiveInstant"
	case o.EffectivePeriod != nil:
		return r, "effectivePeriod is not supported: give effectiveDateTime or effectiveInstant"
	default:
		return r, "effectiveDateTime is missing: want when the reading was taken"
	}
	t, err := time.Parse(time.RFC3339Nano, when)
	if err != nil {
		return r, fmt.Sprintf("%s %q is not a time precise to the second with a zone, e.g. 2026-06-01T10:30:00Z", field, when)
	}
	if t.UnixMilli() <= 0 { // a time of 0 is none to the API: the node would stamp the reading now
		return r, fmt.Sprintf("%s %s is not after 1970-01-01T00:00:00Z", field, when)
	}
	r.Time = t

	// The subject.
	s := o.Subject
	switch {
	case s == nil:
		return r, "subject is missing"
	case s.Identifier != nil && s.Identifier.Value != "" && s.Identifier.System != "" && s.Identifier.System != SystemSubject:
		// A medical record number or another real identifier would go
		// onto a permanent, replicated ledger: only the pseudonym is taken.
		return r, fmt.Sprintf("subject.identifier.system is %q: only pseudonymous subjects (system %s, or none) go on the ledger; "+
			"map the patient to a pseudonym first", s.Identifier.System, SystemSubject)
	case s.Identifier != nil && s.Identifier.Value != "":
		r.Subject = s.Identifier.Value
	case strings.HasPrefix(s.Reference, "Patient/"):
		r.Subject = strings.TrimPrefix(s.Reference, "Patient/")
	case s.Reference != "":
		return r, fmt.Sprintf("subject.reference %q is not Patient/SUBJECT", s.Reference)
	default:
		return r, "subject has neither identifier.value nor a reference Patient/SUBJECT"
	}
	if err := chain.CheckSubject(r.Subject); err != nil {
		return r, fmt.Sprintf("subject %q: %s", r.Subject, chain.RuleDetail(err))
	}

	// Who signed it, if the Observation says (an export of a node does).
	if d := o.Device; d != nil && d.Identifier != nil && d.Identifier.System == SystemAuthor {
		if !isHex(d.Identifier.Value, 2*ed25519.PublicKeySize) {
			return r, fmt.Sprintf("device.identifier.value %q (system %s): want the author key, %d hex digits", d.Identifier.Value, SystemAuthor, 2*ed25519.PublicKeySize)
		}
		r.Author = d.Identifier.Value
	}
	for _, e := range o.Extension {
		if e.URL == ExtSignature {
			if !isHex(e.ValueString, 2*ed25519.SignatureSize) {
				return r, fmt.Sprintf("extension %s: valueString %q is not a signature of %d hex digits", ExtSignature, e.ValueString, 2*ed25519.SignatureSize)
			}
			r.Sig = e.ValueString
		}
	}
	if r.Author == "" || r.Sig == "" {
		r.Author, r.Sig = "", "" // both or neither: a reading signed anew
	}
	return r, ""
}

// isHex reports whether s is n hex digits.
func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func hasCoding(cs []Coding, system, code string) bool {
	for _, c := range cs {
		if c.System == system && c.Code == code {
			return true
		}
	}
	return false
}

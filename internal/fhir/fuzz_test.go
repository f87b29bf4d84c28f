package fhir

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// FuzzParseBundle: any bytes parse without a panic; every row is a valid
// reading's content and every error names its entry.
func FuzzParseBundle(f *testing.F) {
	f.Add(`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Observation","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/a"},"effectiveInstant":"2025-12-01T10:00:00Z","valueQuantity":{"value":70,"code":"/min"}}}]}`)
	f.Add(`{"resourceType":"Bundle","entry":[null,{"resource":null},{"resource":{"valueQuantity":{"value":1e400}}}]}`)
	f.Fuzz(func(t *testing.T, data string) {
		rows, bad := ParseBundle([]byte(data))
		for _, r := range rows {
			if r.Entry < 1 || r.BPM < 20 || r.BPM > 300 || r.Subject == "" || r.Time.IsZero() {
				t.Fatalf("bad row %+v", r)
			}
		}
		for _, b := range bad {
			if b.Entry == 0 && (len(bad) != 1 || len(rows) != 0) {
				t.Fatalf("a whole-bundle error among others: %v", bad)
			}
		}
	})
}

// FuzzParseSearch: any query parses without a panic, and a search that
// parses has a valid subject and page size, and its canonical query parses
// back to it.
func FuzzParseSearch(f *testing.F) {
	f.Add("subject=alice&date=ge2025-12-01&date=lt2025-12-02T10:00:00.5%2B01:00&_count=7")
	f.Add(`subject:identifier=urn:p2pchain:subject|a\,b&code=8867-4`)
	f.Fuzz(func(t *testing.T, query string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		s, err := ParseSearch(q)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("%T %v", err, err)
			}
			return
		}
		if s.Subject == "" || s.Count < 1 || s.Count > MaxCount || strings.ContainsAny(s.Subject, " \n") {
			t.Fatalf("%+v", s)
		}
		again, err := ParseSearch(s.Query())
		if err != nil || !reflect.DeepEqual(again, s) {
			t.Fatalf("%q: canonical %q parses to %+v, %v; want %+v", query, s.Query().Encode(), again, err, s)
		}
	})
}

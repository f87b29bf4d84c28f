package fhir

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

var testKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))

func testReading(t testing.TB, subject string, bpm int, ms int64) chain.Reading {
	t.Helper()
	r, err := chain.NewReading(testKey, subject, bpm, time.UnixMilli(ms))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestObservationOf(t *testing.T) {
	r := testReading(t, "alice", 72, 1764547200123)
	id := r.ID().String()
	h := chain.Hash{0xab}
	for _, tc := range []struct {
		name          string
		in            *Place
		status, state string
	}{
		{"pending", nil, "preliminary", StatePending},
		{"in a block", &Place{Hash: h, Height: 5, Time: 1764547300000}, "preliminary", StateInBlock},
		{"final", &Place{Hash: h, Height: 5, Time: 1764547300000, Final: true}, "final", StateFinal},
	} {
		o := ObservationOf(&r, tc.in)
		if o.ID != id || o.Identifier[0] != (Identifier{SystemReading, id}) {
			t.Errorf("%s: id %q identifier %+v, want %s", tc.name, o.ID, o.Identifier, id)
		}
		if o.Status != tc.status || len(o.Meta.Tag) != 1 || o.Meta.Tag[0].Code != tc.state || o.Meta.Tag[0].System != SystemLedgerState {
			t.Errorf("%s: status %q tag %+v, want %s and %s", tc.name, o.Status, o.Meta.Tag, tc.status, tc.state)
		}
		if o.EffectiveDateTime != "2025-12-01T00:00:00.123Z" {
			t.Errorf("%s: effectiveDateTime %q", tc.name, o.EffectiveDateTime)
		}
		if q := o.ValueQuantity; *q != (Quantity{72, "beats/minute", SystemUCUM, "/min"}) {
			t.Errorf("%s: valueQuantity %+v", tc.name, q)
		}
		if s := o.Subject; s.Identifier.Value != "alice" || s.Identifier.System != SystemSubject || s.Type != "Patient" {
			t.Errorf("%s: subject %+v", tc.name, s)
		}
		if o.Device.Identifier.Value != hex.EncodeToString(r.Author[:]) {
			t.Errorf("%s: device %+v", tc.name, o.Device)
		}
		ext := map[string]Extension{}
		for _, e := range o.Extension {
			ext[e.URL] = e
		}
		if ext[ExtSignature].ValueString != hex.EncodeToString(r.Sig[:]) {
			t.Errorf("%s: signature extension %+v", tc.name, ext[ExtSignature])
		}
		if tc.in == nil {
			if len(ext) != 1 || o.Issued != "" || o.Meta.Source != "" {
				t.Errorf("%s: block provenance on a pending reading: %+v", tc.name, o)
			}
			continue
		}
		if ext[ExtBlockHash].ValueString != h.String() || *ext[ExtBlockHeight].ValueUnsignedInt != 5 ||
			o.Meta.Source != "urn:p2pchain:block:"+h.String() || o.Issued != "2025-12-01T00:01:40.000Z" {
			t.Errorf("%s: block provenance %+v %+v", tc.name, o.Extension, o.Meta)
		}
	}
}

// TestObservationRoundTrip: an exported collection imports back as the
// same readings.
func TestObservationRoundTrip(t *testing.T) {
	var rs []chain.Reading
	for i := range 5 {
		rs = append(rs, testReading(t, "subject-"+string(rune('a'+i)), 40+i, 1764547200000+int64(i)*1001))
	}
	var buf bytes.Buffer
	bw, err := NewBundleWriter(&buf, "collection", "", time.UnixMilli(1764550000000))
	if err != nil {
		t.Fatal(err)
	}
	for i := range rs {
		o := ObservationOf(&rs[i], &Place{Height: uint64(i + 1), Final: i < 3})
		if err := bw.Add(&o); err != nil {
			t.Fatal(err)
		}
	}
	if err := bw.Close(); err != nil || bw.Count() != 5 {
		t.Fatal(err, bw.Count())
	}
	if !json.Valid(buf.Bytes()) {
		t.Fatalf("not JSON:\n%s", buf.Bytes())
	}
	rows, bad := ParseBundle(buf.Bytes())
	if len(bad) > 0 || len(rows) != len(rs) {
		t.Fatalf("rows %d bad %v", len(rows), bad)
	}
	for i, row := range rows {
		r := rs[i]
		if row.Entry != i+1 || row.Subject != r.Subject || row.BPM != int(r.BPM) || row.Time.UnixMilli() != r.Time {
			t.Errorf("entry %d: %+v, want %s %d %d", i+1, row, r.Subject, r.BPM, r.Time)
		}
	}
}

func TestBundleWriterEmpty(t *testing.T) {
	for _, typ := range []string{"collection", "searchset"} {
		var buf bytes.Buffer
		bw, _ := NewBundleWriter(&buf, typ, "", time.UnixMilli(0))
		if err := bw.Close(); err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v\n%s", typ, err, buf.Bytes())
		}
		if _, ok := m["entry"]; ok {
			t.Errorf("%s: an empty entry array (FHIR JSON has no empty arrays): %s", typ, buf.Bytes())
		}
		if _, ok := m["total"]; ok != (typ == "searchset") {
			t.Errorf("%s: total present %v: %s", typ, ok, buf.Bytes())
		}
	}
	if _, err := NewBundleWriter(&bytes.Buffer{}, "transaction", "", time.Time{}); err == nil {
		t.Error("a transaction bundle writer")
	}
}

func ms(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMilli()
}

func TestParseSearch(t *testing.T) {
	const none, inf = math.MinInt64, math.MaxInt64
	for _, tc := range []struct {
		query        string
		subject      string
		from, before int64
		count        int
		none         bool
	}{
		{"subject=alice", "alice", none, inf, DefaultCount, false},
		{"subject=Patient/alice&_count=5", "alice", none, inf, 5, false},
		{"subject:identifier=urn:p2pchain:subject|alice&_count=500", "alice", none, inf, MaxCount, false},
		{"subject=alice&_count=99999999999999999999999", "alice", none, inf, MaxCount, false},
		{"subject:identifier=alice", "alice", none, inf, DefaultCount, false},
		{`subject=a\,b`, "a,b", none, inf, DefaultCount, false},
		{`subject=a\\b\|c\$d`, `a\b|c$d`, none, inf, DefaultCount, false},
		{"subject=Patient/Patient/x", "Patient/x", none, inf, DefaultCount, false},
		{"subject=alice&date=2025-12-01", "alice", ms("2025-12-01T00:00:00Z"), ms("2025-12-02T00:00:00Z"), DefaultCount, false},
		{"subject=alice&date=eq2025-12", "alice", ms("2025-12-01T00:00:00Z"), ms("2026-01-01T00:00:00Z"), DefaultCount, false},
		{"subject=alice&date=2025", "alice", ms("2025-01-01T00:00:00Z"), ms("2026-01-01T00:00:00Z"), DefaultCount, false},
		{"subject=alice&date=2025-12-01T10:00:05Z", "alice", ms("2025-12-01T10:00:05Z"), ms("2025-12-01T10:00:06Z"), DefaultCount, false},
		{"subject=alice&date=2025-12-01T10:00Z", "alice", ms("2025-12-01T10:00:00Z"), ms("2025-12-01T10:01:00Z"), DefaultCount, false},
		{"subject=alice&date=2025-12-01T10:00:05.1Z", "alice", ms("2025-12-01T10:00:05.1Z"), ms("2025-12-01T10:00:05.2Z"), DefaultCount, false},
		{"subject=alice&date=ge2025-12-01&date=lt2025-12-03", "alice", ms("2025-12-01T00:00:00Z"), ms("2025-12-03T00:00:00Z"), DefaultCount, false},
		{"subject=alice&date=gt2025-12-01&date=le2025-12-03", "alice", ms("2025-12-02T00:00:00Z"), ms("2025-12-04T00:00:00Z"), DefaultCount, false},
		{"subject=alice&date=ge2025-12-01T10:00:00%2B01:00", "alice", ms("2025-12-01T09:00:00Z"), inf, DefaultCount, false},
		{"subject=alice&date=ge2025-12-01T10:00:00+01:00", "alice", ms("2025-12-01T09:00:00Z"), inf, DefaultCount, false}, // "+" unencoded
		{"subject=alice&code=http://loinc.org|8867-4&category=vital-signs&_format=json", "alice", none, inf, DefaultCount, false},
		{"subject=alice&code=8310-5", "alice", none, inf, DefaultCount, true},
		{`subject=alice&code=8867-4\,1`, "alice", none, inf, DefaultCount, true},                 // one code, with an escaped comma
		{"subject=alice&_format=application/fhir+json", "alice", none, inf, DefaultCount, false}, // "+" unencoded
		{"subject=alice&date=ge2026-06-01T10:00:00-14:00", "alice", ms("2026-06-02T00:00:00Z"), inf, DefaultCount, false},
		{"subject=alice&date=gt9999", "alice", none, inf, DefaultCount, true},
		{"subject=alice&date=le9999-12-31&date=ge9999-12-31T23:59:59Z", "alice", ms("9999-12-31T23:59:59Z"), inf, DefaultCount, false},
		{"subject=alice&date=ge2025-12-02&date=lt2025-12-01", "alice", ms("2025-12-02T00:00:00Z"), ms("2025-12-01T00:00:00Z"), DefaultCount, false},
	} {
		q, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ParseSearch(q)
		if err != nil {
			t.Errorf("%s: %v", tc.query, err)
			continue
		}
		if s.Subject != tc.subject || s.From != tc.from || s.Before != tc.before || s.Count != tc.count || s.None != tc.none {
			t.Errorf("%s: %+v, want %s [%d, %d) count %d none %v", tc.query, s, tc.subject, tc.from, tc.before, tc.count, tc.none)
		}
		// The canonical query parses back to the same search.
		again, err := ParseSearch(s.Query())
		if err != nil || !reflect.DeepEqual(again, s) {
			t.Errorf("%s: canonical %s parses to %+v, %v", tc.query, s.Query().Encode(), again, err)
		}
	}
}

func TestParseSearchErrors(t *testing.T) {
	for _, tc := range []struct {
		query, code, want string
	}{
		{"", "required", "subject is required"},
		{"subject=alice&subject=bob", "not-supported", "give one subject"},
		{"subject=alice,bob", "not-supported", "several subjects"},
		{"subject=a%20b", "invalid", "not a subject"},
		{`subject=a\b`, "invalid", `a backslash escapes only`}, // it searched "ab"
		{`subject=ab\`, "invalid", `a backslash escapes only`},
		{"subject=alice&foo=1", "not-supported", `unknown search parameter "foo": this server supports subject (or patient, alike), date,`},
		{"subject=alice&patient=alice", "not-supported", "give one subject"},
		{"subject=alice&date:missing=true", "not-supported", `unknown search parameter "date:missing"`},
		{"subject=alice&date=ne2025-12-01", "not-supported", "prefix ne is not supported"},
		{"subject=alice&date=2025-12-01,2025-12-02", "not-supported", "several values"},
		{"subject=alice&date=2025-13-01", "invalid", "date=2025-13-01: not a date"},
		{"subject=alice&date=2025-02-30", "invalid", "not a date"},
		{"subject=alice&date=2025-12-01T10", "invalid", "not a date"},
		{"subject=alice&date=2026-06-01T10:00:00", "invalid", "date=2026-06-01T10:00:00: a time of day needs its zone: add Z (UTC) or an offset such as +01:00"},
		{"subject=alice&date=ge2026-06-01T10:00", "invalid", "a time of day needs its zone"},
		{"subject=alice&date=2026-06-01T10:00:00.5", "invalid", "a time of day needs its zone"},
		{"subject=alice&date=2026-6-1", "invalid", "followed by Z or +hh:mm (or -hh:mm)"},
		{"subject=alice&date=yesterday", "invalid", "want [eq|ge|gt|le|lt]"},
		{"subject=alice&_count=0", "invalid", "_count=0"},
		{"subject=alice&_count=x", "invalid", "_count=x"},
		{"subject=alice&_cursor=abc", "invalid", "_cursor=abc"},
		{"subject=alice&_format=xml", "not-supported", "JSON only"},
		{"subject=alice&code=8867-4,1234-5", "not-supported", "several values"},
		{"subject=alice&code=http://loinc.org|8867-4,http://loinc.org|1234-5", "not-supported", "several values"},
		{"subject=alice&category=vital-signs,laboratory", "not-supported", "several values"},
		{"subject=alice&date=ge2026-06-01T10:00:00%2B99:99", "invalid", "zone offset +99:99"},
		{"subject=alice&date=ge2026-06-01T10:00:00-15:00", "invalid", "zone offset -15:00"},
		{"subject=alice&date=ge2026-06-01T10:00:00%2B01:60", "invalid", "zone offset +01:60"},
		{"subject=alice&_count=1&_count=2", "invalid", "_count is given 2 times"},
		{"subject=alice&_cursor=1.0&_cursor=1.0", "invalid", "_cursor is given 2 times"},
		{"subject=alice&_format=json&_format=xml", "invalid", "_format is given 2 times"},
		{"subject:identifier=http://other|alice", "not-supported", SystemSubject},
	} {
		q, _ := url.ParseQuery(tc.query)
		_, err := ParseSearch(q)
		e, ok := err.(*Error)
		if !ok || e.Code != tc.code || !strings.Contains(e.Diagnostics, tc.want) {
			t.Errorf("%q: %#v, want %s mentioning %q", tc.query, err, tc.code, tc.want)
		}
	}
}

// TestParseSort: _sort=date and -date are read, carried by the links, and
// parse back; any other order is refused saying what is supported, and a
// sort without a subject is refused saying what to send.
func TestParseSort(t *testing.T) {
	for query, want := range map[string]string{
		"subject=alice&_sort=date":  "date",
		"subject=alice&_sort=-date": "-date",
		"patient=alice&_sort=-date&_count=1&_cursor=t1780309800000." + strings.Repeat("ab", 32): "-date",
		"subject=alice&_sort=-date&date=ge2026-06&code=8867-4&category=vital-signs":             "-date",
	} {
		q, _ := url.ParseQuery(query)
		s, err := ParseSearch(q)
		if err != nil || s.Sort != want {
			t.Errorf("%s: sort %q, %v; want %q", query, s.Sort, err, want)
			continue
		}
		if got := s.Query().Get("_sort"); got != want {
			t.Errorf("%s: links carry _sort=%q", query, got)
		}
		if again, err := ParseSearch(s.Query()); err != nil || !reflect.DeepEqual(again, s) {
			t.Errorf("%s: canonical %s parses to %+v, %v", query, s.Query().Encode(), again, err)
		}
	}
	for _, tc := range []struct {
		query, code, want string
	}{
		{"subject=alice&_sort=code", "not-supported", "_sort=code: this server sorts Observations by date only, by one key: _sort=date (oldest first) or _sort=-date (newest first)"},
		{"subject=alice&_sort=_lastUpdated", "not-supported", "by date only"},
		{"subject=alice&_sort=-date,_id", "not-supported", "by one key"},
		{"subject=alice&_sort=", "not-supported", "_sort=date (oldest first)"},
		{"subject=alice&_sort=Date", "not-supported", "by date only"},
		{"subject=alice&_sort=date&_sort=-date", "invalid", "_sort is given 2 times"},
		{"subject=alice&_sort:asc=date", "not-supported", "R4 writes a sort as _sort=date"},
		{"_sort=-date", "required", "subject is required, also with _sort: this server sorts one subject's readings (Observation?subject=SUBJECT&_sort=-date)"},
		{"_sort=date&date=ge2026-06-01", "required", "also with _sort"},
	} {
		q, _ := url.ParseQuery(tc.query)
		_, err := ParseSearch(q)
		e, ok := err.(*Error)
		if !ok || e.Code != tc.code || !strings.Contains(e.Diagnostics, tc.want) {
			t.Errorf("%q: %#v, want %s mentioning %q", tc.query, err, tc.code, tc.want)
		}
	}
}

func TestSearchBundle(t *testing.T) {
	s, err := ParseSearch(url.Values{"subject": {"alice"}, "_count": {"1"}})
	if err != nil {
		t.Fatal(err)
	}
	r := testReading(t, "alice", 60, 1764547200000)
	b := SearchBundle("http://h/fhir", s, []Observation{ObservationOf(&r, nil)}, -1, "3.0", time.UnixMilli(0))
	if b.Type != "searchset" || b.Total != nil || len(b.Entry) != 1 || b.Entry[0].Search.Mode != "match" ||
		b.Entry[0].FullURL != "http://h/fhir/Observation/"+r.ID().String() {
		t.Fatalf("%+v", b)
	}
	if len(b.Link) != 2 || b.Link[0].URL != "http://h/fhir/Observation?_count=1&subject=alice" ||
		b.Link[1].Relation != "next" || b.Link[1].URL != "http://h/fhir/Observation?_count=1&_cursor=3.0&subject=alice" {
		t.Fatalf("links %+v", b.Link)
	}
	if !s.Matches(r.Time) {
		t.Error("no match")
	}
}

func TestWriteError(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteError(rec, NotFound("abc"))
	if rec.Code != http.StatusNotFound || rec.Header().Get("Content-Type") != "application/fhir+json; charset=utf-8" {
		t.Fatalf("%d %v", rec.Code, rec.Header())
	}
	var o Outcome
	if err := json.Unmarshal(rec.Body.Bytes(), &o); err != nil || o.ResourceType != "OperationOutcome" ||
		o.Issue[0] != (Issue{"error", "not-found", "Observation/abc: no reading with that id"}) {
		t.Fatalf("%s %v", rec.Body, err)
	}
}

// TestBaseURL: the links of a Bundle name the server the client came to,
// the reverse proxy's where one says so (before, X-Forwarded-Host was not
// read, and a client behind nginx was sent to the node's loopback
// address), and never anything a header could smuggle in.
func TestBaseURL(t *testing.T) {
	for _, c := range []struct {
		hdr  []string // name, value pairs
		want string
	}{
		{nil, "http://127.0.0.1:5001/fhir"},
		{[]string{"X-Forwarded-Proto", "https"}, "https://127.0.0.1:5001/fhir"},
		{[]string{"X-Forwarded-Proto", "https", "X-Forwarded-Host", "fhir.clinic.example"}, "https://fhir.clinic.example/fhir"},
		{[]string{"X-Forwarded-Host", "fhir.clinic.example:8443, proxy2.internal"}, "http://fhir.clinic.example:8443/fhir"},
		{[]string{"X-Forwarded-Proto", "https", "X-Forwarded-Host", "ward.example", "X-Forwarded-Prefix", "/ledger/"}, "https://ward.example/ledger/fhir"},
		{[]string{"Forwarded", `for=192.0.2.60;proto=https;host="fhir.clinic.example", for=10.0.0.1`}, "https://fhir.clinic.example/fhir"},
		{[]string{"Forwarded", "for=192.0.2.60"}, "http://127.0.0.1:5001/fhir"},
		{[]string{"X-Forwarded-Proto", "javascript"}, "http://127.0.0.1:5001/fhir"},
		{[]string{"X-Forwarded-Host", "evil.example/path"}, "http://127.0.0.1:5001/fhir"},
		{[]string{"X-Forwarded-Host", "user@evil.example"}, "http://127.0.0.1:5001/fhir"},
		{[]string{"X-Forwarded-Host", "a b"}, "http://127.0.0.1:5001/fhir"},
		{[]string{"X-Forwarded-Prefix", "/../admin"}, "http://127.0.0.1:5001/fhir"},
		{[]string{"X-Forwarded-Prefix", "/x?y=1"}, "http://127.0.0.1:5001/fhir"},
		{[]string{"X-Forwarded-Prefix", "ledger"}, "http://127.0.0.1:5001/fhir"},
		{[]string{"X-Forwarded-Host", `evil"><img>`}, "http://127.0.0.1:5001/fhir"},
		{[]string{"X-Forwarded-Host", "évil.example"}, "http://127.0.0.1:5001/fhir"},
		{[]string{"X-Forwarded-Host", "ward.example:99999"}, "http://127.0.0.1:5001/fhir"},
		{[]string{"X-Forwarded-Host", "ward.example:"}, "http://127.0.0.1:5001/fhir"},
		{[]string{"X-Forwarded-Host", "-ward.example"}, "http://127.0.0.1:5001/fhir"},
		{[]string{"X-Forwarded-Host", "[2001:db8::7]:8443"}, "http://[2001:db8::7]:8443/fhir"},
		{[]string{"X-Forwarded-Host", "[zz::1]"}, "http://127.0.0.1:5001/fhir"},
		{[]string{"X-Forwarded-Host", "192.0.2.7:8080"}, "http://192.0.2.7:8080/fhir"},
		{[]string{"Forwarded", `host="a;b";proto=https`}, "https://127.0.0.1:5001/fhir"}, // a quoted ; is no separator: the host is a;b, refused
		{[]string{"Forwarded", `proto=https;host=fwd.example`, "X-Forwarded-Host", "xfh.example"}, "https://xfh.example/fhir"},
	} {
		req := httptest.NewRequest("GET", "/fhir/metadata", nil)
		req.Host = "127.0.0.1:5001"
		for i := 0; i < len(c.hdr); i += 2 {
			req.Header.Set(c.hdr[i], c.hdr[i+1])
		}
		if got := BaseURL(req); got != c.want {
			t.Errorf("%q: BaseURL %q, want %q", c.hdr, got, c.want)
		}
	}
}

func TestParseBundleErrors(t *testing.T) {
	obs := func(edit string) string {
		o := `{"resourceType":"Observation","status":"final",
			"code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},
			"subject":{"identifier":{"system":"urn:p2pchain:subject","value":"alice"}},
			"effectiveDateTime":"2025-12-01T10:30:00Z",
			"valueQuantity":{"value":72,"unit":"beats/minute","system":"http://unitsofmeasure.org","code":"/min"}}`
		if edit == "" {
			return o
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(o), &m); err != nil {
			panic(err)
		}
		var e map[string]any
		if err := json.Unmarshal([]byte(edit), &e); err != nil {
			panic(err)
		}
		for k, v := range e {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	entries := []struct{ resource, want string }{
		{obs(""), ""},
		{obs(`{"valueQuantity":{"value":120,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mmHg"}}`), `entry 2: valueQuantity.code is "mmHg", want "/min"`},
		{obs(`{"valueQuantity":{"value":72.5,"code":"/min"}}`), "entry 3: valueQuantity.value 72.5 is not a whole number of beats"},
		{obs(`{"valueQuantity":{"value":500,"code":"/min"}}`), "entry 4: valueQuantity.value 500 is outside 20-300 /min"},
		{obs(`{"code":{"coding":[{"system":"http://loinc.org","code":"8310-5"}]}}`), "entry 5: code is not heart rate"},
		{obs(`{"effectiveDateTime":"2025-12-01"}`), `entry 6: effectiveDateTime "2025-12-01" is not a time precise to the second`},
		{obs(`{"effectiveDateTime":null,"effectivePeriod":{"start":"2025-12-01T10:30:00Z"}}`), "entry 7: effectivePeriod is not supported"},
		{obs(`{"effectiveDateTime":null}`), "entry 8: effectiveDateTime is missing"},
		{obs(`{"subject":{"reference":"Patient/bob"},"effectiveDateTime":null,"effectiveInstant":"2025-12-01T10:30:00.5+01:00"}`), ""},
		{obs(`{"subject":{"reference":"Group/x"}}`), `entry 10: subject.reference "Group/x" is not Patient/SUBJECT`},
		{obs(`{"subject":{"identifier":{"value":"a b"}}}`), `entry 11: subject "a b": character ' ' at byte 1`},
		{obs(`{"subject":null}`), "entry 12: subject is missing"},
		{`{"resourceType":"Patient"}`, `entry 13: resourceType is "Patient", want "Observation"`},
		{obs(`{"status":"entered-in-error"}`), `entry 14: status is "entered-in-error"`},
		{`null`, "entry 15: no resource"},
		{obs(`{"valueQuantity":null}`), "entry 16: valueQuantity is missing"},
		{obs(`{"subject":{"identifier":{"system":"urn:oid:2.16.840.1.113883.4.1","value":"123456789"}}}`), `entry 17: subject.identifier.system is "urn:oid:2.16.840.1.113883.4.1": only pseudonymous subjects`},
		{obs(`{"effectiveDateTime":"1970-01-01T00:00:00Z"}`), "entry 18: effectiveDateTime 1970-01-01T00:00:00Z is not after 1970-01-01T00:00:00Z"},
		{obs(`{"effectiveDateTime":"1969-12-31T23:00:00Z"}`), "entry 19: effectiveDateTime 1969-12-31T23:00:00Z is not after"},
	}
	var parts []string
	for _, e := range entries {
		parts = append(parts, `{"resource":`+e.resource+`}`)
	}
	rows, bad := ParseBundle([]byte(`{"resourceType":"Bundle","type":"transaction","entry":[` + strings.Join(parts, ",") + `]}`))
	if len(rows) != 2 || rows[0] != (Row{Entry: 1, Subject: "alice", BPM: 72, Time: time.Date(2025, 12, 1, 10, 30, 0, 0, time.UTC)}) ||
		rows[1].Entry != 9 || rows[1].Subject != "bob" || rows[1].Time.UnixMilli() != ms("2025-12-01T09:30:00.5Z") {
		t.Errorf("rows %+v", rows)
	}
	i := 0
	for _, e := range entries {
		if e.want == "" {
			continue
		}
		if i >= len(bad) || !strings.HasPrefix(bad[i].Error(), e.want) {
			t.Errorf("want %q, got %v", e.want, bad[i:])
			return
		}
		i++
	}
	if i != len(bad) {
		t.Errorf("extra errors %v", bad[i:])
	}

	for _, tc := range []struct{ data, want string }{
		{`[1]`, "bundle: not a FHIR Bundle in JSON"},
		{`{"resourceType":"Observation"}`, `bundle: resourceType is "Observation", want "Bundle"`},
		{`{}`, "bundle: resourceType is missing"},
		{`{"resourceType":"Bundle"} {}`, "bundle: data after"},
		{strings.Repeat(" ", MaxBundleSize+1), "more than the 64 MiB"},
	} {
		rows, bad := ParseBundle([]byte(tc.data))
		if len(rows) != 0 || len(bad) != 1 || bad[0].Entry != 0 || !strings.Contains(bad[0].Error(), tc.want) {
			t.Errorf("%.40q: %v %v, want %q", tc.data, rows, bad, tc.want)
		}
	}
}

// TestSearchLinksRepeatTheSearch: a search's canonical query (its links)
// carries the code, category and dates it was given, never a value of the
// server's own.
func TestSearchLinksRepeatTheSearch(t *testing.T) {
	for query, want := range map[string]string{
		"subject=pat-p&category=laboratory":                 "_count=20&category=laboratory&subject=pat-p",
		"patient=pat-p&code=1234-5&code=8867-4":             "_count=20&code=1234-5&code=8867-4&subject=pat-p",
		"subject=pat-p&code=http://loinc.org|8867-4":        "_count=20&code=http%3A%2F%2Floinc.org%7C8867-4&subject=pat-p",
		"subject=pat-p&date=gt9999":                         "_count=20&date=gt9999&subject=pat-p",
		"subject=pat-p&category=vital-signs&date=ge2026-06": "_count=20&category=vital-signs&date=ge2026-06-01T00%3A00%3A00.000Z&subject=pat-p",
	} {
		q, err := url.ParseQuery(query)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ParseSearch(q)
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		if got := s.Query().Encode(); got != want {
			t.Errorf("%s: links carry %s, want %s", query, got, want)
		}
	}
}

// TestCapabilityListsSearchParams: the CapabilityStatement lists every
// search parameter ParseSearch takes under its own name, patient included.
func TestCapabilityListsSearchParams(t *testing.T) {
	var names []string
	for _, p := range Capability("http://h/fhir", "v", time.UnixMilli(0)).Rest[0].Resource[0].SearchParam {
		names = append(names, p.Name)
	}
	if got, want := strings.Join(names, " "), "subject patient date code category _count _sort"; got != want {
		t.Errorf("search parameters %s, want %s", got, want)
	}
	if _, err := ParseSearch(url.Values{"patient": {"Patient/alice"}}); err != nil {
		t.Errorf("patient=Patient/alice: %v", err)
	}
}

package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/api"
	"github.com/p2pchain/p2pchain/internal/fhir/fhirtest"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

type bundleJSON struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Total        *int   `json:"total"`
	Link         []struct {
		Relation string `json:"relation"`
		URL      string `json:"url"`
	} `json:"link"`
	Entry []struct {
		FullURL  string `json:"fullUrl"`
		Resource struct {
			ResourceType      string `json:"resourceType"`
			ID                string `json:"id"`
			Status            string `json:"status"`
			EffectiveDateTime string `json:"effectiveDateTime"`
			ValueQuantity     struct {
				Value float64 `json:"value"`
				Code  string  `json:"code"`
			} `json:"valueQuantity"`
			Subject struct {
				Identifier struct{ Value string } `json:"identifier"`
			} `json:"subject"`
		} `json:"resource"`
	} `json:"entry"`
}

// TestFHIR: the node's FHIR interface over real HTTP: a subject's readings
// as a searchset Bundle (pending and mined, paged, filtered by date), one
// Observation, the CapabilityStatement and OperationOutcomes, every answer
// checked by HL7's R4 schema and FHIR.js (package fhirtest).
func TestFHIR(t *testing.T) {
	e, _ := storedPeer(t, t.TempDir(), testnet.Config{NoMiner: true})
	day := 24 * time.Hour
	base := time.Now().Truncate(time.Second).Add(-10 * day)
	var items []string
	for i := range 6 { // alice: one a day, 10 to 5 days ago; bob: one
		items = append(items, fmt.Sprintf(`{"subject": "alice", "bpm": %d, "time": %d}`, 60+i, base.Add(time.Duration(i)*day).UnixMilli()))
	}
	items = append(items, `{"subject": "bob", "bpm": 99}`)
	want(t, "batch", e.postJSON("/api/v1/readings/batch", `{"readings": [`+strings.Join(items, ",")+`]}`), 200, "")
	mineOn(t, e, e.peer.Node.PendingReadings())
	pending := e.postJSON("/api/v1/readings", `{"subject": "alice", "bpm": 120}`)
	want(t, "pending reading", pending, http.StatusAccepted, "")
	pendingID := decode[struct{ ID string }](t, pending).ID

	get := func(path string, status int) []byte {
		t.Helper()
		r := e.get(path)
		if r.status != status {
			t.Fatalf("GET %s: %d, want %d: %s", path, r.status, status, r.body)
		}
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
			t.Fatalf("GET %s: content type %q", path, ct)
		}
		// Health data: no cache on the way may keep any answer, an
		// OperationOutcome's included.
		if cc := r.header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("GET %s: Cache-Control %q, want no-store", path, cc)
		}
		return r.body
	}
	resources := map[string]any{}

	// All of alice's readings: the pending one first, then newest first.
	body := get("/fhir/Observation?subject=alice", 200)
	resources["searchset"] = body
	var b bundleJSON
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatal(err)
	}
	if b.Type != "searchset" || b.Total == nil || *b.Total != 7 || len(b.Entry) != 7 {
		t.Fatalf("search: type %s, total %v, %d entries: %s", b.Type, b.Total, len(b.Entry), body)
	}
	first := b.Entry[0].Resource
	if first.ID != pendingID || first.Status != "preliminary" || first.ValueQuantity.Value != 120 || first.ValueQuantity.Code != "/min" {
		t.Errorf("first entry: %+v, want the pending reading", first)
	}
	for _, en := range b.Entry {
		if en.Resource.Subject.Identifier.Value != "alice" || !strings.HasSuffix(en.FullURL, "/fhir/Observation/"+en.Resource.ID) {
			t.Errorf("entry %+v", en)
		}
	}

	// Dates no reading can have (an empty window, one ending by 1970): an
	// empty Bundle whose self link says what was asked, nothing more.
	for _, q := range []string{"date=lt1970-01-01", "date=ge2026-02-01&date=lt2026-01-01"} {
		var e bundleJSON
		body := get("/fhir/Observation?subject=alice&"+q, 200)
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatal(err)
		}
		if len(e.Entry) != 0 || len(e.Link) == 0 || e.Link[0].Relation != "self" || strings.Contains(e.Link[0].URL, "code=") {
			t.Errorf("%s: %s", q, body)
		}
	}

	// Paged by two: the same seven, through the next links.
	var ids []string
	next := "/fhir/Observation?subject=Patient/alice&_count=2"
	for pages := 0; next != ""; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		body := get(next, 200)
		var p bundleJSON
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatal(err)
		}
		next = ""
		for _, l := range p.Link {
			if l.Relation == "next" {
				u, err := url.Parse(l.URL)
				if err != nil {
					t.Fatal(err)
				}
				next = u.RequestURI()
				resources["searchset page"] = body
			}
		}
		for _, en := range p.Entry {
			ids = append(ids, en.Resource.ID)
		}
	}
	if len(ids) != 7 || ids[0] != pendingID {
		t.Errorf("pages gave %d readings, want 7, the pending one first", len(ids))
	}

	// A first page filled by the pending reading alone still leads on to
	// the readings in blocks.
	body = get("/fhir/Observation?subject=alice&_count=1", 200)
	b = bundleJSON{}
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatal(err)
	}
	if len(b.Entry) != 1 || b.Entry[0].Resource.ID != pendingID || len(b.Link) != 2 || b.Link[1].Relation != "next" {
		t.Errorf("a page of the pending reading alone: %s", body)
	}

	// A date range: days 7 and 8 ago (two of alice's readings).
	q := url.Values{"subject": {"alice"}, "date": {"ge" + base.Add(2*day).UTC().Format(time.RFC3339), "lt" + base.Add(4*day).UTC().Format(time.RFC3339)}}
	body = get("/fhir/Observation?"+q.Encode(), 200)
	resources["searchset by date"] = body
	b = bundleJSON{}
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatal(err)
	}
	// Both in one block, whose order is the order the batch's readings
	// reached the pending set: any.
	if len(b.Entry) != 2 || b.Entry[0].Resource.ValueQuantity.Value+b.Entry[1].Resource.ValueQuantity.Value != 62+63 ||
		b.Entry[0].Resource.ValueQuantity.Value == b.Entry[1].Resource.ValueQuantity.Value {
		t.Errorf("by date: %s", body)
	}

	// One Observation, mined and pending; the capability statement.
	resources["observation"] = get("/fhir/Observation/"+b.Entry[0].Resource.ID, 200)
	resources["observation pending"] = get("/fhir/Observation/"+pendingID, 200)
	resources["metadata"] = get("/fhir/metadata", 200)
	// Errors are OperationOutcomes.
	resources["not found"] = get("/fhir/Observation/"+strings.Repeat("ab", 32), 404)
	resources["not an id"] = get("/fhir/Observation/xyz", 404)
	resources["unknown parameter"] = get("/fhir/Observation?subject=alice&foo=1", 400)
	resources["no subject"] = get("/fhir/Observation", 400)
	resources["unknown resource"] = get("/fhir/Patient/alice", 404)
	r := e.postJSON("/fhir/Observation", `{}`)
	if r.status != http.StatusMethodNotAllowed {
		t.Errorf("POST /fhir/Observation: %d %s", r.status, r.body)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("POST /fhir/Observation: Cache-Control %q, want no-store", cc)
	}

	for name, errs := range fhirtest.Validate(t, resources) {
		if len(errs) > 0 {
			t.Errorf("%s: the FHIR validators refuse it: %v\n%s", name, errs, resources[name])
		}
	}
}

// outcome checks that r is an OperationOutcome with status and issue code.
func outcome(t *testing.T, what string, r response, status int, code string) string {
	t.Helper()
	var o struct {
		ResourceType string `json:"resourceType"`
		Issue        []struct {
			Code        string `json:"code"`
			Diagnostics string `json:"diagnostics"`
		} `json:"issue"`
	}
	if err := json.Unmarshal(r.body, &o); err != nil || r.status != status || o.ResourceType != "OperationOutcome" ||
		len(o.Issue) != 1 || o.Issue[0].Code != code || !strings.HasPrefix(r.header.Get("Content-Type"), "application/fhir+json") {
		t.Errorf("%s: %d %s, want %d and an OperationOutcome of code %s", what, r.status, r.body, status, code)
		return ""
	}
	return o.Issue[0].Diagnostics
}

// TestFHIRParameters: what a FHIR request may not say is refused with an
// OperationOutcome that says what to do, and what it may say is accepted
// however it was typed.
func TestFHIRParameters(t *testing.T) {
	e, _ := storedPeer(t, t.TempDir(), testnet.Config{NoMiner: true})
	r := e.postJSON("/api/v1/readings", `{"subject": "alice", "bpm": 72}`)
	want(t, "a reading", r, http.StatusAccepted, "")
	id := decode[struct{ ID string }](t, r).ID

	// Several codes or categories in one parameter: refused, not read as
	// one code that matches nothing.
	for _, q := range []string{"code=8867-4,1234-5", "code=http://loinc.org|8867-4,1234-5", "category=vital-signs,laboratory"} {
		outcome(t, q, e.get("/fhir/Observation?subject=alice&"+q), http.StatusBadRequest, "not-supported")
	}
	// An escaped comma is part of one code: none is the heart rate's.
	var b bundleJSON
	if r := e.get(`/fhir/Observation?subject=alice&code=8867-4\,x`); r.status != 200 || json.Unmarshal(r.body, &b) != nil || len(b.Entry) != 0 {
		t.Errorf("an escaped comma: %d %s", r.status, r.body)
	}

	// _format: application/fhir+json with its + typed as is (a space once
	// decoded), on every FHIR endpoint; another format is 406 on each.
	for _, path := range []string{"/fhir/Observation?subject=alice&", "/fhir/metadata?", "/fhir/Observation/" + id + "?"} {
		for _, f := range []string{"json", "application/json", "application/fhir+json", "application%2Ffhir%2Bjson"} {
			if r := e.get(path + "_format=" + f); r.status != http.StatusOK {
				t.Errorf("%s_format=%s: %d %s", path, f, r.status, r.body)
			}
		}
		for _, f := range []string{"xml", "application/fhir+xml", "text/html"} {
			outcome(t, path+"_format="+f, e.get(path+"_format="+f), http.StatusNotAcceptable, "not-supported")
		}
		outcome(t, path+"_format twice", e.get(path+"_format=json&_format=xml"), http.StatusBadRequest, "invalid")
	}

	// Time-zone offsets no zone has.
	for _, d := range []string{"ge2026-06-01T10:00:00%2B99:99", "ge2026-06-01T10:00:00-15:00", "ge2026-06-01T10:00:00%2B01:60"} {
		if msg := outcome(t, d, e.get("/fhir/Observation?subject=alice&date="+d), http.StatusBadRequest, "invalid"); msg != "" && !strings.Contains(msg, "zone offset") {
			t.Errorf("date=%s: %q does not name the zone offset", d, msg)
		}
	}
	for _, d := range []string{"ge2026-06-01T10:00:00%2B14:00", "ge2026-06-01T10:00:00-12:00", "ge2026-06-01T10:00:00+05:45"} {
		if r := e.get("/fhir/Observation?subject=alice&date=" + d); r.status != http.StatusOK {
			t.Errorf("date=%s: %d %s", d, r.status, r.body)
		}
	}

	// A parameter that takes one value, given twice.
	for _, q := range []string{"_count=1&_count=2", "_cursor=1.0&_cursor=2.0"} {
		if msg := outcome(t, q, e.get("/fhir/Observation?subject=alice&"+q), http.StatusBadRequest, "invalid"); msg != "" && !strings.Contains(msg, "give it once") {
			t.Errorf("%s: %q", q, msg)
		}
	}

	// A Host the node does not answer to: an OperationOutcome under /fhir/,
	// the API's error elsewhere.
	outcome(t, "forbidden host", e.do("GET", "/fhir/metadata", "", "Host", "evil.example"), http.StatusForbidden, "forbidden")
	want(t, "forbidden host", e.do("GET", "/api/v1/status", "", "Host", "evil.example"), http.StatusForbidden, api.CodeForbiddenHost)
}

// TestFHIRSearchLinksAndTotal: a search's self link repeats the code and
// category it was given (not a value of the server's own), and a search
// that matches nothing (an unknown subject, a code or category no reading
// has, dates no time fits) has total 0.
func TestFHIRSearchLinksAndTotal(t *testing.T) {
	e, _ := storedPeer(t, t.TempDir(), testnet.Config{NoMiner: true})
	want(t, "reading", e.postJSON("/api/v1/readings", `{"subject": "pat-p", "bpm": 70}`), http.StatusAccepted, "")
	for _, tc := range []struct {
		query string
		total int
		self  []string // in the self link's query
	}{
		{"subject=pat-p&category=laboratory", 0, []string{"category=laboratory"}},
		{"subject=pat-p&code=1234-5", 0, []string{"code=1234-5"}},
		{"subject=pat-p&code=http://loinc.org|8867-4&category=vital-signs", 1,
			[]string{"code=http%3A%2F%2Floinc.org%7C8867-4", "category=vital-signs"}},
		{"patient=pat-p", 1, []string{"subject=pat-p"}},
		{"subject=nobody", 0, []string{"subject=nobody"}},
		{"subject=pat-p&date=gt9999", 0, []string{"date=gt9999"}},
		{"subject=pat-p&date=ge2026-02-01&date=lt2026-01-01", 0, []string{"date=ge2026-02-01"}},
	} {
		r := e.get("/fhir/Observation?" + tc.query)
		var b bundleJSON
		if err := json.Unmarshal(r.body, &b); err != nil || r.status != http.StatusOK {
			t.Fatalf("%s: %d %v %s", tc.query, r.status, err, r.body)
		}
		if b.Total == nil || *b.Total != tc.total {
			t.Errorf("%s: total %v, want %d: %s", tc.query, b.Total, tc.total, r.body)
		}
		if len(b.Link) == 0 || b.Link[0].Relation != "self" {
			t.Fatalf("%s: no self link: %s", tc.query, r.body)
		}
		self := b.Link[0].URL
		for _, s := range tc.self {
			if !strings.Contains(self, s) {
				t.Errorf("%s: self link %s lacks %s", tc.query, self, s)
			}
		}
		if strings.Contains(self, "none") {
			t.Errorf("%s: self link %s says none", tc.query, self)
		}
	}
}

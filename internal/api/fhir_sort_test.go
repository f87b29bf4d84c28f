package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/fhir/fhirtest"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

var nextBPM atomic.Int64

// fhirPage is one Bundle of a search: its entries' ids and times, and the
// path of its next link ("" when none).
type fhirPage struct {
	ids, times []string
	total      *int
	next       string
	body       []byte
}

func getBundle(t *testing.T, e *env, path string) fhirPage {
	t.Helper()
	r := e.get(path)
	var b bundleJSON
	if r.status != http.StatusOK || json.Unmarshal(r.body, &b) != nil || b.Type != "searchset" {
		t.Fatalf("GET %s: %d %s", path, r.status, r.body)
	}
	p := fhirPage{total: b.Total, body: r.body}
	for _, en := range b.Entry {
		p.ids = append(p.ids, en.Resource.ID)
		p.times = append(p.times, en.Resource.EffectiveDateTime)
	}
	for _, l := range b.Link {
		if l.Relation == "next" {
			u, err := url.Parse(l.URL)
			if err != nil {
				t.Fatal(err)
			}
			p.next = u.RequestURI()
		}
	}
	return p
}

// allPages follows a search's next links to the end and returns every
// entry's id and time, in order.
func allPages(t *testing.T, e *env, path string) (ids, times []string) {
	t.Helper()
	for pages := 0; path != ""; pages++ {
		if pages > 50 {
			t.Fatalf("paging %s does not end", path)
		}
		p := getBundle(t, e, path)
		ids, times = append(ids, p.ids...), append(times, p.times...)
		path = p.next
	}
	return ids, times
}

// postReadings submits readings of subject at the given times and returns
// their ids. Each has a BPM of its own (40 to 239, in turn), so that
// readings of one subject at one time are distinct readings.
func postReadings(t *testing.T, e *env, subject string, at ...time.Time) []string {
	t.Helper()
	var items []string
	for _, ts := range at {
		bpm := 40 + nextBPM.Add(1)%200
		items = append(items, fmt.Sprintf(`{"subject": %q, "bpm": %d, "time": %d}`, subject, bpm, ts.UnixMilli()))
	}
	r := e.postJSON("/api/v1/readings/batch", `{"readings": [`+strings.Join(items, ",")+`]}`)
	want(t, "batch", r, http.StatusOK, "")
	var v struct {
		Results []struct{ ID string }
	}
	if err := json.Unmarshal(r.body, &v); err != nil || len(v.Results) != len(at) {
		t.Fatalf("batch: %s", r.body)
	}
	var ids []string
	for _, res := range v.Results {
		ids = append(ids, res.ID)
	}
	return ids
}

// TestFHIRSortLatest: "the latest heart rate of patient X" is
// _sort=-date&_count=1, and it is the reading taken last, not the one
// mined last: readings back-filled into a newer block than recent ones
// sort by their own times. Pending readings take their place in the same
// order; date, code and category filter a sorted search as any other.
func TestFHIRSortLatest(t *testing.T) {
	e, _ := storedPeer(t, t.TempDir(), testnet.Config{NoMiner: true})
	now := time.Now().Truncate(time.Second)
	hour, day := time.Hour, 24*time.Hour
	// Block 1: today's readings. Block 2: a back-filled import of readings
	// 20 to 16 days old.
	recent := postReadings(t, e, "alice", now.Add(-3*hour), now.Add(-2*hour), now.Add(-hour))
	mineOn(t, e, e.peer.Node.PendingReadings())
	old := postReadings(t, e, "alice", now.Add(-20*day), now.Add(-19*day), now.Add(-18*day), now.Add(-17*day), now.Add(-16*day))
	mineOn(t, e, e.peer.Node.PendingReadings())
	// Pending: one between today's, one older than all.
	pending := postReadings(t, e, "alice", now.Add(-90*time.Minute), now.Add(-30*day))

	// In ledger order the first reading in a block is a back-filled one.
	if p := getBundle(t, e, "/fhir/Observation?subject=alice&_count=3"); len(p.ids) != 3 || !slices.Contains(old, p.ids[2]) {
		t.Fatalf("ledger order: %v, want pending ones then block 2's", p.ids)
	}
	// Sorted: the latest is the one taken last.
	latest := getBundle(t, e, "/fhir/Observation?subject=alice&_sort=-date&_count=1")
	if len(latest.ids) != 1 || latest.ids[0] != recent[2] || latest.next == "" || latest.total == nil || *latest.total != 10 {
		t.Fatalf("_sort=-date&_count=1: %v (next %q, total %v), want %s", latest.ids, latest.next, latest.total, recent[2])
	}
	if p := getBundle(t, e, "/fhir/Observation?patient=Patient/alice&_sort=date&_count=1"); len(p.ids) != 1 || p.ids[0] != pending[1] {
		t.Fatalf("_sort=date&_count=1: %v, want the oldest, pending %s", p.ids, pending[1])
	}

	// Every page, newest first: all ten once, pending ones in their place.
	wantDesc := []string{recent[2], pending[0], recent[1], recent[0], old[4], old[3], old[2], old[1], old[0], pending[1]}
	ids, times := allPages(t, e, "/fhir/Observation?subject=alice&_sort=-date&_count=3")
	if !slices.Equal(ids, wantDesc) {
		t.Fatalf("_sort=-date pages: %v\nwant %v", ids, wantDesc)
	}
	if !slices.IsSortedFunc(times, func(a, b string) int { return strings.Compare(b, a) }) {
		t.Errorf("_sort=-date times not descending: %v", times)
	}
	wantAsc := slices.Clone(wantDesc)
	slices.Reverse(wantAsc)
	if ids, _ := allPages(t, e, "/fhir/Observation?subject=alice&_sort=date&_count=4"); !slices.Equal(ids, wantAsc) {
		t.Fatalf("_sort=date pages: %v\nwant %v", ids, wantAsc)
	}

	// With a date range, code and category: the range's readings, sorted.
	q := url.Values{"subject": {"alice"}, "_sort": {"-date"}, "code": {"http://loinc.org|8867-4"}, "category": {"vital-signs"},
		"date": {"ge" + now.Add(-19*day).UTC().Format(time.RFC3339), "lt" + now.Add(-2*hour).UTC().Format(time.RFC3339)}}
	ranged := getBundle(t, e, "/fhir/Observation?"+q.Encode())
	if want := []string{recent[0], old[4], old[3], old[2], old[1]}; !slices.Equal(ranged.ids, want) || ranged.next != "" {
		t.Fatalf("sorted in a date range: %v (next %q), want %v", ranged.ids, ranged.next, want)
	}
	q.Set("code", "1234-5")
	if p := getBundle(t, e, "/fhir/Observation?"+q.Encode()); len(p.ids) != 0 || p.total == nil || *p.total != 0 {
		t.Fatalf("sorted with a code no reading has: %v", p.ids)
	}
	// The next link carries the sort.
	if !strings.Contains(latest.next, "_sort=-date") || !strings.Contains(latest.next, "_cursor=t") {
		t.Errorf("next link %s", latest.next)
	}

	// The FHIR validators take a sorted Bundle and the CapabilityStatement
	// that advertises the sort.
	meta := e.get("/fhir/metadata")
	if !strings.Contains(string(meta.body), `"name":"_sort"`) {
		t.Errorf("the CapabilityStatement does not list _sort: %s", meta.body)
	}
	resources := map[string]any{"sorted": latest.body, "sorted by date": ranged.body, "metadata": meta.body}
	for name, errs := range fhirtest.Validate(t, resources) {
		if len(errs) > 0 {
			t.Errorf("%s: the FHIR validators refuse it: %v\n%s", name, errs, resources[name])
		}
	}
}

// TestFHIRSortPaging: readings with equal times page by id, none skipped
// or repeated, also when a listed pending reading is mined and new ones
// arrive between the pages: one older than the cursor is on a later page,
// one newer is not (it is before the place the client reached).
func TestFHIRSortPaging(t *testing.T) {
	e, _ := storedPeer(t, t.TempDir(), testnet.Config{NoMiner: true})
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	same := make([]time.Time, 5)
	for i := range same {
		same[i] = at
	}
	// Seven readings at one time: four in block 1, three in block 2, and
	// two more at that time pending.
	inBlocks := postReadings(t, e, "eq", same[:4]...)
	mineOn(t, e, e.peer.Node.PendingReadings())
	inBlocks = append(inBlocks, postReadings(t, e, "eq", same[:3]...)...)
	mineOn(t, e, e.peer.Node.PendingReadings())
	pending := postReadings(t, e, "eq", same[:2]...)
	all := append(slices.Clone(inBlocks), pending...)

	for _, sort := range []string{"-date", "date"} {
		ids, _ := allPages(t, e, "/fhir/Observation?subject=eq&_count=2&_sort="+sort)
		want := slices.Sorted(slices.Values(all)) // equal times: by id
		if sort == "-date" {
			slices.Reverse(want)
		}
		if !slices.Equal(ids, want) {
			t.Fatalf("_sort=%s over equal times: %v\nwant %v", sort, ids, want)
		}
	}

	// Page one, then the pending readings are mined and two arrive: one
	// taken later than all (before the cursor of a newest-first search),
	// one earlier (after it).
	first := getBundle(t, e, "/fhir/Observation?subject=eq&_count=3&_sort=-date")
	mineOn(t, e, e.peer.Node.PendingReadings())
	later := postReadings(t, e, "eq", at.Add(time.Minute))
	earlier := postReadings(t, e, "eq", at.Add(-time.Minute))
	rest, _ := allPages(t, e, first.next)
	got := append(slices.Clone(first.ids), rest...)
	want := slices.Sorted(slices.Values(all))
	slices.Reverse(want)
	want = append(want, earlier[0])
	if !slices.Equal(got, want) {
		t.Fatalf("pages while readings are mined and added: %v\nwant %v (not %s)", got, want, later[0])
	}
}

// TestFHIRSortRefused: a sort the node cannot do cheaply, or does not do,
// is refused with an OperationOutcome that says what to send: any key but
// date, several keys, no subject (a sort of the whole ledger), a node
// without the subject time index, a cursor of an unsorted search. A sorted
// page is never larger than _count's bound.
func TestFHIRSortRefused(t *testing.T) {
	e, _ := storedPeer(t, t.TempDir(), testnet.Config{NoMiner: true})
	postReadings(t, e, "pat", time.Now().Add(-time.Hour))
	for q, code := range map[string]string{
		"subject=pat&_sort=code":              "not-supported",
		"subject=pat&_sort=-_lastUpdated":     "not-supported",
		"subject=pat&_sort=-date,_id":         "not-supported",
		"subject=pat&_sort=":                  "not-supported",
		"subject=pat&_sort:desc=date":         "not-supported",
		"subject=pat&_sort=date&_sort=-date":  "invalid",
		"_sort=-date":                         "required",
		"_sort=-date&_count=1&date=ge2026-01": "required",
		"subject=pat&_sort=-date&_cursor=5.0": "invalid",
	} {
		msg := outcome(t, q, e.get("/fhir/Observation?"+q), http.StatusBadRequest, code)
		switch {
		case code == "not-supported" && !strings.Contains(msg, "_sort=date") && !strings.Contains(msg, "_sort=-date"):
			t.Errorf("%s: %q does not say what is supported", q, msg)
		case code == "required" && !strings.Contains(msg, "subject=SUBJECT&_sort=-date"):
			t.Errorf("%s: %q does not say what to send", q, msg)
		}
	}
	// A sorted cursor does not continue an unsorted search.
	outcome(t, "unsorted with a sorted cursor", e.get("/fhir/Observation?subject=pat&_cursor=t1."+strings.Repeat("ab", 32)), http.StatusBadRequest, "invalid")

	// _count is bounded as without _sort.
	many := make([]time.Time, 150)
	for i := range many {
		many[i] = time.Now().Add(-time.Duration(i+2) * time.Minute)
	}
	postReadings(t, e, "many", many...)
	mineOn(t, e, e.peer.Node.PendingReadings())
	if p := getBundle(t, e, "/fhir/Observation?subject=many&_sort=-date&_count=1000"); len(p.ids) != 100 || p.next == "" {
		t.Errorf("_count=1000 sorted: %d entries, next %q; want 100 and a next link", len(p.ids), p.next)
	}

	// A node without a store has no index to sort from: it says so.
	bare := start(t, testnet.Config{NoMiner: true})
	want(t, "reading", bare.postJSON("/api/v1/readings", `{"subject": "pat", "bpm": 70}`), http.StatusAccepted, "")
	if msg := outcome(t, "store-less", bare.get("/fhir/Observation?subject=pat&_sort=-date"), http.StatusBadRequest, "not-supported"); !strings.Contains(msg, "without _sort") {
		t.Errorf("store-less node: %q", msg)
	}
}

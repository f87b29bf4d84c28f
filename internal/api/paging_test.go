package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/api"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/p2p"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// submitAt submits a reading of subject taken at the given time.
func submitAt(t *testing.T, e *env, subject string, bpm int, at time.Time) chain.Reading {
	t.Helper()
	rd, err := e.peer.Node.SubmitAt(subject, bpm, at)
	if err != nil {
		t.Fatal(err)
	}
	return rd
}

// apiPages follows the next links from path and returns the ids of the
// pending readings and of the readings in blocks, in the order listed.
func apiPages(t *testing.T, e *env, path string) (pending, mined []string) {
	t.Helper()
	for pages := 0; path != ""; pages++ {
		if pages > 20 {
			t.Fatal("paging does not end")
		}
		r := e.get(path)
		if r.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, r.status, r.body)
		}
		page := decode[subjectJSON](t, r)
		if len(page.Pending)+len(page.Readings) > page.Limit {
			t.Errorf("GET %s: %d readings on a page of limit %d", path, len(page.Pending)+len(page.Readings), page.Limit)
		}
		for _, rd := range page.Pending {
			pending = append(pending, rd.ID().String())
		}
		for _, rd := range page.Readings {
			mined = append(mined, rd.Reading.ID().String())
		}
		path = page.Next
	}
	return pending, mined
}

// fhirPages follows a search's next links and returns the ids listed.
func fhirPages(t *testing.T, e *env, path string) (ids []string, total *int) {
	t.Helper()
	for pages := 0; path != ""; pages++ {
		if pages > 20 {
			t.Fatal("paging does not end")
		}
		r := e.get(path)
		if r.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, r.status, r.body)
		}
		var b bundleJSON
		if err := json.Unmarshal(r.body, &b); err != nil {
			t.Fatal(err)
		}
		if pages == 0 {
			total = b.Total
		}
		path = ""
		for _, l := range b.Link {
			if l.Relation == "next" {
				u, err := url.Parse(l.URL)
				if err != nil {
					t.Fatal(err)
				}
				path = u.RequestURI()
			}
		}
		for _, en := range b.Entry {
			ids = append(ids, en.Resource.ID)
		}
	}
	return ids, total
}

// TestPendingPaging: every pending reading of a subject is reached by
// following next links, in the API and in FHIR, whatever the page size,
// with none skipped or repeated; the readings in blocks follow.
func TestPendingPaging(t *testing.T) {
	e, _ := storedPeer(t, t.TempDir(), testnet.Config{NoMiner: true})
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	var mined []chain.Reading
	for i := range 2 {
		rd, err := chain.NewReading(p2p.KeyFromSeed(3), "pp", 60+i, base.Add(time.Duration(i)*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		mined = append(mined, rd)
	}
	mineOn(t, e, mined)
	// Pending, newest time first: two at the same millisecond (ordered by
	// id), one older, one newer.
	same := base.Add(20 * time.Minute)
	pending := []chain.Reading{
		submitAt(t, e, "pp", 90, base.Add(30*time.Minute)),
		submitAt(t, e, "pp", 70, same),
		submitAt(t, e, "pp", 71, same),
		submitAt(t, e, "pp", 80, base.Add(10*time.Minute)),
	}
	if a, b := pending[1].ID(), pending[2].ID(); a.String() > b.String() {
		pending[1], pending[2] = pending[2], pending[1]
	}
	var wantPending []string
	for _, rd := range pending {
		wantPending = append(wantPending, rd.ID().String())
	}
	wantMined := []string{mined[1].ID().String(), mined[0].ID().String()} // one block, last first
	wantAll := append(append([]string{}, wantPending...), wantMined...)

	sum := decode[subjectSummaryJSON](t, e.get("/api/v1/subjects/pp"))
	if sum.Pending != 4 || sum.Count != 2 {
		t.Fatalf("subject pp: %+v, want 4 pending, 2 mined", sum)
	}
	for _, limit := range []int{1, 2, 3, 4, 5, 6, 100} {
		p, m := apiPages(t, e, fmt.Sprintf("/api/v1/subjects/pp/readings?limit=%d", limit))
		if fmt.Sprint(p) != fmt.Sprint(wantPending) || fmt.Sprint(m) != fmt.Sprint(wantMined) {
			t.Errorf("API, limit %d: pending %v, mined %v;\nwant %v, %v", limit, p, m, wantPending, wantMined)
		}
		ids, total := fhirPages(t, e, fmt.Sprintf("/fhir/Observation?subject=pp&_count=%d", limit))
		if fmt.Sprint(ids) != fmt.Sprint(wantAll) || total == nil || *total != 6 {
			t.Errorf("FHIR, _count %d: %v (total %v);\nwant %v (total 6)", limit, ids, total, wantAll)
		}
	}
	// A page holding the last pending reading lists the chain after it;
	// one that ends with them exactly links to the chain.
	page := decode[subjectJSON](t, e.get("/api/v1/subjects/pp/readings?limit=5"))
	if len(page.Pending) != 4 || len(page.Readings) != 1 || page.Next == "" {
		t.Errorf("limit 5: %d pending, %d in blocks, next %q; want 4, 1 and a next link", len(page.Pending), len(page.Readings), page.Next)
	}

	// A subject with pending readings only: a Bundle they fill exactly has
	// no next link (there is nothing in the chain to link to), in FHIR as
	// in the API.
	submitAt(t, e, "qq", 70, base)
	submitAt(t, e, "qq", 71, base.Add(time.Minute))
	var b bundleJSON
	if err := json.Unmarshal(e.get("/fhir/Observation?subject=qq&_count=2").body, &b); err != nil {
		t.Fatal(err)
	}
	for _, l := range b.Link {
		if l.Relation == "next" || len(b.Entry) != 2 {
			t.Errorf("FHIR, two pending readings, _count 2: %d entries, next link %q; want 2 and none", len(b.Entry), l.URL)
		}
	}
	if page := decode[subjectJSON](t, e.get("/api/v1/subjects/qq/readings?limit=2")); page.Next != "" || len(page.Pending) != 2 {
		t.Errorf("API, two pending readings, limit 2: %d pending, next %q; want 2 and none", len(page.Pending), page.Next)
	}

	// A date filter applies to the pending readings too: the two at the
	// same millisecond, one a page.
	q := url.Values{"subject": {"pp"}, "date": {"eq" + same.UTC().Format("2006-01-02T15:04:05.000Z")}, "_count": {"1"}}
	ids, _ := fhirPages(t, e, "/fhir/Observation?"+q.Encode())
	if fmt.Sprint(ids) != fmt.Sprint(wantPending[1:3]) {
		t.Errorf("FHIR by date, one a page: %v, want %v", ids, wantPending[1:3])
	}

	// A pending reading mined between two pages: the others are neither
	// skipped nor repeated; it appears again among the readings in blocks.
	page = decode[subjectJSON](t, e.get("/api/v1/subjects/pp/readings?limit=1"))
	if len(page.Pending) != 1 || page.Pending[0].ID().String() != wantPending[0] {
		t.Fatalf("first page of one: %+v", page)
	}
	mineOn(t, e, []chain.Reading{pending[0], pending[2]})
	p, m := apiPages(t, e, page.Next)
	if want := []string{wantPending[1], wantPending[3]}; fmt.Sprint(p) != fmt.Sprint(want) || len(m) != 4 {
		t.Errorf("after a block took two pending readings: pending %v (want %v), %d in blocks (want 4)", p, want, len(m))
	}
}

// TestDotSubjects: the subjects "." and "..", valid on the chain, are
// reachable through the paths and links the API makes.
func TestDotSubjects(t *testing.T) {
	e, _ := storedPeer(t, t.TempDir(), testnet.Config{NoMiner: true})
	for _, subject := range []string{".", ".."} {
		for bpm := 70; bpm < 73; bpm++ {
			if _, err := e.peer.Node.Submit(subject, bpm); err != nil {
				t.Fatal(err)
			}
		}
		seg := strings.ReplaceAll(subject, ".", "%2E")
		r := e.get("/api/v1/subjects/" + seg)
		want(t, "subject "+subject, r, http.StatusOK, "")
		if s := decode[subjectSummaryJSON](t, r); s.Subject != subject || s.Pending != 3 {
			t.Errorf("GET /api/v1/subjects/%s: %s", seg, r.body)
		}
		// Three pages of one, through the API's own next links.
		path, n := "/api/v1/subjects/"+seg+"/readings?limit=1", 0
		for pages := 0; path != ""; pages++ {
			if pages > 5 {
				t.Fatal("paging does not end")
			}
			r := e.get(path)
			want(t, "GET "+path, r, http.StatusOK, "")
			page := decode[subjectJSON](t, r)
			if page.Subject != subject {
				t.Fatalf("GET %s (a next link of subject %q): %s", path, subject, r.body)
			}
			n += len(page.Pending)
			path = page.Next
		}
		if n != 3 {
			t.Errorf("subject %q: %d readings through the next links, want 3", subject, n)
		}
	}
}

// TestQueryParameters: a query parameter given twice is refused, not
// half-read; limit's errors give its range.
func TestQueryParameters(t *testing.T) {
	e, _ := storedPeer(t, t.TempDir(), testnet.Config{NoMiner: true})
	for _, path := range []string{
		"/api/v1/blocks?limit=1&limit=0",
		"/api/v1/blocks?from=1&from=2",
		"/api/v1/subjects?limit=1&limit=2",
		"/api/v1/subjects/alice/readings?limit=1&limit=1",
		"/api/v1/subjects/alice/readings?cursor=1.0&cursor=2.0",
		"/api/v1/events?access_token=a&access_token=b",
	} {
		// An event stream that was not refused would not end: the
		// request gives up after a while.
		ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
		r := (&env{t: t, ctx: ctx, url: e.url}).get(path)
		cancel()
		want(t, path, r, http.StatusBadRequest, api.CodeBadParameter)
		if msg := decode[struct{ Error string }](t, r).Error; !strings.Contains(msg, "give it once") {
			t.Errorf("%s: %q does not say to give it once", path, msg)
		}
	}
	for _, limit := range []string{"-1", "0", "x", ""} {
		r := e.get("/api/v1/blocks?limit=" + limit)
		want(t, "limit="+limit, r, http.StatusBadRequest, api.CodeBadParameter)
		if msg := decode[struct{ Error string }](t, r).Error; !strings.Contains(msg, "from 1 to 100") {
			t.Errorf("limit=%s: %q does not give the range 1 to 100", limit, msg)
		}
	}
}

// TestMetricsMethods: /metrics takes GET and HEAD only, and says so.
func TestMetricsMethods(t *testing.T) {
	e := start(t, testnet.Config{NoMiner: true})
	for _, m := range []string{"POST", "DELETE", "PUT"} {
		r := e.do(m, "/metrics", "")
		want(t, m+" /metrics", r, http.StatusMethodNotAllowed, api.CodeMethod)
		if a := r.header.Get("Allow"); a != "GET, HEAD" {
			t.Errorf("%s /metrics: Allow %q, want \"GET, HEAD\"", m, a)
		}
	}
	if r := e.do("HEAD", "/metrics", ""); r.status != http.StatusOK {
		t.Errorf("HEAD /metrics: %d", r.status)
	}
	// Routes with a method still allow theirs.
	r := e.do("DELETE", "/api/v1/peers", "")
	if a := r.header.Get("Allow"); r.status != http.StatusMethodNotAllowed || a != "GET, HEAD, POST" {
		t.Errorf("DELETE /api/v1/peers: %d, Allow %q", r.status, a)
	}
}

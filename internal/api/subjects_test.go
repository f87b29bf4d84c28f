package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/api"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

type batchJSON struct {
	Error    string `json:"error"`
	Code     string `json:"code"`
	Accepted int    `json:"accepted"`
	Rejected int    `json:"rejected"`
	Results  []struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Code   string `json:"code"`
		Error  string `json:"error"`
	} `json:"results"`
}

type subjectListJSON struct {
	Subjects []subjectSummaryJSON `json:"subjects"`
	Total    int                  `json:"total"`
	Next     string               `json:"next"`
}

type subjectSummaryJSON struct {
	Subject string   `json:"subject"`
	Count   int      `json:"count"`
	Min     *int     `json:"min"`
	Max     *int     `json:"max"`
	Mean    *float64 `json:"mean"`
	Latest  *struct {
		ID     string `json:"id"`
		BPM    int    `json:"bpm"`
		Time   int64  `json:"time"`
		Height uint64 `json:"height"`
	} `json:"latest"`
	LastSeen int64 `json:"last_seen"`
	Pending  int   `json:"pending"`
}

// TestBatchAndSubjects: readings submitted in batches with their own times
// (all or nothing, or each on its own), then listed by subject with their
// figures, paged, and one subject alone.
func TestBatchAndSubjects(t *testing.T) {
	e, _ := storedPeer(t, t.TempDir(), testnet.Config{NoMiner: true})
	now := time.Now()
	ms := func(ago time.Duration) int64 { return now.Add(-ago).UnixMilli() }

	// Atomic with one bad reading: 409, nothing added, each result says.
	body := fmt.Sprintf(`{"atomic": true, "readings": [{"subject": "alice", "bpm": 70, "time": %d}, {"subject": "alice", "bpm": 900}]}`, ms(time.Hour))
	r := e.postJSON("/api/v1/readings/batch", body)
	// The error shape, with the results beside it.
	b := decode[batchJSON](t, r)
	if r.status != http.StatusConflict || b.Code != api.CodeBatchRefused || b.Error == "" {
		t.Fatalf("atomic batch with a bad reading: %d %s", r.status, r.body)
	}
	if b.Accepted != 0 || b.Rejected != 1 || b.Results[0].Status != "not_added" || b.Results[1].Code != api.CodeBadBPM {
		t.Fatalf("atomic batch answered %s", r.body)
	}
	if n := e.peer.Node.Pending(); n != 0 {
		t.Fatalf("%d readings pending after a refused atomic batch", n)
	}

	// Each on its own: the good ones in, the others say why.
	body = fmt.Sprintf(`{"readings": [
		{"subject": "alice", "bpm": 70, "time": %d},
		{"subject": "alice", "bpm": 90, "time": %q},
		{"subject": "bob", "bpm": 60},
		{"subject": "bob bob", "bpm": 60},
		{"subject": "carol", "bpm": 80, "time": "2999-01-01T00:00:00Z"},
		{"subject": "dave", "bpm": 65, "extra": 1},
		{"subject": "alice", "bpm": 70, "time": %d},
		{"subject": "erin", "bpm": 72, "BPM": 250},
		{"subject": "erin", "bpm": 72, "subject": "frank"},
		{"subject": 7, "bpm": 72}]}`,
		ms(time.Hour), now.Add(-30*time.Minute).UTC().Format(time.RFC3339Nano), ms(time.Hour))
	r = e.postJSON("/api/v1/readings/batch", body)
	want(t, "batch", r, http.StatusOK, "")
	b = decode[batchJSON](t, r)
	// An unknown field, a field in another case and a field given twice
	// are refused as they would be alone (encoding/json would take "BPM"
	// for bpm and let the second subject win).
	codes := []string{"", "", "", api.CodeBadSubject, api.CodeBadTime, api.CodeUnknownField, api.CodeKnownReading,
		api.CodeUnknownField, api.CodeBadJSON, api.CodeBadSubject}
	for i, res := range b.Results {
		if res.Code != codes[i] || (codes[i] == "") != (res.Status == "pending" && res.ID != "") {
			t.Errorf("result %d: %+v, want code %q", i, res, codes[i])
		}
	}
	if b.Accepted != 3 || b.Rejected != 7 || len(b.Results) != 10 {
		t.Fatalf("batch: %d accepted, %d rejected, %d results", b.Accepted, b.Rejected, len(b.Results))
	}
	// Its own time is the reading's.
	rv := decode[struct{ Reading chain.Reading }](t, e.get("/api/v1/readings/"+b.Results[0].ID))
	if rv.Reading.Time != ms(time.Hour) {
		t.Errorf("reading time %d, want %d", rv.Reading.Time, ms(time.Hour))
	}

	// Limits and shapes.
	want(t, "empty batch", e.postJSON("/api/v1/readings/batch", `{"readings": []}`), 400, api.CodeBadJSON)
	want(t, "no readings", e.postJSON("/api/v1/readings/batch", `{}`), 400, api.CodeBadJSON)
	many := `{"readings": [` + strings.Repeat(`{"subject":"x","bpm":70},`, 1000) + `{"subject":"x","bpm":70}]}`
	want(t, "1001 readings", e.postJSON("/api/v1/readings/batch", many), 413, api.CodeTooLarge)
	huge := `{"readings": [{"subject": "x", "bpm": 70, "pad": "` + strings.Repeat("x", api.MaxBatchBodyBytes) + `"}]}`
	want(t, "oversized batch", e.postJSON("/api/v1/readings/batch", huge), 413, api.CodeTooLarge)

	// Pending only: listed with their pending counts, no figures.
	r = e.get("/api/v1/subjects")
	want(t, "subjects", r, 200, "")
	l := decode[subjectListJSON](t, r)
	if l.Total != 2 || len(l.Subjects) != 2 || l.Subjects[0].Subject != "alice" || l.Subjects[0].Pending != 2 ||
		l.Subjects[0].Count != 0 || l.Subjects[0].Min != nil || l.Subjects[0].Latest != nil || l.Subjects[1].Pending != 1 {
		t.Fatalf("subjects with pending readings only: %s", r.body)
	}

	// Mined: figures over the block's readings.
	mineOn(t, e, e.peer.Node.PendingReadings())
	if _, err := e.peer.Node.Submit("erin", 99); err != nil {
		t.Fatal(err)
	}
	l = decode[subjectListJSON](t, e.get("/api/v1/subjects"))
	if l.Total != 3 || len(l.Subjects) != 3 {
		t.Fatalf("subjects after mining: %+v", l)
	}
	a := l.Subjects[0]
	if a.Subject != "alice" || a.Count != 2 || *a.Min != 70 || *a.Max != 90 || *a.Mean != 80 || a.Pending != 0 ||
		a.Latest == nil || a.Latest.BPM != 90 || a.Latest.Height != 1 || a.LastSeen != a.Latest.Time {
		t.Errorf("alice: %+v", a)
	}
	if bob := l.Subjects[1]; bob.Count != 1 || *bob.Min != 60 || bob.Latest.BPM != 60 {
		t.Errorf("bob: %+v", bob)
	}
	if erin := l.Subjects[2]; erin.Subject != "erin" || erin.Count != 0 || erin.Pending != 1 || erin.LastSeen == 0 {
		t.Errorf("erin: %+v", erin)
	}

	// Paged one by one through the next links.
	var names []string
	next := "/api/v1/subjects?limit=1"
	for i := 0; next != "" && i < 5; i++ {
		p := decode[subjectListJSON](t, e.get(next))
		for _, s := range p.Subjects {
			names = append(names, s.Subject)
		}
		next = p.Next
	}
	if fmt.Sprint(names) != "[alice bob erin]" || next != "" {
		t.Errorf("pages gave %v (next %q)", names, next)
	}

	// One subject.
	one := decode[subjectSummaryJSON](t, e.get("/api/v1/subjects/alice"))
	if one.Subject != "alice" || one.Count != 2 || *one.Max != 90 {
		t.Errorf("GET /api/v1/subjects/alice: %+v", one)
	}
	want(t, "unknown subject", e.get("/api/v1/subjects/nobody"), 404, api.CodeNotFound)
	want(t, "bad subject", e.get("/api/v1/subjects/"+strings.Repeat("a", 65)), 400, api.CodeBadSubject)
	want(t, "bad after", e.get("/api/v1/subjects?after=a%20b"), 400, api.CodeBadParameter)
	want(t, "bad limit", e.get("/api/v1/subjects?limit=0"), 400, api.CodeBadParameter)
}

// A node without a store has no subject index: it says so.
func TestSubjectsNeedAStore(t *testing.T) {
	e := start(t, testnet.Config{NoMiner: true})
	want(t, "subjects", e.get("/api/v1/subjects"), 404, api.CodeNotSupported)
}

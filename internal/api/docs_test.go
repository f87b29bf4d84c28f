package api_test

import (
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/p2pchain/p2pchain/internal/api"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// docSection returns the text of docs/API.md from the heading that starts
// with heading up to the next "## " heading.
func docSection(t *testing.T, heading string) string {
	t.Helper()
	b, err := os.ReadFile("../../docs/API.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, "\n"+heading)
	if i < 0 {
		t.Fatalf("docs/API.md has no heading %q", heading)
	}
	rest := doc[i+1+len(heading):]
	if j := strings.Index(rest, "\n## "); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// TestDocReadingExamples: the times docs/API.md and the API's own error
// messages give as examples are accepted as printed (after genesis, not in
// the future), and the batch example answers what the doc shows.
func TestDocReadingExamples(t *testing.T) {
	e := start(t, testnet.Config{NoMiner: true})

	// POST /api/v1/readings: the two forms of time the doc names, one
	// instant, so two readings of different bpm.
	sec := docSection(t, "## `POST /api/v1/readings`")
	ms := regexp.MustCompile("Unix milliseconds \\(`([0-9]+)`\\)").FindStringSubmatch(sec)
	rfc := regexp.MustCompile("RFC 3339 time\\s+\\(`(\"[^\"]+\")`").FindStringSubmatch(sec)
	if ms == nil || rfc == nil {
		t.Fatalf("docs/API.md: no example times found in:\n%s", sec)
	}
	want(t, "doc's Unix ms "+ms[1], e.postJSON("/api/v1/readings", `{"subject": "doc", "bpm": 72, "time": `+ms[1]+`}`), http.StatusAccepted, "")
	want(t, "doc's RFC 3339 "+rfc[1], e.postJSON("/api/v1/readings", `{"subject": "doc", "bpm": 73, "time": `+rfc[1]+`}`), http.StatusAccepted, "")

	// The bad_time error's own examples.
	r := e.postJSON("/api/v1/readings", `{"subject": "doc", "bpm": 72, "time": "yesterday"}`)
	want(t, "bad time", r, http.StatusBadRequest, api.CodeBadTime)
	msg := decode[struct{ Error string }](t, r).Error
	m := regexp.MustCompile(`Unix milliseconds \(([0-9]+)\) or an RFC 3339 time \(("[^"]+")\)`).FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("bad_time message %q gives no example times", msg)
	}
	want(t, "bad_time's Unix ms "+m[1], e.postJSON("/api/v1/readings", `{"subject": "doc-error", "bpm": 72, "time": `+m[1]+`}`), http.StatusAccepted, "")
	want(t, "bad_time's RFC 3339 "+m[2], e.postJSON("/api/v1/readings", `{"subject": "doc-error", "bpm": 73, "time": `+m[2]+`}`), http.StatusAccepted, "")

	// POST /api/v1/readings/batch: the curl body, as printed.
	sec = docSection(t, "## `POST /api/v1/readings/batch`")
	body := regexp.MustCompile(`(?s)-d '(.*?)'`).FindStringSubmatch(sec)
	if body == nil {
		t.Fatalf("docs/API.md: no batch example body in:\n%s", sec)
	}
	r = e.postJSON("/api/v1/readings/batch", body[1])
	want(t, "the doc's batch example", r, http.StatusOK, "")
	b := decode[batchJSON](t, r)
	if b.Accepted != 1 || b.Rejected != 1 || len(b.Results) != 2 || b.Results[0].Status != "pending" || b.Results[1].Code != api.CodeBadBPM {
		t.Errorf("the doc's batch example answered %s, want accepted 1 (pending), rejected 1 (bad_bpm) as docs/API.md shows", r.body)
	}
	for _, want := range []string{`"accepted": 1`, `"rejected": 1`, `"code": "bad_bpm"`} {
		if !strings.Contains(sec, want) {
			t.Errorf("docs/API.md's batch answer does not show %s", want)
		}
	}

	// The batch error's own example.
	r = e.postJSON("/api/v1/readings/batch", `{"readings": []}`)
	want(t, "empty batch", r, http.StatusBadRequest, api.CodeBadJSON)
	msg = decode[struct{ Error string }](t, r).Error
	_, example, ok := strings.Cut(msg, "want e.g. ")
	if !ok {
		t.Fatalf("empty batch message %q gives no example", msg)
	}
	r = e.postJSON("/api/v1/readings/batch", example)
	if b := decode[batchJSON](t, r); r.status != http.StatusOK || b.Accepted != 2 {
		t.Errorf("the error's batch example %s answered %d %s, want both accepted", example, r.status, r.body)
	}
	if n := e.peer.Node.Pending(); n != 7 {
		t.Errorf("%d readings pending, want 7: 2 + 2 of the examples of one reading, 1 + 2 of the batches", n)
	}
}

// TestDocMetrics: every p2pchain_ metric a node exposes is in docs/API.md's
// table of metrics, and every one the table lists is exposed.
func TestDocMetrics(t *testing.T) {
	e := start(t, testnet.Config{})
	e.get("/api/v1/status") // so that the requests counter has a sample
	r := e.get("/metrics")
	if r.status != http.StatusOK {
		t.Fatalf("GET /metrics: %d", r.status)
	}
	exposed := map[string]bool{}
	for _, l := range strings.Split(string(r.body), "\n") {
		if m := regexp.MustCompile(`^# TYPE (p2pchain_\w+) `).FindStringSubmatch(l); m != nil {
			exposed[m[1]] = true
		}
	}
	b, err := os.ReadFile("../../docs/API.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, row := range regexp.MustCompile("(?m)^\\| `p2pchain_.*$").FindAllString(string(b), -1) {
		name := strings.SplitN(row, "|", 3)[1] // the first cell: one name or several
		for _, m := range regexp.MustCompile("`(p2pchain_\\w+)").FindAllStringSubmatch(name, -1) {
			documented[m[1]] = true
		}
	}
	if len(exposed) == 0 || len(documented) == 0 {
		t.Fatalf("%d metrics exposed, %d documented", len(exposed), len(documented))
	}
	for name := range exposed {
		if !documented[name] {
			t.Errorf("metric %s is exposed but not in docs/API.md", name)
		}
	}
	for name := range documented {
		if !exposed[name] {
			t.Errorf("metric %s is in docs/API.md but not exposed", name)
		}
	}
}

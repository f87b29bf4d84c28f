package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/api"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// Costly reads run a bounded number at a time: one more waits, then gets
// 503 busy with Retry-After (an OperationOutcome under /fhir/), while cheap
// reads go on; once a slot is free the same request is served.
func TestCostlyReadsBounded(t *testing.T) {
	e := start(t, testnet.Config{}, api.WithMaxCostly(1, 50*time.Millisecond))
	id := strings.Repeat("ab", 32)
	receipt := "/api/v1/readings/" + id + "/receipt"
	decode := func(r response) map[string]any {
		var v map[string]any
		_ = json.Unmarshal(r.body, &v)
		return v
	}

	release := e.h.HoldCostly() // a costly read runs
	for _, path := range []string{receipt, "/api/v1/subjects", "/api/v1/subjects/alice", "/api/v1/subjects/alice/readings"} {
		r := e.do("GET", path, "")
		if body := decode(r); r.status != http.StatusServiceUnavailable || body["code"] != api.CodeBusy || r.header.Get("Retry-After") != "1" {
			t.Errorf("GET %s with no slot free: %d %s, Retry-After %q; want 503 busy, Retry-After 1", path, r.status, r.body, r.header.Get("Retry-After"))
		}
	}
	r := e.do("GET", "/fhir/Observation?subject=alice", "")
	body := decode(r)
	if r.status != http.StatusServiceUnavailable || body["resourceType"] != "OperationOutcome" ||
		!strings.Contains(r.header.Get("Content-Type"), "fhir+json") || r.header.Get("Retry-After") != "1" {
		t.Errorf("FHIR search with no slot free: %d %s (%s); want 503 with an OperationOutcome", r.status, r.body, r.header.Get("Content-Type"))
	}
	if issues, _ := body["issue"].([]any); len(issues) != 1 || issues[0].(map[string]any)["code"] != "throttled" {
		t.Errorf("FHIR search with no slot free: issues %v, want one of type throttled", body["issue"])
	}
	if r := e.do("GET", "/api/v1/readings/"+id, ""); r.status != http.StatusNotFound {
		t.Errorf("a cheap read while the costly ones are full: %d %s, want it served (404: no such reading)", r.status, r.body)
	}

	release() // the costly read ends
	if r := e.do("GET", receipt, ""); r.status != http.StatusNotFound || decode(r)["code"] != api.CodeNotFound {
		t.Errorf("GET %s with a slot free: %d %s, want it served (404: no such reading)", receipt, r.status, r.body)
	}
	if r := e.do("GET", "/api/v1/subjects/alice", ""); r.status == http.StatusServiceUnavailable {
		t.Errorf("GET /api/v1/subjects/alice with a slot free: %d %s", r.status, r.body)
	}
	if n := e.h.CostlyRunning(); n != 0 {
		t.Errorf("%d slots held after the requests ended, want 0", n)
	}
}

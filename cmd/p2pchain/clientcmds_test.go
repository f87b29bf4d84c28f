package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/p2p"
)

// TestClientTimesSayUTC: the tables of readings, blocks and block write
// their times in UTC and say so.
func TestClientTimesSayUTC(t *testing.T) {
	at := time.Date(2026, 12, 1, 11, 56, 51, 0, time.UTC)
	r, err := chain.NewReading(p2p.KeyFromSeed(1), "alice", 72, at)
	if err != nil {
		t.Fatal(err)
	}
	c, err := chain.New(chain.TestParams("client-times"))
	if err != nil {
		t.Fatal(err)
	}
	b := c.NewBlock([]chain.Reading{r}, at)
	answers := map[string]any{
		"/api/v1/subjects/alice/readings": map[string]any{
			"pending":  []chain.Reading{r},
			"readings": []any{map[string]any{"reading": r, "height": 1, "confirmations": 1}},
		},
		"/api/v1/blocks": map[string]any{"blocks": []any{map[string]any{
			"height": 1, "hash": b.Hash(), "time": at.UnixMilli(), "reading_count": 1}}},
		"/api/v1/blocks/1": map[string]any{"block": b, "main": true, "confirmations": 1},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		v, ok := answers[req.URL.Path]
		if !ok {
			http.NotFound(w, req)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}))
	defer srv.Close()

	for _, tc := range []struct {
		run  func([]string, *bytes.Buffer, *bytes.Buffer) error
		args []string
	}{
		{func(a []string, o, e *bytes.Buffer) error { return runReadings(a, o, e) }, []string{"alice"}},
		{func(a []string, o, e *bytes.Buffer) error { return runBlocks(a, o, e) }, nil},
		{func(a []string, o, e *bytes.Buffer) error { return runBlock(a, o, e) }, []string{"1"}},
	} {
		var out, errOut bytes.Buffer
		args := append(tc.args, "--api", srv.URL)
		if err := tc.run(args, &out, &errOut); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, errOut.String())
		}
		if !strings.Contains(out.String(), "TIME (UTC)") || !strings.Contains(out.String(), "2026-12-01 11:56:51") {
			t.Errorf("%v: the table does not say its times are UTC:\n%s", args, out.String())
		}
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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

// TestConnectSaysThroughWhich: connect given a peer's full multiaddr
// (/ip4/.../tcp/PORT/p2p/ID, as the banner prints it) and connected
// through that very address says so. The node lists its connections'
// addresses without /p2p/ID, so before connect compared them with the
// whole multiaddr and always answered that the address given "did not
// answer first" and the node used "an address it knew": the same one.
func TestConnectSaysThroughWhich(t *testing.T) {
	id, err := p2p.PeerID(p2p.KeyFromSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	addr := "/ip4/127.0.0.1/tcp/10002/p2p/" + id.String()
	var mu sync.Mutex
	connected := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost {
			connected = true
			_, _ = io.WriteString(w, `{"id": "`+id.String()+`"}`)
			return
		}
		if !connected {
			_, _ = io.WriteString(w, `{"count": 0, "peers": [], "blocked": []}`)
			return
		}
		_, _ = io.WriteString(w, `{"count": 1, "peers": [{"id": "`+id.String()+`", "addrs": ["/ip4/127.0.0.1/tcp/10002"], "height": 0}], "blocked": []}`)
	}))
	defer srv.Close()

	var out, errOut bytes.Buffer
	if err := runConnect([]string{"--api", srv.URL, addr}, &out, &errOut); err != nil {
		t.Fatalf("connect %s: %v", addr, err)
	}
	if out.String() != "connected to "+addr+"\n" {
		t.Errorf("connect %s, connected through it: %q", addr, out.String())
	}
	out.Reset()
	if err := runConnect([]string{"--api", srv.URL, addr}, &out, &errOut); err != nil {
		t.Fatalf("connect %s again: %v", addr, err)
	}
	if !strings.HasPrefix(out.String(), "already connected to "+id.String()+" through /ip4/127.0.0.1/tcp/10002") {
		t.Errorf("connect %s again: %q", addr, out.String())
	}
}

// TestStatusDiskBehind: p2pchain status says how far the disk is behind
// the chain in memory whenever the node reports storage.height below its
// height, 0 included (a node whose first block waits for a slow disk),
// and says nothing of it for a node too old to report storage.height.
// Before, storage.height 0 counted as not reported.
func TestStatusDiskBehind(t *testing.T) {
	for _, tt := range []struct {
		height, storage, want string
	}{
		{"1", `{"state": "slow", "write_wait_ms": 2500, "height": 0}`, "1 (on disk up to 0: the blocks above wait for the store's writer)"},
		{"3", `{"state": "slow", "write_wait_ms": 2500, "height": 1}`, "3 (on disk up to 1: the blocks above wait for the store's writer)"},
		{"1", `{"state": "ok", "write_wait_ms": 0}`, "1"},
	} {
		height := tt.height
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"peer_id": "x", "height": `+height+`, "sync": {"state": "synced"}, "storage": `+tt.storage+`}`)
		}))
		var out, errOut bytes.Buffer
		err := runStatus([]string{"--api", srv.URL}, &out, &errOut)
		srv.Close()
		if err != nil {
			t.Fatalf("status with storage %s: %v", tt.storage, err)
		}
		line := ""
		for _, l := range strings.Split(out.String(), "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[0] == "height" {
				line = strings.TrimSpace(strings.TrimPrefix(l, "height"))
			}
		}
		if line != tt.want {
			t.Errorf("status with height %s and storage %s: height line %q, want %q", height, tt.storage, line, tt.want)
		}
	}
}

// TestReadingsLimitNote: readings --limit above a page lowers it and says
// how to see more; it said "page back with --from", a flag readings does
// not have (blocks has).
func TestReadingsLimitNote(t *testing.T) {
	var asked string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = r.URL.String()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"subject":"alice","height":1,"limit":100,"pending":[],"readings":[]}`))
	}))
	defer srv.Close()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"readings", "alice", "--limit", "500", "--api", srv.URL}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(asked, "limit=100") || !strings.Contains(stderr.String(), "--limit 500 lowered to 100") {
		t.Errorf("asked %s; stderr %q", asked, stderr.String())
	}
	if strings.Contains(stderr.String(), "--from") {
		t.Errorf("readings, which has no --from, is told to page back with it: %q", stderr.String())
	}
}

// heardPhrase calls a node short of a quorum waiting for authorities only
// when the network is not idle: on an idle one the authorities send
// nothing until the next block is due, and the phrase says when that is.
func TestHeardPhrase(t *testing.T) {
	due := time.Date(2026, 12, 2, 10, 30, 0, 0, time.Local)
	for _, tc := range []struct {
		heard, quorum int
		idle          time.Time
		want, not     string
	}{
		{0, 1, time.Time{}, ", hears 0 (1 needed): waiting for more authorities", ""},
		{0, 1, due, ", hears 0 (1 needed): idle, the next block is due at 10:30:00 or with the first reading", "waiting"},
		{3, 3, due, ", hears 3 (3 needed)", "idle"},
		{0, 0, due, "", "hears"},
	} {
		got := heardPhrase(tc.heard, tc.quorum, tc.idle)
		if got != tc.want || tc.not != "" && strings.Contains(got, tc.not) {
			t.Errorf("heardPhrase(%d, %d, %v) = %q, want %q", tc.heard, tc.quorum, tc.idle, got, tc.want)
		}
	}
}

package api_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pchain/p2pchain/internal/api"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/p2p"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// The tests run real nodes (package testnet: real libp2p hosts on loopback,
// real chains and miners) behind the real handler on a real HTTP server.

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// env is a running node with its API.
type env struct {
	t    *testing.T
	ctx  context.Context
	peer *testnet.Peer
	h    *api.Handler
	url  string
}

func startPeer(t *testing.T, ctx context.Context, cfg testnet.Config) *testnet.Peer {
	t.Helper()
	if cfg.Params.Name == "" {
		cfg.Params = chain.TestParams("api")
	}
	p, err := testnet.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// serve starts the API of p on an httptest server.
func serve(t *testing.T, ctx context.Context, p *testnet.Peer, opts ...api.Option) *env {
	t.Helper()
	h := api.New(p.Node, p.Host, opts...)
	srv := httptest.NewServer(h)
	// Cleanups run last first: the handler closes (ending event streams)
	// before the server waits for its connections.
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = h.Close() })
	return &env{t: t, ctx: ctx, peer: p, h: h, url: srv.URL}
}

func start(t *testing.T, cfg testnet.Config, opts ...api.Option) *env {
	ctx := testCtx(t, 60*time.Second)
	return serve(t, ctx, startPeer(t, ctx, cfg), opts...)
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request; hdr holds header name, value pairs.
func (e *env) do(method, path, body string, hdr ...string) response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(e.ctx, method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func (e *env) get(path string) response { e.t.Helper(); return e.do("GET", path, "") }

func (e *env) postJSON(path, body string, hdr ...string) response {
	e.t.Helper()
	return e.do("POST", path, body, append([]string{"Content-Type", "application/json"}, hdr...)...)
}

// json decodes the body into v, which it returns.
func decode[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("status %d, body %q: %v", r.status, r.body, err)
	}
	return v
}

// want checks the status of r and, for an error, its JSON shape and code.
func want(t *testing.T, what string, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Errorf("%s: status %d, want %d; body %s", what, r.status, status, r.body)
		return
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: content type %q, want JSON", what, ct)
	}
	if code == "" {
		return
	}
	var e map[string]any
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Errorf("%s: error body %q is not JSON: %v", what, r.body, err)
		return
	}
	keys := 2
	if id, ok := e["id"].(string); ok && len(id) == 64 {
		keys++ // the reading a refused submission made
	}
	if len(e) != keys || e["code"] != code || e["error"] == "" || e["error"] == nil {
		t.Errorf("%s: error body %s, want {\"error\": \"...\", \"code\": %q}", what, r.body, code)
	}
}

// addChain gives the node n blocks of perBlock readings (subjects
// subject-0, subject-1, ...) as if synced from a peer.
func (e *env) addChain(n, perBlock int) []*chain.Block {
	e.t.Helper()
	blocks, err := testnet.BuildChain(e.peer.Node.Params(), p2p.KeyFromSeed(42), n, perBlock)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.peer.Node.AddBlocks(e.ctx, blocks); err != nil {
		e.t.Fatal(err)
	}
	return blocks
}

type statusJSON struct {
	PeerID     string   `json:"peer_id"`
	Addrs      []string `json:"addrs"`
	Network    string   `json:"network"`
	Difficulty uint32   `json:"difficulty"`
	Genesis    string   `json:"genesis"`
	Tip        string   `json:"tip"`
	Height     uint64   `json:"height"`
	TipTime    int64    `json:"tip_time"`
	TotalWork  string   `json:"total_work"`
	FinalH     uint64   `json:"finalized_height"`
	FinalHash  string   `json:"finalized_hash"`
	Peers      int      `json:"peers"`
	Pending    int      `json:"pending"`
	Sync       struct {
		State    string  `json:"state"`
		Progress float64 `json:"progress"`
		Height   uint64  `json:"height"`
		Target   uint64  `json:"target"`
	} `json:"sync"`
}

func TestStatus(t *testing.T) {
	e := start(t, testnet.Config{NoMiner: true})
	st := decode[statusJSON](t, e.get("/api/v1/status"))
	params := e.peer.Node.Params()
	if st.PeerID != e.peer.Host.ID().String() || st.Network != "api" || st.Height != 0 ||
		st.Genesis != params.Genesis().Hash().String() || st.Tip != st.Genesis || st.TotalWork != "1" ||
		st.Peers != 0 || st.Pending != 0 || st.Sync.State != "no_peers" || st.Sync.Progress != 1 ||
		st.FinalH != 0 || st.FinalHash != st.Genesis {
		t.Errorf("fresh node status %+v", st)
	}
	if len(st.Addrs) == 0 || !strings.HasSuffix(st.Addrs[0], "/p2p/"+st.PeerID) {
		t.Errorf("addrs %v, want full multiaddrs ending in /p2p/<peer ID>", st.Addrs)
	}

	blocks := e.addChain(3, 1)
	other := startPeer(t, e.ctx, testnet.Config{NoMiner: true})
	if err := other.Connect(e.ctx, e.peer); err != nil {
		t.Fatal(err)
	}
	if _, err := e.peer.Node.Submit("alice", 70); err != nil {
		t.Fatal(err)
	}
	if err := testnet.WaitFor(e.ctx, func() bool { return len(e.peer.Host.Peers()) == 1 }); err != nil {
		t.Fatal(err)
	}
	r := e.get("/api/v1/status")
	want(t, "status", r, http.StatusOK, "")
	st = decode[statusJSON](t, r)
	tip := blocks[2]
	if st.Height != 3 || st.Tip != tip.Hash().String() || st.TipTime != tip.Header.Time || st.TotalWork != "4" ||
		st.Peers != 1 || st.Pending != 1 || st.Sync.Height != 3 {
		t.Errorf("status after 3 blocks, a peer and a pending reading: %+v", st)
	}
	if st.Sync.State != "synced" && st.Sync.State != "syncing" {
		t.Errorf("sync state %q with a peer behind us", st.Sync.State)
	}
}

func TestSubmitReading(t *testing.T) {
	// A node that does not mine: the reading stays pending.
	e := start(t, testnet.Config{NoMiner: true})
	r := e.postJSON("/api/v1/readings", `{"subject": "alice", "bpm": 72}`)
	want(t, "submit", r, http.StatusAccepted, "")
	sub := decode[struct{ ID, Status string }](t, r)
	id, err := chain.ParseHash(sub.ID)
	if err != nil || sub.Status != "pending" {
		t.Fatalf("submit answered %s", r.body)
	}
	if loc := r.header.Get("Location"); loc != "/api/v1/readings/"+sub.ID {
		t.Errorf("Location %q", loc)
	}
	got, ok, _ := e.peer.Node.LocateReading(id)
	if !ok || !got.Pending || got.Reading.Subject != "alice" || got.Reading.BPM != 72 {
		t.Fatalf("node has %+v, %v", got, ok)
	}

	type readingJSON struct {
		Reading       chain.Reading `json:"reading"`
		Status        string        `json:"status"`
		Height        *uint64       `json:"height"`
		Block         string        `json:"block"`
		Confirmations uint64        `json:"confirmations"`
	}
	r = e.get("/api/v1/readings/" + sub.ID)
	want(t, "pending reading", r, http.StatusOK, "")
	rv := decode[readingJSON](t, r)
	if rv.Status != "pending" || rv.Reading.ID() != id || rv.Height != nil || rv.Confirmations != 0 {
		t.Errorf("pending reading: %s", r.body)
	}

	// Mined into block 1, then buried under two more.
	mined := mineOn(t, e, e.peer.Node.PendingReadings())
	e.addOnTip(2)
	r = e.get("/api/v1/readings/" + strings.ToUpper(sub.ID))
	want(t, "mined reading", r, http.StatusOK, "")
	rv = decode[readingJSON](t, r)
	if rv.Status != "in_block" || rv.Height == nil || *rv.Height != 1 || rv.Block != mined.Hash().String() || rv.Confirmations != 3 {
		t.Errorf("mined reading: %s", r.body)
	}

	want(t, "unknown reading", e.get("/api/v1/readings/"+strings.Repeat("ab", 32)), http.StatusNotFound, api.CodeNotFound)
	want(t, "unknown reading prefix", e.get("/api/v1/readings/"+strings.Repeat("a", 63)), http.StatusNotFound, api.CodeNotFound)
	for _, bad := range []string{"xyz", "abc", strings.Repeat("g", 64), strings.Repeat("a", 65)} {
		want(t, "reading id "+bad, e.get("/api/v1/readings/"+bad), http.StatusBadRequest, api.CodeBadReadingID)
	}
}

// mineOn makes a block on the node's tip holding readings and adds it.
func mineOn(t *testing.T, e *env, readings []chain.Reading) *chain.Block {
	t.Helper()
	c, err := chain.New(e.peer.Node.Params())
	if err != nil {
		t.Fatal(err)
	}
	for h := uint64(1); h <= e.peer.Node.Status().Height; h++ {
		info, _, _ := e.peer.Node.BlockByHeight(h)
		b := info.Block
		if _, err := c.AddBlock(b, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	b := c.NewBlock(readings, time.Now())
	if err := chain.Solve(e.ctx, &b.Header); err != nil {
		t.Fatal(err)
	}
	if err := e.peer.Node.AddBlock(e.ctx, b); err != nil {
		t.Fatal(err)
	}
	return b
}

// addOnTip adds n empty blocks on the node's tip.
func (e *env) addOnTip(n int) {
	e.t.Helper()
	for range n {
		mineOn(e.t, e, nil)
	}
}

func TestSubmitErrors(t *testing.T) {
	e := start(t, testnet.Config{NoMiner: true})
	json := []string{"Content-Type", "application/json"}
	big := `{"subject": "alice", "bpm": 72, "pad": "` + strings.Repeat("x", api.MaxBodyBytes) + `"}`
	for _, tc := range []struct {
		name, body string
		hdr        []string
		status     int
		code       string
	}{
		{"not JSON", `{"subject": "alice", "bpm": 72`, json, 400, api.CodeBadJSON},
		{"garbage", `hello`, json, 400, api.CodeBadJSON},
		{"empty body", ``, json, 400, api.CodeBadJSON},
		{"array", `[1, 2]`, json, 400, api.CodeBadJSON},
		{"two objects", `{"subject": "alice", "bpm": 72} {}`, json, 400, api.CodeBadJSON},
		{"unknown field", `{"subject": "alice", "bpm": 72, "when": 5}`, json, 400, api.CodeUnknownField},
		{"field in upper case", `{"subject": "alice", "BPM": 72}`, json, 400, api.CodeUnknownField},
		{"field in another case beside it", `{"subject": "alice", "bpm": 72, "Bpm": 250}`, json, 400, api.CodeUnknownField},
		{"field given twice", `{"subject": "alice", "bpm": 72, "subject": "bob"}`, json, 400, api.CodeBadJSON},
		{"field given twice, same value", `{"subject": "alice", "bpm": 72, "bpm": 72}`, json, 400, api.CodeBadJSON},
		{"time before genesis", `{"subject": "alice", "bpm": 72, "time": 5}`, json, 400, api.CodeBadTime},
		{"time in the future", `{"subject": "alice", "bpm": 72, "time": "2999-01-01T00:00:00Z"}`, json, 400, api.CodeBadTime},
		{"time not a time", `{"subject": "alice", "bpm": 72, "time": "yesterday"}`, json, 400, api.CodeBadTime},
		{"time zero", `{"subject": "alice", "bpm": 72, "time": 0}`, json, 400, api.CodeBadTime},
		{"time fraction", `{"subject": "alice", "bpm": 72, "time": 1.5}`, json, 400, api.CodeBadTime},
		{"bpm missing", `{"subject": "alice"}`, json, 400, api.CodeBadBPM},
		{"bpm null", `{"subject": "alice", "bpm": null}`, json, 400, api.CodeBadBPM},
		{"bpm too low", `{"subject": "alice", "bpm": 19}`, json, 400, api.CodeBadBPM},
		{"bpm too high", `{"subject": "alice", "bpm": 301}`, json, 400, api.CodeBadBPM},
		{"bpm negative", `{"subject": "alice", "bpm": -72}`, json, 400, api.CodeBadBPM},
		{"bpm fraction", `{"subject": "alice", "bpm": 72.5}`, json, 400, api.CodeBadBPM},
		{"bpm string", `{"subject": "alice", "bpm": "72"}`, json, 400, api.CodeBadBPM},
		{"bpm huge", `{"subject": "alice", "bpm": 99999999999999999999999}`, json, 400, api.CodeBadBPM},
		{"subject missing", `{"bpm": 72}`, json, 400, api.CodeBadSubject},
		{"subject empty", `{"subject": "", "bpm": 72}`, json, 400, api.CodeBadSubject},
		{"subject with space", `{"subject": "alice smith", "bpm": 72}`, json, 400, api.CodeBadSubject},
		{"subject too long", `{"subject": "` + strings.Repeat("a", chain.MaxSubjectLen+1) + `", "bpm": 72}`, json, 400, api.CodeBadSubject},
		{"subject number", `{"subject": 7, "bpm": 72}`, json, 400, api.CodeBadSubject},
		{"oversized body", big, json, 413, api.CodeTooLarge},
		{"text/plain", `{"subject": "alice", "bpm": 72}`, []string{"Content-Type", "text/plain"}, 415, api.CodeMediaType},
		{"form", `subject=alice&bpm=72`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, api.CodeMediaType},
		{"no content type", `{"subject": "alice", "bpm": 72}`, nil, 415, api.CodeMediaType},
	} {
		want(t, tc.name, e.do("POST", "/api/v1/readings", tc.body, tc.hdr...), tc.status, tc.code)
	}
	// Unix seconds where milliseconds are due: said so, with the value in
	// milliseconds, in a single reading and in a batch.
	r := e.do("POST", "/api/v1/readings", `{"subject": "alice", "bpm": 72, "time": 1780300800}`, json...)
	want(t, "time in seconds", r, 400, api.CodeBadTime)
	if !strings.Contains(string(r.body), "looks like Unix seconds: want Unix milliseconds (1780300800000)") {
		t.Errorf("time in seconds: %s", r.body)
	}
	r = e.do("POST", "/api/v1/readings/batch", `{"readings": [{"subject": "alice", "bpm": 72, "time": 1780300800}]}`, json...)
	if !strings.Contains(string(r.body), "looks like Unix seconds") {
		t.Errorf("time in seconds, in a batch: %s", r.body)
	}
	// A body over the limit without Content-Length (chunked) is cut off too.
	req, _ := http.NewRequestWithContext(e.ctx, "POST", e.url+"/api/v1/readings", io.MultiReader(strings.NewReader(big)))
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want(t, "chunked oversized body", response{resp.StatusCode, resp.Header, body}, 413, api.CodeTooLarge)
	// The charset parameter is fine.
	want(t, "charset", e.do("POST", "/api/v1/readings", `{"subject": "bob", "bpm": 60}`, "Content-Type", "application/json; charset=utf-8"), 202, "")
	if n := e.peer.Node.Pending(); n != 1 {
		t.Errorf("%d readings pending, want only the one good one", n)
	}
}

type blockListJSON struct {
	Height uint64 `json:"height"`
	Limit  int    `json:"limit"`
	Blocks []struct {
		Height        uint64 `json:"height"`
		Hash          string `json:"hash"`
		Parent        string `json:"parent"`
		Readings      int    `json:"reading_count"`
		Confirmations uint64 `json:"confirmations"`
	} `json:"blocks"`
	Next string `json:"next"`
}

func TestBlocksPaging(t *testing.T) {
	e := start(t, testnet.Config{NoMiner: true})
	const n = 150
	blocks := e.addChain(n, 2)
	hashAt := func(h uint64) string {
		if h == 0 {
			return e.peer.Node.Params().Genesis().Hash().String()
		}
		return blocks[h-1].Hash().String()
	}

	// Default page: the 20 newest, with a link to the next.
	r := e.get("/api/v1/blocks")
	want(t, "default page", r, 200, "")
	page := decode[blockListJSON](t, r)
	if page.Height != n || page.Limit != api.DefaultLimit || len(page.Blocks) != api.DefaultLimit ||
		page.Blocks[0].Height != n || page.Blocks[0].Hash != hashAt(n) || page.Blocks[0].Confirmations != 1 ||
		page.Blocks[0].Readings != 2 || page.Next != fmt.Sprintf("/api/v1/blocks?from=%d&limit=20", n-20) {
		t.Errorf("default page: height %d limit %d, %d blocks from %d, next %q", page.Height, page.Limit, len(page.Blocks), page.Blocks[0].Height, page.Next)
	}

	// Following next links visits every block once, newest first, down to genesis.
	next, seen := "/api/v1/blocks?limit=7", uint64(n+1)
	for pages := 0; next != ""; pages++ {
		if pages > n {
			t.Fatal("paging does not end")
		}
		page = decode[blockListJSON](t, e.get(next))
		for _, b := range page.Blocks {
			if b.Height != seen-1 || b.Hash != hashAt(b.Height) || b.Confirmations != n-b.Height+1 {
				t.Fatalf("after height %d got block %d %s (%d confirmations)", seen, b.Height, b.Hash, b.Confirmations)
			}
			if b.Height > 0 && b.Parent != hashAt(b.Height-1) {
				t.Fatalf("block %d parent %s", b.Height, b.Parent)
			}
			seen = b.Height
		}
		next = page.Next
	}
	if seen != 0 {
		t.Errorf("paging stopped at height %d, want genesis", seen)
	}

	// Edges.
	page = decode[blockListJSON](t, e.get("/api/v1/blocks?from=1000000&limit=3"))
	if len(page.Blocks) != 3 || page.Blocks[0].Height != n {
		t.Errorf("from beyond the tip: %d blocks from %d, want 3 from the tip", len(page.Blocks), page.Blocks[0].Height)
	}
	page = decode[blockListJSON](t, e.get("/api/v1/blocks?from=1&limit=5"))
	if len(page.Blocks) != 2 || page.Blocks[1].Height != 0 || page.Next != "" {
		t.Errorf("from 1: %d blocks, next %q; want blocks 1 and 0 and no next", len(page.Blocks), page.Next)
	}
	page = decode[blockListJSON](t, e.get("/api/v1/blocks?from=0"))
	if len(page.Blocks) != 1 || page.Blocks[0].Hash != hashAt(0) || page.Next != "" {
		t.Errorf("from 0: %+v", page)
	}
	for _, limit := range []string{"1000", "18446744073709551616", "99999999999999999999999999"} {
		page = decode[blockListJSON](t, e.get("/api/v1/blocks?limit="+limit))
		if page.Limit != api.MaxLimit || len(page.Blocks) != api.MaxLimit {
			t.Errorf("limit %s, over the maximum: limit %d, %d blocks; want %d", limit, page.Limit, len(page.Blocks), api.MaxLimit)
		}
	}
	for _, q := range []string{"limit=0", "limit=-1", "limit=x", "limit=", "from=-1", "from=abc", "from=1.5", "from=99999999999999999999999"} {
		want(t, q, e.get("/api/v1/blocks?"+q), 400, api.CodeBadParameter)
	}
}

func TestBlockByRef(t *testing.T) {
	e := start(t, testnet.Config{NoMiner: true})
	blocks := e.addChain(5, 3)
	// A side branch: another block 1 on genesis, with less work than the main chain.
	side, err := testnet.BuildChain(e.peer.Node.Params(), p2p.KeyFromSeed(7), 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.peer.Node.AddBlock(e.ctx, side[0]); err != nil {
		t.Fatal(err)
	}

	type blockJSON struct {
		Block         chain.Block `json:"block"`
		Main          bool        `json:"main"`
		Confirmations uint64      `json:"confirmations"`
	}
	for _, tc := range []struct {
		ref   string
		want  *chain.Block
		main  bool
		confs uint64
	}{
		{"2", blocks[1], true, 4},
		{"5", blocks[4], true, 1},
		{blocks[2].Hash().String(), blocks[2], true, 3},
		{strings.ToUpper(blocks[3].Hash().String()), blocks[3], true, 2},
		{side[0].Hash().String(), side[0], false, 0},
		{"0", e.peer.Node.Params().Genesis(), true, 6},
	} {
		r := e.get("/api/v1/blocks/" + tc.ref)
		want(t, "block "+tc.ref, r, 200, "")
		got := decode[blockJSON](t, r) // decoding checks every hash
		if got.Block.Hash() != tc.want.Hash() || len(got.Block.Readings) != len(tc.want.Readings) || got.Main != tc.main || got.Confirmations != tc.confs {
			t.Errorf("block %s: %s", tc.ref, r.body)
		}
		for i := range got.Block.Readings {
			if err := got.Block.Readings[i].Check(); err != nil {
				t.Errorf("block %s reading %d: %v", tc.ref, i, err)
			}
		}
	}
	want(t, "height above the tip", e.get("/api/v1/blocks/6"), 404, api.CodeNotFound)
	want(t, "unknown hash", e.get("/api/v1/blocks/"+strings.Repeat("0", 64)), 404, api.CodeNotFound)
	// Too large for a height: a hash prefix of digits that no block has.
	want(t, "unknown prefix", e.get("/api/v1/blocks/99999999999999999999999"), 404, api.CodeNotFound)
	want(t, "unknown prefix", e.get("/api/v1/blocks/"+strings.Repeat("a", 63)), 404, api.CodeNotFound)
	for _, bad := range []string{"abc", "-1", "1.5", "0x10", "007", strings.Repeat("z", 64), strings.Repeat("a", 65)} {
		want(t, "block ref "+bad, e.get("/api/v1/blocks/"+bad), 400, api.CodeBadBlockRef)
	}
}

type subjectJSON struct {
	Subject  string          `json:"subject"`
	Height   uint64          `json:"height"`
	Limit    int             `json:"limit"`
	Pending  []chain.Reading `json:"pending"`
	Readings []struct {
		Reading       chain.Reading `json:"reading"`
		Status        string        `json:"status"`
		Height        uint64        `json:"height"`
		Block         string        `json:"block"`
		Confirmations uint64        `json:"confirmations"`
	} `json:"readings"`
	Next string `json:"next"`
}

func TestSubjectReadings(t *testing.T) {
	e := start(t, testnet.Config{NoMiner: true})
	const n = 130
	blocks := e.addChain(n, 3) // every block: subject-0, subject-1, subject-2
	pending, err := e.peer.Node.Submit("subject-1", 99)
	if err != nil {
		t.Fatal(err)
	}

	// First page: the pending reading, then the newest mined ones, 100
	// in all.
	r := e.get("/api/v1/subjects/subject-1/readings?limit=100")
	want(t, "first page", r, 200, "")
	page := decode[subjectJSON](t, r)
	if page.Subject != "subject-1" || page.Height != n || page.Limit != 100 || len(page.Pending) != 1 ||
		page.Pending[0].ID() != pending.ID() || len(page.Readings) != 99 || page.Next == "" {
		t.Fatalf("first page: subject %q height %d, %d pending, %d readings, next %q", page.Subject, page.Height, len(page.Pending), len(page.Readings), page.Next)
	}
	all := page.Readings
	// Second page: no pending, the rest, and no next.
	page = decode[subjectJSON](t, e.get(page.Next))
	if len(page.Pending) != 0 || len(page.Readings) != n-99 || page.Next != "" {
		t.Fatalf("second page: %d pending, %d readings, next %q", len(page.Pending), len(page.Readings), page.Next)
	}
	all = append(all, page.Readings...)
	for i, rd := range all {
		h := uint64(n - i)
		b := blocks[h-1]
		if rd.Status != "in_block" || rd.Height != h || rd.Block != b.Hash().String() || rd.Confirmations != n-h+1 ||
			rd.Reading.ID() != b.Readings[1].ID() {
			t.Fatalf("reading %d: %+v, want block %d's subject-1 reading", i, rd, h)
		}
	}

	// Small pages through a block holding several readings of a subject.
	several := []chain.Reading{}
	for bpm := 60; bpm < 65; bpm++ {
		rd, err := chain.NewReading(p2p.KeyFromSeed(3), "multi", bpm, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		several = append(several, rd)
	}
	mineOn(t, e, several)
	var got []string
	next := "/api/v1/subjects/multi/readings?limit=2"
	for pages := 0; next != ""; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		page = decode[subjectJSON](t, e.get(next))
		for _, rd := range page.Readings {
			got = append(got, fmt.Sprint(rd.Reading.BPM))
		}
		next = page.Next
	}
	if fmt.Sprint(got) != "[64 63 62 61 60]" {
		t.Errorf("multi readings by pages of 2: %v, want newest first", got)
	}

	// from: start at a height; no pending list then.
	page = decode[subjectJSON](t, e.get("/api/v1/subjects/subject-0/readings?from=10&limit=3"))
	if len(page.Readings) != 3 || page.Readings[0].Height != 10 || len(page.Pending) != 0 {
		t.Errorf("from=10: %+v", page)
	}
	// A subject nobody has: empty lists, not 404.
	r = e.get("/api/v1/subjects/nobody/readings")
	want(t, "unknown subject", r, 200, "")
	if page = decode[subjectJSON](t, r); len(page.Readings) != 0 || len(page.Pending) != 0 || page.Next != "" || page.Pending == nil || page.Readings == nil {
		t.Errorf("unknown subject: %s", r.body)
	}

	// Any printable subject works once escaped in the path, next links too.
	odd := `a/b?c#d%e"f`
	for bpm := 70; bpm < 72; bpm++ {
		if _, err := e.peer.Node.Submit(odd, bpm); err != nil {
			t.Fatal(err)
		}
	}
	newest := e.peer.Node.PendingOf(odd, 10)
	mineOn(t, e, []chain.Reading{newest[1], newest[0]}) // oldest first, as the miner packs them
	page = decode[subjectJSON](t, e.get("/api/v1/subjects/"+url.PathEscape(odd)+"/readings?limit=1"))
	if page.Subject != odd || len(page.Readings) != 1 || page.Readings[0].Reading.BPM != 71 || page.Next == "" {
		t.Fatalf("odd subject, first page: %+v", page)
	}
	page = decode[subjectJSON](t, e.get(page.Next))
	if len(page.Readings) != 1 || page.Readings[0].Reading.Subject != odd || page.Readings[0].Reading.BPM != 70 {
		t.Errorf("odd subject, second page: %+v", page)
	}

	want(t, "subject with a space", e.get("/api/v1/subjects/a%20b/readings"), 400, api.CodeBadSubject)
	want(t, "subject too long", e.get("/api/v1/subjects/"+strings.Repeat("s", 65)+"/readings"), 400, api.CodeBadSubject)
	for _, q := range []string{"cursor=abc", "cursor=5", "cursor=5.x", "cursor=5.99999", "limit=0", "limit=-3", "from=x", "from=3&cursor=3.1"} {
		want(t, q, e.get("/api/v1/subjects/subject-0/readings?"+q), 400, api.CodeBadParameter)
	}
}

type peersJSON struct {
	Count int `json:"count"`
	Peers []struct {
		ID     string   `json:"id"`
		Addrs  []string `json:"addrs"`
		Height uint64   `json:"height"`
	} `json:"peers"`
}

func TestPeers(t *testing.T) {
	e := start(t, testnet.Config{NoMiner: true}, api.WithConnectTimeout(time.Second))
	r := e.get("/api/v1/peers")
	want(t, "no peers", r, 200, "")
	if got := decode[peersJSON](t, r); got.Count != 0 || got.Peers == nil {
		t.Errorf("no peers: %s", r.body)
	}

	other := startPeer(t, e.ctx, testnet.Config{NoMiner: true})
	r = e.postJSON("/api/v1/peers", fmt.Sprintf(`{"addr": %q}`, other.Host.TCPAddr()))
	want(t, "connect", r, 200, "")
	if got := decode[struct {
		ID        string `json:"id"`
		Connected bool   `json:"connected"`
	}](t, r); got.ID != other.Host.ID().String() || !got.Connected {
		t.Errorf("connect: %s", r.body)
	}
	r = e.get("/api/v1/peers")
	if got := decode[peersJSON](t, r); got.Count != 1 || got.Peers[0].ID != other.Host.ID().String() || len(got.Peers[0].Addrs) == 0 {
		t.Errorf("one peer: %s", r.body)
	}

	// A peer of another network: the handshake refuses it, and the answer
	// says so (it said "connected").
	foreign := startPeer(t, e.ctx, testnet.Config{NoMiner: true, Params: chain.TestParams("api-peers-other")})
	r = e.postJSON("/api/v1/peers", fmt.Sprintf(`{"addr": %q}`, foreign.Host.TCPAddr()))
	want(t, "another network", r, http.StatusBadGateway, api.CodePeerFailed)
	if !strings.Contains(string(r.body), "another network") {
		t.Errorf("another network: %s", r.body)
	}

	self := e.peer.Host.TCPAddr().String()
	id := other.Host.ID().String()
	for _, tc := range []struct{ name, body string }{
		{"not a multiaddr", `{"addr": "localhost:4001"}`},
		{"unknown protocol", `{"addr": "/ip4/127.0.0.1/tcpx/1/p2p/` + id + `"}`},
		{"no peer ID", `{"addr": "/ip4/127.0.0.1/tcp/4001"}`},
		{"bad peer ID", `{"addr": "/ip4/127.0.0.1/tcp/4001/p2p/notapeer"}`},
		{"missing", `{}`},
		{"empty", `{"addr": ""}`},
		{"self", fmt.Sprintf(`{"addr": %q}`, self)},
	} {
		r := e.postJSON("/api/v1/peers", tc.body)
		want(t, tc.name, r, 400, api.CodeBadMultiaddr)
		if tc.name != "self" && !strings.Contains(string(r.body), "/ip4/127.0.0.1/tcp/10000/p2p/") {
			t.Errorf("%s: the error does not show a good multiaddr: %s", tc.name, r.body)
		}
	}
	want(t, "unknown field", e.postJSON("/api/v1/peers", `{"address": "x"}`), 400, api.CodeUnknownField)
	want(t, "peers text/plain", e.do("POST", "/api/v1/peers", `{"addr": "x"}`, "Content-Type", "text/plain"), 415, api.CodeMediaType)

	// A closed port: the dial is refused at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	stranger := p2p.KeyFromSeed(77)
	strangerID := peerID(t, stranger)
	r = e.postJSON("/api/v1/peers", fmt.Sprintf(`{"addr": "/ip4/127.0.0.1/tcp/%d/p2p/%s"}`, closed, strangerID))
	want(t, "closed port", r, http.StatusBadGateway, api.CodePeerFailed)

	// A port that accepts TCP but never speaks: the dial times out.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	start := time.Now()
	r = e.postJSON("/api/v1/peers", fmt.Sprintf(`{"addr": "%s/p2p/%s"}`, "/ip4/127.0.0.1/tcp/"+fmt.Sprint(silent.Addr().(*net.TCPAddr).Port), strangerID))
	want(t, "silent peer", r, http.StatusGatewayTimeout, api.CodePeerTimeout)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the connect took %v despite a 1 s timeout", d)
	}
}

func TestToken(t *testing.T) {
	e := start(t, testnet.Config{NoMiner: true}, api.WithToken("s3cret"))
	body := `{"subject": "alice", "bpm": 72}`
	want(t, "no token", e.postJSON("/api/v1/readings", body), 401, api.CodeUnauthorized)
	r := e.postJSON("/api/v1/readings", body, "Authorization", "Bearer wrong")
	want(t, "wrong token", r, 401, api.CodeUnauthorized)
	if !strings.Contains(string(r.body), "the bearer token is not this node's") {
		t.Errorf("a wrong token is told apart from a missing one: %s", r.body)
	}
	if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
		t.Errorf("WWW-Authenticate %q", got)
	}
	want(t, "basic auth", e.postJSON("/api/v1/readings", body, "Authorization", "Basic czNjcmV0"), 401, api.CodeUnauthorized)
	want(t, "peers without token", e.postJSON("/api/v1/peers", `{"addr": "/ip4/127.0.0.1/tcp/1"}`), 401, api.CodeUnauthorized)
	if n := e.peer.Node.Pending(); n != 0 {
		t.Fatalf("%d readings accepted without the token", n)
	}
	want(t, "right token", e.postJSON("/api/v1/readings", body, "Authorization", "Bearer s3cret"), 202, "")
	// Reads need no token.
	for _, path := range []string{"/api/v1/status", "/api/v1/blocks", "/api/v1/blocks/0", "/api/v1/peers", "/api/v1/subjects/alice/readings"} {
		want(t, path, e.get(path), 200, "")
	}
	if r := e.get("/metrics"); r.status != 200 {
		t.Errorf("metrics without token: %d", r.status)
	}
}

func TestRouting(t *testing.T) {
	e := start(t, testnet.Config{NoMiner: true}, api.WithAllowedHosts("node.example"))
	want(t, "unknown path", e.get("/api/v1/nope"), 404, api.CodeNotFound)
	want(t, "unknown root path", e.get("/nope"), 404, api.CodeNotFound)
	r := e.do("DELETE", "/api/v1/status", "")
	want(t, "DELETE status", r, 405, api.CodeMethod)
	if got := r.header.Get("Allow"); got != "GET, HEAD" {
		t.Errorf("Allow %q", got)
	}
	r = e.get("/api/v1/readings")
	want(t, "GET readings", r, 405, api.CodeMethod)
	if got := r.header.Get("Allow"); got != "POST" {
		t.Errorf("Allow %q", got)
	}
	want(t, "PUT peers", e.do("PUT", "/api/v1/peers", ""), 405, api.CodeMethod)
	want(t, "POST metrics", e.do("POST", "/metrics", ""), 405, api.CodeMethod)

	want(t, "foreign host", e.do("GET", "/api/v1/status", "", "Host", "evil.example"), 403, api.CodeForbiddenHost)
	want(t, "foreign host with port", e.do("GET", "/api/v1/status", "", "Host", "evil.example:8080"), 403, api.CodeForbiddenHost)
	for _, host := range []string{"localhost:5001", "127.0.0.1:5001", "[::1]:5001", "10.1.2.3", "node.example", "NODE.example:80"} {
		want(t, "host "+host, e.do("GET", "/api/v1/status", "", "Host", host), 200, "")
	}

	// The fallback serves what is not the API.
	f := start(t, testnet.Config{NoMiner: true}, api.WithFallback(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "explorer")
	})))
	if r := f.get("/"); r.status != 200 || string(r.body) != "explorer" {
		t.Errorf("fallback: %d %q", r.status, r.body)
	}
	want(t, "API 404 with a fallback", f.get("/api/v1/nope"), 404, api.CodeNotFound)
}

func TestMetrics(t *testing.T) {
	e := start(t, testnet.Config{})
	other := startPeer(t, e.ctx, testnet.Config{NoMiner: true})
	if err := other.Connect(e.ctx, e.peer); err != nil {
		t.Fatal(err)
	}
	want(t, "submit", e.postJSON("/api/v1/readings", `{"subject": "alice", "bpm": 72}`), 202, "")
	if err := testnet.WaitFor(e.ctx, func() bool { return e.peer.Node.Status().Height == 1 }); err != nil {
		t.Fatal(err)
	}
	e.waitMetrics("p2pchain_blocks_connected_total 1")
	// A block with a broken readings root is counted under its rule's name.
	bad, _, _ := e.peer.Node.BlockByHeight(1)
	forged := *bad.Block
	forged.Header.Nonce++
	forged.Header.Root[0] ^= 1
	if err := e.peer.Node.AddBlock(e.ctx, &forged); !errors.Is(err, chain.ErrBadRoot) {
		t.Fatalf("forged block: %v", err)
	}
	r := e.get("/metrics")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics: %d %q", r.status, r.header.Get("Content-Type"))
	}
	text := string(r.body)
	for _, name := range []string{
		"p2pchain_chain_height 1", "p2pchain_chain_work", "p2pchain_tip_age_seconds", "p2pchain_blocks_known 2",
		"p2pchain_blocks_connected_total 1", `p2pchain_blocks_rejected_total{reason="readings root mismatch"} 1`, "p2pchain_reorgs_total 0",
		// Every reason is there from the start, so that rate alerts see the first.
		`p2pchain_blocks_rejected_total{reason="malformed"} 0`, `p2pchain_blocks_rejected_total{reason="oversized"} 0`,
		`p2pchain_blocks_rejected_total{reason="bad signature"} 0`,
		"p2pchain_reorg_depth_blocks_bucket", "p2pchain_pending_readings 0", "p2pchain_peers 1", "p2pchain_gossip_mesh_peers",
		"p2pchain_syncing", "p2pchain_sync_progress_ratio", "p2pchain_sync_target_height",
		`p2pchain_gossip_bytes_total{direction="out"}`, `p2pchain_sync_bytes_total{direction="in"}`,
		"p2pchain_discovery_dials_total", `p2pchain_api_requests_total{code="202",route="POST /api/v1/readings"} 1`,
		"libp2p_", "go_goroutines",
	} {
		if !strings.Contains(text, name) {
			t.Errorf("metrics lack %q", name)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", text)
	}
}

// waitMetrics waits until GET /metrics shows every line prefix in lines:
// counters fed by chain events lag the chain a little.
func (e *env) waitMetrics(lines ...string) {
	e.t.Helper()
	var text string
	err := testnet.WaitFor(e.ctx, func() bool {
		text = string(e.get("/metrics").body)
		for _, l := range lines {
			if !strings.Contains(text, "\n"+l) {
				return false
			}
		}
		return true
	})
	if err != nil {
		e.t.Fatalf("metrics never showed %q:\n%s", lines, text)
	}
}

// peerID returns the libp2p peer ID of an Ed25519 key.
func peerID(t *testing.T, k ed25519.PrivateKey) string {
	t.Helper()
	priv, err := crypto.UnmarshalEd25519PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

// sse is one server-sent event.
type sse struct {
	name string
	data map[string]any
}

// openEvents opens an event stream and returns its events; they end when
// the stream does.
func (e *env) openEvents() (<-chan sse, context.CancelFunc) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(e.ctx)
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/api/v1/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		e.t.Fatalf("events: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	ch := make(chan sse, 100)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		readEvents(resp.Body, ch)
	}()
	e.t.Cleanup(cancel)
	return ch, cancel
}

func readEvents(r io.Reader, ch chan<- sse) {
	buf := make([]byte, 0, 4096)
	one := make([]byte, 4096)
	var ev sse
	for {
		n, err := r.Read(one)
		buf = append(buf, one[:n]...)
		for {
			i := bytes.IndexByte(buf, '\n')
			if i < 0 {
				break
			}
			line := string(buf[:i])
			buf = buf[i+1:]
			switch {
			case line == "":
				if ev.name != "" {
					ch <- ev
				}
				ev = sse{}
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				_ = json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.data)
			}
		}
		if err != nil {
			return
		}
	}
}

// next waits for the next event named name, skipping others.
func next(t *testing.T, ch <-chan sse, name string) sse {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("the stream ended before a %s event", name)
			}
			if ev.name == name {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event within 15 s", name)
		}
	}
}

func TestEvents(t *testing.T) {
	e := start(t, testnet.Config{}, api.WithPeerPoll(100*time.Millisecond))
	events, _ := e.openEvents()
	ready := next(t, events, api.EventReady)
	if ready.data["height"] != 0.0 || ready.data["hash"] != e.peer.Node.Params().Genesis().Hash().String() {
		t.Errorf("ready %v", ready.data)
	}

	// A reading submitted through the API is mined: a new tip.
	want(t, "submit", e.postJSON("/api/v1/readings", `{"subject": "alice", "bpm": 72}`), 202, "")
	tip := next(t, events, api.EventTip)
	info, _, _ := e.peer.Node.BlockByHeight(1)
	b := info.Block
	if tip.data["height"] != 1.0 || tip.data["hash"] != b.Hash().String() || tip.data["connected"] != 1.0 {
		t.Errorf("tip %v, want block 1 %s", tip.data, b.Hash())
	}

	// Peers come and go.
	other := startPeer(t, e.ctx, testnet.Config{NoMiner: true})
	if err := other.Connect(e.ctx, e.peer); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, events, api.EventPeerConnected); ev.data["id"] != other.Host.ID().String() {
		t.Errorf("peer-connected %v", ev.data)
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, events, api.EventPeerGone); ev.data["id"] != other.Host.ID().String() {
		t.Errorf("peer-gone %v", ev.data)
	}

	// A longer branch from genesis replaces block 1: a reorganisation of
	// depth 1, and the reading goes back to the pending set.
	branch, err := testnet.BuildChain(e.peer.Node.Params(), p2p.KeyFromSeed(5), 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.peer.Node.AddBlocks(e.ctx, branch); err != nil {
		t.Fatal(err)
	}
	ev := next(t, events, api.EventReorg)
	if ev.data["depth"] != 1.0 || ev.data["fork_height"] != 0.0 || ev.data["old_tip"] != b.Hash().String() ||
		ev.data["returned_readings"] != 1.0 {
		t.Errorf("reorg %v", ev.data)
	}
	tip = next(t, events, api.EventTip)
	if h := tip.data["hash"]; h != branch[0].Hash().String() && h != branch[1].Hash().String() {
		t.Errorf("tip after reorg %v, want block 1 or 2 of the branch", tip.data)
	}
	e.waitMetrics("p2pchain_reorgs_total 1", "p2pchain_reorg_depth_blocks_count 1", "p2pchain_blocks_disconnected_total 1")

	// Closing the handler ends the stream.
	_ = e.h.Close()
	for range events {
	}
}

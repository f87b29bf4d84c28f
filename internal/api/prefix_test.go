package api_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/api"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

type errorJSON struct {
	Error      string   `json:"error"`
	Code       string   `json:"code"`
	Candidates []string `json:"candidates"`
}

// TestShortHashes: blocks and readings are found by the first digits of
// their hash, as the explorer and the prompt show them; a prefix that names
// several is refused as ambiguous with the candidates, one that names none
// is not found.
func TestShortHashes(t *testing.T) {
	params := chain.TestParams("short")
	params.Difficulty = 16 // every mined block's hash starts with 0000
	e := start(t, testnet.Config{Params: params, NoMiner: true})
	blocks := e.addChain(3, 200)

	type blockJSON struct {
		Block chain.Block `json:"block"`
	}
	for _, ref := range []string{blocks[1].Hash().String()[:10], strings.ToUpper(blocks[1].Hash().String()[:7]), blocks[1].Hash().String()} {
		r := e.get("/api/v1/blocks/" + ref)
		want(t, "block "+ref, r, http.StatusOK, "")
		if got := decode[blockJSON](t, r); got.Block.Hash() != blocks[1].Hash() {
			t.Errorf("block %s: got block %d", ref, got.Block.Header.Height)
		}
	}
	// Heights still come first; a number with leading zeros is a prefix.
	if got := decode[blockJSON](t, e.get("/api/v1/blocks/2")); got.Block.Hash() != blocks[1].Hash() {
		t.Errorf("block 2 is block %d", got.Block.Header.Height)
	}
	r := e.get("/api/v1/blocks/0000")
	if r.status != http.StatusBadRequest {
		t.Fatalf("block 0000: %d %s, want 400 ambiguous", r.status, r.body)
	}
	amb := decode[errorJSON](t, r)
	var mined []string
	for _, b := range blocks {
		mined = append(mined, b.Hash().String())
	}
	slices.Sort(mined)
	if amb.Code != api.CodeAmbiguous || !slices.Equal(amb.Candidates, mined) ||
		!strings.HasPrefix(amb.Error, "ambiguous: 3 blocks start with 0000 (") {
		t.Errorf("block 0000: %s", r.body)
	}
	r = e.get("/api/v1/blocks/ffffffff")
	want(t, "block ffffffff", r, http.StatusNotFound, api.CodeNotFound)
	if msg := decode[errorJSON](t, r).Error; msg != "no block starts with ffffffff" {
		t.Errorf("block ffffffff: %q", msg)
	}

	// Readings, mined and pending.
	type readingJSON struct {
		Reading chain.Reading `json:"reading"`
		Status  string        `json:"status"`
	}
	pending, err := e.peer.Node.Submit("alice", 72)
	if err != nil {
		t.Fatal(err)
	}
	for _, rd := range []chain.Reading{blocks[2].Readings[7], pending} {
		ref := rd.ID().String()[:9]
		r := e.get("/api/v1/readings/" + ref)
		want(t, "reading "+ref, r, http.StatusOK, "")
		if got := decode[readingJSON](t, r); got.Reading.ID() != rd.ID() {
			t.Errorf("reading %s: %s", ref, r.body)
		}
	}
	// 601 ids: some share their first 4 digits.
	byPrefix := map[string][]string{}
	for _, b := range blocks {
		for _, id := range b.ReadingIDs() {
			byPrefix[id.String()[:4]] = append(byPrefix[id.String()[:4]], id.String())
		}
	}
	shared := ""
	for p, ids := range byPrefix {
		if len(ids) > 1 && (shared == "" || p < shared) {
			shared = p
		}
	}
	if shared == "" {
		t.Fatal("no two reading ids share their first 4 digits: make more readings")
	}
	r = e.get("/api/v1/readings/" + shared)
	amb = decode[errorJSON](t, r)
	ids := byPrefix[shared]
	slices.Sort(ids)
	if r.status != http.StatusBadRequest || amb.Code != api.CodeAmbiguous || !slices.Equal(amb.Candidates, ids) ||
		!strings.HasPrefix(amb.Error, fmt.Sprintf("ambiguous: %d readings start with %s (", len(ids), shared)) {
		t.Errorf("reading %s: %d %s", shared, r.status, r.body)
	}
}

// TestShutdown: POST /api/v1/shutdown answers 202 and then calls the
// shutdown function once, without waiting for it; it is a write like the
// others (token, JSON content type), and not offered without WithShutdown.
func TestShutdown(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	p := startPeer(t, ctx, testnet.Config{NoMiner: true})

	none := serve(t, ctx, p)
	want(t, "no shutdown function", none.postJSON("/api/v1/shutdown", ""), http.StatusNotFound, api.CodeNotSupported)

	var calls atomic.Int32
	called := make(chan struct{}, 10)
	release := make(chan struct{})
	defer close(release)
	fn := func() {
		calls.Add(1)
		called <- struct{}{}
		<-release // a shutdown takes a while: the answer must not wait for it
	}
	e := serve(t, ctx, p, api.WithShutdown(fn), api.WithToken("secret-token"))
	auth := []string{"Authorization", "Bearer secret-token"}
	want(t, "no token", e.postJSON("/api/v1/shutdown", ""), http.StatusUnauthorized, api.CodeUnauthorized)
	want(t, "not JSON", e.do("POST", "/api/v1/shutdown", "", auth...), http.StatusUnsupportedMediaType, api.CodeMediaType)
	want(t, "a body", e.postJSON("/api/v1/shutdown", `{"now": true}`, auth...), http.StatusBadRequest, api.CodeBadJSON)
	want(t, "GET", e.get("/api/v1/shutdown"), http.StatusMethodNotAllowed, api.CodeMethod)
	if calls.Load() != 0 {
		t.Fatal("refused requests stopped the node")
	}
	for _, body := range []string{"", "{}"} {
		r := e.postJSON("/api/v1/shutdown", body, auth...)
		want(t, "shutdown", r, http.StatusAccepted, "")
		if v := decode[map[string]any](t, r); len(v) != 1 || v["stopping"] != true {
			t.Errorf("shutdown answered %s", r.body)
		}
	}
	select {
	case <-called:
	case <-ctx.Done():
		t.Fatal("the shutdown function was never called")
	}
	time.Sleep(50 * time.Millisecond)
	if n := calls.Load(); n != 1 {
		t.Errorf("the shutdown function was called %d times, want once", n)
	}
}

// TestSubjectsCaseSensitive: subjects are compared byte for byte: "Alice"
// and "alice" are two patients, and the API never folds case.
func TestSubjectsCaseSensitive(t *testing.T) {
	e := start(t, testnet.Config{NoMiner: true})
	for _, s := range []string{"Alice", "alice", "alice"} {
		if _, err := e.peer.Node.Submit(s, 60+len(s)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // another millisecond: another reading
	}
	mineOn(t, e, e.peer.Node.PendingReadings())
	if _, err := e.peer.Node.Submit("ALICE", 80); err != nil {
		t.Fatal(err)
	}
	for subject, n := range map[string]int{"Alice": 1, "alice": 2, "ALICE": 1, "aLiCe": 0} {
		page := decode[subjectJSON](t, e.get("/api/v1/subjects/"+subject+"/readings"))
		got := len(page.Readings) + len(page.Pending)
		if page.Subject != subject || got != n {
			t.Errorf("subject %s: %d readings (%d pending), want %d", subject, got, len(page.Pending), n)
		}
		for _, rd := range page.Readings {
			if rd.Reading.Subject != subject {
				t.Errorf("subject %s lists a reading of %s", subject, rd.Reading.Subject)
			}
		}
		for _, rd := range page.Pending {
			if rd.Subject != subject {
				t.Errorf("subject %s lists a pending reading of %s", subject, rd.Subject)
			}
		}
	}
}

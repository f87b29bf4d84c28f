package api_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/p2pchain/p2pchain/internal/api"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/netfile"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/p2p"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// Fuzz targets for the JSON bodies of the write endpoints, sent over HTTP
// to the real API of a real node (started once per target; each fuzzing
// worker process starts its own). Any body gets an answer: never a panic,
// always a JSON body, a success of the endpoint or one of the errors
// docs/API.md lists for it, in the one error shape. A body that was
// accepted has its effect on the node, seen through a read endpoint;
// decoded, encoded as JSON and decoded again it gives the same value (JSON
// is not canonical), and the encoded body means the same to the node.

// Errors docs/API.md lists for every write: status → codes.
var writeErrors = map[int][]string{
	http.StatusBadRequest:            {api.CodeBadJSON, api.CodeUnknownField},
	http.StatusRequestEntityTooLarge: {api.CodeTooLarge},
	http.StatusUnsupportedMediaType:  {api.CodeMediaType},
}

// documented returns writeErrors with the errors of one endpoint added.
func documented(more map[int][]string) map[int][]string {
	out := map[int][]string{}
	for s, codes := range writeErrors {
		out[s] = slices.Clone(codes)
	}
	for s, codes := range more {
		out[s] = append(out[s], codes...)
	}
	return out
}

// fuzzNode starts a node and serves its API on a real HTTP server for a
// whole fuzz target. Its context is not the requests': see forInput.
func fuzzNode(f *testing.F, cfg testnet.Config, opts ...api.Option) *env {
	f.Helper()
	if cfg.Params.Name == "" {
		cfg.Params = chain.TestParams("api")
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(cancel)
	p, err := testnet.Start(ctx, cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = p.Close() })
	h := api.New(p.Node, p.Host, opts...)
	srv := httptest.NewServer(h)
	// Cleanups run last first: the handler closes before the server waits
	// for its connections.
	f.Cleanup(srv.Close)
	f.Cleanup(func() { _ = h.Close() })
	return &env{ctx: ctx, peer: p, h: h, url: srv.URL}
}

// forInput returns e for one fuzz input: its failures fail t and its
// requests end within d.
func (e *env) forInput(t *testing.T, d time.Duration) *env {
	c := *e
	c.t, c.ctx = t, testCtx(t, d)
	return &c
}

// addSeeds adds the seeds of a target and those every write endpoint gets.
func addSeeds(f *testing.F, seeds ...string) {
	for _, s := range append(seeds, ``, `{}`, `null`, `[]`, `{"a":1}`, `{} {}`, `{"x":`, strings.Repeat(`[`, 5000)) {
		f.Add([]byte(s))
	}
}

// checkAnswer fails t unless r, the answer to body, is JSON and either ok
// or an error errs lists, in the one error shape.
func checkAnswer(t *testing.T, path string, body []byte, r response, ok int, errs map[int][]string) {
	t.Helper()
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") || !json.Valid(r.body) {
		t.Fatalf("%s: %d with content type %q and a body that is not JSON: %q", path, r.status, ct, r.body)
	}
	if r.status == ok {
		return
	}
	var e map[string]any
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("%s: %d with a body that is not an object: %s", path, r.status, r.body)
	}
	code, _ := e["code"].(string)
	msg, _ := e["error"].(string)
	keys := 2
	if id, ok := e["id"].(string); ok && len(id) == 64 {
		keys++ // a refused reading's id (API.md)
	}
	if len(e) != keys || msg == "" || !slices.Contains(errs[r.status], code) {
		t.Fatalf("%s: body %q answered %d %s, which docs/API.md does not list for it", path, body, r.status, r.body)
	}
}

// jsonTrip decodes body into a T, encodes it and decodes that again; the
// two values must be equal, and the encoding stable. It returns the value
// and its encoding.
func jsonTrip[T any](t *testing.T, body []byte, encode func(T) any) (T, []byte) {
	t.Helper()
	var v, again T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("accepted %q, which does not decode: %v", body, err)
	}
	enc, err := json.Marshal(encode(v))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(enc, &again); err != nil || !equalJSON(v, again) {
		t.Fatalf("body %q is %+v; encoded as %s, %+v (%v)", body, v, enc, again, err)
	}
	if enc2, _ := json.Marshal(encode(again)); !bytes.Equal(enc2, enc) {
		t.Fatalf("encoding not stable: %s, %s", enc, enc2)
	}
	return v, enc
}

func equalJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

type readingBody struct {
	Subject string `json:"subject"`
	BPM     int    `json:"bpm"`
	Time    int64  `json:"time"` // Unix milliseconds
}

var readingErrors = documented(map[int][]string{
	http.StatusBadRequest:         {api.CodeBadBPM, api.CodeBadSubject, api.CodeBadTime},
	http.StatusConflict:           {api.CodeKnownReading},
	http.StatusServiceUnavailable: {api.CodePendingFull}, // the node keeps its pending set in memory: no disk to fail
})

// FuzzReadingBody: POST /api/v1/readings, on a node that does not mine
// (its pending set holds 100,000 readings; once full, 503 pending_full).
func FuzzReadingBody(f *testing.F) {
	const path = "/api/v1/readings"
	addSeeds(f, `{"subject": "alice", "bpm": 72}`, `{"subject":"a","bpm":20}`, `{"subject": "alice", "bpm": 72.0}`,
		`{"subject": "alice", "bpm": "72"}`, `{"subject": "al ice", "bpm": 72}`, `{"subject": "alice", "bpm": 1e2}`,
		`{"subject": "alice", "bpm": 72, "extra": 1}`, `{"subject": "\u0061lice", "bpm": -0}`,
		`{"subject": "alice", "bpm": 72, "time": 1}`, `{"subject": "alice", "bpm": 72, "time": "2026-11-30T10:00:00Z"}`,
		// A time in both forms, the RFC 3339 one finer than a millisecond
		// and not in UTC; then ones the handler refuses (bad_time): not a
		// time, not whole milliseconds, before genesis, in the future.
		`{"subject": "alice", "bpm": 72, "time": 1780000000123}`,
		`{"subject": "bob", "bpm": 64, "time": "2026-06-01T12:34:56.789999+02:00", "time": "2026-06-01T12:34:56.7899Z"}`,
		`{"subject": "alice", "bpm": 72, "time": null}`, `{"subject": "alice", "bpm": 72, "time": "yesterday"}`,
		`{"subject": "alice", "bpm": 72, "time": 1780000000123.5}`, `{"subject": "alice", "bpm": 72, "time": "1780000000123"}`,
		`{"subject": "alice", "bpm": 72, "time": -1}`, `{"subject": "alice", "bpm": 72, "time": "2025-12-31T23:59:59Z"}`,
		`{"subject": "alice", "bpm": 72, "time": 99999999999999}`)
	n := fuzzNode(f, testnet.Config{NoMiner: true}) // the node's clock is time.Now
	f.Fuzz(func(t *testing.T, body []byte) {
		e := n.forInput(t, 10*time.Second)
		from := time.Now().UnixMilli()
		r := e.postJSON(path, string(body))
		checkSubmit(t, body, r)
		if r.status != http.StatusAccepted {
			return
		}
		// The shape of the handler's body: fields match in any case, and
		// the last of repeated ones counts whatever the others hold.
		raw, enc := jsonTrip(t, body, func(v struct {
			Subject *string         `json:"subject"`
			BPM     json.RawMessage `json:"bpm"`
			Time    json.RawMessage `json:"time"`
		}) any {
			return v
		})
		var in readingBody
		if raw.Subject == nil || json.Unmarshal(raw.BPM, &in.BPM) != nil {
			t.Fatalf("accepted %q, which has no subject or a bpm %s that is not a whole number", body, raw.BPM)
		}
		in.Subject = *raw.Subject
		timed := len(raw.Time) > 0 && string(raw.Time) != "null"
		if timed {
			var ok bool
			if in.Time, ok = bodyTime(raw.Time); !ok {
				t.Fatalf("accepted %q, whose time %s is neither Unix milliseconds nor RFC 3339", body, raw.Time)
			}
		}
		// same reports whether got is in; without a time in the body the
		// node's clock said when, between from and the answer.
		same := func(got readingBody, from int64) bool {
			if !timed {
				if got.Time < from || got.Time > time.Now().UnixMilli() {
					return false
				}
				got.Time = 0
			}
			return got == in
		}
		if got := pendingReading(e, r); !same(got, from) {
			t.Fatalf("body %q is %+v (time given: %v); the node has %+v", body, in, timed, got)
		}
		// The encoded body is the same reading, or, with the same time
		// (given, or the same millisecond), the very one (409
		// reading_known).
		from = time.Now().UnixMilli()
		r = e.postJSON(path, string(enc))
		checkSubmit(t, enc, r)
		if r.status == http.StatusAccepted {
			if got := pendingReading(e, r); !same(got, from) {
				t.Fatalf("body %q is %+v (time given: %v); encoded as %s, the node has %+v", body, in, timed, enc, got)
			}
		}
	})
}

// bodyTime is the time of a reading body's JSON time, raw, in Unix
// milliseconds: a whole number of them, or an RFC 3339 string (finer
// digits dropped).
func bodyTime(raw json.RawMessage) (int64, bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		at, err := time.Parse(time.RFC3339Nano, s)
		return at.UnixMilli(), err == nil
	}
	ms, err := strconv.ParseInt(string(raw), 10, 64)
	return ms, err == nil
}

func checkSubmit(t *testing.T, body []byte, r response) {
	t.Helper()
	checkAnswer(t, "/api/v1/readings", body, r, http.StatusAccepted, readingErrors)
	if r.status == http.StatusServiceUnavailable && r.header.Get("Retry-After") != "10" {
		t.Fatalf("503 pending_full with Retry-After %q, want 10", r.header.Get("Retry-After"))
	}
}

// pendingReading follows the answer r to a submission to the reading.
func pendingReading(e *env, r response) readingBody {
	e.t.Helper()
	sub := decode[struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}](e.t, r)
	loc := r.header.Get("Location")
	if sub.Status != "pending" || loc != "/api/v1/readings/"+sub.ID {
		e.t.Fatalf("submit answered %s, Location %q", r.body, loc)
	}
	g := e.get(loc)
	v := decode[struct {
		Reading readingBody `json:"reading"`
		Status  string      `json:"status"`
	}](e.t, g)
	if g.status != http.StatusOK || v.Status != "pending" {
		e.t.Fatalf("GET %s: %d %s", loc, g.status, g.body)
	}
	return v.Reading
}

var batchErrors = documented(map[int][]string{
	http.StatusConflict:           {api.CodeBatchRefused},
	http.StatusServiceUnavailable: {api.CodePendingFull}, // an atomic batch the pending set has no room for
})

// FuzzBatchBody: POST /api/v1/readings/batch, on a node that does not mine.
// Whatever the body, the answer is JSON in a documented shape; a 200 or a
// 409 has one result per reading, each a pending id, a documented code or
// not_added; every id answered pending is pending on the node, and an
// atomic batch refused (409) added none.
func FuzzBatchBody(f *testing.F) {
	const path = "/api/v1/readings/batch"
	addSeeds(f, `{"readings": [{"subject": "alice", "bpm": 72}]}`,
		`{"readings": [{"subject": "a", "bpm": 72, "time": 1}, {"subject": "b", "bpm": 900}], "atomic": true}`,
		`{"readings": [{"subject": "a", "bpm": 72}, {"subject": "a", "bpm": 72}], "atomic": false}`,
		`{"readings": [{"subject": "a", "bpm": 72, "x": 1}, 5, null, "s"]}`, `{"readings": null}`, `{"atomic": true}`)
	n := fuzzNode(f, testnet.Config{NoMiner: true})
	codes := map[string]bool{}
	for _, cs := range readingErrors {
		for _, c := range cs {
			codes[c] = true
		}
	}
	codes[api.CodeBadJSON] = true
	f.Fuzz(func(t *testing.T, body []byte) {
		e := n.forInput(t, 20*time.Second)
		before := e.peer.Node.Pending()
		r := e.postJSON(path, string(body))
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") || !json.Valid(r.body) {
			t.Fatalf("%d with content type %q and a body that is not JSON: %q", r.status, ct, r.body)
		}
		if r.status != http.StatusOK && r.status != http.StatusConflict {
			checkAnswer(t, path, body, r, http.StatusOK, batchErrors)
			return
		}
		var v struct {
			Code     string `json:"code"`
			Accepted int    `json:"accepted"`
			Rejected int    `json:"rejected"`
			Results  []struct {
				ID     string `json:"id"`
				Status string `json:"status"`
				Code   string `json:"code"`
			} `json:"results"`
		}
		if err := json.Unmarshal(r.body, &v); err != nil || len(v.Results) == 0 {
			t.Fatalf("%d %s: not a batch answer (%v)", r.status, r.body, err)
		}
		accepted := 0
		for i, res := range v.Results {
			switch {
			case res.Status == "pending" && res.ID != "" && res.Code == "":
				accepted++
				if g := e.get("/api/v1/readings/" + res.ID); g.status != http.StatusOK {
					t.Fatalf("result %d: %s answered pending, GET says %d %s", i, res.ID, g.status, g.body)
				}
			case res.Status == "not_added" && res.ID == "" && res.Code == "":
			case res.ID == "" && codes[res.Code]:
			default:
				t.Fatalf("result %d of %s: %+v, not a documented result", i, r.body, res)
			}
		}
		if accepted != v.Accepted {
			t.Fatalf("accepted %d, but %d results are pending ids: %s", v.Accepted, accepted, r.body)
		}
		if r.status == http.StatusConflict && (v.Code != api.CodeBatchRefused || accepted != 0 || e.peer.Node.Pending() != before) {
			t.Fatalf("409 %s added readings (pending %d, then %d)", r.body, before, e.peer.Node.Pending())
		}
	})
}

var connectErrors = documented(map[int][]string{
	http.StatusBadRequest:     {api.CodeBadMultiaddr},
	http.StatusBadGateway:     {api.CodePeerFailed},
	http.StatusGatewayTimeout: {api.CodePeerTimeout},
})

// FuzzConnectBody: POST /api/v1/peers. Only bodies that dial nothing or
// loopback addresses only are sent (dialsOnLoopback): nothing listens on
// most loopback ports, and a TCP dial there fails at once; a QUIC one waits
// out the handler's connect timeout, 250 ms here (504 peer_timeout). A seed
// is the address of a second node, which takes the connection (while
// fuzzing, the workers get the seeds of the coordinating process, whose
// second node has the same key and stays up).
func FuzzConnectBody(f *testing.F) {
	const path = "/api/v1/peers"
	n := fuzzNode(f, testnet.Config{NoMiner: true}, api.WithConnectTimeout(250*time.Millisecond))
	other := fuzzNode(f, testnet.Config{NoMiner: true, Key: p2p.KeyFromSeed(77)})
	addSeeds(f, `{"addr": "/ip4/127.0.0.1/tcp/10000/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"}`,
		`{"addr": " /ip6/::1/udp/9/quic-v1/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo "}`,
		`{"addr": "/dns4/example.org/tcp/1"}`, `{"addr": ""}`, `{"addr": 5}`,
		`{"addr": "`+other.peer.Host.TCPAddr().String()+`"}`)
	f.Fuzz(func(t *testing.T, body []byte) {
		id, ok := dialsOnLoopback(body)
		if !ok {
			t.Skip("the body names an address beyond loopback")
		}
		e := n.forInput(t, 10*time.Second)
		r := e.postJSON(path, string(body))
		checkAnswer(t, path, body, r, http.StatusOK, connectErrors)
		if r.status != http.StatusOK {
			return
		}
		checkConnected(e, r, id)
		in, enc := jsonTrip(t, body, func(v struct {
			Addr string `json:"addr"`
		}) any {
			return map[string]string{"addr": strings.TrimSpace(v.Addr)}
		})
		r = e.postJSON(path, string(enc))
		if r.status != http.StatusOK {
			t.Fatalf("body %q connected to %s; encoded as %s (%+v), it answered %d %s", body, id, enc, in, r.status, r.body)
		}
		checkConnected(e, r, id)
	})
}

// dialsOnLoopback reports whether POST /api/v1/peers with body dials
// loopback addresses only, if any, and the peer it connects to. It decodes
// more loosely than the handler (unknown fields and data after the object
// are fine), so a body it cannot decode is one the handler refuses.
func dialsOnLoopback(body []byte) (peer.ID, bool) {
	var b struct {
		Addr *string `json:"addr"`
	}
	if json.NewDecoder(bytes.NewReader(body)).Decode(&b) != nil || b.Addr == nil {
		return "", true
	}
	m, err := ma.NewMultiaddr(strings.TrimSpace(*b.Addr))
	if err != nil {
		return "", true
	}
	info, err := peer.AddrInfoFromP2pAddr(m)
	if err != nil {
		return "", true
	}
	for _, a := range info.Addrs {
		if !manet.IsIPLoopback(a) {
			return "", false
		}
	}
	return info.ID, true
}

// checkConnected checks that the answer r says the node is connected to id,
// and that GET /api/v1/peers lists it.
func checkConnected(e *env, r response, id peer.ID) {
	e.t.Helper()
	v := decode[struct {
		ID        string `json:"id"`
		Connected bool   `json:"connected"`
	}](e.t, r)
	if v.ID != id.String() || !v.Connected {
		e.t.Fatalf("connect to %s answered %s", id, r.body)
	}
	ps := peersOf(e)
	if !slices.ContainsFunc(ps.Peers, func(p struct {
		ID string `json:"id"`
	}) bool {
		return p.ID == v.ID
	}) {
		e.t.Fatalf("connected to %s, yet GET /api/v1/peers lists %+v", id, ps.Peers)
	}
}

type peersList struct {
	Count int `json:"count"`
	Peers []struct {
		ID string `json:"id"`
	} `json:"peers"`
	Blocked []string `json:"blocked"`
}

func peersOf(e *env) peersList {
	e.t.Helper()
	r := e.get("/api/v1/peers")
	if r.status != http.StatusOK {
		e.t.Fatalf("GET /api/v1/peers: %d %s", r.status, r.body)
	}
	return decode[peersList](e.t, r)
}

var blockErrors = documented(map[int][]string{
	http.StatusBadRequest: {api.CodeBadPeerID},
	http.StatusConflict:   {api.CodeBlockedFull},
})

// FuzzPeerIDsBody: POST /api/v1/peers/block (unblock reads the same body).
// A body blocked is unblocked again, encoded: the blocked list of GET
// /api/v1/peers is back to what it was.
func FuzzPeerIDsBody(f *testing.F) {
	addSeeds(f, `{"peer_ids": ["12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"]}`,
		`{"peer_ids": ["QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N", " 12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"]}`,
		`{"peer_ids": []}`, `{"peer_ids": [""]}`, `{"peer_ids": "x"}`)
	n := fuzzNode(f, testnet.Config{NoMiner: true})
	f.Fuzz(func(t *testing.T, body []byte) {
		e := n.forInput(t, 10*time.Second)
		before := peersOf(e).Blocked
		r := e.postJSON("/api/v1/peers/block", string(body))
		checkAnswer(t, "/api/v1/peers/block", body, r, http.StatusOK, blockErrors)
		if r.status != http.StatusOK {
			if got := peersOf(e).Blocked; !slices.Equal(got, before) {
				t.Fatalf("body %q answered %d, yet blocked went from %v to %v", body, r.status, before, got)
			}
			return
		}
		in, _ := jsonTrip(t, body, func(v struct {
			PeerIDs []string `json:"peer_ids"`
		}) any {
			return v
		})
		ids := make([]string, 0, len(in.PeerIDs))
		for _, s := range in.PeerIDs {
			id, err := peer.Decode(strings.TrimSpace(s))
			if err != nil {
				t.Fatalf("body %q blocked %q, which is not a peer ID: %v", body, s, err)
			}
			ids = append(ids, id.String())
		}
		want := slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(before), ids...))))
		if got := peersOf(e).Blocked; !slices.Equal(got, want) {
			t.Fatalf("body %q: blocked %v, want %v", body, got, want)
		}
		enc, err := json.Marshal(map[string][]string{"peer_ids": ids})
		if err != nil {
			t.Fatal(err)
		}
		r = e.postJSON("/api/v1/peers/unblock", string(enc))
		if r.status != http.StatusOK {
			t.Fatalf("body %q blocked %v; unblock %s answered %d %s", body, ids, enc, r.status, r.body)
		}
		if got := peersOf(e).Blocked; !slices.Equal(got, before) {
			t.Fatalf("body %q blocked %v; unblock %s left %v, want %v", body, ids, enc, got, before)
		}
	})
}

var authorityErrors = documented(map[int][]string{
	http.StatusBadRequest: {api.CodeBadOp, api.CodeBadPeerID},
	http.StatusConflict:   {api.CodeChangeRefused},
})

type changeBody struct {
	Op     string `json:"op"`
	PeerID string `json:"peer_id"`
	Height uint64 `json:"height"`
}

// FuzzAuthoritiesBody: POST /api/v1/authorities, on a node of an
// authority network of four whose other three are down: it decides
// nothing, so the approvals stay (at most bft.MaxAuthorities of them; then
// 409 change_refused).
func FuzzAuthoritiesBody(f *testing.F) {
	const path = "/api/v1/authorities"
	keys := make([]ed25519.PrivateKey, 4)
	ids := make([]string, len(keys))
	for i := range keys {
		keys[i] = p2p.KeyFromSeed(int64(500 + i))
		id, err := p2p.PeerID(keys[i])
		if err != nil {
			f.Fatal(err)
		}
		ids[i] = id.String()
	}
	nf, err := netfile.New("ward", ids)
	if err != nil {
		f.Fatal(err)
	}
	nf.GenesisTime = "2026-01-01T00:00:00Z"
	nw, err := netfile.Parse(nf.Encode())
	if err != nil {
		f.Fatal(err)
	}
	n := fuzzNode(f, testnet.Config{Params: nw.Params, Key: keys[0],
		NodeOptions: []node.Option{node.WithAuthority(nw.Authority())}})
	addSeeds(f, `{"op": "add", "peer_id": "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo", "height": 0}`,
		`{"op": "remove", "peer_id": "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo", "height": 18446744073709551615}`,
		`{"op": "add", "peer_id": "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"}`, `{"op": "drop"}`, `{"height": -1}`,
		`{"op": "remove", "peer_id": " `+ids[3]+`", "height": 9}`)
	f.Fuzz(func(t *testing.T, body []byte) {
		e := n.forInput(t, 10*time.Second)
		r := e.postJSON(path, string(body))
		checkAnswer(t, path, body, r, http.StatusAccepted, authorityErrors)
		if r.status != http.StatusAccepted {
			return
		}
		in, _ := jsonTrip(t, body, func(v changeBody) any { return v })
		key, err := netfile.KeyOf(strings.TrimSpace(in.PeerID))
		if err != nil {
			t.Fatalf("body %q accepted, yet %v", body, err)
		}
		id, err := netfile.PeerIDOf(key)
		if err != nil {
			t.Fatal(err)
		}
		c := changeBody{Op: in.Op, PeerID: id, Height: in.Height}
		got := decode[struct {
			changeBody
			Approved bool `json:"approved"`
		}](t, r)
		if got.changeBody != c || !got.Approved {
			t.Fatalf("body %q answered %s, want %+v approved", body, r.body, c)
		}
		// The encoded change is the same one: already approved.
		enc, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		r = e.postJSON(path, string(enc))
		checkAnswer(t, path, enc, r, http.StatusConflict, authorityErrors)
		if r.status != http.StatusConflict {
			t.Fatalf("body %q approved %+v; encoded as %s, it answered %d %s", body, c, enc, r.status, r.body)
		}
		// Approved once, as it was sent.
		var seen []changeBody
		for _, a := range decode[consensusJSON](t, e.get("/api/v1/consensus")).Approved {
			if a.Op == c.Op && a.PeerID == c.PeerID {
				seen = append(seen, changeBody(a))
			}
		}
		if len(seen) != 1 || seen[0] != c {
			t.Fatalf("body %q approved %+v; GET /api/v1/consensus has %+v", body, c, seen)
		}
	})
}

package api_test

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pchain/p2pchain/internal/api"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/p2p"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// These tests need no running consensus: on a proof-of-work node they use
// the node itself, and for what only an authority network shows they put
// a fake consensus (fakeConsensus) in front of it.

type consensusJSON struct {
	Kind        string   `json:"kind"`
	Height      uint64   `json:"height"`
	Round       int32    `json:"round"`
	Step        string   `json:"step"`
	Authorities []string `json:"authorities"`
	Self        int      `json:"self"`
	Decided     uint64   `json:"decided"`
	Rounds      uint64   `json:"rounds"`
	MissedTurns uint64   `json:"missed_turns"`
	Evidence    []struct {
		Height   uint64 `json:"height"`
		Offender int    `json:"offender"`
		Hex      string `json:"hex"`
	} `json:"evidence"`
	Approved []struct {
		Op     string `json:"op"`
		PeerID string `json:"peer_id"`
		Height uint64 `json:"height"`
	} `json:"approved"`
}

// TestConsensusPoW: a proof-of-work node says so, and refuses membership
// changes: bad input with 400 and a code, good input with 409.
func TestConsensusPoW(t *testing.T) {
	e := start(t, testnet.Config{NoMiner: true}, api.WithToken("s3cret"))
	r := e.get("/api/v1/status")
	if !strings.Contains(string(r.body), `"consensus":"pow"`) || strings.Contains(string(r.body), `"authority"`) {
		t.Errorf("status of a pow node: %s", r.body)
	}
	c := decode[consensusJSON](t, e.get("/api/v1/consensus"))
	if c.Kind != "pow" || c.Self != -1 || c.Authorities == nil || len(c.Authorities) != 0 || c.Evidence == nil || c.Approved == nil {
		t.Errorf("consensus of a pow node: %+v", c)
	}

	auth := []string{"Authorization", "Bearer s3cret"}
	good := peerID(t, ed25519.NewKeyFromSeed(make([]byte, 32)))
	want(t, "no token", e.postJSON("/api/v1/authorities", `{"op": "add", "peer_id": "`+good+`"}`), 401, api.CodeUnauthorized)
	secp, _, err := crypto.GenerateSecp256k1Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	secpID, err := peer.IDFromPrivateKey(secp)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, body, code string }{
		{"empty body", ``, api.CodeBadJSON},
		{"not JSON", `add`, api.CodeBadJSON},
		{"unknown field", `{"op": "add", "peer_id": "` + good + `", "key": "x"}`, api.CodeUnknownField},
		{"negative height", `{"op": "add", "peer_id": "` + good + `", "height": -1}`, api.CodeBadJSON},
		{"no op", `{"peer_id": "` + good + `"}`, api.CodeBadOp},
		{"unknown op", `{"op": "promote", "peer_id": "` + good + `"}`, api.CodeBadOp},
		{"op not a string", `{"op": 1, "peer_id": "` + good + `"}`, api.CodeBadJSON},
		{"no peer_id", `{"op": "add"}`, api.CodeBadPeerID},
		{"empty peer_id", `{"op": "remove", "peer_id": " "}`, api.CodeBadPeerID},
		{"bad peer_id", `{"op": "add", "peer_id": "12D3KooWnope"}`, api.CodeBadPeerID},
		{"secp256k1 peer_id", `{"op": "add", "peer_id": "` + secpID.String() + `"}`, api.CodeBadPeerID},
	} {
		want(t, tc.name, e.postJSON("/api/v1/authorities", tc.body, auth...), http.StatusBadRequest, tc.code)
	}
	for _, body := range []string{
		`{"op": "add", "peer_id": "` + good + `"}`,
		`{"op": "remove", "peer_id": "` + good + `", "height": 7}`,
	} {
		want(t, body, e.postJSON("/api/v1/authorities", body, auth...), http.StatusConflict, api.CodeNotAuthority)
	}
	want(t, "GET authorities", e.get("/api/v1/authorities"), http.StatusMethodNotAllowed, api.CodeMethod)
	e.waitMetrics("p2pchain_consensus_height 0", "p2pchain_consensus_rounds_total 0",
		"p2pchain_consensus_missed_turns_total 0", "p2pchain_consensus_evidence 0", "p2pchain_finalized_height 0",
		"p2pchain_finality_seconds_count 0")
}

// TestReadingFinal: on a proof-of-work network whose blocks are final
// under one block (MaxReorgDepth 1, FinalAge 0), readings and blocks below
// the tip are final and the tip's are not.
func TestReadingFinal(t *testing.T) {
	params := chain.TestParams("api")
	params.MaxReorgDepth, params.FinalAge = 1, 0
	e := start(t, testnet.Config{NoMiner: true, Params: params})
	blocks := e.addChain(3, 1)
	st := decode[statusJSON](t, e.get("/api/v1/status"))
	if st.FinalH != 2 || st.FinalHash != blocks[1].Hash().String() {
		t.Fatalf("final %d %s, want 2 %s", st.FinalH, st.FinalHash, blocks[1].Hash())
	}
	type readingJSON struct {
		Status string `json:"status"`
		Final  *bool  `json:"final"`
	}
	for i, b := range blocks {
		id := b.Readings[0].ID().String()
		r := decode[readingJSON](t, e.get("/api/v1/readings/"+id))
		if r.Final == nil || *r.Final != (i < 2) || r.Status != "in_block" {
			t.Errorf("reading of block %d: %+v, want final %v", i+1, r, i < 2)
		}
		blk := decode[struct{ Final *bool }](t, e.get("/api/v1/blocks/"+b.Hash().String()))
		if blk.Final == nil || *blk.Final != (i < 2) {
			t.Errorf("block %d: final %v, want %v", i+1, blk.Final, i < 2)
		}
	}
	list := decode[struct {
		Blocks []struct {
			Height uint64 `json:"height"`
			Final  bool   `json:"final"`
		} `json:"blocks"`
	}](t, e.get("/api/v1/blocks"))
	if len(list.Blocks) != 4 {
		t.Fatalf("blocks %+v", list.Blocks)
	}
	for _, b := range list.Blocks {
		if b.Final != (b.Height <= 2) {
			t.Errorf("listed block %d: final %v", b.Height, b.Final)
		}
	}
	subj := decode[struct {
		Readings []readingJSON `json:"readings"`
	}](t, e.get("/api/v1/subjects/subject-0/readings"))
	if len(subj.Readings) != 3 || *subj.Readings[0].Final || !*subj.Readings[2].Final {
		t.Errorf("subject readings %+v, want the newest not final and the oldest final", subj.Readings)
	}

	// A pending reading is not final.
	sub := decode[struct {
		ID string `json:"id"`
	}](t, e.postJSON("/api/v1/readings", `{"subject": "alice", "bpm": 72}`))
	if r := decode[readingJSON](t, e.get("/api/v1/readings/"+sub.ID)); r.Final == nil || *r.Final || r.Status != "pending" {
		t.Errorf("pending reading %+v", r)
	}
	e.waitMetrics("p2pchain_finalized_height 2")
}

// fakeConsensus is a node whose consensus state, membership approvals and
// finality events the test sets: the rest is the real node's.
type fakeConsensus struct {
	api.NodeService
	mu       sync.Mutex
	info     api.Consensus
	approved []api.Change
	refuse   error
	subs     []chan api.ChainEvent
}

func (f *fakeConsensus) Consensus() api.Consensus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.info
}

func (f *fakeConsensus) Status() api.Status {
	st := f.NodeService.Status()
	c := f.Consensus()
	st.Consensus, st.Authority = c.Kind, &c
	return st
}

func (f *fakeConsensus) Approve(c api.Change) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuse != nil {
		return f.refuse
	}
	f.approved = append(f.approved, c)
	return nil
}

func (f *fakeConsensus) Subscribe(buffer int) (<-chan api.ChainEvent, func()) {
	ch := make(chan api.ChainEvent, buffer)
	f.mu.Lock()
	f.subs = append(f.subs, ch)
	f.mu.Unlock()
	return ch, func() {}
}

// publish sends ev to every subscriber.
func (f *fakeConsensus) publish(ev api.ChainEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ch := range f.subs {
		ch <- ev
	}
}

func serveFake(t *testing.T, f *fakeConsensus, p *testnet.Peer, opts ...api.Option) *env {
	t.Helper()
	f.NodeService = api.NodeService{Node: p.Node, Host: p.Host}
	h := api.New(f, opts...)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = h.Close() })
	return &env{t: t, ctx: testCtx(t, 60*time.Second), peer: p, h: h, url: srv.URL}
}

// TestConsensusAuthorityViews: the status, the consensus endpoint and the
// metrics show an authority network's state; approvals reach the node.
func TestConsensusAuthorityViews(t *testing.T) {
	keys := make([]ed25519.PrivateKey, 3)
	var set []api.Key
	for i := range keys {
		keys[i] = p2p.KeyFromSeed(int64(100 + i))
		set = append(set, api.Key(keys[i].Public().(ed25519.PublicKey)))
	}
	f := &fakeConsensus{info: api.Consensus{Kind: "authority", Height: 9, Round: 2, Step: "prevote", Authorities: set, Self: 1,
		Decided: 8, Rounds: 3, MissedTurns: 1,
		Evidence: []api.Evidence{{Height: 7, Offender: 2, Binary: []byte{1, 2, 3}}},
		Approved: []api.Change{{Op: api.OpRemove, Height: 12, Key: set[2]}}}}
	ctx := testCtx(t, 60*time.Second)
	e := serveFake(t, f, startPeer(t, ctx, testnet.Config{NoMiner: true}))

	st := decode[struct {
		Consensus string `json:"consensus"`
		Authority struct {
			Height      uint64   `json:"height"`
			Round       int32    `json:"round"`
			Step        string   `json:"step"`
			Authorities []string `json:"authorities"`
			Self        int      `json:"self"`
			Decided     uint64   `json:"decided"`
			Rounds      uint64   `json:"rounds"`
			MissedTurns uint64   `json:"missed_turns"`
			Evidence    int      `json:"evidence"`
		} `json:"authority"`
	}](t, e.get("/api/v1/status"))
	a := st.Authority
	if st.Consensus != "authority" || a.Height != 9 || a.Round != 2 || a.Step != "prevote" || a.Self != 1 ||
		a.Decided != 8 || a.Rounds != 3 || a.MissedTurns != 1 || a.Evidence != 1 ||
		len(a.Authorities) != 3 || a.Authorities[0] != peerID(t, keys[0]) || a.Authorities[2] != peerID(t, keys[2]) {
		t.Errorf("status %+v", st)
	}
	c := decode[consensusJSON](t, e.get("/api/v1/consensus"))
	if c.Kind != "authority" || c.Height != 9 || len(c.Authorities) != 3 || c.Authorities[1] != peerID(t, keys[1]) ||
		len(c.Evidence) != 1 || c.Evidence[0].Hex != hex.EncodeToString([]byte{1, 2, 3}) || c.Evidence[0].Offender != 2 || c.Evidence[0].Height != 7 ||
		len(c.Approved) != 1 || c.Approved[0].Op != "remove" || c.Approved[0].Height != 12 || c.Approved[0].PeerID != peerID(t, keys[2]) {
		t.Errorf("consensus %+v", c)
	}

	// An approval reaches the node with the key the peer ID wraps.
	newcomer := p2p.KeyFromSeed(200)
	r := e.postJSON("/api/v1/authorities", `{"op": "add", "peer_id": "`+peerID(t, newcomer)+`"}`)
	want(t, "approve", r, http.StatusAccepted, "")
	if !strings.Contains(string(r.body), `"approved":true`) {
		t.Errorf("approve: %s", r.body)
	}
	f.mu.Lock()
	if len(f.approved) != 1 || f.approved[0] != (api.Change{Op: api.OpAdd, Key: api.Key(newcomer.Public().(ed25519.PublicKey))}) {
		t.Errorf("approved %+v", f.approved)
	}
	f.refuse = errors.New("bad membership change: adds an authority already in the set")
	f.mu.Unlock()
	want(t, "refused", e.postJSON("/api/v1/authorities", `{"op": "add", "peer_id": "`+peerID(t, keys[0])+`", "height": 3}`),
		http.StatusConflict, api.CodeChangeRefused)

	e.waitMetrics("p2pchain_consensus_height 9", "p2pchain_consensus_round 2", "p2pchain_consensus_rounds_total 3",
		"p2pchain_consensus_missed_turns_total 1", "p2pchain_consensus_evidence 1", "p2pchain_consensus_authorities 3",
		"p2pchain_consensus_decided_total 8")
}

// TestFinalEvent: each finality event is a final event on the streams, and
// its latencies feed p2pchain_finality_seconds.
func TestFinalEvent(t *testing.T) {
	f := &fakeConsensus{info: api.Consensus{Kind: "pow", Self: -1}}
	ctx := testCtx(t, 60*time.Second)
	e := serveFake(t, f, startPeer(t, ctx, testnet.Config{NoMiner: true}))
	events, _ := e.openEvents()
	next(t, events, api.EventReady)
	hash := chain.Hash{1, 2, 3}
	f.publish(api.ChainEvent{Final: &api.FinalEvent{Height: 5, Hash: hash, Latencies: []time.Duration{1500 * time.Millisecond, 3 * time.Second}}})
	ev := next(t, events, api.EventFinal)
	if ev.data["height"] != 5.0 || ev.data["hash"] != hash.String() || len(ev.data) != 2 {
		t.Errorf("final event %v", ev.data)
	}
	e.waitMetrics("p2pchain_finality_seconds_count 2", "p2pchain_finality_seconds_sum 4.5", `p2pchain_finality_seconds_bucket{le="2"} 1`,
		"p2pchain_blocks_connected_total 0")
}

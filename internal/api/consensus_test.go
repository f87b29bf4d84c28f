package api_test

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pchain/p2pchain/internal/api"
	"github.com/p2pchain/p2pchain/internal/bft"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/netfile"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/p2p"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// These tests run real nodes: a proof-of-work one, and authority networks
// whose consensus runs (one authority that decides alone) or waits for
// authorities the test holds the keys of (and signs for).

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

// authorityPeer starts a node of an authority network whose authorities
// hold keys; the node holds keys[0]. Its blocks come 1 s apart when idle.
func authorityPeer(t *testing.T, ctx context.Context, keys []ed25519.PrivateKey) (*testnet.Peer, *netfile.Network) {
	t.Helper()
	var ids []string
	for _, k := range keys {
		ids = append(ids, peerID(t, k))
	}
	f, err := netfile.New("ward", ids)
	if err != nil {
		t.Fatal(err)
	}
	f.GenesisTime = "2026-01-01T00:00:00Z"
	f.BlockInterval = "1s"
	nw, err := netfile.Parse(f.Encode())
	if err != nil {
		t.Fatal(err)
	}
	p := startPeer(t, ctx, testnet.Config{Params: nw.Params, Key: keys[0],
		NodeOptions: []node.Option{node.WithAuthority(nw.Authority())}})
	return p, nw
}

// TestConsensusAuthorityViews: on an authority network of four whose other
// three authorities are down (the test holds their keys), the node waits
// at height 1, rounds go by; the status, the consensus endpoint and the
// metrics show it. Two contradicting prevotes the test signs for one of
// the three are evidence; approvals reach the node, and one the schedule
// refuses is a conflict.
func TestConsensusAuthorityViews(t *testing.T) {
	keys := make([]ed25519.PrivateKey, 4)
	for i := range keys {
		keys[i] = p2p.KeyFromSeed(int64(100 + i))
	}
	ctx := testCtx(t, 60*time.Second)
	p, nw := authorityPeer(t, ctx, keys)
	e := serve(t, ctx, p)

	st := decode[struct {
		Consensus string `json:"consensus"`
		Authority struct {
			Height      uint64   `json:"height"`
			Authorities []string `json:"authorities"`
			Self        int      `json:"self"`
			Decided     uint64   `json:"decided"`
			Evidence    int      `json:"evidence"`
		} `json:"authority"`
	}](t, e.get("/api/v1/status"))
	a := st.Authority
	if st.Consensus != "authority" || a.Height != 1 || a.Self != 0 || a.Decided != 0 || a.Evidence != 0 ||
		len(a.Authorities) != 4 || a.Authorities[0] != peerID(t, keys[0]) || a.Authorities[3] != peerID(t, keys[3]) {
		t.Errorf("status %+v", st)
	}

	// Authority 2 prevotes nil and a block at height 1, round 0.
	net := nw.Params.Genesis().Hash()
	for _, h := range []chain.Hash{{}, {7}} {
		v := &bft.Vote{Type: bft.KindPrevote, Height: 1, Hash: h, Index: 2}
		v.Sign(net, keys[2])
		if err := p.Node.HandleConsensus(ctx, v.AppendBinary(nil)); err != nil {
			t.Fatalf("prevote of authority 2: %v", err)
		}
	}
	// The loop answers the message, then records the evidence.
	var c consensusJSON
	if err := testnet.WaitFor(ctx, func() bool {
		c = decode[consensusJSON](t, e.get("/api/v1/consensus"))
		return len(c.Evidence) > 0
	}); err != nil {
		t.Fatalf("no evidence: %+v", c)
	}
	if c.Kind != "authority" || c.Height != 1 || len(c.Authorities) != 4 || c.Authorities[1] != peerID(t, keys[1]) ||
		len(c.Evidence) != 1 || c.Evidence[0].Offender != 2 || c.Evidence[0].Height != 1 || c.Evidence[0].Hex == "" {
		t.Errorf("consensus %+v", c)
	}
	var ev bft.Evidence
	if raw, err := hex.DecodeString(c.Evidence[0].Hex); err != nil || ev.UnmarshalBinary(raw) != nil || ev.Verify(net, nw.Set) != nil {
		t.Errorf("evidence %q does not decode and verify", c.Evidence[0].Hex)
	}

	// An approval reaches the node with the key the peer ID wraps.
	newcomer := p2p.KeyFromSeed(200)
	r := e.postJSON("/api/v1/authorities", `{"op": "add", "peer_id": "`+peerID(t, newcomer)+`", "height": 9}`)
	want(t, "approve", r, http.StatusAccepted, "")
	if !strings.Contains(string(r.body), `"approved":true`) {
		t.Errorf("approve: %s", r.body)
	}
	c = decode[consensusJSON](t, e.get("/api/v1/consensus"))
	if len(c.Approved) != 1 || c.Approved[0].Op != "add" || c.Approved[0].Height != 9 || c.Approved[0].PeerID != peerID(t, newcomer) {
		t.Errorf("approved %+v", c.Approved)
	}
	want(t, "refused", e.postJSON("/api/v1/authorities", `{"op": "add", "peer_id": "`+peerID(t, keys[1])+`"}`),
		http.StatusConflict, api.CodeChangeRefused)

	e.waitMetrics("p2pchain_consensus_height 1", "p2pchain_consensus_evidence 1", "p2pchain_consensus_authorities 4",
		"p2pchain_consensus_decided_total 0", "p2pchain_finalized_height 0")
}

// TestFinalEvent: a network of one authority decides alone. A reading
// submitted through the API becomes final: the reading says so, the event
// stream has a final event for its block, and its time to finality feeds
// p2pchain_finality_seconds.
func TestFinalEvent(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	p, _ := authorityPeer(t, ctx, []ed25519.PrivateKey{p2p.KeyFromSeed(300)})
	e := serve(t, ctx, p)
	events, _ := e.openEvents()
	next(t, events, api.EventReady)
	sub := decode[struct {
		ID string `json:"id"`
	}](t, e.postJSON("/api/v1/readings", `{"subject": "alice", "bpm": 72}`))
	var height float64
	for height == 0 {
		ev := next(t, events, api.EventFinal)
		if len(ev.data) != 2 || ev.data["hash"] == "" {
			t.Fatalf("final event %v", ev.data)
		}
		r := decode[struct {
			Final  bool   `json:"final"`
			Height uint64 `json:"height"`
		}](t, e.get("/api/v1/readings/"+sub.ID))
		if r.Final {
			height = float64(r.Height)
			if ev.data["height"].(float64) < height {
				t.Fatalf("final event at %v before the reading's block %v was final", ev.data["height"], height)
			}
		}
	}
	e.waitMetrics("p2pchain_finality_seconds_count 1", "p2pchain_consensus_decided_total")
	st := decode[statusJSON](t, e.get("/api/v1/status"))
	if st.FinalH == 0 || st.FinalH != st.Height {
		t.Errorf("status: final %d, height %d: every block of an authority chain is final", st.FinalH, st.Height)
	}
}

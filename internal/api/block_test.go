package api_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/api"
	"github.com/p2pchain/p2pchain/internal/p2p"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

type blockedJSON struct {
	Count   int      `json:"count"`
	Blocked []string `json:"blocked"`
}

func idsBody(ids ...string) string {
	b, _ := json.Marshal(map[string][]string{"peer_ids": ids})
	return string(b)
}

// TestBlockPeers: POST /api/v1/peers/block drops a connected peer, which
// can then not connect; GET /api/v1/peers lists it as blocked; POST
// /api/v1/peers/unblock lets it connect again.
func TestBlockPeers(t *testing.T) {
	e := start(t, testnet.Config{NoMiner: true})
	other := startPeer(t, e.ctx, testnet.Config{NoMiner: true})
	id := other.Host.ID().String()
	if err := other.Connect(e.ctx, e.peer); err != nil {
		t.Fatal(err)
	}
	if got := decode[peersJSON](t, e.get("/api/v1/peers")); got.Count != 1 {
		t.Fatalf("%d peers before the block, want 1", got.Count)
	}

	r := e.postJSON("/api/v1/peers/block", idsBody(id, id))
	want(t, "block", r, 200, "")
	if got := decode[blockedJSON](t, r); got.Count != 1 || len(got.Blocked) != 1 || got.Blocked[0] != id {
		t.Fatalf("block: %s", r.body)
	}
	if err := testnet.WaitFor(e.ctx, func() bool { return len(e.peer.Host.Peers()) == 0 }); err != nil {
		t.Fatalf("the blocked peer is still connected: %v", err)
	}
	_ = other.Connect(e.ctx, e.peer) // refused by the node's gater
	time.Sleep(100 * time.Millisecond)
	r = e.get("/api/v1/peers")
	if got, blocked := decode[peersJSON](t, r), decode[blockedJSON](t, r); got.Count != 0 || len(blocked.Blocked) != 1 || blocked.Blocked[0] != id {
		t.Fatalf("peers while blocked: %s", r.body)
	}
	r = e.postJSON("/api/v1/peers", fmt.Sprintf(`{"addr": %q}`, other.Host.TCPAddr()))
	want(t, "connect to a blocked peer", r, 502, api.CodePeerFailed)
	if !strings.Contains(string(r.body), "blocked") {
		t.Errorf("connect to a blocked peer: %s", r.body)
	}

	r = e.postJSON("/api/v1/peers/unblock", idsBody(id))
	want(t, "unblock", r, 200, "")
	if got := decode[blockedJSON](t, r); got.Count != 0 || got.Blocked == nil {
		t.Fatalf("unblock: %s", r.body)
	}
	if err := other.Connect(e.ctx, e.peer); err != nil {
		t.Fatalf("the unblocked peer cannot connect: %v", err)
	}
	if err := testnet.WaitFor(e.ctx, func() bool { return len(e.peer.Host.Peers()) == 1 }); err != nil {
		t.Fatal(err)
	}
	want(t, "unblock again", e.postJSON("/api/v1/peers/unblock", idsBody(id)), 200, "")
}

// TestBlockPeersErrors: bad bodies and peer IDs are 400 with a code and block
// nothing; the token guards both endpoints; a block over the cap is 409
// blocked_full and blocks none of its IDs.
func TestBlockPeersErrors(t *testing.T) {
	e := start(t, testnet.Config{NoMiner: true}, api.WithToken("s3cret"))
	auth := []string{"Authorization", "Bearer s3cret"}
	good := peerID(t, p2p.KeyFromSeed(1))
	self := e.peer.Host.ID().String()
	for _, path := range []string{"/api/v1/peers/block", "/api/v1/peers/unblock"} {
		want(t, path+" without token", e.postJSON(path, idsBody(good)), 401, api.CodeUnauthorized)
		for _, tc := range []struct{ name, body, code string }{
			{"missing", `{}`, api.CodeBadPeerID},
			{"empty", `{"peer_ids": []}`, api.CodeBadPeerID},
			{"not a peer ID", idsBody(good, "notapeer"), api.CodeBadPeerID},
			{"empty ID", idsBody(""), api.CodeBadPeerID},
			{"self", idsBody(good, self), api.CodeBadPeerID},
			{"not a list", `{"peer_ids": "` + good + `"}`, api.CodeBadJSON},
			{"unknown field", `{"peer_id": "` + good + `"}`, api.CodeUnknownField},
		} {
			want(t, path+" "+tc.name, e.postJSON(path, tc.body, auth...), 400, tc.code)
		}
		want(t, path+" text/plain", e.do("POST", path, idsBody(good), append(auth, "Content-Type", "text/plain")...), 415, api.CodeMediaType)
		want(t, "GET "+path, e.get(path), 405, api.CodeMethod)
	}
	if n := len(e.peer.Host.Blocked()); n != 0 {
		t.Fatalf("%d peers blocked by refused requests", n)
	}

	// Fill the list up to its cap, a body (at most api.MaxBodyBytes) at a
	// time.
	const perBody = 60
	var ids []string
	for i := range p2p.MaxBlocked + 1 {
		ids = append(ids, peerID(t, p2p.KeyFromSeed(int64(1000+i))))
	}
	for i := 0; i < p2p.MaxBlocked; i += perBody {
		r := e.postJSON("/api/v1/peers/block", idsBody(ids[i:min(i+perBody, p2p.MaxBlocked)]...), auth...)
		want(t, "block a batch", r, 200, "")
		if r.status != 200 {
			t.FailNow()
		}
	}
	r := e.postJSON("/api/v1/peers/block", idsBody(ids[0], ids[p2p.MaxBlocked]), auth...)
	want(t, "block over the cap", r, 409, api.CodeBlockedFull)
	if got := decode[peersJSON](t, e.get("/api/v1/peers")); got.Count != 0 {
		t.Errorf("peers: %+v", got)
	}
	r = e.get("/api/v1/peers")
	if got := decode[blockedJSON](t, r); len(got.Blocked) != p2p.MaxBlocked {
		t.Errorf("%d blocked after a refused block, want %d", len(got.Blocked), p2p.MaxBlocked)
	}
}

package api_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// TestSubmitSignedReading: a reading its author signed elsewhere (an
// export of another node) is taken as it is, with its id and author, alone
// or in a batch; the same again is known; a signature that does not verify
// over the fields given, or a half-given or malformed author or sig, is
// refused with bad_signature, and a signed reading without its time with
// bad_time.
func TestSubmitSignedReading(t *testing.T) {
	e := start(t, testnet.Config{NoMiner: true})
	seed := sha256.Sum256([]byte("elsewhere"))
	key := ed25519.NewKeyFromSeed(seed[:])
	at := time.Now().Add(-time.Minute)
	r, err := chain.NewReading(key, "alice", 72, at)
	if err != nil {
		t.Fatal(err)
	}
	author, sig := hex.EncodeToString(r.Author[:]), hex.EncodeToString(r.Sig[:])
	body := func(subject string, bpm int, tm int64, author, sig string) string {
		return fmt.Sprintf(`{"subject": %q, "bpm": %d, "time": %d, "author": %q, "sig": %q}`, subject, bpm, tm, author, sig)
	}

	res := e.postJSON("/api/v1/readings", body("alice", 72, r.Time, author, sig))
	want(t, "signed reading", res, http.StatusAccepted, "")
	if got := decode[struct{ ID string }](t, res); got.ID != r.ID().String() {
		t.Fatalf("id %s, want the reading's own %s", got.ID, r.ID())
	}
	info, ok, _ := e.peer.Node.LocateReading(r.ID())
	if !ok || info.Reading.Author != r.Author || info.Reading.Sig != r.Sig {
		t.Fatalf("the node holds %+v, %v; want the reading as signed", info.Reading, ok)
	}
	want(t, "the same again", e.postJSON("/api/v1/readings", body("alice", 72, r.Time, author, sig)), http.StatusConflict, "reading_known")

	for _, tc := range []struct{ name, body, code string }{
		{"another bpm than signed", body("alice", 73, r.Time, author, sig), "bad_signature"},
		{"another millisecond", body("alice", 72, r.Time+1, author, sig), "bad_signature"},
		{"author without sig", fmt.Sprintf(`{"subject": "alice", "bpm": 72, "time": %d, "author": %q}`, r.Time, author), "bad_signature"},
		{"sig not hex", body("alice", 72, r.Time, author, "zz"), "bad_signature"},
		{"short author", body("alice", 72, r.Time, author[:10], sig), "bad_signature"},
		{"no time", fmt.Sprintf(`{"subject": "alice", "bpm": 72, "author": %q, "sig": %q}`, author, sig), "bad_time"},
	} {
		want(t, tc.name, e.postJSON("/api/v1/readings", tc.body), http.StatusBadRequest, tc.code)
	}

	// In a batch, beside one the node signs.
	r2, err := chain.NewReading(key, "bob", 64, at)
	if err != nil {
		t.Fatal(err)
	}
	res = e.postJSON("/api/v1/readings/batch", fmt.Sprintf(`{"readings": [%s, {"subject": "carol", "bpm": 70}]}`,
		body("bob", 64, r2.Time, hex.EncodeToString(r2.Author[:]), hex.EncodeToString(r2.Sig[:]))))
	want(t, "batch", res, http.StatusOK, "")
	v := decode[struct {
		Results []struct{ ID, Status, Code string }
	}](t, res)
	if len(v.Results) != 2 || v.Results[0].ID != r2.ID().String() || v.Results[1].Status != "pending" {
		t.Fatalf("batch results %+v; want the signed reading's own id, then a pending one", v.Results)
	}
}

package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/p2pchain/p2pchain/internal/api"
	"github.com/p2pchain/p2pchain/internal/receipt"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// TestReceipt: a reading's receipt comes once a block holds it, checks
// offline, and reaches the tip the node had.
func TestReceipt(t *testing.T) {
	e, _ := storedPeer(t, t.TempDir(), testnet.Config{NoMiner: true})
	r := e.postJSON("/api/v1/readings", `{"subject": "alice", "bpm": 72}`)
	want(t, "submit", r, http.StatusAccepted, "")
	id := decode[struct{ ID string }](t, r).ID

	want(t, "receipt of a pending reading", e.get("/api/v1/readings/"+id+"/receipt"), http.StatusConflict, api.CodeReadingPending)

	block := mineOn(t, e, e.peer.Node.PendingReadings())
	e.addOnTip(2)
	r = e.get("/api/v1/readings/" + id[:8] + "/receipt") // a prefix will do
	want(t, "receipt", r, http.StatusOK, "")
	if cd := r.header.Get("Content-Disposition"); !strings.Contains(cd, "receipt-"+id[:10]+".json") {
		t.Errorf("Content-Disposition %q", cd)
	}
	rc, err := receipt.Parse(r.body)
	if err != nil {
		t.Fatal(err)
	}
	hash := block.Hash()
	res, err := receipt.Check(rc, &hash)
	if err != nil {
		t.Fatalf("the receipt served does not check: %v", err)
	}
	if res.Height != 1 || res.Depth != 3 || res.TipHeight != 3 || !strings.Contains(res.Proves(), "alice") {
		t.Errorf("receipt proves %q (%+v)", res.Proves(), res)
	}
	// One altered byte and it fails.
	bad := strings.Replace(string(r.body), `"bpm":72`, `"bpm":73`, 1)
	if bad == string(r.body) {
		t.Fatalf("no bpm field to alter in %s", r.body)
	}
	if rc, err := receipt.Parse([]byte(bad)); err == nil {
		if _, err := receipt.Check(rc, nil); err == nil {
			t.Error("a receipt with bpm 73 for 72 checks")
		}
	}

	want(t, "unknown reading", e.get("/api/v1/readings/"+strings.Repeat("ab", 32)+"/receipt"), http.StatusNotFound, api.CodeNotFound)
	want(t, "bad id", e.get("/api/v1/readings/xyz/receipt"), http.StatusBadRequest, api.CodeBadReadingID)
}

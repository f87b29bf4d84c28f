package api

import (
	"bytes"
	"crypto/ed25519"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
)

// A client that reads a costly answer slowly does not hold the slot: the
// answer is made, the slot freed, and only then sent.
func TestCostlySlowReaderHoldsNoSlot(t *testing.T) {
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(chain.TestParams("costly-slow"), key)
	if err != nil {
		t.Fatal(err)
	}
	h := New(n, nil, WithMaxCostly(1, 500*time.Millisecond))
	defer h.Close()
	big := bytes.Repeat([]byte("x"), 32<<20) // more than the sockets on the way hold
	mux := http.NewServeMux()
	mux.HandleFunc("/big", h.costly(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(big) }))
	mux.HandleFunc("/small", h.costly(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Answer", "small")
		w.WriteHeader(http.StatusTeapot)
		_, _ = io.WriteString(w, "ok")
	}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	slow, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if _, err := io.WriteString(slow, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// Its first bytes: the answer is being sent. Then the client reads no
	// more. (The answer is made whole before it is sent: 32 MiB written
	// through a buffer, which under -race on a loaded 2-core machine once
	// took more than the 5 s this wait had.)
	_ = slow.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(slow, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(srv.URL + "/small") // while the slow client reads nothing
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot || string(body) != "ok" || resp.Header.Get("X-Answer") != "small" {
		t.Fatalf("a costly read while a slow client reads another: %d %q %v, want the answer as the handler made it", resp.StatusCode, body, resp.Header)
	}
}

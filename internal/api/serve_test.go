package api_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/api"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/p2p"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// TestServe runs the API with Serve on a real loopback listener: an event
// stream outlives the write timeout, a client that sends half a header is
// cut off, and cancelling the context shuts the server down at once even
// with a stream open.
func TestServe(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	p := startPeer(t, ctx, testnet.Config{})
	h := api.New(p.Node, p.Host, api.WithTimeouts(api.Timeouts{
		ReadHeader: 500 * time.Millisecond, Read: time.Second, Write: 300 * time.Millisecond,
		Idle: time.Second, Shutdown: 2 * time.Second,
	}))
	t.Cleanup(func() { _ = h.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- h.Serve(sctx, ln) }()
	e := &env{t: t, ctx: ctx, peer: p, h: h, url: "http://" + ln.Addr().String()}

	want(t, "status", e.get("/api/v1/status"), 200, "")
	events, _ := e.openEvents()
	next(t, events, api.EventReady)
	time.Sleep(500 * time.Millisecond) // past the write timeout
	want(t, "submit", e.postJSON("/api/v1/readings", `{"subject": "alice", "bpm": 72}`), 202, "")
	if ev := next(t, events, api.EventTip); ev.data["height"] != 1.0 {
		t.Errorf("tip %v", ev.data)
	}

	// Half a header: the connection is closed after ReadHeader.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Errorf("a client sending half a header was not cut off: %v", err)
	}

	start := time.Now()
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("shutdown took %v with an event stream open", d)
	}
	for range events { // the stream has ended
	}
	if _, err := http.Get(e.url + "/api/v1/status"); err == nil {
		t.Error("the server still answers after shutdown")
	}
}

// TestServeRefusesOpenWrites: on a non-loopback address Serve wants a token.
func TestServeRefusesOpenWrites(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	p := startPeer(t, ctx, testnet.Config{NoMiner: true})
	listen := func() net.Listener {
		ln, err := net.Listen("tcp", "0.0.0.0:0")
		if err != nil {
			t.Skipf("cannot listen on every interface: %v", err)
		}
		return ln
	}
	h := api.New(p.Node, p.Host)
	defer h.Close()
	if err := h.Serve(ctx, listen()); err == nil || !strings.Contains(err.Error(), "token") {
		t.Errorf("Serve on 0.0.0.0 without a token: %v, want a refusal naming the token", err)
	}
	ht := api.New(p.Node, p.Host, api.WithToken("t0ken"))
	defer ht.Close()
	ended, cancel := context.WithCancel(ctx)
	cancel()
	if err := ht.Serve(ended, listen()); err != nil {
		t.Errorf("Serve on 0.0.0.0 with a token: %v", err)
	}
}

// TestSyncing: while a node catches up, lookups of what it does not have
// yet answer 503 (it may come) instead of 404, and status shows progress.
func TestSyncing(t *testing.T) {
	ctx := testCtx(t, 120*time.Second)
	params := chain.TestParams("api-sync")
	ahead := startPeer(t, ctx, testnet.Config{Params: params, NoMiner: true})
	const n = 20000
	blocks, err := testnet.BuildChain(params, p2p.KeyFromSeed(1), n, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ahead.Node.AddBlocks(ctx, blocks); err != nil {
		t.Fatal(err)
	}
	e := serve(t, ctx, startPeer(t, ctx, testnet.Config{Params: params, NoMiner: true}))
	if err := e.peer.Connect(ctx, ahead); err != nil {
		t.Fatal(err)
	}
	unknownBlock := "/api/v1/blocks/" + blocks[n-1].Hash().String()
	unknownReading := "/api/v1/readings/" + strings.Repeat("cd", 32)
	seen := false
	for !seen && e.peer.Node.Status().Height < n {
		st := decode[statusJSON](t, e.get("/api/v1/status"))
		if st.Sync.State != "syncing" {
			continue
		}
		if st.Sync.Target != n || st.Sync.Progress < 0 || st.Sync.Progress > 1 {
			t.Errorf("sync state %+v, want target %d and progress in [0, 1]", st.Sync, n)
		}
		r := e.get(unknownBlock)
		if r.status == http.StatusNotFound {
			continue // the sync ended meanwhile
		}
		want(t, "unknown block while syncing", r, http.StatusServiceUnavailable, api.CodeSyncing)
		if r.header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
		if r = e.get(unknownReading); r.status != http.StatusNotFound {
			want(t, "unknown reading while syncing", r, http.StatusServiceUnavailable, api.CodeSyncing)
		}
		seen = true
	}
	if !seen {
		t.Fatalf("the sync of %d blocks ended before the API saw it", n)
	}
	if err := testnet.WaitFor(ctx, func() bool {
		return e.peer.Node.Status().Height == n && !e.peer.Host.Sync().Syncing
	}); err != nil {
		t.Fatal(err)
	}
	want(t, "block after the sync", e.get(unknownBlock), 200, "")
	want(t, "unknown reading after the sync", e.get(unknownReading), 404, api.CodeNotFound)
}

package api_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/api"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// tryEvents opens an event stream. A 200 comes back with its events (they
// end when the stream does, or cancel is called); any other status comes
// back read and closed, with a nil channel.
func (e *env) tryEvents() (<-chan sse, context.CancelFunc, response) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(e.ctx)
	e.t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/api/v1/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	r := response{status: resp.StatusCode, header: resp.Header}
	if resp.StatusCode != http.StatusOK {
		r.body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		return nil, cancel, r
	}
	ch := make(chan sse, 100)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		readEvents(resp.Body, ch)
	}()
	return ch, cancel, r
}

// TestEventStreamCap: beyond WithMaxStreams streams a new one is refused
// with 503 too_many_streams and Retry-After; when one ends, a new one gets in.
func TestEventStreamCap(t *testing.T) {
	const max = 3
	e := start(t, testnet.Config{NoMiner: true}, api.WithMaxStreams(max))
	var cancels []context.CancelFunc
	for range max {
		events, cancel := e.openEvents()
		next(t, events, api.EventReady)
		cancels = append(cancels, cancel)
	}
	_, _, r := e.tryEvents()
	want(t, "a stream over the cap", r, http.StatusServiceUnavailable, api.CodeTooManyStreams)
	if r.header.Get("Retry-After") == "" {
		t.Error("503 too_many_streams without Retry-After")
	}
	want(t, "other reads at the cap", e.get("/api/v1/status"), 200, "")

	// The server sees the client leave a moment later; then a slot is free.
	cancels[0]()
	var events <-chan sse
	err := testnet.WaitFor(e.ctx, func() bool {
		var r response
		events, _, r = e.tryEvents()
		if r.status != http.StatusOK && r.status != http.StatusServiceUnavailable {
			t.Fatalf("stream after one left: %d %s", r.status, r.body)
		}
		return events != nil
	})
	if err != nil {
		t.Fatal("no stream got in after one of the streams at the cap ended")
	}
	next(t, events, api.EventReady)
	_, _, r = e.tryEvents()
	want(t, "at the cap again", r, http.StatusServiceUnavailable, api.CodeTooManyStreams)
}

// TestEventStreamFlood: a thousand streams asked for at once against a small
// cap get exactly cap streams and 503s for the rest, and the goroutines of
// the refused ones do not stay.
func TestEventStreamFlood(t *testing.T) {
	const max, n = 8, 1000
	e := start(t, testnet.Config{NoMiner: true}, api.WithMaxStreams(max))
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	base := runtime.NumGoroutine()

	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	var (
		wg          sync.WaitGroup
		mu          sync.Mutex
		open        []io.Closer
		refused     atomic.Int32
		errs        = make(chan error, n)
		otherStatus atomic.Int32
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/api/v1/events", nil)
			resp, err := client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			switch resp.StatusCode {
			case http.StatusOK:
				mu.Lock()
				open = append(open, resp.Body) // held open until the end
				mu.Unlock()
				return
			case http.StatusServiceUnavailable:
				refused.Add(1)
			default:
				otherStatus.Add(1)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a request of the flood failed: %v", err)
	}
	if len(open) != max || refused.Load() != n-max || otherStatus.Load() != 0 {
		t.Fatalf("%d streams open, %d refused, %d other statuses; want %d, %d, 0", len(open), refused.Load(), otherStatus.Load(), max, n-max)
	}

	// Each open stream holds a few goroutines (client and server side); the
	// refused ones leave none behind.
	bound := base + max*4 + 50
	var got int
	if err := testnet.WaitFor(e.ctx, func() bool { got = runtime.NumGoroutine(); return got <= bound }); err != nil {
		t.Fatalf("%d goroutines with %d streams open after the flood, want at most %d (%d before it)", got, max, bound, base)
	}
	for _, b := range open {
		b.Close()
	}
}

// TestEventStreamToken: with a token, a stream from another machine needs
// it (header or access_token); loopback clients do not.
func TestEventStreamToken(t *testing.T) {
	e := start(t, testnet.Config{NoMiner: true}, api.WithToken("s3cret"), api.WithReadToken("v1ewer"))
	events, _ := e.openEvents() // the test server is on loopback
	next(t, events, api.EventReady)

	// The handler called with a client address off loopback. The request's
	// context has ended, so an accepted stream ends after its ready event.
	from := func(h http.Handler, remote, target string, hdr ...string) response {
		ctx, cancel := context.WithCancel(e.ctx)
		cancel()
		req := httptest.NewRequestWithContext(ctx, "GET", "http://127.0.0.1:5001"+target, nil)
		req.RemoteAddr = remote
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	}
	const path, far = "/api/v1/events", "192.0.2.1:1234"
	for _, tc := range []struct {
		name, remote, target string
		hdr                  []string
	}{
		{"no token", far, path, nil},
		{"no token, IPv6", "[2001:db8::1]:1234", path, nil},
		{"wrong token", far, path, []string{"Authorization", "Bearer wrong"}},
		{"basic auth", far, path, []string{"Authorization", "Basic czNjcmV0"}},
		{"wrong access_token", far, path + "?access_token=wrong", nil},
		{"empty access_token", far, path + "?access_token=", nil},
		{"token in another parameter", far, path + "?token=s3cret", nil},
	} {
		r := from(e.h, tc.remote, tc.target, tc.hdr...)
		want(t, tc.name, r, http.StatusUnauthorized, api.CodeUnauthorized)
		if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q", tc.name, got)
		}
	}
	for _, tc := range []struct {
		name, remote, target string
		hdr                  []string
	}{
		{"bearer token", far, path, []string{"Authorization", "Bearer s3cret"}},
		{"access_token", far, path + "?access_token=s3cret", nil},
		{"read token", far, path, []string{"Authorization", "Bearer v1ewer"}},
		{"read token as access_token", far, path + "?access_token=v1ewer", nil},
		{"loopback", "127.0.0.1:1234", path, nil},
		{"loopback IPv6", "[::1]:1234", path, nil},
	} {
		r := from(e.h, tc.remote, tc.target, tc.hdr...)
		if r.status != http.StatusOK || r.header.Get("Content-Type") != "text/event-stream" ||
			!strings.Contains(string(r.body), "event: "+api.EventReady) {
			t.Errorf("%s: %d %q %q, want a stream", tc.name, r.status, r.header.Get("Content-Type"), r.body)
		}
	}

	// The read token opens streams and nothing else: a write with it is
	// refused, saying which token it is.
	r := e.postJSON("/api/v1/readings", `{"subject": "alice", "bpm": 72}`, "Authorization", "Bearer v1ewer")
	want(t, "a write with the read token", r, http.StatusUnauthorized, api.CodeUnauthorized)
	if !strings.Contains(string(r.body), "read token") {
		t.Errorf("a write with the read token: %s", r.body)
	}
	want(t, "a write with the token", e.postJSON("/api/v1/readings", `{"subject": "alice", "bpm": 72}`, "Authorization", "Bearer s3cret"), http.StatusAccepted, "")

	// Without a token streams are open to all, like every read.
	open := serve(t, e.ctx, e.peer)
	if r := from(open.h, far, path); r.status != http.StatusOK {
		t.Errorf("no token set, far client: %d %s", r.status, r.body)
	}
}

// TestPeerPoller: many streams share one peer poller, which sends each of
// them the peer events and stops when the last stream leaves.
func TestPeerPoller(t *testing.T) {
	const streams, poll = 10, 50 * time.Millisecond
	ctx := testCtx(t, 60*time.Second)
	p := startPeer(t, ctx, testnet.Config{NoMiner: true})
	h := api.New(p.Node, p.Host, api.WithPeerPoll(poll))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = h.Close() })
	e := &env{t: t, ctx: ctx, peer: p, h: h, url: srv.URL}

	var all []<-chan sse
	var cancels []context.CancelFunc
	for range streams {
		events, cancel := e.openEvents()
		next(t, events, api.EventReady)
		all = append(all, events)
		cancels = append(cancels, cancel)
	}
	before, start := h.PeerPolls(), time.Now()
	time.Sleep(20 * poll)
	calls, intervals := h.PeerPolls()-before, int64(time.Since(start)/poll)
	if calls == 0 || calls > intervals+2 {
		t.Errorf("%d streams called Peers %d times in %d poll intervals, want one poller: at most %d", streams, calls, intervals, intervals+2)
	}

	other := startPeer(t, ctx, testnet.Config{NoMiner: true})
	if err := other.Connect(ctx, e.peer); err != nil {
		t.Fatal(err)
	}
	for i, events := range all {
		if ev := next(t, events, api.EventPeerConnected); ev.data["id"] != other.Host.ID().String() {
			t.Errorf("stream %d: peer-connected %v", i, ev.data)
		}
	}

	// The last stream leaves: the polls stop.
	for _, cancel := range cancels {
		cancel()
	}
	err := testnet.WaitFor(ctx, func() bool {
		n := h.PeerPolls()
		time.Sleep(5 * poll)
		return h.PeerPolls() == n
	})
	if err != nil {
		t.Fatal("Peers is still polled after every stream left")
	}

	// A new stream starts the poller again, from the peers connected now.
	events, _ := e.openEvents()
	if ev := next(t, events, api.EventReady); ev.data["peers"] != 1.0 {
		t.Errorf("ready %v, want 1 peer", ev.data)
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, events, api.EventPeerGone); ev.data["id"] != other.Host.ID().String() {
		t.Errorf("peer-gone %v", ev.data)
	}
}

package explorer_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/p2pchain/p2pchain/internal/api"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/explorer"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// TestBrowserTokenForget: the API token a write needs is kept in the tab's
// sessionStorage (never localStorage), goes on the event stream as
// ?access_token=, and the form's "forget token" button forgets it: the
// storage, the field and the stream lose it. A token an earlier version
// left in localStorage moves to sessionStorage.
func TestBrowserTokenForget(t *testing.T) {
	browserPath := findBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const token = "t0ken-of-the-node"
	_, url := tokenNode(t, ctx, "browser-token", false, api.WithToken(token))
	tab := newTab(t, ctx, browserPath)
	lastStream := streamsOpened(t, tab)
	stored := func() (session, local string) {
		v := jsValue[[]string](t, tab, `[sessionStorage.getItem("p2pchain-token") ?? "<none>", localStorage.getItem("p2pchain-token") ?? "<none>"]`)
		return v[0], v[1]
	}
	submit := func(want string) {
		t.Helper()
		if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS(`#submit-form button[type="submit"]`))); err != nil {
			t.Fatal(err)
		}
		if err := waitJS(tab, `document.querySelector("#submit-result").textContent.startsWith(`+jsString(want)+`)`); err != nil {
			t.Fatalf("submit: want %q: %v; the form says %q", want, err, jsValue[string](t, tab, `document.querySelector("#submit-result").textContent`))
		}
	}

	open(t, tab, url+"/#/")
	if err := chromedp.Do(tab, chromedp.WaitVisible(chromedp.CSS(`#submit-form`))); err != nil {
		t.Fatal(err)
	}
	submit("this node requires its API token for writes")
	if err := chromedp.Do(tab, chromedp.WaitVisible(chromedp.CSS(`#token`)), chromedp.SetValue(chromedp.CSS(`#token`), token)); err != nil {
		t.Fatal(err)
	}
	submit("accepted:")
	if s, l := stored(); s != token || l != "<none>" {
		t.Errorf("after a write the token is in sessionStorage %q and localStorage %q, want it in sessionStorage only", s, l)
	}
	if err := waitJS(tab, `document.querySelector("#forget-token") !== null && !document.querySelector("#forget-token").hidden`); err != nil {
		t.Fatalf("no forget token button beside the token: %v", err)
	}
	if err := waitJS(tab, `document.querySelector("#token-note").textContent.includes("sessionStorage")`); err != nil {
		t.Errorf("the form does not say where the token is kept: %v", err)
	}
	for i := 0; i < 100 && !strings.Contains(lastStream(), "access_token="+token); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if s := lastStream(); !strings.Contains(s, "access_token="+token) {
		t.Errorf("after the token was given, the event stream is %q, want it with ?access_token=", s)
	}

	// The tab keeps it over a reload.
	open(t, tab, url+"/#/")
	if err := waitJS(tab, `document.querySelector("#token") !== null && document.querySelector("#token").value === `+jsString(token)+
		` && !document.querySelector("#forget-token").hidden`); err != nil {
		t.Errorf("after a reload: %v", err)
	}

	// Forgetting it.
	if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS(`#forget-token`))); err != nil {
		t.Fatal(err)
	}
	if err := waitText(tab, "#submit-result", "token forgotten: this browser no longer keeps it"); err != nil {
		t.Error(err)
	}
	if s, l := stored(); s != "<none>" || l != "<none>" {
		t.Errorf("after forget token, sessionStorage holds %q and localStorage %q", s, l)
	}
	if v := jsValue[string](t, tab, `document.querySelector("#token").value`); v != "" {
		t.Errorf("after forget token the field still holds %q", v)
	}
	for i := 0; i < 100 && strings.Contains(lastStream(), "access_token="); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if s := lastStream(); s == "" || strings.Contains(s, "access_token=") {
		t.Errorf("after forget token, the last event stream opened is %q, want one without the token", s)
	}

	// A token left in localStorage by an earlier version moves to the tab.
	jsValue[bool](t, tab, `(localStorage.setItem("p2pchain-token", "old-token"), true)`)
	open(t, tab, url+"/#/")
	if err := waitJS(tab, `document.querySelector("#token") !== null && document.querySelector("#token").value === "old-token"`); err != nil {
		t.Errorf("a token left in localStorage: %v", err)
	}
	if s, l := stored(); s != "old-token" || l != "<none>" {
		t.Errorf("a token left in localStorage: now sessionStorage %q and localStorage %q, want it moved to sessionStorage", s, l)
	}
}

// tokenNode starts a node without a miner whose API, serving the explorer,
// takes opts (its tokens), and returns it with the URL of a test server
// for it; far makes every request look as if it came from another
// machine (192.0.2.7), as a clinician's screen would be.
func tokenNode(t *testing.T, ctx context.Context, network string, far bool, opts ...api.Option) (*testnet.Peer, string) {
	t.Helper()
	p, err := testnet.Start(ctx, testnet.Config{Params: chain.TestParams(network), NoMiner: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	h := api.New(p.Node, p.Host, append(opts, api.WithFallback(explorer.Handler()))...)
	var handler http.Handler = h
	if far {
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.RemoteAddr = "192.0.2.7:40000"
			h.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(func() { // after the browser's (cleanups run last first), as serve does
		srv.Close()
		h.Close()
	})
	return p, srv.URL
}

// streamsOpened records the event streams tab opens, and returns a
// function that gives the URL of the last one ("" before any).
func streamsOpened(t *testing.T, tab context.Context) func() string {
	t.Helper()
	if _, err := chromedp.Call(tab, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var streams []string
	chromedp.Listen(tab, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok && strings.Contains(e.Request.URL, "/api/v1/events") {
			mu.Lock()
			streams = append(streams, e.Request.URL)
			mu.Unlock()
		}
	})
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		if len(streams) == 0 {
			return ""
		}
		return streams[len(streams)-1]
	}
}

// jsString quotes s as a JavaScript string.
func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

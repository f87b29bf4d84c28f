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

// TestBrowserLiveViewReadToken: a browser on another machine gets no event
// stream without a token. The explorer says so and asks for the node's
// read token; given it, the live view opens (the stream carries it), and
// the read token writes nothing. Before, the live view failed in silence
// and retried for ever, and only the token that writes could open it.
func TestBrowserLiveViewReadToken(t *testing.T) {
	browserPath := findBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := testnet.Start(ctx, testnet.Config{Params: chain.TestParams("browser-live-token"), NoMiner: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const token, read = "t0ken-of-the-node", "read-t0ken-of-the-node"
	h := api.New(p.Node, p.Host, api.WithToken(token), api.WithReadToken(read), api.WithFallback(explorer.Handler()))
	// The browser runs here, on loopback: the node is told it is another
	// machine's (192.0.2.7), as a clinician's screen would be.
	far := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.RemoteAddr = "192.0.2.7:40000"
		h.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(far)
	t.Cleanup(func() {
		srv.Close()
		h.Close()
	})

	tab := newTab(t, ctx, browserPath)
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
	open(t, tab, srv.URL+"/#/")
	if err := waitJS(tab, `!document.querySelector("#live-token-form").hidden`); err != nil {
		t.Fatalf("no prompt for the read token when the stream is refused: %v", err)
	}
	if err := waitJS(tab, `document.querySelector("#live-token-note").textContent.includes("api.read-token")`); err != nil {
		t.Errorf("the prompt does not say where the read token is: %v", err)
	}
	if err := chromedp.Do(tab, chromedp.SetValue(chromedp.CSS(`#live-token`), read),
		chromedp.Click(chromedp.CSS(`#live-token-form button[type="submit"]`))); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(tab, `document.querySelector("#live-token-form").hidden && !document.querySelector("#live").classList.contains("off")`); err != nil {
		t.Fatalf("with the read token the live view does not open: %v", err)
	}
	mu.Lock()
	last := streams[len(streams)-1]
	mu.Unlock()
	if !strings.Contains(last, "access_token="+read) {
		t.Errorf("the stream opened is %q, want it with the read token", last)
	}
	// The read token is kept apart: the write form does not offer it.
	open(t, tab, srv.URL+"/#/subjects")
	open(t, tab, srv.URL+"/#/")
	if err := chromedp.Do(tab, chromedp.WaitVisible(chromedp.CSS(`#submit-form`))); err != nil {
		t.Fatal(err)
	}
	if v := jsValue[string](t, tab, `document.querySelector("#token").value`); v != "" {
		t.Errorf("the write form's token field holds %q after the read token was given for the live view", v)
	}
	// Typed in for a write, the read token is refused, and the form shows
	// the node's reason.
	if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS(`#submit-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#token`)), chromedp.SetValue(chromedp.CSS(`#token`), read),
		chromedp.Click(chromedp.CSS(`#submit-form button[type="submit"]`))); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(tab, `document.querySelector("#submit-result").className === "error" && document.querySelector("#submit-result").textContent.includes("read token")`); err != nil {
		t.Errorf("a write with the read token: %v; the form says %q", err,
			jsValue[string](t, tab, `document.querySelector("#submit-result").textContent`))
	}
	if n := p.Node.Pending(); n != 0 {
		t.Errorf("%d readings pending after a write with the read token", n)
	}
	// Forgetting it (the header's button, on any page) clears it from the
	// tab and the prompt, and the live view asks again.
	if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS(`#forget-read-token`))); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(tab, `!document.querySelector("#live-token-form").hidden && document.querySelector("#live-token").value === "" && sessionStorage.getItem("p2pchain-read-token") === null`); err != nil {
		t.Errorf("after forget read token: %v", err)
	}
}

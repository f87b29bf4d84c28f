package explorer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/p2pchain/p2pchain/internal/api"
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
	const token, read = "t0ken-of-the-node", "read-t0ken-of-the-node"
	p, url := tokenNode(t, ctx, "browser-live-token", true, api.WithToken(token), api.WithReadToken(read))
	tab := newTab(t, ctx, browserPath)
	lastStream := streamsOpened(t, tab)
	open(t, tab, url+"/#/")
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
	if last := lastStream(); !strings.Contains(last, "access_token="+read) {
		t.Errorf("the stream opened is %q, want it with the read token", last)
	}
	// The read token is kept apart: the write form does not offer it.
	open(t, tab, url+"/#/subjects")
	open(t, tab, url+"/#/")
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

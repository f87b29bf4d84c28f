package explorer_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/p2pchain/p2pchain/internal/api"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/explorer"
	"github.com/p2pchain/p2pchain/internal/p2p"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// findBrowser returns the path of a Chromium, or skips the test saying how
// to get one (.ci/run installs Debian's chromium package).
func findBrowser(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium found: install it (apt-get install chromium) to run the browser test")
	return ""
}

// serve starts the API with the explorer for a running peer.
func serve(t *testing.T, p *testnet.Peer) string {
	h := api.New(p.Node, p.Host, api.WithFallback(explorer.Handler()))
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		h.Close()
	})
	return srv.URL
}

// newTab starts a headless Chromium for the test and returns its first tab.
func newTab(t *testing.T, ctx context.Context, browser string, extra ...chromedp.ExecAllocatorOption) context.Context {
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(browser),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
	}, extra...)...)
	tab, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return tab
}

// TestBrowserSubmitAppearsOnOtherNode: in a real headless Chromium, a reading
// submitted through node A's explorer form appears in the live block list of
// node C's explorer, C knowing A only through B.
func TestBrowserSubmitAppearsOnOtherNode(t *testing.T) {
	browser := findBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	params := chain.TestParams("browser")
	params.Difficulty = 4
	peers, err := testnet.StartN(ctx, 3, testnet.Config{Params: params})
	if err != nil {
		t.Fatal(err)
	}
	defer testnet.CloseAll(peers)
	if err := testnet.Line(ctx, peers); err != nil {
		t.Fatal(err)
	}
	if err := testnet.WaitMesh(ctx, peers[1:2], 2); err != nil {
		t.Fatal(err)
	}
	urlA, urlC := serve(t, peers[0]), serve(t, peers[2])

	tabC := newTab(t, ctx, browser)

	// Node C's page is open and showing its (empty) chain.
	if err := chromedp.Do(tabC,
		chromedp.Navigate(urlC),
		chromedp.WaitVisible(`#blocks tr[data-height="0"]`),
	); err != nil {
		t.Fatalf("open node C's explorer: %v", err)
	}

	// Submit through node A's form, in a second tab of the same browser
	// (made after the first tab started the browser).
	tabA, cancelA := chromedp.NewContext(tabC)
	defer cancelA()
	if err := chromedp.Do(tabA,
		chromedp.Navigate(urlA),
		chromedp.WaitVisible(`#submit-form`),
		chromedp.SetValue(`#subject`, "alice"),
		chromedp.SetValue(`#bpm`, "77"),
		chromedp.Click(`#submit-form button`),
		chromedp.WaitVisible(`#submit-result a`),
	); err != nil {
		t.Fatalf("submit on node A: %v", err)
	}
	result, err := chromedp.Run(tabA, chromedp.Text(`#submit-result`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(result, "accepted:") {
		t.Fatalf("node A's form said %q", result)
	}

	// It arrives on C's live list without a reload.
	if err := chromedp.Do(tabC, chromedp.WaitVisible(`#blocks tr[data-height="1"]`)); err != nil {
		t.Fatalf("the block never appeared on node C's page: %v", err)
	}
	row, err := chromedp.Run(tabC, chromedp.Text(`#blocks tr[data-height="1"] td.readings`))
	if err != nil {
		t.Fatal(err)
	}
	if row != "alice 77" {
		t.Fatalf("node C shows block 1 with readings %q, want \"alice 77\"", row)
	}

	href, err := chromedp.Run(tabC, chromedp.AttributeValue(`#blocks tr[data-height="1"] td.mono a`, "href"))
	if err != nil {
		t.Fatal(err)
	}
	hash := href.Value[strings.LastIndex(href.Value, "/")+1:]

	// The subject page charts it, and search finds the subject.
	if err := chromedp.Do(tabC,
		chromedp.SetValue(`#q`, "alice"),
		chromedp.Click(`#search button`),
		chromedp.WaitVisible(`svg.chart circle`),
	); err != nil {
		t.Fatalf("subject page: %v", err)
	}
	// A short block hash, as the list shows it, finds its block; a hex
	// string that names nothing says so, rather than showing a subject
	// with no readings.
	if err := chromedp.Do(tabC,
		chromedp.SetValue(`#q`, hash[:8]),
		chromedp.Click(`#search button`),
		chromedp.WaitVisible(`#view h2`),
	); err != nil {
		t.Fatalf("search a short hash: %v", err)
	}
	if err := waitText(tabC, `#view h2`, "Block 1"); err != nil {
		t.Fatalf("search %s: %v", hash[:8], err)
	}
	if err := chromedp.Do(tabC,
		chromedp.SetValue(`#q`, "fedcba9876"),
		chromedp.Click(`#search button`),
	); err != nil {
		t.Fatal(err)
	}
	if err := waitText(tabC, `#view h2`, "Not found"); err != nil {
		t.Fatalf("search for a hash nothing has: %v", err)
	}

	// Back to the subject. (TestBrowserHealthExplorer takes the screenshots.)
	if err := chromedp.Do(tabC,
		chromedp.SetValue(`#q`, "alice"),
		chromedp.Click(`#search button`),
		chromedp.WaitVisible(`svg.chart circle`),
	); err != nil {
		t.Fatalf("subject page again: %v", err)
	}
}

// waitText waits until the element of sel shows text (pages are drawn
// after their API calls return).
// waitText waits until sel shows text. The page may re-render between
// finding the element and reading it (the browser then answers "No node
// with given id"): such an error is retried like a wrong text.
func waitText(ctx context.Context, sel, text string) error {
	var got string
	var err error
	for i := 0; i < 100; i++ {
		if got, err = chromedp.Run(ctx, chromedp.Text(sel)); err == nil && got == text {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", sel, err)
	}
	return fmt.Errorf("%s shows %q, want %q", sel, got, text)
}

// TestBrowserAmbiguousHash: a short hash that several blocks start with
// lists them, as a search and as a block link, instead of picking one.
func TestBrowserAmbiguousHash(t *testing.T) {
	browser := findBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	params := chain.TestParams("browser-short")
	params.Difficulty = 16 // every mined block's hash starts with 0000
	p, err := testnet.Start(ctx, testnet.Config{Params: params, NoMiner: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	blocks, err := testnet.BuildChain(params, p2p.KeyFromSeed(5), 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Node.AddBlocks(ctx, blocks); err != nil {
		t.Fatal(err)
	}
	url := serve(t, p)
	tab := newTab(t, ctx, browser)
	for _, page := range []string{"/#/search/0000", "/#/block/0000"} {
		if err := chromedp.Do(tab, chromedp.Navigate("about:blank"), chromedp.Navigate(url+page)); err != nil {
			t.Fatal(err)
		}
		if err := waitText(tab, `#view h2`, "Ambiguous"); err != nil {
			t.Fatalf("%s: %v", page, err)
		}
		links, err := chromedp.Run(tab, chromedp.Text(`#view ul`))
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blocks {
			if !strings.Contains(links, b.Hash().String()) {
				t.Errorf("%s does not list block %s: %q", page, b.Hash().Short(), links)
			}
		}
	}
}

// TestBrowserFinality: the status strip shows the consensus and the final
// block, and blocks and readings say "final", "confirmed" or "pending",
// the list catching up as blocks become final.
func TestBrowserFinality(t *testing.T) {
	browser := findBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	params := chain.TestParams("browser-final")
	params.MaxReorgDepth, params.FinalAge = 1, 0 // final under one block
	p, err := testnet.Start(ctx, testnet.Config{Params: params, NoMiner: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	blocks, err := testnet.BuildChain(params, p2p.KeyFromSeed(5), 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Node.AddBlocks(ctx, blocks[:3]); err != nil {
		t.Fatal(err)
	}
	pending, err := p.Node.Submit("bob", 70)
	if err != nil {
		t.Fatal(err)
	}
	url := serve(t, p)
	tab := newTab(t, ctx, browser)
	if err := chromedp.Do(tab, chromedp.Navigate(url), chromedp.WaitVisible(`#blocks tr[data-height="3"]`)); err != nil {
		t.Fatal(err)
	}
	for sel, text := range map[string]string{
		"#consensus":                         "proof of work",
		"#final":                             "#2",
		`#blocks tr[data-height="3"] .state`: "confirmed",
		`#blocks tr[data-height="2"] .state`: "final",
	} {
		if err := waitText(tab, sel, text); err != nil {
			t.Error(err)
		}
	}

	// A new block makes block 3 final: the list follows without a reload.
	if err := p.Node.AddBlock(ctx, blocks[3]); err != nil {
		t.Fatal(err)
	}
	for sel, text := range map[string]string{
		"#final":                             "#3",
		`#blocks tr[data-height="4"] .state`: "confirmed",
		`#blocks tr[data-height="3"] .state`: "final",
	} {
		if err := waitText(tab, sel, text); err != nil {
			t.Error(err)
		}
	}

	for _, tc := range []struct{ page, state string }{
		{"/#/reading/" + blocks[0].Readings[0].ID().String(), "final"},
		{"/#/reading/" + blocks[3].Readings[0].ID().String(), "confirmed"},
		{"/#/reading/" + pending.ID().String(), "pending"},
		{"/#/block/" + blocks[1].Hash().String(), "final"},
		{"/#/block/" + blocks[3].Hash().String(), "confirmed"},
	} {
		if err := chromedp.Do(tab, chromedp.Navigate("about:blank"), chromedp.Navigate(url+tc.page)); err != nil {
			t.Fatal(err)
		}
		if err := waitText(tab, `#view .state`, tc.state); err != nil {
			t.Errorf("%s: %v", tc.page, err)
		}
	}
}

package explorer_test

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/p2pchain/p2pchain/internal/api"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/explorer"
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
	h := api.New(api.NodeService{Node: p.Node, Host: p.Host}, api.WithFallback(explorer.Handler()))
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		h.Close()
	})
	return srv.URL
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

	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(browser),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	defer cancelAlloc()
	tabC, cancelC := chromedp.NewContext(alloc)
	defer cancelC()

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

	// The subject page charts it, and search finds the subject.
	if err := chromedp.Do(tabC,
		chromedp.SetValue(`#q`, "alice"),
		chromedp.Click(`#search button`),
		chromedp.WaitVisible(`svg.chart circle`),
	); err != nil {
		t.Fatalf("subject page: %v", err)
	}
	shot, err := chromedp.Run(tabC, chromedp.FullScreenshot(100) /* PNG */)
	if err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("P2PCHAIN_SCREENSHOTS"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "explorer-subject.png"), shot, 0o644)
	}
}

package explorer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/p2p"
	"github.com/p2pchain/p2pchain/internal/store"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// screenshotDir is where the browser tests save their screenshots:
// P2PCHAIN_SCREENSHOTS=1 means docs/explorer (the pictures of
// docs/EXPLORER.md), another value names a folder; unset, none are saved.
func screenshotDir() string {
	switch v := os.Getenv("P2PCHAIN_SCREENSHOTS"); v {
	case "":
		return ""
	case "1":
		return filepath.Join("..", "..", "docs", "explorer")
	default:
		return v
	}
}

// screenshot saves the whole page of tab as dir/name (a PNG) when
// screenshots are asked for.
func screenshot(t *testing.T, tab context.Context, name string) { shoot(t, tab, name, true) }

// shoot saves a screenshot of the whole page, or of what the window shows.
func shoot(t *testing.T, tab context.Context, name string, whole bool) {
	dir := screenshotDir()
	if dir == "" {
		return
	}
	shot := chromedp.CaptureScreenshot()
	if whole {
		shot = chromedp.FullScreenshot(100) // quality 100: PNG
	}
	png, err := chromedp.Run(tab, shot)
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Errorf("screenshot %s: %v", name, err)
	}
}

// sample is a reading the test puts in the chain: its subject, bpm and
// age (how long before the test's start it was taken).
type sample struct {
	subject string
	bpm     int
	age     time.Duration
}

// samples are three subjects' readings over forty days, so that every
// time range of the chart holds a different number of them.
var samples = []sample{
	{"alice", 58, 40 * 24 * time.Hour}, {"alice", 72, 6 * 24 * time.Hour}, {"alice", 80, 30 * time.Hour},
	{"alice", 95, 3 * time.Hour}, {"alice", 104, 20 * time.Minute},
	{"bob", 66, 25 * 24 * time.Hour}, {"bob", 70, 2 * 24 * time.Hour}, {"bob", 75, 50 * time.Minute},
	{"bob", 68, 5 * time.Minute},
	{"carol", 121, 10 * 24 * time.Hour}, {"carol", 88, 12 * time.Hour},
}

// buildHistory makes one block per sample, in time order, each block
// dated when its reading was taken.
func buildHistory(params chain.Params, now time.Time) ([]*chain.Block, error) {
	c, err := chain.New(params)
	if err != nil {
		return nil, err
	}
	key := p2p.KeyFromSeed(7)
	ordered := slices.Clone(samples)
	sort.Slice(ordered, func(i, j int) bool { return ordered[i].age > ordered[j].age })
	var out []*chain.Block
	for _, s := range ordered {
		at := now.Add(-s.age)
		r, err := chain.NewReading(key, s.subject, s.bpm, at)
		if err != nil {
			return nil, err
		}
		b := c.NewBlock([]chain.Reading{r}, at)
		if err := chain.Solve(context.Background(), &b.Header); err != nil {
			return nil, err
		}
		if _, err := c.AddBlock(b, now); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// routed tells whether the API serves path: a 404 means the endpoint is
// not there (yet).
func routed(t *testing.T, url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode != http.StatusNotFound
}

// jsValue evaluates a JavaScript expression in tab.
func jsValue[T any](t *testing.T, tab context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(tab, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// waitJS waits until expr is true in tab.
func waitJS(tab context.Context, expr string) error {
	var ok bool
	var err error
	for i := 0; i < 200; i++ {
		if ok, err = chromedp.Run(tab, chromedp.Evaluate[bool](expr)); err == nil && ok {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", expr, err)
	}
	return fmt.Errorf("%s stayed false", expr)
}

// open navigates tab to a page of the explorer, from a blank page so that
// the page loads afresh.
func open(t *testing.T, tab context.Context, url string) {
	t.Helper()
	if err := chromedp.Do(tab, chromedp.Navigate("about:blank"), chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
}

// tamper changes a receipt the way a forger would: the first "bpm" it
// holds goes up by one; a receipt without one gets the last digit of its
// first 64-digit hex string changed.
func tamper(doc any) bool {
	return changeFirst(doc, func(k string, v any) (any, bool) {
		n, ok := v.(float64)
		return n + 1, ok && k == "bpm"
	}) || changeFirst(doc, func(_ string, v any) (any, bool) {
		s, ok := v.(string)
		if !ok || len(s) != 64 {
			return nil, false
		}
		last := "0"
		if s[63] == '0' {
			last = "1"
		}
		return s[:63] + last, true
	})
}

// changeFirst walks v depth first, an object's keys in sorted order, and
// replaces the first object member whose key and value change takes.
func changeFirst(v any, change func(key string, val any) (any, bool)) bool {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if nv, ok := change(k, x[k]); ok {
				x[k] = nv
				return true
			}
			if changeFirst(x[k], change) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if changeFirst(e, change) {
				return true
			}
		}
	}
	return false
}

// storedPeer starts a node without a miner on a durable store in a
// temporary directory (only a node with a store keeps the subject index),
// closed with the test.
func storedPeer(t *testing.T, ctx context.Context, params chain.Params) *testnet.Peer {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "chain"), params)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	state, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	p, err := testnet.Start(ctx, testnet.Config{Params: params, NoMiner: true, NodeOptions: []node.Option{
		node.WithStore(st, *state)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() }) // before the store's: cleanups run last first
	return p
}

// TestBrowserHealthExplorer drives the pages a clinician and a patient use,
// in a real headless Chromium against a node holding three subjects'
// readings over forty days (final, confirmed and pending ones): the
// subjects list, a subject's chart and its time ranges, search, receipts
// and checking them in the browser, and the same pages on a phone-sized
// screen. Checks of endpoints the node does not route yet (404) are logged
// and left out; they run by themselves once the routes exist.
func TestBrowserHealthExplorer(t *testing.T) {
	browserPath := findBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	params := chain.TestParams("browser-health")
	params.MaxReorgDepth, params.FinalAge = 1, 0 // every block but the tip is final
	// A durable node: only a node with a store keeps the subject index.
	p := storedPeer(t, ctx, params)
	now := time.Now()
	blocks, err := buildHistory(params, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Node.AddBlocks(ctx, blocks); err != nil {
		t.Fatal(err)
	}
	pending, err := p.Node.Submit("alice", 77)
	if err != nil {
		t.Fatal(err)
	}
	url := serve(t, p)
	tab := newTab(t, ctx, browserPath)
	if err := chromedp.Do(tab, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(tab, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}

	// What the subjects page must say, from what the test put in the chain.
	type want struct{ count, min, max, sum int }
	expect := map[string]*want{}
	for _, s := range samples {
		w := expect[s.subject]
		if w == nil {
			w = &want{min: s.bpm, max: s.bpm}
			expect[s.subject] = w
		}
		w.count++
		w.sum += s.bpm
		w.min, w.max = min(w.min, s.bpm), max(w.max, s.bpm)
	}

	t.Run("status strip", func(t *testing.T) {
		open(t, tab, url+"/#/")
		if err := waitJS(tab, `document.querySelector("#final a") !== null && document.querySelector("#sync").textContent !== "-"`); err != nil {
			t.Fatal(err)
		}
		if err := waitText(tab, "#final", fmt.Sprintf("#%d", len(blocks)-1)); err != nil {
			t.Error(err)
		}
		if err := waitJS(tab, `document.querySelectorAll("#blocks tr .state-final").length === 11`); err != nil {
			t.Errorf("the latest blocks: %v", err)
		}
		screenshot(t, tab, "explorer-blocks.png")
		if got := jsValue[string](t, tab, `document.querySelector("#sync").textContent`); got != "no peers" {
			t.Errorf("sync shows %q, want \"no peers\" (a lone node)", got)
		}
		if got := jsValue[string](t, tab, `document.querySelector("#network .peer-id").title`); got != p.Host.ID().String() {
			t.Errorf("the shortened peer ID's title is %q, want the whole ID %s", got, p.Host.ID())
		}
		// "1 confirmation", not "1 confirmations".
		open(t, tab, url+"/#/block/"+strconv.Itoa(len(blocks)))
		if err := waitJS(tab, `document.querySelector("#view dl") !== null`); err != nil {
			t.Fatal(err)
		}
		if got := jsValue[string](t, tab, `[...document.querySelectorAll("#view dd")].map((d) => d.textContent).join("|")`); !strings.Contains(got, "|yes, 1 confirmation|") {
			t.Errorf("the tip's block page says %q", got)
		}
	})

	t.Run("subjects", func(t *testing.T) {
		if !routed(t, url+"/api/v1/subjects?limit=1") {
			t.Log("subjects endpoint not routed yet; skipping subjects checks")
			open(t, tab, url+"/#/subjects")
			if err := waitJS(tab, `document.querySelector("#view p.error") !== null`); err != nil {
				t.Errorf("the subjects page does not say the API failed: %v", err)
			}
			return
		}
		open(t, tab, url+"/#/subjects")
		if err := chromedp.Do(tab, chromedp.WaitVisible(chromedp.CSS(`#subjects tr[data-subject="carol"]`))); err != nil {
			t.Fatal(err)
		}
		for subject, w := range expect {
			row := fmt.Sprintf(`#subjects tr[data-subject=%q] `, subject)
			wantPending := 0
			if subject == "alice" {
				wantPending = 1
			}
			for sel, text := range map[string]string{
				"td.count":   strconv.Itoa(w.count),
				"td.min":     strconv.Itoa(w.min),
				"td.max":     strconv.Itoa(w.max),
				"td.mean":    strconv.FormatFloat(float64(w.sum)/float64(w.count), 'f', 1, 64),
				"td.pending": strconv.Itoa(wantPending),
			} {
				if err := waitText(tab, row+sel, text); err != nil {
					t.Error(err)
				}
			}
		}
		// Sorting by readings puts alice (5) first, then bob (4), carol (2).
		if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS(`#subjects th button[data-key="count"]`))); err != nil {
			t.Fatal(err)
		}
		order := jsValue[[]string](t, tab, `[...document.querySelectorAll("#subjects tbody tr")].map((r) => r.dataset.subject)`)
		if !slices.Equal(order, []string{"alice", "bob", "carol"}) {
			t.Errorf("sorted by readings: %v", order)
		}
		if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS(`#subjects th button[data-key="max"]`))); err != nil {
			t.Fatal(err)
		}
		order = jsValue[[]string](t, tab, `[...document.querySelectorAll("#subjects tbody tr")].map((r) => r.dataset.subject)`)
		if !slices.Equal(order, []string{"carol", "alice", "bob"}) {
			t.Errorf("sorted by max: %v", order)
		}
		if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS(`#subjects th button[data-key="subject"]`))); err != nil {
			t.Fatal(err)
		}
		screenshot(t, tab, "explorer-subjects.png")
		if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS(`#subjects tr[data-subject="bob"] td.subject a`)),
			chromedp.WaitVisible(chromedp.CSS(`#chart svg.chart`))); err != nil {
			t.Fatalf("a subject's link: %v", err)
		}
	})

	t.Run("chart", func(t *testing.T) {
		open(t, tab, url+"/#/subject/alice")
		if err := chromedp.Do(tab, chromedp.WaitVisible(chromedp.CSS(`#chart svg.chart .pt`))); err != nil {
			t.Fatal(err)
		}
		count := func(sel string) int {
			return jsValue[int](t, tab, fmt.Sprintf(`document.querySelectorAll(%q).length`, sel))
		}
		if err := waitJS(tab, `document.querySelectorAll("#chart .pt").length === 6`); err != nil {
			t.Fatalf("alice's chart: %v (%d points)", err, count("#chart .pt"))
		}
		if f, p := count("#chart .pt.final"), count("#chart .pt.pending"); f != 5 || p != 1 {
			t.Errorf("alice's chart has %d final and %d pending readings, want 5 and 1", f, p)
		}
		for _, s := range []string{"final", "confirmed", "pending", "normal resting range"} {
			if !strings.Contains(jsValue[string](t, tab, `document.querySelector(".legend").textContent`), s) {
				t.Errorf("the legend does not explain %q", s)
			}
		}
		axes := jsValue[string](t, tab, `document.querySelector("#chart svg").textContent`)
		for _, s := range []string{"heart rate (bpm)", "normal resting range 60–100 bpm", "local time"} {
			if !strings.Contains(axes, s) {
				t.Errorf("the chart does not label %q: %q", s, axes)
			}
		}
		// Hovering a reading shows its value, time and state.
		hover := func(sel string) string {
			box := jsValue[[]float64](t, tab, fmt.Sprintf(`(() => { const r = document.querySelector(%q).getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()`, sel))
			if err := chromedp.Do(tab, chromedp.MouseEvent(chromedp.MouseMoved, box[0], box[1])); err != nil {
				t.Fatal(err)
			}
			if err := waitJS(tab, `!document.querySelector("#chart .tip").hidden`); err != nil {
				t.Fatalf("hover %s: %v", sel, err)
			}
			return jsValue[string](t, tab, `document.querySelector("#chart .tip").textContent`)
		}
		if tip := hover(`#chart .pt.pending`); !strings.Contains(tip, "77 bpm") || !strings.Contains(tip, "pending") {
			t.Errorf("hovering the pending reading shows %q", tip)
		}
		if tip := hover(`#chart .pt.final[data-id="` + blocks[0].Readings[0].ID().String() + `"]`); !strings.Contains(tip, "58 bpm") ||
			!strings.Contains(tip, "final") || !strings.Contains(tip, "below normal") {
			t.Errorf("hovering alice's first reading shows %q", tip)
		}
		// The time ranges: alice has readings 20 min, 3 h, 30 h, 6 days and
		// 40 days old, and a pending one from now.
		for _, tc := range []struct {
			rng  string
			want int
		}{{"1h", 2}, {"24h", 3}, {"7d", 5}, {"30d", 5}, {"all", 6}} {
			if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS(fmt.Sprintf(`button[data-range=%q]`, tc.rng)))); err != nil {
				t.Fatal(err)
			}
			if err := waitJS(tab, fmt.Sprintf(`document.querySelectorAll("#chart .pt").length === %d && document.querySelectorAll(".readings-table tbody tr").length === %d`, tc.want, tc.want)); err != nil {
				t.Errorf("range %s: %v (%d points)", tc.rng, err, count("#chart .pt"))
			}
		}
		// Receipts: a link per reading in a block, named by the short id;
		// none yet for the pending one.
		if n := count(".readings-table a.receipt"); n != 5 {
			t.Errorf("%d receipt links, want 5", n)
		}
		if n := count(".readings-table .no-receipt"); n != 1 {
			t.Errorf("%d readings say they have no receipt yet, want 1 (the pending one)", n)
		}
		id := blocks[len(blocks)-2].Readings[0].ID().String() // alice's newest in a block
		name := jsValue[string](t, tab, fmt.Sprintf(`document.querySelector('a.receipt[data-id="%s"]').getAttribute("download")`, id))
		if name != "receipt-"+id[:10]+".json" {
			t.Errorf("the receipt downloads as %q", name)
		}
		// The picture: the page in one tall window (a full-page capture
		// resizes the window, which ends the hover), hovering a reading.
		if screenshotDir() != "" {
			if err := chromedp.Do(tab, chromedp.EmulateViewport(1280, 1130)); err != nil {
				t.Fatal(err)
			}
			hover(`#chart .pt.final[data-id="` + id + `"]`)
			shoot(t, tab, "explorer-subject.png", false)
			if err := chromedp.Do(tab, chromedp.EmulateViewport(1280, 900)); err != nil {
				t.Fatal(err)
			}
		}

		// bob's newest reading is in the tip: confirmed, not final.
		open(t, tab, url+"/#/subject/bob")
		if err := waitJS(tab, `document.querySelectorAll("#chart .pt").length === 4`); err != nil {
			t.Fatal(err)
		}
		if c := count("#chart .pt.confirmed"); c != 1 {
			t.Errorf("bob's chart has %d confirmed readings, want 1", c)
		}
	})

	t.Run("search", func(t *testing.T) {
		open(t, tab, url+"/#/")
		find := func(q, h2 string) {
			t.Helper()
			if err := chromedp.Do(tab, chromedp.SetValue(chromedp.CSS(`#q`), q), chromedp.Click(chromedp.CSS(`#search button`))); err != nil {
				t.Fatal(err)
			}
			if err := waitText(tab, `#view h2`, h2); err != nil {
				t.Errorf("search %q: %v", q, err)
			}
		}
		b := blocks[3]
		find(b.Hash().String()[:8], fmt.Sprintf("Block %d", b.Header.Height))
		find(b.Readings[0].ID().String()[:8], "Reading")
		find(pending.ID().String()[:6], "Reading")
		find("fedcba9876", "Not found")
		find("carol", "Subject carol: 2 readings")
		find("nobody", "Not found")
		find("5", "Block 5")
	})

	t.Run("receipt", func(t *testing.T) {
		// The check page works on what it is given, whatever the node serves.
		open(t, tab, url+"/#/check")
		if err := chromedp.Do(tab, chromedp.WaitVisible(chromedp.CSS(`#receipt-file`))); err != nil {
			t.Fatal(err)
		}
		if got := jsValue[string](t, tab, `document.querySelector("#offline-notice").textContent`); !strings.Contains(got, "does not ask the node") {
			t.Errorf("the check page does not say it works offline: %q", got)
		}
		dir := t.TempDir()
		junk := filepath.Join(dir, "junk.json")
		if err := os.WriteFile(junk, []byte("not json"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(tab, chromedp.SetUploadFiles(chromedp.CSS(`#receipt-file`), []string{junk})); err != nil {
			t.Fatal(err)
		}
		if err := waitJS(tab, `document.querySelector('.verdict[data-ok="false"]') !== null`); err != nil {
			t.Errorf("a file that is not JSON: %v", err)
		}

		id := blocks[len(blocks)-2].Readings[0].ID().String()
		if !routed(t, url+"/api/v1/readings/"+id+"/receipt") {
			t.Log("receipt endpoint not routed yet; skipping the receipt download and check")
			return
		}
		if jsValue[bool](t, tab, `!window.P2PReceipt || !!window.P2PReceipt.placeholder`) {
			t.Log("receipt-check.js is still a placeholder; skipping the receipt check")
			return
		}
		// Download alice's receipt through its link, as a user would.
		open(t, tab, url+"/#/subject/alice")
		if _, err := chromedp.CallBrowser(tab, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir}); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(tab, chromedp.WaitVisible(chromedp.CSS(`a.receipt[data-id="`+id+`"]`)),
			chromedp.Click(chromedp.CSS(`a.receipt[data-id="`+id+`"]`))); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, "receipt-"+id[:10]+".json")
		var data []byte
		for i := 0; i < 100; i++ {
			if data, err = os.ReadFile(file); err == nil && json.Valid(data) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !json.Valid(data) {
			t.Fatalf("no receipt downloaded as %s (%v)", file, err)
		}
		var doc any
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		if !tamper(doc) {
			t.Fatalf("found nothing to tamper with in the receipt %s", data)
		}
		forged, _ := json.Marshal(doc)
		forgedFile := filepath.Join(dir, "forged.json")
		if err := os.WriteFile(forgedFile, forged, 0o644); err != nil {
			t.Fatal(err)
		}

		// Check it on the check page, counting the API requests the page
		// makes meanwhile: the check must not ask the node anything.
		open(t, tab, url+"/#/check")
		asked := make(chan string, 100)
		lctx, stop := context.WithCancel(tab)
		defer stop()
		err = chromedp.Listen(lctx, func(ev any) {
			if e, ok := ev.(*network.EventRequestWillBeSent); ok && strings.Contains(e.Request.URL, "/api/v1/") &&
				!strings.Contains(e.Request.URL, "/api/v1/status") && !strings.Contains(e.Request.URL, "/api/v1/events") {
				select {
				case asked <- e.Request.URL:
				default:
				}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			file string
			ok   bool
		}{{file, true}, {forgedFile, false}} {
			if err := chromedp.Do(tab, chromedp.WaitVisible(chromedp.CSS(`#receipt-file`)),
				chromedp.SetUploadFiles(chromedp.CSS(`#receipt-file`), []string{tc.file})); err != nil {
				t.Fatal(err)
			}
			if err := waitJS(tab, fmt.Sprintf(`document.querySelector('.verdict[data-ok="%t"]') !== null && document.querySelector("#check-result").textContent.includes(%q)`, tc.ok, filepath.Base(tc.file))); err != nil {
				t.Errorf("check %s: %v; the page says %q", filepath.Base(tc.file), err,
					jsValue[string](t, tab, `document.querySelector("#check-result").textContent`))
			}
			if tc.ok {
				if s := jsValue[string](t, tab, `document.querySelector(".verdict .sentence").textContent`); !strings.Contains(s, "alice") {
					t.Errorf("a valid receipt's sentence does not name its subject: %q", s)
				}
				screenshot(t, tab, "explorer-check.png")
				// A trusted block hash: the tip's is in the receipt, block 1's is not
				// (it is below the reading's block). The Check button checks the
				// last receipt again.
				// A block the receipt does not reach leaves it intact, only
				// not proven against that block: not "NOT valid".
				for _, tr := range []struct {
					trust string
					ok    bool
					title string
				}{{blocks[len(blocks)-1].Hash().String(), true, "Receipt valid, reaching your trusted block"},
					{blocks[0].Hash().String(), false, "Receipt not proven against that block"}} {
					if err := chromedp.Do(tab, chromedp.SetValue(chromedp.CSS(`#trust`), tr.trust),
						chromedp.Click(chromedp.CSS(`#check-form button[type="submit"]`))); err != nil {
						t.Fatal(err)
					}
					if err := waitJS(tab, fmt.Sprintf(`document.querySelector('.verdict[data-ok="%t"]') !== null && document.querySelector("#check-result").textContent.includes(%q) && document.querySelector("#check-result").textContent.includes(%q)`, tr.ok, tr.trust[:10], tr.title)); err != nil {
						t.Errorf("check against trusted block %s: %v; the page says %q", tr.trust[:10], err,
							jsValue[string](t, tab, `document.querySelector("#check-result").textContent`))
					}
				}
				jsValue[string](t, tab, `document.querySelector("#trust").value = ""`)
			}
		}
		// Dropping the file on the page checks it too.
		jsValue[bool](t, tab, fmt.Sprintf(`(() => {
			const dt = new DataTransfer();
			dt.items.add(new File([%q], "dropped.json", { type: "application/json" }));
			document.querySelector("#drop").dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
			return true;
		})()`, string(data)))
		if err := waitJS(tab, `document.querySelector('.verdict[data-ok="true"]') !== null && document.querySelector("#check-result").textContent.includes("dropped.json")`); err != nil {
			t.Errorf("a dropped receipt: %v", err)
		}
		stop()
		close(asked)
		for u := range asked {
			t.Errorf("the check page asked the node %s", u)
		}
	})

	t.Run("phone", func(t *testing.T) {
		if err := chromedp.Do(tab, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile)); err != nil {
			t.Fatal(err)
		}
		defer chromedp.Do(tab, chromedp.EmulateViewport(1280, 900))
		for _, page := range []struct{ hash, ready string }{
			{"#/", `#blocks tr`}, {"#/subjects", `#view h2`}, {"#/subject/alice", `#chart .pt`},
			{"#/check", `#receipt-file`}, {"#/block/1", `#view dl`}, {"#/reading/" + pending.ID().String(), `#view dl`},
		} {
			open(t, tab, url+"/"+page.hash)
			if err := waitJS(tab, fmt.Sprintf(`document.querySelector(%q) !== null`, page.ready)); err != nil {
				t.Fatalf("%s: %v", page.hash, err)
			}
			time.Sleep(200 * time.Millisecond) // let the page settle (the status strip fills in)
			if w := jsValue[[]float64](t, tab, `[document.documentElement.scrollWidth, window.innerWidth]`); w[0] > w[1] {
				t.Errorf("%s is %v px wide in a %v px window: it scrolls sideways", page.hash, w[0], w[1])
			}
			if page.hash == "#/subject/alice" {
				if w := jsValue[float64](t, tab, `document.querySelector("#chart svg").getBoundingClientRect().right`); w > 390 {
					t.Errorf("the chart ends at %v px, past the 390 px screen", w)
				}
				if h := jsValue[float64](t, tab, `document.querySelector('button[data-range="24h"]').getBoundingClientRect().height`); h < 40 {
					t.Errorf("the time range buttons are %v px high: too small to touch", h)
				}
				shoot(t, tab, "explorer-phone.png", false)
			}
			if page.hash == "#/subjects" {
				shoot(t, tab, "explorer-phone-subjects.png", false)
			}
		}
	})
}

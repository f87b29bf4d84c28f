package explorer_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/p2p"
)

// TestBrowserSubjectOverLimit: a subject with more readings than the
// explorer charts (2,000) has a heading with its true total, and range
// lines that say which readings they cover: for "all" the 2,000 last added
// to the ledger, for a range whose own readings number more than 2,000 the
// 2,000 of them last added, saying a shorter range shows them all; and
// where some readings are pending, the range line says which readings its
// min, mean and max cover.
func TestBrowserSubjectOverLimit(t *testing.T) {
	browserPath := findBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	params := chain.TestParams("browser-many")
	p := storedPeer(t, ctx, params)

	// 2,100 readings of pat-002, one a second over the last 35 minutes,
	// in three blocks; and one more pending.
	const perBlock, nBlocks = 700, 3
	c, err := chain.New(params)
	if err != nil {
		t.Fatal(err)
	}
	key := p2p.KeyFromSeed(9)
	start := time.Now().Add(-perBlock * nBlocks * time.Second)
	var blocks []*chain.Block
	for i := 0; i < nBlocks; i++ {
		var rs []chain.Reading
		var at time.Time
		for j := 0; j < perBlock; j++ {
			at = start.Add(time.Duration(i*perBlock+j) * time.Second)
			r, err := chain.NewReading(key, "pat-002", 60+j%40, at)
			if err != nil {
				t.Fatal(err)
			}
			rs = append(rs, r)
		}
		b := c.NewBlock(rs, at)
		if err := chain.Solve(ctx, &b.Header); err != nil {
			t.Fatal(err)
		}
		if _, err := c.AddBlock(b, at); err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, b)
	}
	if _, err := p.Node.AddBlocks(ctx, blocks); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Node.Submit("pat-002", 70); err != nil {
		t.Fatal(err)
	}
	url := serve(t, p)
	tab := newTab(t, ctx, browserPath)
	open(t, tab, url+"/#/subject/pat-002")
	if err := chromedp.Do(tab, chromedp.WaitVisible(chromedp.CSS(`#chart svg.chart .pt`))); err != nil {
		t.Fatal(err)
	}
	if err := waitText(tab, "#view h2", "Subject pat-002: 2101 readings, at most 2000 charted"); err != nil {
		t.Error(err)
	}
	for _, tc := range []struct{ rng, want string }{
		{"all", "the 2000 most recently added to the ledger: 2000 readings, 1 pending · over the 1999 readings in blocks: min "},
		{"1h", "last hour, only the 2000 most recently added to the ledger: 2000 readings, 1 pending · over the 1999 readings in blocks: min "},
	} {
		if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS(`button[data-range="`+tc.rng+`"]`))); err != nil {
			t.Fatal(err)
		}
		if err := waitJS(tab, `document.querySelector('button[data-range="`+tc.rng+`"]').getAttribute("aria-pressed") === "true"`); err != nil {
			t.Fatal(err)
		}
		// A range loads its readings first: wait for its line.
		if err := waitJS(tab, fmt.Sprintf(`document.querySelector("#range-note").textContent.startsWith(%q)`, tc.want)); err != nil {
			t.Errorf("range %s: the line under the chart says %q, want it to start %q", tc.rng,
				jsValue[string](t, tab, `document.querySelector("#range-note").textContent`), tc.want)
		}
		if got := jsValue[string](t, tab, `document.querySelector("#range-note").textContent`); tc.rng == "1h" && !strings.HasSuffix(got, "choose a shorter range to see them all") {
			t.Errorf("range 1h holds more readings than are charted, but its line does not say so: %q", got)
		}
	}
}

package explorer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/p2p"
)

// TestBrowserSubjectOverLimit: a subject with more readings than the
// explorer charts (2,000) has a heading and range lines that say they
// cover the newest 2,000, the heading with the true total; and where some
// readings are pending, the range line says which readings its min, mean
// and max cover.
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
	if err := waitText(tab, "#view h2", "Subject pat-002: the newest 2000 of 2101 readings charted"); err != nil {
		t.Error(err)
	}
	for _, tc := range []struct{ rng, want string }{
		{"all", "the newest 2000 charted: 2000 readings, 1 pending · over the 1999 readings in blocks: min "},
		{"1h", "last hour, of the newest 2000 charted: 2000 readings, 1 pending · over the 1999 readings in blocks: min "},
	} {
		if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS(`button[data-range="`+tc.rng+`"]`))); err != nil {
			t.Fatal(err)
		}
		if err := waitJS(tab, `document.querySelector('button[data-range="`+tc.rng+`"]').getAttribute("aria-pressed") === "true"`); err != nil {
			t.Fatal(err)
		}
		if got := jsValue[string](t, tab, `document.querySelector("#range-note").textContent`); !strings.HasPrefix(got, tc.want) {
			t.Errorf("range %s: the line under the chart says %q, want it to start %q", tc.rng, got, tc.want)
		}
	}
}

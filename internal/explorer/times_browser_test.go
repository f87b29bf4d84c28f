package explorer_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // America/New_York wherever the test runs

	"github.com/chromedp/chromedp"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/p2p"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// TestBrowserTimesNameZone: in a browser whose time zone is not UTC, every
// time the explorer shows is YYYY-MM-DD HH:MM:SS in that zone, the zone
// named; and the readings of a side-branch block say so rather than
// "pending".
func TestBrowserTimesNameZone(t *testing.T) {
	browserPath := findBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	params := chain.TestParams("browser-times")
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
	// Another block 1, of a chain with less work: a side branch.
	side, err := testnet.BuildChain(params, p2p.KeyFromSeed(6), 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Node.AddBlock(ctx, side[0]); err != nil {
		t.Fatal(err)
	}
	url := serve(t, p)

	tab := newTab(t, ctx, browserPath, chromedp.Env("TZ=America/New_York"))

	shown := func(ms int64) string {
		return time.UnixMilli(ms).In(ny).Format("2006-01-02 15:04:05 MST")
	}
	b := blocks[1]
	r := b.Readings[0]
	for _, tc := range []struct{ page, ready, sel, want string }{
		{"/#/", `#blocks tr[data-height="2"]`, `#blocks tr[data-height="2"] td:nth-child(3)`, shown(b.Header.Time)},
		{"/#/block/2", `#view dl`, `#view dl dd:nth-of-type(3)`, shown(b.Header.Time)},
		{"/#/block/2", `.readings-table td`, `.readings-table td[data-label="time"]`, shown(r.Time)},
		{"/#/reading/" + r.ID().String(), `#view dl`, `#view dl dd:nth-of-type(4)`, shown(r.Time)},
		{"/#/subject/" + r.Subject, `.readings-table td`, `.readings-table td[data-label="time"]`, shown(r.Time)},
	} {
		open(t, tab, url+tc.page)
		if err := waitJS(tab, fmt.Sprintf(`document.querySelector(%q) !== null`, tc.ready)); err != nil {
			t.Fatalf("%s: %v", tc.page, err)
		}
		if !strings.HasSuffix(tc.want, " EST") && !strings.HasSuffix(tc.want, " EDT") {
			t.Fatalf("want %q: not New York's time", tc.want)
		}
		if err := waitText(tab, tc.sel, tc.want); err != nil {
			t.Errorf("%s: %v", tc.page, err)
		}
	}

	// The chart's summary (and hover text) write times alike.
	if label := jsValue[string](t, tab, `document.querySelector("#chart svg").getAttribute("aria-label")`); !strings.Contains(label, "to "+shown(r.Time)+";") {
		t.Errorf("the chart's summary does not end at %s: %q", shown(r.Time), label)
	}

	// The side block's reading: not pending, and no receipt, saying why.
	open(t, tab, url+"/#/block/"+side[0].Hash().String())
	if err := waitJS(tab, `document.querySelector(".readings-table td") !== null`); err != nil {
		t.Fatal(err)
	}
	if err := waitText(tab, `.readings-table td[data-label="receipt"]`, "none: in a side-branch block, not in the main chain"); err != nil {
		t.Error(err)
	}
	if err := waitText(tab, `.readings-table td[data-label="where"]`, "side branch"); err != nil {
		t.Error(err)
	}
}

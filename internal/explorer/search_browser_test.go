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
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// TestBrowserSearchAlsoSubject: a search for a subject whose name is also
// a block height (12) or the first digits of a reading's id goes to the
// block or reading and says, with a link, that a subject of that name has
// readings; a height that is no subject's says nothing more.
func TestBrowserSearchAlsoSubject(t *testing.T) {
	browserPath := findBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	params := chain.TestParams("browser-search")
	p := storedPeer(t, ctx, params) // GET /subjects/{s} needs the subject index
	blocks, err := testnet.BuildChain(params, p2p.KeyFromSeed(5), 12, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Node.AddBlocks(ctx, blocks); err != nil {
		t.Fatal(err)
	}
	// A reading whose id starts with four decimal digits that no block
	// hash starts with: a subject may be named those digits.
	key := p2p.KeyFromSeed(8)
	var r chain.Reading
	var prefix string
	for i := 0; prefix == ""; i++ {
		if i > 100000 {
			t.Fatal("no reading id starting with four decimal digits")
		}
		r, err = chain.NewReading(key, "other", 70, time.Now().Add(-time.Duration(i)*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		id := r.ID().String()
		if strings.Trim(id[:4], "0123456789") != "" || id[0] == '0' {
			continue
		}
		prefix = id[:4]
		for _, b := range blocks {
			if strings.HasPrefix(b.Hash().String(), prefix) {
				prefix = ""
			}
		}
	}
	if err := p.Node.SubmitReading(r); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"12", prefix} {
		if _, err := p.Node.Submit(s, 80); err != nil {
			t.Fatal(err)
		}
	}

	url := serve(t, p)
	tab := newTab(t, ctx, browserPath)
	open(t, tab, url+"/#/")
	search := func(q, h2 string) {
		t.Helper()
		if err := chromedp.Do(tab, chromedp.SetValue(chromedp.CSS(`#q`), q), chromedp.Click(chromedp.CSS(`#search button`))); err != nil {
			t.Fatal(err)
		}
		if err := waitText(tab, `#view h2`, h2); err != nil {
			t.Fatalf("search %q: %v", q, err)
		}
	}
	for _, tc := range []struct{ q, h2 string }{{"12", "Block 12"}, {prefix, "Reading"}} {
		search(tc.q, tc.h2)
		if err := waitJS(tab, `document.querySelector("#also-subject a") !== null`); err != nil {
			t.Errorf("search %q shows %s and does not say subject %s has readings: %v", tc.q, tc.h2, tc.q, err)
			continue
		}
		if got := jsValue[string](t, tab, `document.querySelector("#also-subject").textContent`); !strings.HasPrefix(got, "also: subject "+tc.q) {
			t.Errorf("search %q: the line says %q", tc.q, got)
		}
		if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS(`#also-subject a`))); err != nil {
			t.Fatal(err)
		}
		if err := waitText(tab, `#view h2`, fmt.Sprintf("Subject %s: 1 reading", tc.q)); err != nil {
			t.Errorf("the link to subject %s: %v", tc.q, err)
		}
	}
	// Block 5 is no subject's name: no such line.
	search("5", "Block 5")
	if jsValue[bool](t, tab, `document.querySelector("#also-subject") !== null`) {
		t.Errorf("search 5 offers a subject 5, which has no readings")
	}
}

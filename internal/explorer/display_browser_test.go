package explorer_test

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/p2p"
)

// TestBrowserClockAndFlags: in a browser whose locale writes times on the
// 12-hour clock (en-US: 04:40 PM), the chart's time axis writes them
// HH:MM on the 24-hour clock, as the tables do; and the readings table
// flags each reading outside the normal resting range, HIGH or LOW, in its
// row, on a subject's page and on a block's.
func TestBrowserClockAndFlags(t *testing.T) {
	browserPath := findBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	params := chain.TestParams("browser-display")
	p := storedPeer(t, ctx, params)
	c, err := chain.New(params)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	bpms := []int{50, 72, 142} // low, normal, high
	var times [][]time.Time
	for i := range bpms {
		times = append(times, []time.Time{now.Add(-time.Duration(3-i) * time.Hour)})
	}
	blocks := mineReadings(t, ctx, c, p2p.KeyFromSeed(12), "dana", times, func(i int) int { return bpms[i] },
		[]time.Time{times[0][0], times[1][0], times[2][0]})
	if _, err := p.Node.AddBlocks(ctx, blocks); err != nil {
		t.Fatal(err)
	}
	url := serve(t, p)

	tab := newTab(t, ctx, browserPath, chromedp.Flag("lang", "en-US"), chromedp.Env("LANG=en_US.UTF-8", "LC_ALL=en_US.UTF-8"))

	open(t, tab, url+"/#/subject/dana")
	if err := chromedp.Do(tab, chromedp.WaitVisible(chromedp.CSS(`#chart svg.chart .pt`))); err != nil {
		t.Fatal(err)
	}
	// The test means something only where the locale's clock has 12 hours.
	if s := jsValue[string](t, tab, `new Date(2026, 0, 1, 16, 40).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })`); s == "16:40" {
		t.Logf("this browser's locale writes 16:40 already; the axis check cannot fail here")
	}
	if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS(`button[data-range="24h"]`))); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(tab, `document.querySelector('button[data-range="24h"]').getAttribute("aria-pressed") === "true" && document.querySelectorAll("#chart .pt").length === 3`); err != nil {
		t.Fatal(err)
	}
	// Over 24 hours the axis ticks are times of day: some after noon.
	ticks := jsValue[[]string](t, tab, `[...document.querySelectorAll("#chart svg text.tick:not(.sub)")].map((e) => e.textContent).filter((s) => !/^\d+$/.test(s))`)
	clock := regexp.MustCompile(`^([01]\d|2[0-3]):[0-5]\d$`)
	afternoon := false
	for _, s := range ticks {
		if !clock.MatchString(s) {
			t.Errorf("the 24h chart's time axis writes %q, want HH:MM on the 24-hour clock (all ticks: %q)", s, ticks)
			break
		}
		afternoon = afternoon || s >= "13:00"
	}
	if len(ticks) == 0 || !afternoon {
		t.Errorf("the 24h chart's time axis has no tick after 13:00: %q", ticks)
	}

	// The readings table flags each row: 142 high, 50 low, 72 neither.
	ids := make([]string, len(blocks))
	for i, b := range blocks {
		ids[i] = b.Readings[0].ID().String()
	}
	check := func(page string) {
		t.Helper()
		for i, want := range []string{"50 low", "72", "142 high"} {
			sel := fmt.Sprintf(`.readings-table tr[data-id=%q] td[data-label="BPM"]`, ids[i])
			if err := waitJS(tab, fmt.Sprintf(`document.querySelector(%q) !== null`, sel)); err != nil {
				t.Fatalf("%s: %v", page, err)
			}
			if got := jsValue[string](t, tab, fmt.Sprintf(`document.querySelector(%q).textContent`, sel)); got != want {
				t.Errorf("%s: the row of the %d bpm reading shows %q, want %q", page, bpms[i], got, want)
			}
		}
		if got := jsValue[string](t, tab, fmt.Sprintf(`getComputedStyle(document.querySelector('.readings-table tr[data-id=%q] .flag')).textTransform`, ids[2])); got != "uppercase" {
			t.Errorf("%s: the flag is written %q, want it upper case (HIGH)", page, got)
		}
	}
	check("#/subject/dana")
	for i, b := range blocks {
		open(t, tab, fmt.Sprintf("%s/#/block/%d", url, b.Header.Height))
		sel := fmt.Sprintf(`.readings-table tr[data-id=%q] td[data-label="BPM"]`, ids[i])
		if err := waitJS(tab, fmt.Sprintf(`document.querySelector(%q) !== null`, sel)); err != nil {
			t.Fatal(err)
		}
		want := map[int]string{50: "50 low", 72: "72", 142: "142 high"}[bpms[i]]
		if got := jsValue[string](t, tab, fmt.Sprintf(`document.querySelector(%q).textContent`, sel)); got != want {
			t.Errorf("block %d: the row of the %d bpm reading shows %q, want %q", b.Header.Height, bpms[i], got, want)
		}
	}
}

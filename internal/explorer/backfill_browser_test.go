package explorer_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/p2p"
)

// mineReadings appends to c one block per batch, each of a subject's
// readings taken at the times given, the block dated blockTime[i], and
// returns the blocks.
func mineReadings(t *testing.T, ctx context.Context, c *chain.Chain, key ed25519.PrivateKey, subject string,
	batches [][]time.Time, bpm func(i int) int, blockTime []time.Time) []*chain.Block {
	t.Helper()
	var out []*chain.Block
	n := 0
	for i, times := range batches {
		var rs []chain.Reading
		for _, at := range times {
			r, err := chain.NewReading(key, subject, bpm(n), at)
			if err != nil {
				t.Fatal(err)
			}
			n++
			rs = append(rs, r)
		}
		b := c.NewBlock(rs, blockTime[i])
		if err := chain.Solve(ctx, &b.Header); err != nil {
			t.Fatal(err)
		}
		if _, err := c.AddBlock(b, time.Now()); err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// TestBrowserSubjectBackfill: a subject with more readings than the
// explorer loads at once (2,000), whose newest reading (142 bpm, a minute
// ago) sits below a back-fill of 2,100 readings taken months ago and
// imported after it, in newer blocks. The page's latest reading is the
// newest by time (142, flagged high), not the newest of the readings last
// added to the ledger; each time range charts and lists every reading
// taken in it, whatever its block; and "all" says which readings it shows
// rather than calling them the newest.
func TestBrowserSubjectBackfill(t *testing.T) {
	browserPath := findBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	params := chain.TestParams("browser-backfill")
	p := storedPeer(t, ctx, params)
	c, err := chain.New(params)
	if err != nil {
		t.Fatal(err)
	}
	key := p2p.KeyFromSeed(11)
	now := time.Now()

	// Block 1: 500 readings, one every 15 minutes, the newest 2 h 7 min
	// old (no reading within minutes of a range's edge).
	var recent []time.Time
	for k := 499; k >= 0; k-- {
		recent = append(recent, now.Add(-127*time.Minute-time.Duration(k)*15*time.Minute))
	}
	// Block 2: one reading a minute ago, 142 bpm.
	latest := now.Add(-time.Minute)
	// Blocks 3 to 5: the back-fill, 2,100 readings taken every 30 minutes
	// from 90 days ago (the newest about 46 days old).
	var backfill [][]time.Time
	for i := 0; i < 3; i++ {
		var ts []time.Time
		for j := 0; j < 700; j++ {
			ts = append(ts, now.Add(-90*24*time.Hour+time.Duration(i*700+j)*30*time.Minute))
		}
		backfill = append(backfill, ts)
	}
	normal := func(i int) int { return 60 + i%40 }
	blocks := mineReadings(t, ctx, c, key, "many", [][]time.Time{recent}, normal, []time.Time{recent[len(recent)-1]})
	blocks = append(blocks, mineReadings(t, ctx, c, key, "many", [][]time.Time{{latest}}, func(int) int { return 142 }, []time.Time{latest})...)
	blocks = append(blocks, mineReadings(t, ctx, c, key, "many", backfill, normal,
		[]time.Time{now.Add(-50 * time.Second), now.Add(-40 * time.Second), now.Add(-30 * time.Second)})...)
	if _, err := p.Node.AddBlocks(ctx, blocks); err != nil {
		t.Fatal(err)
	}
	// And one pending reading, taken three hours ago.
	if _, err := p.Node.SubmitAt("many", 75, now.Add(-3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	latestID := blocks[1].Readings[0].ID().String()

	url := serve(t, p)
	tab := newTab(t, ctx, browserPath)
	open(t, tab, url+"/#/subject/many")
	if err := chromedp.Do(tab, chromedp.WaitVisible(chromedp.CSS(`#chart svg.chart .pt`))); err != nil {
		t.Fatal(err)
	}
	if err := waitText(tab, "#view h2", "Subject many: 2602 readings, at most 2000 charted"); err != nil {
		t.Error(err)
	}
	// The latest reading by time: 142, flagged high.
	if got := jsValue[string](t, tab, `document.querySelector(".facts strong").textContent`); got != "142 high" {
		t.Errorf("the page's latest reading shows %q, want 142 flagged high (\"142 high\"); the line says %q", got,
			jsValue[string](t, tab, `document.querySelector(".facts").textContent`))
	}
	if got := jsValue[string](t, tab, `document.querySelector("#truncated").textContent`); !strings.Contains(got, "most recently added to the ledger") ||
		!strings.Contains(got, "not necessarily the newest taken") || !strings.Contains(got, "1h, 24h, 7d or 30d") {
		t.Errorf("the note above the chart says %q", got)
	}

	// Each range holds every reading taken in it: of block 1 those in it,
	// the 142 of block 2 and the pending one (3 h old).
	inRecent := func(span time.Duration) int {
		n := 0
		for _, at := range recent {
			if at.After(now.Add(-span)) {
				n++
			}
		}
		return n
	}
	for _, tc := range []struct {
		rng, label string
		want       int
		pending    bool
	}{
		{"1h", "last hour", 1, false},
		{"24h", "last 24 hours", inRecent(24*time.Hour) + 2, true},
		{"7d", "last 7 days", inRecent(7*24*time.Hour) + 2, true},
		{"30d", "last 30 days", inRecent(30*24*time.Hour) + 2, true},
	} {
		if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS(`button[data-range="`+tc.rng+`"]`))); err != nil {
			t.Fatal(err)
		}
		note := fmt.Sprintf("%s: %d reading", tc.label, tc.want)
		if tc.want != 1 {
			note += "s"
		}
		if tc.pending {
			note += ", 1 pending"
		}
		rows := min(tc.want, 200)
		if err := waitJS(tab, fmt.Sprintf(`document.querySelector("#range-note").textContent.startsWith(%q) && `+
			`document.querySelectorAll("#chart .pt").length === %d && document.querySelectorAll(".readings-table tbody tr").length === %d`,
			note, tc.want, rows)); err != nil {
			t.Errorf("range %s: want %d readings charted and %d listed: %v; the line under the chart says %q, %d charted, %d listed",
				tc.rng, tc.want, rows, err, jsValue[string](t, tab, `document.querySelector("#range-note").textContent`),
				jsValue[int](t, tab, `document.querySelectorAll("#chart .pt").length`),
				jsValue[int](t, tab, `document.querySelectorAll(".readings-table tbody tr").length`))
			continue
		}
		// The 142 is charted and, newest, listed first.
		if !jsValue[bool](t, tab, fmt.Sprintf(`document.querySelector('#chart .pt[data-id="%s"]') !== null`, latestID)) {
			t.Errorf("range %s does not chart the 142 bpm reading", tc.rng)
		}
		if got := jsValue[string](t, tab, `document.querySelector(".readings-table tbody tr").dataset.id`); got != latestID {
			t.Errorf("range %s lists %s first, want the 142 bpm reading %s", tc.rng, got, latestID)
		}
	}

	// "all" shows the readings last added to the ledger, and says so.
	if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS(`button[data-range="all"]`))); err != nil {
		t.Fatal(err)
	}
	want := "the 2000 most recently added to the ledger: 2000 readings, 1 pending · over the 1999 readings in blocks: min "
	if err := waitJS(tab, fmt.Sprintf(`document.querySelector("#range-note").textContent.startsWith(%q)`, want)); err != nil {
		t.Errorf("range all: the line under the chart says %q, want it to start %q",
			jsValue[string](t, tab, `document.querySelector("#range-note").textContent`), want)
	}

	// A pending reading taken after the 142 is the latest, though the
	// subject's figures count readings in blocks only.
	if _, err := p.Node.SubmitAt("many", 50, time.Now()); err != nil {
		t.Fatal(err)
	}
	open(t, tab, url+"/#/subject/many")
	if err := waitJS(tab, `document.querySelector(".facts strong") !== null`); err != nil {
		t.Fatal(err)
	}
	if got := jsValue[string](t, tab, `document.querySelector(".facts strong").textContent`); got != "50 low" {
		t.Errorf("with a newer pending reading, the page's latest shows %q, want 50 flagged low (\"50 low\")", got)
	}
}

package api_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/p2p"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// TestSubjectReadingsWindow: since and until keep the readings taken in a
// time window, pending and in blocks, whatever the blocks' order. Readings
// of months ago imported after today's (a back-fill) sit in a newer block
// than today's; a client asking for the last day must still get today's
// reading, and only it, page after page. With the subject index (a
// durable node) and without (a chain scan).
func TestSubjectReadingsWindow(t *testing.T) {
	for _, durable := range []bool{false, true} {
		t.Run(fmt.Sprintf("durable=%v", durable), func(t *testing.T) {
			cfg := testnet.Config{NoMiner: true, Params: chain.TestParams("api-window")}
			var e *env
			if durable {
				e, _ = storedPeer(t, t.TempDir(), cfg)
			} else {
				e = start(t, cfg)
			}
			now := time.Now()
			key := p2p.KeyFromSeed(5)
			reading := func(bpm int, at time.Time) chain.Reading {
				r, err := chain.NewReading(key, "pat", bpm, at)
				if err != nil {
					t.Fatal(err)
				}
				return r
			}
			today := reading(142, now.Add(-time.Hour))
			mineOn(t, e, []chain.Reading{today})
			feb := time.Date(2026, 2, 3, 13, 0, 0, 0, time.UTC)
			var old []chain.Reading
			for i := range 5 {
				old = append(old, reading(80+i, feb.Add(time.Duration(i)*time.Minute)))
			}
			mineOn(t, e, old) // the back-fill: a newer block of older readings
			recent, err := e.peer.Node.SubmitAt("pat", 95, now.Add(-10*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			lastMonth, err := e.peer.Node.SubmitAt("pat", 70, now.Add(-30*24*time.Hour))
			if err != nil {
				t.Fatal(err)
			}

			// ids follows the next links from path, pages of one, and
			// returns the bpm of every reading listed.
			bpms := func(path string) []int {
				var got []int
				for pages := 0; path != ""; pages++ {
					if pages > 20 {
						t.Fatalf("%s: paging does not end", path)
					}
					r := e.get(path)
					want(t, path, r, 200, "")
					page := decode[subjectJSON](t, r)
					for _, p := range page.Pending {
						got = append(got, int(p.BPM))
					}
					for _, rd := range page.Readings {
						got = append(got, int(rd.Reading.BPM))
					}
					path = page.Next
				}
				return got
			}
			day := now.Add(-24 * time.Hour).UnixMilli()
			cases := []struct {
				query string
				want  []int
			}{
				{fmt.Sprintf("since=%d", day), []int{int(recent.BPM), int(today.BPM)}},
				{fmt.Sprintf("until=%d", day), []int{int(lastMonth.BPM), 84, 83, 82, 81, 80}},
				{fmt.Sprintf("since=%d&until=%d", feb.Add(time.Minute).UnixMilli(), feb.Add(3*time.Minute).UnixMilli()), []int{82, 81}},
				{"", []int{int(recent.BPM), int(lastMonth.BPM), 84, 83, 82, 81, 80, int(today.BPM)}},
			}
			for _, c := range cases {
				got := bpms("/api/v1/subjects/pat/readings?limit=1&" + c.query)
				if !slices.Equal(got, c.want) {
					t.Errorf("%s: bpm %v, want %v", c.query, got, c.want)
				}
			}
			for _, q := range []string{"since=abc", "until=-1", fmt.Sprintf("since=%d&until=%d", day, day), "since=1&until=0"} {
				want(t, q, e.get("/api/v1/subjects/pat/readings?"+q), 400, "bad_parameter")
			}
		})
	}
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// BenchmarkAuthorityFinalityProcesses measures an authority network of 4
// authorities and a follower, each a real `p2pchain node` process with its
// durable store and API, fully connected on loopback: from a reading's
// submission through the follower's API (POST /api/v1/readings) until
// GET /api/v1/readings/ID says final on all five APIs (each polled every
// millisecond, which the figure includes). Reports p50/p95/p99.
//
//	go test -run '^$' -bench AuthorityFinalityProcesses -benchtime 30x ./cmd/p2pchain
func BenchmarkAuthorityFinalityProcesses(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	top, err := testnet.ParseTopology("full")
	if err != nil {
		b.Fatal(err)
	}
	pn, err := testnet.StartProcs(ctx, testnet.ProcConfig{Binary: binary, Nodes: 5, Topology: top, Dir: b.TempDir(),
		Params: chain.DefaultParams(), Authorities: 4})
	if err != nil {
		b.Fatal(err)
	}
	defer pn.Close()
	apis := pn.APIs()
	follower := apis[len(apis)-1]
	finalEverywhere(b, apis, submitReading(b, follower, 60)) // the gossip meshes form
	var lat []time.Duration
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		finalEverywhere(b, apis, submitReading(b, follower, 60+i%100))
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.95), "p95-ms")
	b.ReportMetric(q(0.99), "p99-ms")
}

// submitReading posts a reading to api and returns its id.
func submitReading(b *testing.B, api string, bpm int) string {
	resp, err := http.Post(api+"/api/v1/readings", "application/json", strings.NewReader(fmt.Sprintf(`{"subject":"bench","bpm":%d}`, bpm)))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.ID == "" {
		b.Fatalf("POST reading: %s %v", resp.Status, err)
	}
	return r.ID
}

// finalEverywhere polls every api until reading id is final there (at
// most 10 s).
func finalEverywhere(b *testing.B, apis []string, id string) {
	var wg sync.WaitGroup
	var failed sync.Once
	deadline := time.Now().Add(10 * time.Second)
	for _, api := range apis {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				var r struct {
					Final bool `json:"final"`
				}
				if resp, err := http.Get(api + "/api/v1/readings/" + id); err == nil {
					_ = json.NewDecoder(resp.Body).Decode(&r)
					resp.Body.Close()
				}
				if r.Final {
					return
				}
				time.Sleep(time.Millisecond)
			}
			failed.Do(func() { b.Errorf("reading %s not final at %s after 10 s", id, api) })
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
}

package testnet

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
)

const (
	throughputNodes    = 3
	throughputReadings = 20000
	throughputPerNode  = 64 // submitting goroutines per node
	throughputMaxWait  = 3 * time.Minute
)

// BenchmarkThroughput measures readings confirmed per second by a network
// of 3 durable nodes (each with its own store in a temporary directory,
// fsync on every commit), fully connected on loopback in one process, at
// difficulty 0 and at chain.DefaultDifficulty. 192 goroutines (64 per
// node, as many clients) submit 20,000 readings through Node.Submit as fast
// as the nodes acknowledge them; the clock stops when every acknowledged
// reading is in the main chain of every node (confirmed everywhere).
//
// It reports readings/s (confirmed everywhere, from the first submission);
// accepted/s (acknowledged, durable, by the node submitted to); p50-ms,
// p95-ms and p99-ms from submission to confirmed on every node (each node's
// first connection of the reading's block, from its events); lost
// (acknowledged but missing from some node's main chain at the end, counted
// per node: must be 0, the benchmark fails otherwise); verifies/reading
// (signatures each node took into its cache per reading: 1 when the cache
// spares the block's second check; the node a reading is submitted to
// makes its signature and caches it unverified); bound_readings/s (the
// machine's limit if signatures were all the nodes did: per reading one
// signing and one verification on each other node, on every core) and
// ratio_to_bound.
//
//	go test -run '^$' -bench Throughput -benchtime 1x ./internal/testnet
func BenchmarkThroughput(b *testing.B) {
	for _, d := range []uint32{0, chain.DefaultDifficulty} {
		b.Run(fmt.Sprintf("difficulty=%d", d), func(b *testing.B) {
			bound := SignatureBound(throughputNodes)
			for range b.N {
				benchThroughput(b, d, bound)
			}
		})
	}
}

func benchThroughput(b *testing.B, difficulty uint32, bound float64) {
	b.StopTimer()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	params := chain.TestParams("throughput")
	params.Difficulty = difficulty
	net, err := StartNetwork(ctx, NetworkConfig{Nodes: throughputNodes, Topology: Topology{Kind: "full"},
		Params: params, Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer net.Close()
	if err := net.WaitPeers(ctx); err != nil {
		b.Fatal(err)
	}
	mctx, mcancel := context.WithTimeout(ctx, 10*time.Second)
	_ = WaitMesh(mctx, net.Peers, throughputNodes-1) // best effort: blocks also arrive by sync
	mcancel()

	// Each node's watcher records when the node first connected a block
	// holding each reading, and counts the readings its main chain holds
	// (all of them the benchmark's). Asking the nodes reading by reading
	// instead would cost more than the network's own work: old blocks are
	// read back from the store.
	seen := make([]map[chain.Hash]time.Time, throughputNodes)
	inMain := make([]atomic.Int64, throughputNodes)
	var watchers sync.WaitGroup
	stops := make([]func(), throughputNodes)
	for i, p := range net.Peers {
		ch, stop := p.Node.Subscribe(1 << 16)
		stops[i] = stop
		seen[i] = make(map[chain.Hash]time.Time, throughputReadings)
		watchers.Add(1)
		go func() {
			defer watchers.Done()
			main := make(map[chain.Hash]bool, throughputReadings)
			for e := range ch {
				if e.Kind != node.EventTip || e.Update == nil {
					continue
				}
				now := time.Now()
				for _, blk := range e.Update.Disconnected {
					for _, id := range blk.ReadingIDs() {
						delete(main, id)
					}
				}
				for _, blk := range e.Update.Connected {
					for _, id := range blk.ReadingIDs() {
						main[id] = true
						if _, ok := seen[i][id]; !ok {
							seen[i][id] = now
						}
					}
				}
				inMain[i].Store(int64(len(main)))
			}
		}()
	}
	verified0 := make([]uint64, throughputNodes)
	for i, p := range net.Peers {
		verified0[i] = p.Node.SignaturesVerified()
	}

	ids := make([]chain.Hash, throughputReadings)
	acked := make([]bool, throughputReadings)
	submitted := make([]time.Time, throughputReadings)
	var next atomic.Int64
	var failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	b.StartTimer()
	start := time.Now()
	for g := range throughputNodes * throughputPerNode {
		nd := net.Peers[g%throughputNodes].Node
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= throughputReadings {
					return
				}
				submitted[i] = time.Now()
				r, err := nd.Submit(fmt.Sprintf("tp-%d", i), chain.MinBPM+i%100)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				ids[i], acked[i] = r.ID(), true
			}
		}()
	}
	wg.Wait()
	accepted := time.Since(start)

	var ok int
	for i := range acked {
		if acked[i] {
			ok++
		}
	}
	// Wait until every node's main chain holds every acknowledged reading
	// (by the events), then check it block by block.
	deadline := time.Now().Add(throughputMaxWait)
	for time.Now().Before(deadline) {
		done := true
		for i := range inMain {
			done = done && inMain[i].Load() >= int64(ok)
		}
		if done {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	confirmed := time.Since(start)
	b.StopTimer()
	for _, stop := range stops {
		stop()
	}
	watchers.Wait()
	missing := 0
	for _, p := range net.Peers {
		main := map[chain.Hash]bool{}
		for h := uint64(1); h <= p.Node.Status().Height; h++ {
			info, found, _ := p.Node.BlockByHeight(h)
			blk := info.Block
			if !found {
				b.Fatalf("no main-chain block at height %d", h)
			}
			for _, id := range blk.ReadingIDs() {
				main[id] = true
			}
		}
		for i, id := range ids {
			if acked[i] && !main[id] {
				missing++
			}
		}
	}

	var lat []time.Duration
	for i, id := range ids {
		if !acked[i] {
			continue
		}
		var last time.Time
		for n := range seen {
			t, ok := seen[n][id]
			if !ok {
				t = start.Add(confirmed) // its event was missed: the end
			}
			if t.After(last) {
				last = t
			}
		}
		lat = append(lat, last.Sub(submitted[i]))
	}
	var verified uint64
	for i, p := range net.Peers {
		verified += p.Node.SignaturesVerified() - verified0[i]
	}
	if f := failed.Load(); f > 0 {
		b.Logf("%d submissions refused, first: %v", f, firstErr.Load())
	}
	if missing > 0 {
		b.Errorf("%d acknowledged readings (counted once per node) missing after %v", missing, confirmed)
	}
	rate := float64(ok) / confirmed.Seconds()
	b.ReportMetric(rate, "readings/s")
	b.ReportMetric(float64(ok)/accepted.Seconds(), "accepted/s")
	b.ReportMetric(float64(missing), "lost")
	b.ReportMetric(float64(verified)/float64(max(ok, 1)*throughputNodes), "verifies/reading")
	if h := net.Peers[0].Node.Status().Height; h > 0 {
		b.ReportMetric(float64(ok)/float64(h), "readings/block")
	}
	b.ReportMetric(bound, "bound_readings/s")
	b.ReportMetric(rate/bound, "ratio_to_bound")
	if len(lat) > 0 {
		slices.Sort(lat)
		q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
		b.ReportMetric(q(0.5), "p50-ms")
		b.ReportMetric(q(0.95), "p95-ms")
		b.ReportMetric(q(0.99), "p99-ms")
	}
	b.ReportMetric(0, "ns/op")
}

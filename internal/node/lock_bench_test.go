package node_test

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/store"
)

// BenchmarkLockBesideReaders measures how long the node's lock keeps
// waiting a caller (here Status, which every block, submission and peer
// exchange also takes the lock like) while two API-like readers page the
// blocks list (100 full blocks read back from the store, as GET
// /api/v1/blocks?limit=100 does for bodies through Blocks) and look up a
// reading in one of them, without pause. The node restarted on a durable
// store of 120 blocks of 1,024 readings, so bodies come from disk (the
// OS cache) and are decoded: about 0.6 ms a block on the 2-core dev VM.
// Reported: the wait's p50, p99 and max in µs, one Status every
// millisecond; and the time of one 100-block page.
//
//	go test ./internal/node -run '^$' -bench LockBesideReaders -benchtime 2000x
func BenchmarkLockBesideReaders(b *testing.B) {
	const blocks = 120
	params := chain.TestParams("lock-bench")
	params.MaxReorgDepth, params.FinalAge = 5, time.Second
	path := filepath.Join(b.TempDir(), "chain")
	clock := time.UnixMilli(params.GenesisTime).Add(time.Hour)
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	start := func() (*node.Node, *store.Store) { return startStored(b, path, params, node.WithClock(now)) }
	n, st := start()
	bld := newBuilder(b, params)
	var all []*chain.Block
	for range blocks {
		all = append(all, bld.full())
	}
	ctx := context.Background()
	if _, err := n.AddBlocks(ctx, all); err != nil {
		b.Fatal(err)
	}
	mu.Lock()
	clock = clock.Add(time.Minute) // all but the newest 5 final, bodies dropped
	mu.Unlock()
	if err := n.AddBlock(ctx, bld.block(chain.Hash{}, "last")); err != nil {
		b.Fatal(err)
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	n, st = start()
	defer st.Close()

	t0 := time.Now()
	if got, err := n.Blocks(blocks-10, 100); err != nil || len(got) != 100 {
		b.Fatalf("a page of %d blocks: %v", len(got), err)
	}
	page := time.Since(t0)
	id := all[3].Readings[7].ID()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = n.Blocks(blocks-10, 100)
				n.LocateReading(id)
			}
		})
	}
	waits := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		s := time.Now()
		n.Status()
		waits = append(waits, time.Since(s))
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
	slices.Sort(waits)
	at := func(q float64) float64 { return float64(waits[int(q*float64(len(waits)-1))].Microseconds()) }
	b.ReportMetric(at(0.5), "p50_µs")
	b.ReportMetric(at(0.99), "p99_µs")
	b.ReportMetric(at(1), "max_µs")
	b.ReportMetric(float64(page.Milliseconds()), "page_ms")
}

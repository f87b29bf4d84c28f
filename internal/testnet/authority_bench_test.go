package testnet_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/node"
)

// BenchmarkAuthorityFinality measures, on an authority network of 4, 7 and
// 10 authorities and one follower (and with one authority of 4 stopped), every node with a durable store (fsync
// on every commit) and all in one process on loopback, the time from a
// reading's submission at the follower (its signature, store write and
// gossip included) until the reading is final on every node: the reading
// travels to the proposer, which proposes at once (readings are pending),
// two rounds of votes decide, and each node applies the sealed block. The
// nodes' events say when each one made its block final. Reports p50, p95
// and p99.
//
//	go test -run '^$' -bench AuthorityFinality -benchtime 50x ./internal/testnet
func BenchmarkAuthorityFinality(b *testing.B) {
	for _, c := range []struct{ n, down int }{{4, 0}, {7, 0}, {10, 0}, {4, 1}} {
		n := c.n
		b.Run(fmt.Sprintf("authorities=%d/down=%d", n, c.down), func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			keys := keysN(b, n+1)
			net := authorityNet(b, "bench", keys[:n])
			ms := members(ctx, b, net, keys)
			mesh(ctx, b, ms)
			for _, m := range ms[:c.down] {
				m.stop() // their turns pass on after the propose timeout
			}
			follower := ms[n].peer.Node
			events := make([]<-chan node.Event, len(ms))
			for i, m := range ms {
				if m.peer == nil {
					continue
				}
				ch, stop := m.peer.Node.Subscribe(256)
				defer stop()
				events[i] = ch
			}
			// Warm up: the first reading forms the gossip meshes.
			r, err := follower.Submit("warm", 60)
			if err != nil {
				b.Fatal(err)
			}
			waitFinal(b, running(ms), r.ID(), 30*time.Second)
			var lat []time.Duration
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				r, err := follower.Submit("bench", 60+i%100)
				if err != nil {
					b.Fatal(err)
				}
				id := r.ID()
				for j, m := range ms {
					if m.peer == nil {
						continue
					}
					for {
						if rs, ok, _ := m.peer.Node.LocateReading(id); ok && rs.Final {
							break
						}
						select {
						case <-events[j]:
						case <-time.After(10 * time.Second):
							b.Fatalf("reading not final on node %d after 10 s", j)
						}
					}
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
			b.ReportMetric(q(0.5), "p50-ms")
			b.ReportMetric(q(0.95), "p95-ms")
			b.ReportMetric(q(0.99), "p99-ms")
		})
	}
}

package testnet

import (
	"context"
	"testing"
	"time"
)

// TestNaiveStartsConnected: StartNaive returns once every node holds all
// the connections its links give it, the accepting ends too. Before, a
// node dialled by many returned short of some (23 of 50 starts of this
// star), and its first whole-chain send, the one the baseline times,
// missed those neighbours until a periodic send seconds later.
func TestNaiveStartsConnected(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const nodes = 20
	var links [][2]int
	for i := 1; i < nodes; i++ {
		links = append(links, [2]int{i, 0}) // every node dials node 0
	}
	for try := range 20 {
		nn, err := StartNaive(ctx, NaiveConfig{Nodes: nodes, Links: links, Interval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		n0 := nn.nodes[0]
		n0.mu.Lock()
		have := len(n0.conns)
		n0.mu.Unlock()
		nn.Close()
		if have != nodes-1 {
			t.Fatalf("start %d: node 0 holds %d connections when StartNaive returns, want %d", try, have, nodes-1)
		}
	}
}

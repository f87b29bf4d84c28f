package testnet

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"strings"
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

// The naive miner hashes the fields before the nonce once and only the
// nonce's digits per try, as the node's miner keeps the SHA-256 midstate:
// no allocation per try (it built the whole string anew each try, which
// slowed the baseline at any difficulty above 0: PERFORMANCE.md), and the
// same hash as NaiveBlock.hash.
func TestNaiveMineCostsNothingPerTry(t *testing.T) {
	nn := &NaiveNetwork{cfg: NaiveConfig{Difficulty: 12}}
	_, nn.key, _ = ed25519.GenerateKey(nil)
	prev := NaiveBlock{Index: 41, Hash: strings.Repeat("ab", 32)}
	tries := 0
	allocs := testing.AllocsPerRun(20, func() {
		b, err := nn.mine(prev, "bench", 72)
		if err != nil {
			t.Fatal(err)
		}
		tries += b.Nonce + 1
		if h := b.hash(); hex.EncodeToString(h[:]) != b.Hash || leadingZeros(h) < 12 {
			t.Fatalf("mined block %+v: hash %x, want %s with 12 leading zero bits", b, h, b.Hash)
		}
	})
	// 21 blocks of about 4,096 tries each; a mine's fixed cost (signing,
	// hex, the state) is some tens of allocations.
	if perTry := allocs * 21 / float64(tries); perTry > 0.1 {
		t.Errorf("%.0f allocations a block, %.2f a try over %d tries: want none per try", allocs, perTry, tries)
	}
}

// BenchmarkNaiveMineTry is the naive miner's cost per try (ns/try), to
// set beside BenchmarkHeaderHash of internal/chain, the node's (one
// SHA-256 block compression from its midstate).
func BenchmarkNaiveMineTry(b *testing.B) {
	nn := &NaiveNetwork{cfg: NaiveConfig{Difficulty: 16}}
	_, nn.key, _ = ed25519.GenerateKey(nil)
	prev := NaiveBlock{Index: 41, Hash: strings.Repeat("ab", 32)}
	tries := 0
	for b.Loop() {
		blk, err := nn.mine(prev, "bench", 72)
		if err != nil {
			b.Fatal(err)
		}
		tries += blk.Nonce + 1
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(tries), "ns/try")
}

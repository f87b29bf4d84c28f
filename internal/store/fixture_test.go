package store

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// The fixture of the tests and benchmarks: a real chain made with
// chain.NewBlock and chain.Solve at difficulty 0, 1 to 4 signed readings per
// block, every block accepted by chain.AddBlock, and a 101-block branch that
// forks 100 blocks below the tip (a reorganisation of 100 blocks when it is
// connected).

// benchBlocks is the chain length of the benchmarks.
const benchBlocks = 100_000

// benchExtra is how many more blocks the append benchmarks add on top of a
// store of benchBlocks blocks.
const benchExtra = 2048

// fixture is a main chain of params and a side branch.
type fixture struct {
	params chain.Params
	main   []*chain.Block // main[i] is at height i+1
	extra  []*chain.Block // the main chain continued beyond main
	fork   []*chain.Block // heights len(main)-99 ... len(main)+1; fork[0]'s parent is at len(main)-100
	// reorg disconnects the last 100 main blocks and connects fork;
	// back does the opposite.
	reorg, back *chain.Update
}

// forkDepth is how many main blocks the fork disconnects.
const forkDepth = 100

var testKeys sync.Map // int -> ed25519.PrivateKey

// testKey returns a deterministic Ed25519 key numbered i.
func testKey(i int) ed25519.PrivateKey {
	if k, ok := testKeys.Load(i); ok {
		return k.(ed25519.PrivateKey)
	}
	seed := make([]byte, ed25519.SeedSize)
	binary.BigEndian.PutUint64(seed, uint64(i)+1)
	copy(seed[8:], "p2pchain store test key")
	k := ed25519.NewKeyFromSeed(seed)
	testKeys.Store(i, k)
	return k
}

// testParams are the parameters of every store test: a final depth above
// the fixture's 100-block reorganisation, which the store must hold.
func testParams() chain.Params {
	p := chain.TestParams("storetest")
	p.MaxReorgDepth = 2 * forkDepth
	return p
}

// blockTime is the time of main block i (0-based), in ms after genesis.
func blockTime(i int) int64 { return int64(i) * 1000 }

// makeReadings returns 1 to 4 signed readings for block number i of a
// branch tagged tag, at times from t0. Different tags never collide.
func makeReadings(p chain.Params, tag string, i int, t0 int64) []chain.Reading {
	n := 1 + i%4
	rs := make([]chain.Reading, n)
	for j := range rs {
		key := testKey((i + j) % 4)
		subject := fmt.Sprintf("%s%d", tag, (i*4+j)%997)
		t := time.UnixMilli(p.GenesisTime + t0 + int64(j))
		r, err := chain.NewReading(key, subject, chain.MinBPM+(i*7+j)%(chain.MaxBPM-chain.MinBPM), t)
		if err != nil {
			panic(err)
		}
		rs[j] = r
	}
	return rs
}

// signAll makes the readings of blocks [0, n) of a branch, in parallel.
func signAll(p chain.Params, tag string, n int, t0 func(int) int64) [][]chain.Reading {
	out := make([][]chain.Reading, n)
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				out[i] = makeReadings(p, tag, i, t0(i))
			}
		}()
	}
	wg.Wait()
	return out
}

// newFixture builds a chain of n+extra blocks (n > forkDepth) with
// chain.NewBlock, chain.Solve and chain.AddBlock, and a fork of the first n.
func newFixture(tb testing.TB, n, extra int) *fixture {
	tb.Helper()
	p := testParams()
	c, err := chain.New(p)
	if err != nil {
		tb.Fatal(err)
	}
	f := &fixture{params: p}
	readings := signAll(p, "m", n+extra, blockTime)
	for i := 0; i < n+extra; i++ {
		now := time.UnixMilli(p.GenesisTime + blockTime(i) + 999)
		b := c.NewBlock(readings[i], now)
		if err := chain.Solve(context.Background(), &b.Header); err != nil {
			tb.Fatal(err)
		}
		if _, err := c.AddBlock(b, now); err != nil {
			tb.Fatalf("block %d: %v", i+1, err)
		}
		f.main = append(f.main, b)
	}
	f.extra = f.main[n:]
	f.main = f.main[:n:n]

	// The fork: built by hand as chain.NewBlock would on the block at
	// height n-forkDepth, since NewBlock only builds on the tip. Its blocks
	// are 500 ms later than the main blocks at the same height.
	forkAt := n - forkDepth
	parent := f.header(forkAt)
	side := signAll(p, "f", forkDepth+1, func(i int) int64 { return blockTime(forkAt+i) + 500 })
	for i := 0; i <= forkDepth; i++ {
		b := &chain.Block{Readings: side[i]}
		b.Header = chain.Header{
			Version:    chain.HeaderVersion,
			Height:     parent.Height + 1,
			Parent:     parent.Hash(),
			Time:       max(p.GenesisTime+blockTime(forkAt+i)+501, parent.Time),
			Root:       b.ReadingsRoot(),
			Count:      uint32(len(b.Readings)),
			Difficulty: p.Difficulty,
		}
		if err := chain.Solve(context.Background(), &b.Header); err != nil {
			tb.Fatal(err)
		}
		if err := chain.CheckBlock(b, p); err != nil {
			tb.Fatal(err)
		}
		f.fork = append(f.fork, b)
		parent = &b.Header
	}
	tip := f.fork[forkDepth]
	f.reorg = &chain.Update{Hash: tip.Hash(), Height: tip.Header.Height, TipChanged: true}
	for i := n - 1; i >= forkAt; i-- {
		f.reorg.Disconnected = append(f.reorg.Disconnected, f.main[i])
	}
	f.reorg.Connected = f.fork
	f.back = &chain.Update{Hash: f.main[n-1].Hash(), Height: uint64(n), TipChanged: true}
	for i := len(f.fork) - 1; i >= 0; i-- {
		f.back.Disconnected = append(f.back.Disconnected, f.fork[i])
	}
	f.back.Connected = f.main[forkAt:]
	return f
}

// header returns the header of the main block at height h (0: genesis).
func (f *fixture) header(h int) *chain.Header {
	if h == 0 {
		g := f.params.Genesis()
		return &g.Header
	}
	return &f.main[h-1].Header
}

var (
	benchFixtureOnce sync.Once
	benchFixture     *fixture
)

// bigFixture returns the fixture of the benchmarks, built once per process:
// benchBlocks main blocks and benchExtra more. It takes several seconds.
func bigFixture(tb testing.TB) *fixture {
	benchFixtureOnce.Do(func() { benchFixture = newFixture(tb, benchBlocks, benchExtra) })
	if benchFixture == nil {
		tb.Fatal("fixture failed")
	}
	return benchFixture
}

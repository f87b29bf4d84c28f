package testnet

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/p2p"
	"github.com/p2pchain/p2pchain/internal/store"
)

// BenchmarkInitialSync measures a fresh node catching up on a 10,000-block
// chain (one signed reading per block) from one peer over loopback: the
// status handshake, batches of 512 blocks, full validation (proof of work at
// difficulty 0, Merkle root, Ed25519 signatures on every core) and adding to
// the in-memory chain. Reports blocks/s, the verification bound
// (bound_blocks/s: what every core verifies, body and signatures, with no
// cache, measured between the syncs) and ratio_to_bound. On a shared machine
// both vary with the load: the bound is the best of its runs, and the ratio
// that of the fastest sync to it.
//
//	go test -run '^$' -bench InitialSync -benchtime 3x ./internal/testnet
func BenchmarkInitialSync(b *testing.B) { benchInitialSync(b, false) }

// BenchmarkInitialSyncDurable is BenchmarkInitialSync with the syncing node
// on a durable store in a temporary directory: each batch is committed with
// one fsync.
func BenchmarkInitialSyncDurable(b *testing.B) { benchInitialSync(b, true) }

func benchInitialSync(b *testing.B, durable bool) {
	const n = 10000
	params := chain.TestParams("syncbench")
	key, _ := p2p.GenerateKey()
	blocks, err := BuildChain(params, key, n, 1)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	src, err := Start(ctx, Config{Params: params, NoMiner: true})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	for i := 0; i < n; i += 512 {
		if _, err := src.Node.AddBlocks(ctx, blocks[i:min(i+512, n)]); err != nil {
			b.Fatal(err)
		}
	}
	bound := verifyRate(b, blocks, params)
	var best float64 // the fastest sync, blocks/s
	b.ResetTimer()
	i := 0
	for b.Loop() {
		b.StopTimer()
		cfg := Config{Params: params, NoMiner: true}
		var st *store.Store
		if durable {
			st, cfg.NodeOptions = openBenchStore(b, fmt.Sprintf("%s/%d", b.TempDir(), i), params)
		}
		i++
		b.StartTimer()
		start := time.Now()
		dst, err := Start(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		if err := dst.Connect(ctx, src); err != nil {
			b.Fatal(err)
		}
		if err := WaitFor(ctx, func() bool { return dst.Node.Status().Height == n }); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		best = max(best, float64(n)/time.Since(start).Seconds())
		dst.Close()
		if st != nil {
			_ = st.Close()
		}
		bound = max(bound, verifyRate(b, blocks, params))
		b.StartTimer()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "blocks/s")
	b.ReportMetric(bound, "bound_blocks/s")
	b.ReportMetric(best/bound, "ratio_to_bound")
}

// openBenchStore opens a durable store in dir and returns the node options
// that put a node on it.
func openBenchStore(b *testing.B, dir string, params chain.Params) (*store.Store, []node.Option) {
	b.Helper()
	st, err := store.Open(dir, params)
	if err != nil {
		b.Fatal(err)
	}
	s, err := st.Load()
	if err != nil {
		b.Fatal(err)
	}
	return st, []node.Option{node.WithStore(st, node.State{Main: s.Main, Side: s.Side, Pending: s.Pending})}
}

// verifyRate is VerifyRate (the blocks every core verifies per second),
// failing the benchmark if a block does not verify.
func verifyRate(b *testing.B, blocks []*chain.Block, params chain.Params) float64 {
	r, err := VerifyRate(blocks, params)
	if err != nil {
		b.Fatal(err)
	}
	return r
}

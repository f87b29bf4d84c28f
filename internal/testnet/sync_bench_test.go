package testnet

import (
	"context"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/p2p"
)

// BenchmarkInitialSync measures a fresh node catching up on a 10,000-block
// chain (one signed reading per block) from one peer over loopback: the
// status handshake, batches of 512 blocks, full validation (proof of work at
// difficulty 0, Merkle root, Ed25519 signatures on every core) and adding to
// the in-memory chain. Reports blocks/s.
//
//	go test -run '^$' -bench InitialSync -benchtime 3x ./internal/testnet
func BenchmarkInitialSync(b *testing.B) {
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
	b.ResetTimer()
	for b.Loop() {
		dst, err := Start(ctx, Config{Params: params, NoMiner: true})
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
		dst.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "blocks/s")
}

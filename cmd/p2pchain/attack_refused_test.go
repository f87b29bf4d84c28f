package main

import (
	"context"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/p2p"
	"github.com/p2pchain/p2pchain/internal/testnet"

	"github.com/libp2p/go-msgio"
)

// TestRefusedBatchCostRatio: attack class 6, measured as
// TestAttackCostRatio measures the others (a real node process at the
// default difficulty 18 is the victim, this process the attacker). The
// attacker builds ONE sync batch on the victim's tip before the
// measurement: 77 blocks of 1024 one-byte-subject readings (as many as the
// client's 8 MiB + MaxBlockSize cap lets through), each block's proof of
// work solved, the first block's last signature broken. Then, measured,
// fresh identities each claim a huge chain and serve that same batch.
// Before, the victim verified every block's signatures before it found
// block 1 invalid, refused the identity and forgot the batch, which was
// larger than its signature cache: each new identity cost it ~79,000
// verifications (victim/attacker CPU 18). Now verification ahead stops at
// the first failing block, and the refused block is recognised by its
// hash from the second identity on.
func TestRefusedBatchCostRatio(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real node process")
	}
	d := attackDuration(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute+4*d)
	defer cancel()
	v := startAttackVictim(t, chain.DefaultDifficulty, d)
	params := v.params

	// Preparation, not measured: the attacker's one-off work.
	prep := time.Now()
	key, _ := p2p.GenerateKey()
	blockSize := 104 + params.MaxReadings*108 // one-byte subjects: 108-byte readings
	nBlocks := (8<<20 + params.MaxBlockSize()) / blockSize
	batch, err := testnet.InvalidBatch(ctx, params, key, params.Genesis(), nBlocks, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var wire [][]byte
	for _, b := range batch {
		wire = append(wire, encodeBlock(t, b))
	}
	t.Logf("prepared once in %v: %d blocks, %d readings", time.Since(prep).Round(time.Millisecond), len(batch), len(batch)*params.MaxReadings)

	lie := func(theirs chain.Status) chain.Status {
		return chain.Status{Genesis: theirs.Genesis, Tip: chain.Hash{1}, Height: 1 << 40, Work: new(big.Int).Lsh(big.NewInt(1), 200)}
	}
	var identities, served atomic.Int64
	r := v.measure(ctx, "6 refused batch, resent", func(ctx context.Context) string {
		end := time.Now().Add(d)
		worker := func() {
			for time.Now().Before(end) && ctx.Err() == nil {
				a, err := v.attacker(ctx, testnet.AttackerConfig{Status: lie, Blocks: func(req p2p.BlocksRequest, w msgio.Writer) {
					served.Add(1)
					for _, m := range wire {
						if w.WriteMsg(m) != nil {
							return
						}
					}
				}})
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("attacker: %v", err)
					}
					return
				}
				identities.Add(1)
				wctx, wcancel := context.WithDeadline(ctx, end.Add(30*time.Second))
				if err := a.WaitRefused(wctx); err != nil && ctx.Err() == nil {
					t.Errorf("the victim did not refuse an identity that served the refused batch: %v", err)
				}
				wcancel()
				a.Close()
			}
		}
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() { defer wg.Done(); worker() }()
		}
		wg.Wait()
		return fmt.Sprintf("identities %d, batches served %d", identities.Load(), served.Load())
	})
	t.Logf("%s", r.row())
	if identities.Load() < 2 || served.Load() < identities.Load() {
		t.Fatalf("the attack did not run: %d identities, %d batches served", identities.Load(), served.Load())
	}
	if limit := attackRatio*r.attacker + attackSlack; r.victim > limit {
		t.Errorf("the victim spent %.2f s of CPU, over %d x the attacker's %.2f s + %v = %.2f s",
			r.victim.Seconds(), attackRatio, r.attacker.Seconds(), attackSlack, limit.Seconds())
	}
}

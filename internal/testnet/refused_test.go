package testnet

import (
	"math/big"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-msgio"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/p2p"
	"github.com/p2pchain/p2pchain/internal/store"
)

// TestRefusedSyncBatchCostsOneBlock: an attacker builds one sync batch on
// the victim's tip, once: full blocks of valid readings but for the first
// block's last signature. Each new peer ID claims a better chain and
// serves that same batch. Before, the victim verified every block's
// signatures before chain.Process refused block 1, and forgot the block:
// every new ID cost it the whole batch again (a batch larger than the
// signature cache missed it entirely). Now the verification ahead stops at
// the first block that fails (the blocks other cores had begun aside),
// the pipelined copy's verification stops before the peer is refused, and
// a block refused on a rule its hash decides is refused again on its hash:
// the second ID costs no signature at all.
func TestRefusedSyncBatchCostsOneBlock(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	params := chain.TestParams("refused-batch")
	st, err := store.Open(filepath.Join(t.TempDir(), "victim"), params)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	s, err := st.LoadRecent()
	if err != nil {
		t.Fatal(err)
	}
	victim := startN(t, ctx, 1, Config{Params: params, NoMiner: true, NodeOptions: []node.Option{node.WithStore(st, *s)}})[0]

	// More blocks than the cores could verify at once, twice over (the
	// batch and its pipelined copy).
	cores := runtime.GOMAXPROCS(0)
	nBlocks := 2*cores + 8
	key, _ := p2p.GenerateKey()
	batch, err := InvalidBatch(ctx, params, key, params.Genesis(), nBlocks, time.Now()) // rule 8 in block 1
	if err != nil {
		t.Fatal(err)
	}
	var wire [][]byte
	for _, b := range batch {
		wire = append(wire, encode(t, b))
	}

	lie := chain.Status{Genesis: params.Genesis().Hash(), Tip: chain.Hash{1}, Height: 1 << 20,
		Work: new(big.Int).Lsh(big.NewInt(1), 200)}
	info, err := peer.AddrInfoFromP2pAddr(victim.Host.TCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	var served atomic.Int64
	serve := func(_ p2p.BlocksRequest, w msgio.Writer) {
		served.Add(1)
		for _, m := range wire {
			if w.WriteMsg(m) != nil {
				return
			}
		}
	}
	var cost []uint64
	for id := range 2 {
		before, asked := victim.Node.SignaturesVerified(), served.Load()
		a, err := NewAttacker(ctx, AttackerConfig{Params: params, Target: *info,
			Status: func(chain.Status) chain.Status { return lie }, Blocks: serve})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.WaitRefused(ctx); err != nil {
			t.Fatalf("peer %d never refused: %v", id, err)
		}
		a.Close()
		// No sleep: the victim stops the pipelined copy's verification
		// ahead before it refuses the peer, so nothing of this peer's is
		// still being verified when the next peer's count starts.
		cost = append(cost, victim.Node.SignaturesVerified()-before)
		if served.Load() == asked {
			t.Fatalf("peer %d was refused before the victim asked for its batch", id)
		}
	}
	t.Logf("%d blocks of %d readings; signatures verified for the first peer %d, the second %d", nBlocks, params.MaxReadings, cost[0], cost[1])
	if h := victim.Node.Status().Height; h != 0 {
		t.Fatalf("the victim took the batch: height %d", h)
	}
	// The refused block and the blocks the other cores had begun, for the
	// batch and for its pipelined copy.
	if bound := uint64(2 * (cores + 1) * params.MaxReadings); cost[0] > bound {
		t.Errorf("the first peer cost %d signatures, over %d (the batch holds %d)", cost[0], bound, nBlocks*params.MaxReadings)
	}
	if cost[1] != 0 {
		t.Errorf("the same refused batch from a new peer ID cost %d signatures again, want 0", cost[1])
	}
}

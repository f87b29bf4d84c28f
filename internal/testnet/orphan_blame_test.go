package testnet

import (
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/p2p"
)

// TestInvalidOrphanBlamesItsRelayer: a peer gossips a block O on a parent P
// the node lacks (kept in the orphan pool, no blame: an honest relayer may
// be ahead), then P. P is taken, O connects and fails rule 8 on its last
// signature, after its other signatures were verified. Before, the failure
// was only logged, and the same peer could do it round after round; now
// the relayer of O is refused, as the relayer of an invalid block judged at
// once is.
func TestInvalidOrphanBlamesItsRelayer(t *testing.T) {
	ctx := testCtx(t, time.Minute)
	params := chain.TestParams("orphan-blame")
	victim := startN(t, ctx, 1, Config{Params: params, NoMiner: true})[0]
	r := newRawPeer(t, ctx, victim)
	key, _ := p2p.GenerateKey()
	now := time.Now()
	mine := func(parent *chain.Block, rs []chain.Reading) *chain.Block {
		b := &chain.Block{Readings: rs}
		b.Header = chain.Header{Version: chain.HeaderVersion, Height: parent.Header.Height + 1, Parent: parent.Hash(),
			Time: max(now.UnixMilli(), parent.Header.Time), Root: b.ReadingsRoot(), Count: uint32(len(rs)),
			Difficulty: params.Difficulty}
		if err := chain.Solve(ctx, &b.Header); err != nil {
			t.Fatal(err)
		}
		return b
	}
	readings := func(from, n int) []chain.Reading {
		out := make([]chain.Reading, n)
		for i := range out {
			rd, err := chain.NewReading(key, "o", chain.MinBPM+(from+i)%200, now.Add(-time.Duration(from+i)*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			out[i] = rd
		}
		return out
	}
	p := mine(params.Genesis(), readings(0, 1))
	rs := readings(1, 64)
	rs[len(rs)-1].Sig[9] ^= 1 // rule 8: a peer fault
	o := mine(p, rs)
	gossipUntilSeen(t, ctx, r, victim, encode(t, o)) // an orphan: ignored, kept
	if victim.Node.Orphans() != 1 {
		t.Fatalf("%d orphans, want O kept", victim.Node.Orphans())
	}
	if !r.connectedTo(victim) {
		t.Fatal("the relayer of an orphan was cut off")
	}
	gossipUntilSeen(t, ctx, r, victim, encode(t, p)) // its parent: O connects and fails
	if err := WaitFor(ctx, func() bool { return victim.Node.Status().Tip == p.Hash() }); err != nil {
		t.Fatal("P never taken")
	}
	if err := WaitFor(ctx, func() bool { return !r.connectedTo(victim) }); err != nil {
		t.Fatal("the peer that relayed an invalid block (judged once its parent came) is still connected")
	}
	if _, ok, _ := victim.Node.BlockByHash(o.Hash()); ok {
		t.Fatal("the victim holds the invalid orphan")
	}
}

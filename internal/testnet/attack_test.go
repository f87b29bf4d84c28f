package testnet

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/p2p"
)

// Attacks on history and on the cost of gossip, over the wire between real
// libp2p hosts on loopback. Each test asserts the bound the defence gives
// (history kept, nothing stored or relayed, no signature verified), not
// only that nothing crashed.

// finalVictim starts a node holding an honest chain of n blocks whose clock
// has moved on past the final age, so that all but the newest
// MaxReorgDepth blocks are final; and a witness connected only to it.
func finalVictim(t *testing.T, ctx context.Context, params chain.Params, n int) (victim, witness *Peer, honest []*chain.Block) {
	t.Helper()
	clock := NewClock(time.Now())
	victim = startN(t, ctx, 1, Config{Params: params, NoMiner: true, Clock: clock.Now})[0]
	key, _ := p2p.GenerateKey()
	honest, err := BuildChain(params, key, n, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := victim.Node.AddBlocks(ctx, honest); err != nil {
		t.Fatal(err)
	}
	clock.Advance(params.FinalAge + time.Second)
	if got, want := victim.Node.FinalHeight(), uint64(n)-uint64(params.MaxReorgDepth); got != want {
		t.Fatalf("final height %d, want %d", got, want)
	}
	witness = startN(t, ctx, 1, Config{Params: params, NoMiner: true})[0]
	if err := witness.Connect(ctx, victim); err != nil {
		t.Fatal(err)
	}
	waitHeight(t, ctx, witness, uint64(n))
	return victim, witness, honest
}

// TestHistoryCannotBeRewritten: a peer serves a chain from genesis longer
// (more work) than the victim's. The victim keeps its history, stores none
// of the attacker's blocks and passes none on; a reading deep in its chain
// keeps its confirmations.
func TestHistoryCannotBeRewritten(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	params := chain.TestParams("history")
	victim, witness, honest := finalVictim(t, ctx, params, 40)
	deep := honest[9].Readings[0].ID()
	before, _, _ := victim.Node.LocateReading(deep)

	key, _ := p2p.GenerateKey()
	forged, err := BuildChain(params, key, 42, 1)
	if err != nil {
		t.Fatal(err)
	}
	attacker := startN(t, ctx, 1, Config{Params: params, NoMiner: true})[0]
	if _, err := attacker.Node.AddBlocks(ctx, forged); err != nil {
		t.Fatal(err)
	}
	if err := victim.Connect(ctx, attacker); err != nil {
		t.Fatal(err)
	}
	// The victim asks the attacker for its better chain...
	if err := WaitFor(ctx, func() bool { return attacker.Host.Traffic().SyncOut > 0 }); err != nil {
		t.Fatal("the victim never asked the attacker for blocks")
	}
	time.Sleep(500 * time.Millisecond) // ...and has had time to take them
	st := victim.Node.Status()
	if st.Tip != honest[len(honest)-1].Hash() {
		t.Fatalf("the victim moved to tip %s at %d", st.Tip.Short(), st.Height)
	}
	for _, b := range forged[:3] {
		if _, ok, _ := victim.Node.BlockByHash(b.Hash()); ok {
			t.Fatalf("the victim stored the attacker's block %d", b.Header.Height)
		}
		if _, ok, _ := witness.Node.BlockByHash(b.Hash()); ok {
			t.Fatalf("the attacker's block %d reached the witness", b.Header.Height)
		}
	}
	after, ok, _ := victim.Node.LocateReading(deep)
	if !ok || after.Pending || after.Confirmations() != before.Confirmations() {
		t.Fatalf("the reading in block 10 has %d confirmations, had %d", after.Confirmations(), before.Confirmations())
	}
}

// gossipUntilSeen publishes data from r until the victim's gossip counter
// moves, then once more, and waits until the victim has taken that copy in
// too.
func gossipUntilSeen(t *testing.T, ctx context.Context, r *rawPeer, victim *Peer, data []byte) {
	t.Helper()
	before := victim.Host.Traffic().GossipIn
	err := WaitFor(ctx, func() bool {
		if victim.Host.Traffic().GossipIn > before {
			return true
		}
		_ = r.topic.Publish(ctx, data)
		time.Sleep(50 * time.Millisecond)
		return false
	})
	if err != nil {
		t.Fatal("the victim never received the message")
	}
}

func encode(t *testing.T, b *chain.Block) []byte {
	t.Helper()
	data, err := b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestGossipAttacksCostNoSignatures: blocks that fork below the final depth,
// copies of a known block with other signature bytes, a block from the end
// of time and a block signed with a small-order key are all turned away
// before any signature is verified. Only the last is the sender's fault.
func TestGossipAttacksCostNoSignatures(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	params := chain.TestParams("gossipcost")
	victim, witness, honest := finalVictim(t, ctx, params, 20)
	verified := victim.Node.SignaturesVerified()
	tip := honest[len(honest)-1]
	key, _ := p2p.GenerateKey()

	newBlock := func(parent *chain.Block, readings []chain.Reading, at time.Time) *chain.Block {
		b := &chain.Block{Readings: readings}
		b.Header = chain.Header{Version: chain.HeaderVersion, Height: parent.Header.Height + 1, Parent: parent.Hash(),
			Time: max(at.UnixMilli(), parent.Header.Time), Root: b.ReadingsRoot(), Count: uint32(len(readings)),
			Difficulty: params.Difficulty}
		if err := chain.Solve(context.Background(), &b.Header); err != nil {
			t.Fatal(err)
		}
		return b
	}
	reading := func(subject string) chain.Reading {
		r, err := chain.NewReading(key, subject, 70, time.UnixMilli(tip.Header.Time))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	r := newRawPeer(t, ctx, victim)

	// A valid block on genesis: below the final depth.
	deep := newBlock(params.Genesis(), []chain.Reading{reading("deep")}, time.UnixMilli(tip.Header.Time))
	gossipUntilSeen(t, ctx, r, victim, encode(t, deep))

	// Copies of the known tip, each with other bytes in its last signature.
	for i := range 20 {
		v := *tip
		v.Readings = append([]chain.Reading(nil), tip.Readings...)
		v.Readings[len(v.Readings)-1].Sig[63] ^= byte(i + 1)
		gossipUntilSeen(t, ctx, r, victim, encode(t, &v))
	}

	// A block from the end of time: not valid yet, not invalid either.
	future := newBlock(tip, []chain.Reading{reading("future")}, time.UnixMilli(tip.Header.Time))
	future.Header.Time = math.MaxInt64
	if err := chain.Solve(context.Background(), &future.Header); err != nil {
		t.Fatal(err)
	}
	gossipUntilSeen(t, ctx, r, victim, encode(t, future))

	time.Sleep(300 * time.Millisecond)
	if got := victim.Node.SignaturesVerified(); got != verified {
		t.Fatalf("the victim verified %d signatures for blocks it had to turn away", got-verified)
	}
	if !r.connectedTo(victim) {
		t.Fatal("the victim cut off a peer for blocks that are not invalid")
	}
	for _, b := range []*chain.Block{deep, future} {
		if _, ok, _ := victim.Node.BlockByHash(b.Hash()); ok {
			t.Fatalf("the victim stored block %s", b.Hash().Short())
		}
		if _, ok, _ := witness.Node.BlockByHash(b.Hash()); ok {
			t.Fatalf("block %s reached the witness", b.Hash().Short())
		}
	}

	// A reading whose author is the identity point "verifies" for any
	// content with no private key: refused on the key, before any
	// signature, and the sender is cut off.
	forged := chain.Reading{Subject: "mallory", BPM: 70, Time: tip.Header.Time}
	forged.Author[0] = 1 // the identity point
	forged.Sig[0] = 1    // R = identity, S = 0
	evil := newBlock(tip, []chain.Reading{forged}, time.UnixMilli(tip.Header.Time))
	if err := chain.CheckBlock(evil, params); !errors.Is(err, chain.ErrBadKey) {
		t.Fatalf("CheckBlock of a small-order key: %v, want %v", err, chain.ErrBadKey)
	}
	gossipUntilSeen(t, ctx, r, victim, encode(t, evil))
	if err := WaitFor(ctx, func() bool { return !r.connectedTo(victim) }); err != nil {
		t.Fatal("the victim kept a peer that gossiped a small-order key")
	}
	if got := victim.Node.SignaturesVerified(); got != verified {
		t.Fatalf("the victim verified %d signatures of a block with a small-order key", got-verified)
	}
	if st := victim.Node.Status(); st.Tip != tip.Hash() {
		t.Fatalf("the victim's tip moved to %s", st.Tip.Short())
	}
}

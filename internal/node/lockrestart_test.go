package node_test

import (
	"context"
	"crypto/ed25519"
	"path/filepath"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/bft"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/store"
)

// TestLockedBlockSurvivesRestart: an authority persisted its lock (BFT.md
// 10) but not the block it was locked on (a proposal's body was kept in
// memory only). After a restart it could never judge that block again, so
// it never prevoted it, and being locked it prevoted nil for every other
// block too. When every authority restarted (maintenance, a power cut) and
// more than n - q of them were locked on a block that was not decided, no
// node held the block and the network halted for good with every
// authority up (seen with 5 real processes stopped and started together:
// one height, round 15 and climbing, 5 heard, quorum 4). The locked and
// valid blocks are now stored with the consensus state.
//
// Here the node is authority 0 of 4; the test plays authorities 1 to 3.
// Height 1, round 0: authority 1 proposes B, 0, 1 and 2 prevote B, so the
// node locks on B and precommits it; the precommits of the others never
// come (they went down). Everyone restarts. In round 1 authority 2 (the
// proposer, whose valid value is B) proposes B again with its proof of
// lock, round 0, but without the block, which it lost too. A node that
// could still judge its locked block prevotes B and the height goes on.
func TestLockedBlockSurvivesRestart(t *testing.T) {
	keys := []ed25519.PrivateKey{key(61), key(62), key(63), key(64)}
	net := authorityNetwork(t, keys)
	gen := net.Params.Genesis().Hash()
	dir := filepath.Join(t.TempDir(), "store")
	open := func() (*node.Node, *store.Store) { return openNodeAs(t, net, dir, keys[0]) }
	vote := func(k bft.Kind, round int32, h chain.Hash, idx int) []byte {
		v := &bft.Vote{Type: k, Height: 1, Round: round, Hash: h, Index: uint16(idx)}
		v.Sign(gen, keys[idx])
		return v.AppendBinary(nil)
	}
	voted := func(rec *recorder, k bft.Kind, round int32) (chain.Hash, bool) {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, m := range rec.msgs {
			if v, ok := m.(*bft.Vote); ok && v.Type == k && v.Height == 1 && v.Round == round {
				return v.Hash, true
			}
		}
		return chain.Hash{}, false
	}

	n, st := open()
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(ctx, rec) }()
	genesis := net.Params.Genesis()
	b := nextBlock(t, net, genesis, 70)
	p := &bft.Proposal{Height: 1, Round: 0, Hash: b.Hash(), POLRound: -1}
	p.Sign(gen, keys[1])
	withBlock, err := b.AppendBinary(p.AppendBinary(nil))
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, ok := voted(rec, bft.KindPrevote, 0); ok {
			break
		}
		if time.Now().After(end) {
			t.Fatal("no prevote at (1, 0)")
		}
		_ = n.HandleConsensus(ctx, withBlock)
	}
	_ = n.HandleConsensus(ctx, vote(bft.KindPrevote, 0, b.Hash(), 1))
	_ = n.HandleConsensus(ctx, vote(bft.KindPrevote, 0, b.Hash(), 2))
	waitFor(t, 5*time.Second, "a precommit at (1, 0)", func() bool { _, ok := voted(rec, bft.KindPrecommit, 0); return ok })
	if h, _ := voted(rec, bft.KindPrecommit, 0); h != b.Hash() {
		t.Fatalf("precommit at (1, 0) for %s, want B %s", h.Short(), b.Hash().Short())
	}
	// Everyone goes down (a clean stop).
	cancel()
	<-done
	_ = st.Close()

	n2, st2 := open()
	defer st2.Close()
	rec2 := &recorder{}
	ctx2, cancel2 := context.WithCancel(context.Background())
	done2 := make(chan struct{})
	go func() { defer close(done2); _ = n2.Run(ctx2, rec2) }()
	defer func() { cancel2(); <-done2 }()
	time.Sleep(300 * time.Millisecond)

	// Round 1: authority 2 proposes B with its proof of lock (the prevotes
	// of round 0 travel with it), without the block nobody holds any more;
	// authority 3 prevotes nil at round 1 (it has no block either), which
	// with the proposal makes f + 1 = 2 authorities at round 1.
	p1 := &bft.Proposal{Height: 1, Round: 1, Hash: b.Hash(), POLRound: 0}
	p1.Sign(gen, keys[2])
	msgs := [][]byte{p1.AppendBinary(nil), vote(bft.KindPrevote, 0, b.Hash(), 1), vote(bft.KindPrevote, 0, b.Hash(), 2),
		vote(bft.KindPrevote, 1, chain.Hash{}, 3)}
	for end := time.Now().Add(8 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		if _, ok := voted(rec2, bft.KindPrevote, 1); ok {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("no prevote at (1, 1) after the restart; consensus %+v", n2.Consensus())
		}
		for _, m := range msgs {
			_ = n2.HandleConsensus(ctx2, m)
		}
	}
	if h, _ := voted(rec2, bft.KindPrevote, 1); h != b.Hash() {
		t.Errorf("after a restart the node, locked on B %s, prevoted %s at (1, 1) for B's re-proposal with its proof of lock: "+
			"it no longer holds the block it is locked on, so it can prevote no block at this height; with more than n - q "+
			"authorities in this state (all restarted) the network never decides again", b.Hash().Short(), h.Short())
	}
}

package node_test

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"crypto/ed25519"

	"github.com/p2pchain/p2pchain/internal/bft"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/store"
)

// lagStore is a real durable store whose block commits can be held back,
// as a slow disk or a commit queue behind a large sync batch holds them.
// It records the durable tip and the height of every consensus state saved.
type lagStore struct {
	*store.Store
	mu      sync.Mutex
	hold    chan struct{} // non-nil: a block commit waits on it
	crashed bool          // the process "died": a held commit never reaches the disk
	durable uint64        // the highest block height Apply made durable
	saved   []string      // "state h=H with durable tip T"
	bad     []string      // states saved for a height above durable tip + 1
}

var errCrash = errors.New("crash: commit never reached the disk")

func (s *lagStore) Apply(blocks []*chain.Block, updates []*chain.Update, add []chain.Reading, rm []chain.Hash) error {
	s.mu.Lock()
	hold := s.hold
	s.mu.Unlock()
	if hold != nil && len(blocks) > 0 {
		<-hold
		s.mu.Lock()
		crashed := s.crashed
		s.mu.Unlock()
		if crashed {
			return errCrash
		}
	}
	if err := s.Store.Apply(blocks, updates, add, rm); err != nil {
		return err
	}
	s.mu.Lock()
	for _, b := range blocks {
		s.durable = max(s.durable, b.Header.Height)
	}
	s.mu.Unlock()
	return nil
}

func (s *lagStore) SaveConsensus(state []byte, blocks []*chain.Block, newHeight bool) error {
	var st bft.State
	if err := st.UnmarshalBinary(state); err != nil {
		return err
	}
	s.mu.Lock()
	if st.Height > s.durable+1 {
		s.bad = append(s.bad, "consensus state of height "+itoa(st.Height)+" saved while the durable tip is "+itoa(s.durable))
	}
	s.mu.Unlock()
	return s.Store.SaveConsensus(state, blocks, newHeight)
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

// recorder is a Broadcaster that keeps the consensus messages the node sends.
type recorder struct {
	mu   sync.Mutex
	msgs []bft.Message
}

func (r *recorder) BroadcastBlock(context.Context, *chain.Block) error    { return nil }
func (r *recorder) BroadcastReading(context.Context, chain.Reading) error { return nil }
func (r *recorder) CatchUp()                                              {}
func (r *recorder) BroadcastConsensus(_ context.Context, data []byte) error {
	size := len(data)
	if bft.Kind(data[0]) == bft.KindProposal && size > bft.ProposalSize {
		size = bft.ProposalSize
	}
	m, err := bft.DecodeMessage(data[:size])
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
	return nil
}

// votes returns this node's prevotes at (height, round).
func (r *recorder) prevotes(h uint64, round int32) map[chain.Hash]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[chain.Hash]bool{}
	for _, m := range r.msgs {
		if v, ok := m.(*bft.Vote); ok && v.Type == bft.KindPrevote && v.Height == h && v.Round == round {
			out[v.Hash] = true
		}
	}
	return out
}

// TestStateNotAheadOfDurableChain: an authority must never store (and act
// on) its consensus state for height h+1 while block h is not yet durable.
// Block 1 arrives from a peer and its commit is slow to reach the disk; a
// peer's proposal for height 2 arrives meanwhile. Before, the node
// prevoted at height 2 and stored that state, died before block 1's commit
// landed (kill -9), restarted at tip 0, dropped the stored state of height
// 2 as "a height already decided", and once block 1 was back signed a
// second, different prevote at (2, 0): it equivocated without losing its
// disk. Now its consensus follows the durable tip.
func TestStateNotAheadOfDurableChain(t *testing.T) {
	keys := []ed25519.PrivateKey{key(41), key(42), key(43), key(44)}
	net := authorityNetwork(t, keys)
	gen := net.Params.Genesis().Hash()
	dir := filepath.Join(t.TempDir(), "store")
	open := func() (*node.Node, *lagStore) {
		st, state := openState(t, net, dir)
		ls := &lagStore{Store: st}
		if len(state.Main) > 0 {
			ls.durable = state.Main[len(state.Main)-1].Header.Height
		}
		return newNodeOn(t, net, ls, state, keys[0]), ls
	}
	n, ls := open()
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(ctx, rec) }()
	time.Sleep(300 * time.Millisecond) // the node runs; then block 1 comes from a peer

	genesis := net.Params.Genesis()
	b1 := nextBlock(t, net, genesis, 70)
	b1.Seal = seal(net, b1, keys[1:], []int{1, 2, 3})
	b2 := nextBlock(t, net, b1, 71)

	// Block 1 from a peer; its commit is held (slow disk).
	ls.mu.Lock()
	ls.hold = make(chan struct{})
	ls.mu.Unlock()
	go func() { _ = n.AddBlock(ctx, b1) }()
	waitFor(t, 5*time.Second, "block 1 in memory", func() bool { return n.Status().Height == 1 })

	// The proposer of (2, 0) (index 2) sends its proposal with block 2.
	p := &bft.Proposal{Height: 2, Round: 0, Hash: b2.Hash(), POLRound: -1}
	p.Sign(gen, keys[2])
	data, err := b2.AppendBinary(p.AppendBinary(nil))
	if err != nil {
		t.Fatal(err)
	}
	// It resends it (as the proposer does every Resend, 1 s) until the node
	// prevotes. A correct node does not sign at height 2 while block 1 is
	// not durable.
	for end := time.Now().Add(3 * time.Second); len(rec.prevotes(2, 0)) == 0 && time.Now().Before(end); {
		go func() { _ = n.HandleConsensus(ctx, data) }()
		time.Sleep(250 * time.Millisecond)
	}
	// A correct node sent none (its consensus waits for block 1 on disk);
	// the restart below must still sign at height 2 once block 1 is
	// back, and never differently from a prevote sent before the crash.
	before := rec.prevotes(2, 0)
	c := n.Consensus()
	t.Logf("prevotes at (2, 0) before the crash: %d; consensus at height %d, round %d, step %s", len(before), c.Height, c.Round, c.Step)

	// kill -9: block 1's commit never reaches the disk.
	ls.mu.Lock()
	ls.crashed = true
	bad := append([]string(nil), ls.bad...)
	close(ls.hold)
	ls.hold = nil
	ls.mu.Unlock()
	cancel()
	<-done
	_ = ls.Store.Close()
	for _, b := range bad {
		t.Errorf("%s", b)
	}

	// Restart on the same directory.
	n2, ls2 := open()
	raw, err := ls2.Store.Consensus()
	var st bft.State
	if err == nil && raw != nil {
		err = st.UnmarshalBinary(raw)
	}
	if err != nil {
		t.Fatalf("the stored consensus state: %v", err)
	}
	t.Logf("after restart: tip %d, stored consensus state of height %d (prevote(s) before the crash: %d)", n2.Status().Height, st.Height, len(before))
	rec2 := &recorder{}
	ctx2, cancel2 := context.WithCancel(context.Background())
	done2 := make(chan struct{})
	go func() { defer close(done2); _ = n2.Run(ctx2, rec2) }()
	defer func() { cancel2(); <-done2; _ = ls2.Store.Close() }()
	time.Sleep(500 * time.Millisecond)            // the node is up (resumeConsensus ran) before the sync brings block 1
	if err := n2.AddBlock(ctx2, b1); err != nil { // sync brings block 1 back
		t.Fatal(err)
	}
	if _, err := n2.Submit("alice", 72); err != nil { // something to record: height 2 starts
		t.Fatal(err)
	}
	// The proposal with its block does not come again in time (the
	// proposer resends it every 4 s at most): propose timeout, prevote nil.
	waitFor(t, 10*time.Second, "a prevote at (2, 0) after the restart", func() bool { return len(rec2.prevotes(2, 0)) > 0 })
	for h := range rec2.prevotes(2, 0) {
		for g := range before {
			if h != g {
				t.Errorf("double sign: prevote at (2, 0) for %s before the crash and for %s after the restart", g.Short(), h.Short())
			}
		}
	}
}

// TestFinalNotAheadOfDurableChain: the final height a node reports (Final,
// FinalHeight: GET /api/v1/status finalized_height, the metrics gauge,
// "final" of blocks and receipts) must never name a block the node does not
// hold durably: after a crash it would go backwards, and a receipt called
// final would name a block the node no longer has. Block 1 arrives sealed
// from a peer and its commit is slow to reach the disk.
func TestFinalNotAheadOfDurableChain(t *testing.T) {
	keys := []ed25519.PrivateKey{key(51), key(52), key(53), key(54)}
	net := authorityNetwork(t, keys)
	dir := filepath.Join(t.TempDir(), "store")
	st, state := openState(t, net, dir)
	ls := &lagStore{Store: st, hold: make(chan struct{})}
	n := newNodeOn(t, net, ls, state, key(9))
	ctx := context.Background()
	genesis := net.Params.Genesis()
	b1 := nextBlock(t, net, genesis, 70)
	b1.Seal = seal(net, b1, keys[1:], []int{1, 2, 3})
	added := make(chan error, 1)
	go func() { added <- n.AddBlock(ctx, b1) }()
	waitFor(t, 5*time.Second, "block 1 in memory", func() bool { return n.Status().Height == 1 })
	final, hash := n.Final()
	ls.mu.Lock()
	durable := ls.durable
	ls.crashed = true // kill -9 now: the commit of block 1 never lands
	close(ls.hold)
	ls.mu.Unlock()
	<-added
	_ = st.Close()
	if final > durable {
		t.Errorf("the node reported final height %d (block %s) while its durable tip was %d", final, hash.Short(), durable)
	}
	st2, s2 := openState(t, net, dir)
	defer st2.Close()
	after := uint64(0)
	if len(s2.Main) > 0 {
		after = s2.Main[len(s2.Main)-1].Header.Height
	}
	if after < final {
		t.Errorf("after the restart the chain ends at %d: the final height went backwards from %d", after, final)
	}
}

package node_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/bft"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/netfile"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/p2p"
	"github.com/p2pchain/p2pchain/internal/store"
)

// authorityNetwork returns the network whose genesis authorities hold keys.
func authorityNetwork(t *testing.T, keys []ed25519.PrivateKey) *netfile.Network {
	t.Helper()
	return authorityNetworkWith(t, keys, func(*netfile.File) {})
}

// authorityNetworkWith is authorityNetwork with the network file changed
// by change first.
func authorityNetworkWith(t *testing.T, keys []ed25519.PrivateKey, change func(*netfile.File)) *netfile.Network {
	t.Helper()
	var ids []string
	for _, k := range keys {
		id, err := p2p.PeerID(k)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id.String())
	}
	f, err := netfile.New("ward", ids)
	if err != nil {
		t.Fatal(err)
	}
	f.GenesisTime = "2026-01-01T00:00:00Z"
	change(f)
	net, err := netfile.Parse(f.Encode())
	if err != nil {
		t.Fatal(err)
	}
	return net
}

// seal signs blk's precommits at round 0 with the keys of the given
// indexes in set order (signers[i] signs as index idx[i]).
func seal(net *netfile.Network, blk *chain.Block, signers []ed25519.PrivateKey, idx []int) []byte {
	c := bft.Commit{Height: blk.Header.Height, Hash: blk.Hash()}
	for i, k := range signers {
		v := bft.Vote{Type: bft.KindPrecommit, Height: c.Height, Hash: c.Hash, Index: uint16(idx[i])}
		v.Sign(net.Params.Genesis().Hash(), k)
		c.Sigs = append(c.Sigs, bft.CommitSig{Index: v.Index, Sig: v.Sig})
	}
	return c.AppendBinary(nil)
}

// nextBlock returns an unsealed block on parent with one reading and the
// given changes.
func nextBlock(t *testing.T, net *netfile.Network, parent *chain.Block, bpm int, changes ...bft.Change) *chain.Block {
	t.Helper()
	at := time.UnixMilli(parent.Header.Time).Add(time.Second)
	r, err := chain.NewReading(key(1), "alice", bpm, at)
	if err != nil {
		t.Fatal(err)
	}
	b := &chain.Block{Readings: []chain.Reading{r}, Changes: bft.EncodeChanges(changes)}
	b.Header = chain.Header{Version: chain.HeaderVersion, Height: parent.Header.Height + 1, Parent: parent.Hash(),
		Time: at.UnixMilli(), Count: 1}
	b.Header.Root = b.ReadingsRoot()
	return b
}

func openAuthorityNode(t *testing.T, net *netfile.Network, dir string) (*node.Node, *store.Store) {
	t.Helper()
	return openNodeAs(t, net, dir, key(9), node.WithClock(func() time.Time { return time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC) }))
}

// openNodeAs opens the store in dir (made if new) and a node of net on it
// with key k.
func openNodeAs(t *testing.T, net *netfile.Network, dir string, k ed25519.PrivateKey, opts ...node.Option) (*node.Node, *store.Store) {
	t.Helper()
	st, state := openState(t, net, dir)
	return newNodeOn(t, net, st, state, k, opts...), st
}

// openState opens the store in dir (made if new) and loads its state.
func openState(t *testing.T, net *netfile.Network, dir string) (*store.Store, node.State) {
	t.Helper()
	st, err := store.Open(dir, net.Params)
	if err != nil {
		t.Fatal(err)
	}
	s, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	return st, node.State{Main: s.Main, Pending: s.Pending}
}

// newNodeOn starts an authority node of net with key k on st (a store, or
// one that wraps it), from state.
func newNodeOn(t *testing.T, net *netfile.Network, st node.Store, state node.State, k ed25519.PrivateKey, opts ...node.Option) *node.Node {
	t.Helper()
	n, err := node.New(net.Params, k, append([]node.Option{node.WithAuthority(net.Authority()), node.WithStore(st, state)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A follower accepts a block only with a commit of more than two thirds of
// the authorities of its height, every signature valid, and follows the
// membership changes blocks carry: from the height a change names, commits
// are checked against the new set. After a restart it has the same sets.
func TestFollowerChecksSeals(t *testing.T) {
	keys := []ed25519.PrivateKey{key(21), key(22), key(23), key(24)}
	newcomer := key(25)
	net := authorityNetwork(t, keys)
	dir := filepath.Join(t.TempDir(), "store")
	n, st := openAuthorityNode(t, net, dir)
	ctx := context.Background()
	g, _, _ := n.BlockByHeight(0)
	genesis := g.Block

	b1 := nextBlock(t, net, genesis, 70)
	for _, c := range []struct {
		name string
		seal []byte
	}{
		{"no seal", nil},
		{"two of four", seal(net, b1, keys[:2], []int{0, 1})},
		{"a forged signature", seal(net, b1, []ed25519.PrivateKey{keys[0], keys[1], key(99)}, []int{0, 1, 2})},
		{"a signer twice", seal(net, b1, []ed25519.PrivateKey{keys[0], keys[1], keys[1]}, []int{0, 1, 1})},
		{"an index outside the set", seal(net, b1, []ed25519.PrivateKey{keys[0], keys[1], keys[2]}, []int{0, 1, 4})},
		{"another block's commit", func() []byte {
			other := nextBlock(t, net, genesis, 71)
			return seal(net, other, keys[:3], []int{0, 1, 2})
		}()},
	} {
		bad := *b1
		bad.Seal = c.seal
		if err := n.AddBlock(ctx, &bad); !errors.Is(err, chain.ErrBadSeal) {
			t.Errorf("%s: got %v, want ErrBadSeal", c.name, err)
		}
	}
	if st := n.Status(); st.Height != 0 {
		t.Fatalf("a badly sealed block joined the chain: height %d", st.Height)
	}
	b1.Seal = seal(net, b1, keys[1:4], []int{1, 2, 3})
	if err := n.AddBlock(ctx, b1); err != nil {
		t.Fatal(err)
	}
	if h, hash := n.Final(); h != 1 || hash != b1.Hash() {
		t.Fatalf("final %d %s after a sealed block, want 1 %s", h, hash.Short(), b1.Hash().Short())
	}
	if rs, ok, _ := n.LocateReading(b1.Readings[0].ID()); !ok || !rs.Final {
		t.Fatalf("reading of a sealed block: %+v", rs)
	}
	// A sibling of a final block, however well sealed, is refused.
	sib := nextBlock(t, net, genesis, 72)
	sib.Seal = seal(net, sib, keys[:3], []int{0, 1, 2})
	if err := n.AddBlock(ctx, sib); !errors.Is(err, chain.ErrForkTooDeep) {
		t.Fatalf("sibling of a final block: %v", err)
	}

	// Block 2 adds the newcomer from height 3.
	add := bft.Change{Op: bft.OpAdd, Height: 3, Key: bft.KeyOf(newcomer)}
	b2 := nextBlock(t, net, b1, 73, add)
	b2.Seal = seal(net, b2, keys[:3], []int{0, 1, 2})
	if err := n.AddBlock(ctx, b2); err != nil {
		t.Fatal(err)
	}
	if got := n.AuthoritySet(3).Len(); got != 5 {
		t.Fatalf("set of height 3 has %d authorities, want 5", got)
	}
	// Height 3 needs 4 of 5: three old authorities are too few.
	b3 := nextBlock(t, net, b2, 74)
	b3.Seal = seal(net, b3, keys[:3], []int{0, 1, 2})
	if err := n.AddBlock(ctx, b3); !errors.Is(err, chain.ErrBadSeal) {
		t.Fatalf("3 of 5 signatures: %v", err)
	}
	b3.Seal = seal(net, b3, []ed25519.PrivateKey{keys[0], keys[1], keys[2], newcomer}, []int{0, 1, 2, 4})
	if err := n.AddBlock(ctx, b3); err != nil {
		t.Fatal(err)
	}
	// A change the schedule refuses (adding an authority twice) makes a
	// sealed block invalid.
	b4 := nextBlock(t, net, b3, 75, bft.Change{Op: bft.OpAdd, Height: 5, Key: bft.KeyOf(newcomer)})
	b4.Seal = seal(net, b4, []ed25519.PrivateKey{keys[0], keys[1], keys[2], newcomer}, []int{0, 1, 2, 4})
	if err := n.AddBlock(ctx, b4); !errors.Is(err, chain.ErrBadSeal) {
		t.Fatalf("a block adding an authority twice: %v", err)
	}

	// After a restart the schedule is rebuilt from the stored blocks.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	n2, st2 := openAuthorityNode(t, net, dir)
	defer st2.Close()
	if got := n2.AuthoritySet(3).Len(); got != 5 || n2.Status().Height != 3 {
		t.Fatalf("after restart: set of height 3 has %d authorities, height %d", got, n2.Status().Height)
	}
	if h, _ := n2.Final(); h != 3 {
		t.Fatalf("after restart final height %d, want 3", h)
	}
}

// A proof-of-work node has no authorities to approve.
func TestApproveOnProofOfWork(t *testing.T) {
	n := newNode(t, chain.TestParams("pow"))
	if err := n.Approve(bft.Change{Op: bft.OpAdd, Key: bft.KeyOf(key(3))}); err == nil {
		t.Fatal("Approve on a proof-of-work network succeeded")
	}
	if info := n.Consensus(); info.Kind != "pow" || info.Self != -1 {
		t.Fatalf("consensus info %+v", info)
	}
}

// TestProposalReplayIsCheap: a proposal with its block that the consensus
// machine took, sent again (as a peer may, behind a new gossip message id),
// is answered as a repeat before its signatures are checked again or
// the loop is asked: here, once the loop has stopped, at once.
func TestProposalReplayIsCheap(t *testing.T) {
	keys := []ed25519.PrivateKey{key(21), key(22), key(23), key(24)}
	net := authorityNetwork(t, keys)
	n, st := openAuthorityNode(t, net, filepath.Join(t.TempDir(), "store"))
	defer st.Close()
	g, _, _ := n.BlockByHeight(0)
	genesis := g.Block
	blk := nextBlock(t, net, genesis, 70)
	set := n.AuthoritySet(1)
	var proposer ed25519.PrivateKey
	for _, k := range keys {
		if bft.KeyOf(k) == set.Key(set.Proposer(1, 0)) {
			proposer = k
		}
	}
	p := bft.Proposal{Height: 1, Hash: blk.Hash(), POLRound: -1}
	p.Sign(net.Params.Genesis().Hash(), proposer)
	data, err := blk.AppendBinary(p.AppendBinary(nil))
	if err != nil {
		t.Fatal(err)
	}

	run, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(run, nil) }()
	if err := n.HandleConsensus(context.Background(), data); err != nil {
		t.Fatalf("the proposal: %v", err)
	}
	stop()
	<-done

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for range 100 {
		if err := n.HandleConsensus(ctx, data); !errors.Is(err, bft.ErrRepeat) && !errors.Is(err, bft.ErrDuplicate) {
			t.Fatalf("the proposal again, the loop stopped: %v, want a duplicate at once", err)
		}
	}
	// A forged copy (another signature) is no duplicate: it is checked.
	forged := append([]byte(nil), data...)
	forged[bft.ProposalSize-1] ^= 1
	if err := n.HandleConsensus(ctx, forged); !bft.IsPeerFault(err) {
		t.Fatalf("a proposal with a changed signature: %v, want a peer fault", err)
	}
}

// TestForgedNextProposalsCostBoundedChecks: a proposal for the height
// after next, with a block, is checked against the authority set known now
// so that only a real one's block waits for that height; a failed check is
// no fault (the set may change before then), so a stranger forges them
// for free. The checks they cost are bounded, not one (two, with the
// machine's) per message: before, each relayed forgery cost an Ed25519
// verification in the gossip validator, on every core, at up to 2,000
// messages a second from each peer.
func TestForgedNextProposalsCostBoundedChecks(t *testing.T) {
	keys := []ed25519.PrivateKey{key(31), key(32), key(33), key(34)}
	net := authorityNetwork(t, keys)
	n, st := openAuthorityNode(t, net, filepath.Join(t.TempDir(), "store"))
	defer st.Close()
	g, _, _ := n.BlockByHeight(0)
	b1 := nextBlock(t, net, g.Block, 70)
	blk := nextBlock(t, net, b1, 71) // of height 2: the height after next
	run, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(run, nil) }()
	defer func() { stop(); <-done }()

	const count = 3000
	messages := func(height uint64) [][]byte {
		out := make([][]byte, count)
		for i := range out {
			p := bft.Proposal{Height: height, Hash: blk.Hash(), POLRound: -1}
			p.Sig[0], p.Sig[1] = byte(i), byte(i>>8) // any bytes: forging costs nothing
			data, err := blk.AppendBinary(p.AppendBinary(nil))
			if err != nil {
				t.Fatal(err)
			}
			out[i] = data
		}
		return out
	}
	ctx := context.Background()
	cost := func(msgs [][]byte) time.Duration {
		start := time.Now()
		for i, data := range msgs {
			if err := n.HandleConsensus(ctx, data); err == nil || bft.IsPeerFault(err) || chain.IsPeerFault(err) {
				t.Fatalf("message %d: %v, want refused without fault", i, err)
			}
		}
		return time.Since(start)
	}
	base := cost(messages(0)) // a decided height: no check
	spent := cost(messages(2))
	t.Logf("%d proposals of a decided height: %v; %d forged ones of the height after next: %v", count, base, count, spent)
	if spent > 3*base+100*time.Millisecond {
		t.Fatalf("forged proposals of the height after next cost %v, of a decided height %v: a signature check each", spent, base)
	}
}

// TestIdleUntil: on an authority network with nothing to decide, the
// consensus info says when the next block is due (the last block plus the
// block interval): until then the authorities send nothing, and a node
// that hears none of them is not short of them. Once a reading waits, the
// network is no longer idle.
func TestIdleUntil(t *testing.T) {
	keys := []ed25519.PrivateKey{key(61)}
	net := authorityNetworkWith(t, keys, func(f *netfile.File) { f.BlockInterval = "1h" })
	n, err := node.New(net.Params, key(62), node.WithAuthority(net.Authority())) // a follower
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(ctx, nil) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for n.Consensus().IdleUntil.IsZero() {
		if time.Now().After(deadline) {
			t.Fatal("an idle network's follower does not say when the next block is due")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if due := n.Consensus().IdleUntil; due.Before(time.Now().Add(59*time.Minute)) || due.After(time.Now().Add(time.Hour)) {
		t.Errorf("idle until %v, want about an hour from now", due)
	}
	if _, err := n.Submit("alice", 72); err != nil {
		t.Fatal(err)
	}
	if due := n.Consensus().IdleUntil; !due.IsZero() {
		t.Errorf("with a reading pending: idle until %v, want not idle", due)
	}
}

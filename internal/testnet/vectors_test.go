package testnet_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/chain/chaintest"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/store"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// TestBlockVectorsOverTheWire sends the block vectors of package chaintest
// to a live node (libp2p on loopback, a durable store, the vectors'
// checkpoint and clock) by gossip from a hostile peer, one block a step,
// and checks after each step what docs/PROTOCOL.md (sections 5, 11.1 and
// 12) says: the node's tip; an accepted block is known and on the branch
// the vectors say; a refused block is not kept, and counted by the rule it
// broke (or by the host, when it fails before the ledger: over the size
// limit, or not decodable); the sender of a block with a peer-fault error
// is refused, the sender of any other block is not. At the end the store,
// read back, holds the same tip.
func TestBlockVectorsOverTheWire(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node and dozens of peers")
	}
	v, err := chaintest.Generate()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p := v.Params
	dir := t.TempDir()
	st, err := store.Open(dir, p)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	clock := testnet.NewClock(v.Steps[0].Now)
	cp := v.Checkpoint
	target, err := testnet.Start(ctx, testnet.Config{Params: p, NoMiner: true, Clock: clock.Now,
		NodeOptions: []node.Option{
			node.WithStore(st, node.State{Main: loaded.Main, Side: loaded.Side, Pending: loaded.Pending}),
			node.WithCheckpoint(&cp),
		}})
	if err != nil {
		_ = st.Close()
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = target.Close()
			_ = st.Close()
		}
	}
	defer stop()
	info, err := peer.AddrInfoFromP2pAddr(target.Host.TCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	n := target.Node

	var a *testnet.Attacker
	defer func() {
		if a != nil {
			a.Close()
		}
	}()
	refused := 0
	for i, s := range v.Steps {
		clock.Advance(s.Now.Sub(clock.Now()))
		data, err := s.Block.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if a == nil {
			if a, err = testnet.NewAttacker(ctx, testnet.AttackerConfig{Params: p, Target: *info, Gossip: true}); err != nil {
				t.Fatal(err)
			}
		}
		hash := s.Block.Hash()
		_, known, err := n.BlockByHash(hash)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		rejected, traffic, orphans := n.Rejected(), target.Host.Traffic(), n.Orphans()
		if err := a.Publish(ctx, data); err != nil {
			t.Fatal(err)
		}
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("step %d %q (%v %v): %s", i, s.Name, s.Outcome, s.Code, fmt.Sprintf(format, args...))
		}
		fault := s.Outcome == chaintest.Rejected && chain.IsPeerFault(s.Code)
		switch {
		case s.Outcome == chaintest.Main || s.Outcome == chaintest.Side:
			err := testnet.WaitFor(ctx, func() bool {
				b, ok, _ := n.BlockByHash(hash)
				return ok && b.Main == (s.Outcome == chaintest.Main) && n.Status().Tip == s.Tip
			})
			if err != nil {
				fail("the node did not take it as the vectors say: %v", err)
			}
		case fault:
			if err := a.WaitRefused(ctx); err != nil {
				fail("the sender of an invalid block was not refused: %v", err)
			}
			a.Close()
			a = nil
			refused++
			now := target.Host.Traffic()
			_, decodeErr := chain.DecodeBlock(data, p.MaxReadings)
			switch {
			case len(data) > p.MaxBlockSize():
				if now.Oversized == traffic.Oversized {
					fail("a %d-byte block was not counted as oversized", len(data))
				}
			case decodeErr != nil:
				if chain.CodeOf(decodeErr) != s.Code || now.Malformed == traffic.Malformed {
					fail("refused at decoding with %v (counted %v), want %v", decodeErr, now.Malformed > traffic.Malformed, s.Code)
				}
			default:
				if got := n.Rejected()[s.Code.String()]; got != rejected[s.Code.String()]+1 {
					fail("the node counted %d blocks refused for %q, want %d", got, s.Code, rejected[s.Code.String()]+1)
				}
			}
		default:
			// Ignored: an orphan, a duplicate, a block from too far ahead
			// or below the final height. The node counts the bytes before
			// it validates them (a duplicate of bytes gossiped before
			// may be dropped by GossipSub unseen), and an orphan worth
			// keeping joins the pool.
			wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
			_ = testnet.WaitFor(wctx, func() bool {
				if s.Outcome == chaintest.Orphan && worthKeeping(s.Block, p) {
					return n.Orphans() > orphans
				}
				return target.Host.Traffic().GossipIn >= traffic.GossipIn+uint64(len(data))
			})
			wcancel()
			if s.Outcome == chaintest.Orphan && worthKeeping(s.Block, p) && n.Orphans() <= orphans {
				fail("the orphan was not kept")
			}
			time.Sleep(250 * time.Millisecond) // the validator returns before the clock moves on
		}
		if !fault && !a.Connected() {
			fail("the sender of a block that is not invalid was refused")
		}
		if s.Outcome == chaintest.Orphan || s.Outcome == chaintest.Rejected {
			if _, ok, err := n.BlockByHash(hash); err != nil || ok != known {
				fail("the node's block tree changed (%v)", err)
			}
		}
		if st := n.Status(); st.Tip != s.Tip || st.Height != s.Height {
			fail("tip %s at %d, want %s at %d", st.Tip.Short(), st.Height, s.Tip.Short(), s.Height)
		}
	}
	t.Logf("%d steps; %d senders refused", len(v.Steps), refused)

	// Durable: the store holds the tip the node reached.
	last := v.Steps[len(v.Steps)-1]
	stop()
	st2, err := store.Open(dir, p)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	back, err := st2.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Main) == 0 || back.Main[len(back.Main)-1].Hash() != last.Tip || uint64(len(back.Main)) != last.Height {
		t.Fatalf("the store holds %d main blocks, want the tip %s at %d", len(back.Main), last.Tip.Short(), last.Height)
	}
}

// worthKeeping reports whether the node's orphan pool keeps b: its header
// and body check out (no signature is verified for an orphan).
func worthKeeping(b *chain.Block, p chain.Params) bool {
	if chain.CheckHeader(&b.Header, p) != nil {
		return false
	}
	_, err := chain.CheckBody(b, p)
	return err == nil
}

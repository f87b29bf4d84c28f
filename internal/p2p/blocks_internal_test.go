package p2p

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-msgio"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
)

// loadCountingLedger is a node that serves blocks as if every body were in
// its store (as a long chain's final blocks are): BlocksAfter reads each body
// through chain.FillBlocks, as the node does, and counts the reads.
type loadCountingLedger struct {
	*node.Node
	calls, loads atomic.Int64
}

func (l *loadCountingLedger) BlocksAfter(locator []chain.Hash, max, maxBytes int) ([]*chain.Block, error) {
	l.calls.Add(1)
	all, err := l.Node.BlocksAfter(locator, max, 1<<40) // in memory: no read
	if err != nil {
		return nil, err
	}
	byHash := map[chain.Hash]*chain.Block{}
	hashes := make([]chain.Hash, len(all))
	for i, b := range all {
		hashes[i] = b.Hash()
		byHash[hashes[i]] = b
	}
	load := func(h chain.Hash) (*chain.Block, error) {
		l.loads.Add(1)
		return byHash[h], nil
	}
	return chain.FillBlocks(hashes, make([]*chain.Block, len(hashes)), maxBytes, load)
}

// countingVictim is a victim behind a loadCountingLedger.
func countingVictim(t *testing.T, ctx context.Context, params chain.Params, opts ...Option) (victim, *loadCountingLedger) {
	t.Helper()
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(params, key)
	if err != nil {
		t.Fatal(err)
	}
	ledger := &loadCountingLedger{Node: n}
	h, err := New(ctx, ledger, append([]Option{WithKey(key), WithListenAddrs("/ip4/127.0.0.1/tcp/0")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return victim{Host: h, node: n}, ledger
}

// TestServeMaxZero: a request for no blocks is answered empty without a
// look at its locator, here 64 hashes the server does not know, each of
// which would cost a lookup under the node's lock.
func TestServeMaxZero(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	v, ledger := countingVictim(t, ctx, chain.TestParams("maxzero"))
	peer := rawHost(t)
	connectRaw(t, ctx, peer, v)
	locator := make([]chain.Hash, chain.MaxLocator)
	for i := range locator {
		locator[i] = chain.Hash{0xee, byte(i)}
	}
	req, err := BlocksRequest{Max: 0, Locator: locator}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		s, err := peer.NewStream(ctx, v.ID(), BlocksProtocol)
		if err != nil {
			t.Fatal(err)
		}
		_ = s.SetDeadline(time.Now().Add(10 * time.Second))
		if err := msgio.NewVarintWriter(s).WriteMsg(req); err != nil {
			t.Fatal(err)
		}
		_ = s.CloseWrite()
		if _, err := msgio.NewVarintReaderSize(s, 1024).ReadMsg(); !errors.Is(err, io.EOF) {
			t.Fatalf("request %d: %v, want an empty response", i, err)
		}
		_ = s.Close()
	}
	if n := ledger.calls.Load(); n != 0 {
		t.Fatalf("the ledger was asked for blocks %d times", n)
	}
}

// TestServeReadsBounded: a peer that asks for blocks faster than its byte
// bucket refills, on both its streams at once, makes the server read no
// body it cannot send. The bucket holds a few hundred KiB and refills at a
// byte a second, so it answers one response; every other request is reset
// before any read. Each answered response may read one block more than it
// sends (chain.FillBlocks reads a body before it knows it will not fit),
// and no more.
func TestServeReadsBounded(t *testing.T) {
	ctx := testContext(t, 60*time.Second)
	params := chain.TestParams("serveloads")
	const burst = 256 << 10
	if burst < params.MaxBlockSize() {
		t.Fatalf("a burst of %d bytes does not hold a block of the largest size (%d)", burst, params.MaxBlockSize())
	}
	v, ledger := countingVictim(t, ctx, params, withLimits(func(l *limits) { l.sendRate, l.sendBurst = 1, burst }))
	n := v.node
	blocks := buildBlocks(t, params, 40, 100, 16) // about 13 KB each: 40 of them exceed the burst
	if _, err := n.AddBlocks(ctx, blocks); err != nil {
		t.Fatal(err)
	}
	flood := rawHost(t)
	connectRaw(t, ctx, flood, v)
	req, err := BlocksRequest{Max: MaxBatch, Locator: []chain.Hash{n.Status().Genesis}}.Encode()
	if err != nil {
		t.Fatal(err)
	}

	var received, answered, reset atomic.Int64
	var wg sync.WaitGroup
	for range MaxStreamsPerPeer {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				s, err := flood.NewStream(ctx, v.ID(), BlocksProtocol)
				if err != nil {
					t.Errorf("open stream: %v", err)
					return
				}
				_ = s.SetDeadline(time.Now().Add(10 * time.Second))
				_ = msgio.NewVarintWriter(s).WriteMsg(req)
				_ = s.CloseWrite()
				got, _, ok := readBlocksAnswer(s, params)
				if ok {
					answered.Add(1)
				} else {
					reset.Add(1)
				}
				received.Add(got)
				_ = s.Close()
			}
		}()
	}
	wg.Wait()

	st := v.peers.stats(flood.ID())
	t.Logf("%d responses (%d blocks, %d bytes), %d streams reset; %d bodies read", answered.Load(), received.Load(),
		st.servedBytes, reset.Load(), ledger.loads.Load())
	if answered.Load() == 0 || received.Load() == 0 {
		t.Fatal("nothing was served")
	}
	if st.servedBytes > burst+burst/10 {
		t.Errorf("served %d bytes, over the %d-byte bucket", st.servedBytes, burst)
	}
	if loads, bound := ledger.loads.Load(), received.Load()+answered.Load(); loads > bound {
		t.Errorf("%d bodies read to send %d blocks in %d responses: want at most %d", loads, received.Load(), answered.Load(), bound)
	}
}

// stalledRequest opens a blocks request for the whole chain from peer,
// reads the first block (ok false if the stream was reset before it, as a
// request over a limit is) and returns the stream unread beyond it.
func stalledRequest(t *testing.T, ctx context.Context, peer host.Host, v victim) (network.Stream, bool) {
	t.Helper()
	req, err := BlocksRequest{Max: MaxBatch, Locator: []chain.Hash{v.node.Status().Genesis}}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	s, err := peer.NewStream(ctx, v.ID(), BlocksProtocol)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Reset() })
	_ = s.SetDeadline(time.Now().Add(20 * time.Second))
	if err := msgio.NewVarintWriter(s).WriteMsg(req); err != nil {
		t.Fatal(err)
	}
	_ = s.CloseWrite()
	_, err = msgio.NewVarintReaderSize(s, v.node.Params().MaxBlockSize()).ReadMsg()
	return s, err == nil
}

// TestServeHeldBounded: peers that ask for blocks and then stop reading
// keep the blocks read for them only while their stream may still be
// written: each block must be taken within the stall timeout, and the
// responses under way hold at most ServeBytesHeld, all peers together.
// Before, a response waited for its reader up to the whole blocksTimeout
// (a minute), so peers within every rate limit could keep the buckets'
// output of a minute in memory: about a GiB at the default rates.
func TestServeHeldBounded(t *testing.T) {
	params := chain.TestParams("serveheld")
	blocks := buildBlocks(t, params, 40, 100, 16) // about 13 KB each, 520 KB in all
	t.Run("stall", func(t *testing.T) {
		ctx := testContext(t, 60*time.Second)
		v := startVictim(t, ctx, params, withLimits(func(l *limits) { l.stallTimeout = 500 * time.Millisecond }))
		if _, err := v.node.AddBlocks(ctx, blocks); err != nil {
			t.Fatal(err)
		}
		peer := rawHost(t)
		connectRaw(t, ctx, peer, v)
		s, ok := stalledRequest(t, ctx, peer, v)
		if !ok {
			t.Fatal("the request was refused")
		}
		waitUntil(t, ctx, "the stalled response let go of its blocks", func() bool { return v.peers.heldBytes() == 0 })
		if n, _, ok := readBlocksAnswer(s, params); ok {
			t.Fatalf("a reader that stalled for seconds got the whole response (%d more blocks): the server waited for it", n)
		}
	})
	t.Run("held", func(t *testing.T) {
		ctx := testContext(t, 60*time.Second)
		const held = 3 << 19 // 1.5 MiB: a few responses of 520 KB
		v := startVictim(t, ctx, params, withLimits(func(l *limits) {
			l.sendRate, l.sendBurst = 100<<20, 600<<10 // a response reserves 600 KB, holds 520 KB
			l.totalRate, l.totalBurst = 1<<30, 1<<30
			l.held = held
		}))
		if _, err := v.node.AddBlocks(ctx, blocks); err != nil {
			t.Fatal(err)
		}
		admitted := 0
		const peers = 8
		for range peers {
			peer := rawHost(t)
			connectRaw(t, ctx, peer, v)
			for range MaxStreamsPerPeer {
				if _, ok := stalledRequest(t, ctx, peer, v); ok {
					admitted++
				}
				time.Sleep(50 * time.Millisecond) // its writes fill the stream's window and wait
				if got := v.peers.heldBytes(); got > held {
					t.Fatalf("the responses under way hold %d bytes, over %d", got, held)
				}
			}
		}
		if admitted > peers*MaxStreamsPerPeer/2 {
			t.Fatalf("%d of %d stalled responses admitted at once, each holding its blocks", admitted, peers*MaxStreamsPerPeer)
		}
		if admitted == 0 {
			t.Fatal("no response admitted")
		}
		t.Logf("%d of %d stalled responses admitted; held %d bytes", admitted, peers*MaxStreamsPerPeer, v.peers.heldBytes())
	})
}

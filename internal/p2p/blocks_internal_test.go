package p2p

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

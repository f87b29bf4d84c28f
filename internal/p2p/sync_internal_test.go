package p2p

import (
	"context"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
)

// gatedLedger is a node whose AddBlocks calls gate with the batch before
// adding it (added false) and after (added true).
type gatedLedger struct {
	*node.Node
	gate func(blocks []*chain.Block, added bool)
}

func (g gatedLedger) AddBlocks(ctx context.Context, blocks []*chain.Block) (int, error) {
	g.gate(blocks, false)
	n, err := g.Node.AddBlocks(ctx, blocks)
	g.gate(blocks, true)
	return n, err
}

// countingServer starts a node holding n blocks whose host counts the
// blocks requests it serves.
func countingServer(t *testing.T, ctx context.Context, params chain.Params, n int) (victim, *atomic.Uint64) {
	t.Helper()
	server := startVictim(t, ctx, params)
	if _, err := server.node.AddBlocks(ctx, buildBlocks(t, params, n, 1, 8)); err != nil {
		t.Fatal(err)
	}
	var requests atomic.Uint64
	server.host.SetStreamHandler(BlocksProtocol, func(s network.Stream) {
		requests.Add(1)
		server.handleBlocks(s)
	})
	return server, &requests
}

// syncFrom starts a host for a fresh node, behind the ledger ledger makes
// of it, and connects it to server, which starts the sync.
func syncFrom(t *testing.T, ctx context.Context, params chain.Params, server victim, ledger func(*node.Node) Ledger) (*Host, *node.Node) {
	t.Helper()
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	nd, err := node.New(params, key)
	if err != nil {
		t.Fatal(err)
	}
	client, err := New(ctx, ledger(nd), WithKey(key), WithListenAddrs("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	if err := client.host.Connect(ctx, peer.AddrInfo{ID: server.ID(), Addrs: server.host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	return client, nd
}

// TestSyncPipelined: while the syncing node adds a batch, the next one is
// requested and its signatures verified, and no more: two batches at most
// are held. The sync ends done, with one request per batch.
func TestSyncPipelined(t *testing.T) {
	ctx := testContext(t, 60*time.Second)
	params := chain.TestParams("pipeline")
	const n = 2*MaxBatch + 76
	server, requests := countingServer(t, ctx, params, n)
	served := requests.Load // blocks requests the server received
	var nd *node.Node
	var mu sync.Mutex
	var overlapped, held []uint64 // requests served before the sync is done with batch 1
	var verified []uint64         // signatures verified when batch 2 was handed to AddBlocks
	gate := func(b []*chain.Block, added bool) {
		if b[0].Header.Height == MaxBatch+1 && !added {
			mu.Lock()
			defer mu.Unlock()
			verified = append(verified, nd.SignaturesVerified())
		}
		if b[0].Header.Height != 1 || !added {
			return
		}
		deadline := time.Now().Add(10 * time.Second)
		for served() < 2 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		o := served()
		time.Sleep(100 * time.Millisecond) // a third request would come now
		mu.Lock()
		defer mu.Unlock()
		overlapped, held = append(overlapped, o), append(held, served())
	}
	client, _ := syncFrom(t, ctx, params, server, func(n *node.Node) Ledger {
		nd = n
		return gatedLedger{Node: n, gate: gate}
	})
	waitUntil(t, ctx, "the client syncs", func() bool { return nd.Status().Height == n && !client.Sync().Syncing })
	mu.Lock()
	defer mu.Unlock()

	if len(overlapped) != 1 || overlapped[0] != 2 {
		t.Errorf("requests served while the first batch was added: %v, want the next batch's (2)", overlapped)
	}
	if len(held) != 1 || held[0] != 2 {
		t.Errorf("requests served before the first batch was added: %v, want 2 (two batches at most)", held)
	}
	if len(verified) != 1 || verified[0] != 2*MaxBatch {
		t.Errorf("signatures verified before the second batch was added: %v, want both batches' (%d)", verified, 2*MaxBatch)
	}
	last := client.LastSync()
	if last.Result != syncDone.String() || last.Done != n {
		t.Errorf("last sync %+v, want done with %d blocks", last, n)
	}
	if got := served(); got != 3 {
		t.Errorf("%d blocks requests for %d blocks, want 3", got, n)
	}
}

// TestNextLocator: the locator built from a batch not yet added starts as
// the node's own locator from the batch's last block once added, and keeps
// within the locator's limits, ending with genesis.
func TestNextLocator(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	params := chain.TestParams("locator")
	blocks := buildBlocks(t, params, 1100, 1, 8)
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	nd, err := node.New(params, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nd.AddBlocks(ctx, blocks[:600]); err != nil {
		t.Fatal(err)
	}
	m := &syncManager{h: &Host{ledger: nd}}
	batch := blocks[600:1100]
	loc := m.nextLocator(batch)
	if len(loc) > chain.MaxLocator || loc[len(loc)-1] != nd.Status().Genesis || loc[0] != batch[len(batch)-1].Hash() {
		t.Fatalf("locator of %d hashes, from %s to %s", len(loc), loc[0].Short(), loc[len(loc)-1].Short())
	}
	if _, err := nd.AddBlocks(ctx, batch); err != nil {
		t.Fatal(err)
	}
	want := nd.Locator(batch[len(batch)-1].Hash())
	inBatch := map[chain.Hash]bool{}
	for _, b := range batch {
		inBatch[b.Hash()] = true
	}
	for i, h := range want {
		if !inBatch[h] {
			break
		}
		if loc[i] != h {
			t.Fatalf("hash %d of the locator is %s, want %s as the node builds it", i, loc[i].Short(), h.Short())
		}
	}
	// The rest is the node's locator from the batch's parent.
	base := nd.Locator(batch[0].Header.Parent)
	for i, h := range loc[len(loc)-len(base):] {
		if h != base[i] {
			t.Fatalf("hash %d after the batch is %s, want %s", i, h.Short(), base[i].Short())
		}
	}
}

// TestRelayedBlockOutdatesStatus: a peer that moved to a branch we lack
// since its last status relays its new tip; the block's parent is unknown
// to us, and the status we hold, however fresh, is behind the block, so it
// is asked for again at once and the branch synced. The polls and the
// freshness window are an hour here: only the relayed block can explain the
// sync.
func TestRelayedBlockOutdatesStatus(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	params := chain.TestParams("outdated-status")
	slow := []Option{WithSyncInterval(time.Hour), withLimits(func(l *limits) { l.statusFresh = time.Hour })}
	a := startVictim(t, ctx, params, slow...)
	b := startVictim(t, ctx, params, slow...)
	if err := a.host.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ctx, "the handshake and the gossip mesh", func() bool {
		_, ok := a.peers.status(b.ID())
		return ok && a.MeshPeers() == 1 && b.MeshPeers() == 1
	})

	branch := buildBlocks(t, params, 3, 1, 8)
	if _, err := b.node.AddBlocks(ctx, branch); err != nil { // b moves on without gossip
		t.Fatal(err)
	}
	if st, _ := a.peers.status(b.ID()); st.Height != 0 {
		t.Fatalf("a holds b's status at height %d before the relay, want 0", st.Height)
	}
	if err := b.BroadcastBlock(ctx, branch[2]); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ctx, "a syncs b's branch", func() bool { return a.node.Status().Tip == branch[2].Hash() })
}

// TestForcePoll: which relayed blocks show that a peer's status is out of
// date and force a status exchange: not the same block twice, and at most
// one per forceGap (one more is put off until the gap has passed, and no
// other is queued meanwhile).
func TestForcePoll(t *testing.T) {
	b := newPeerBook(defaultLimits())
	now := time.Unix(1e9, 0)
	tip := chain.Hash{5}
	b.setStatus("p", chain.Status{Tip: tip, Height: 5, Work: big.NewInt(5)}, now)
	for _, c := range []struct {
		after  time.Duration // since the block before
		height uint64
		hash   chain.Hash
		now    bool
		later  time.Duration
	}{
		{0, 5, tip, false, 0},           // its tip
		{0, 4, chain.Hash{4}, false, 0}, // below: its chain may hold it
		{0, 6, chain.Hash{6}, true, 0},  // above its status
		{0, 6, chain.Hash{6}, false, 0}, // the same block again
		{100 * time.Millisecond, 5, chain.Hash{7}, false, forceGap - 100*time.Millisecond}, // another tip at its height: put off
		{0, 7, chain.Hash{8}, false, 0}, // one is queued already
	} {
		now = now.Add(c.after)
		if gotNow, gotLater := b.forcePoll("p", c.height, c.hash, now); gotNow != c.now || gotLater != c.later {
			t.Errorf("block at %d, %v after the last: now %v, later %v; want %v, %v", c.height, c.after, gotNow, gotLater, c.now, c.later)
		}
	}
	now = now.Add(forceGap - 100*time.Millisecond)
	b.forceFired("p", now) // the put-off exchange is asked for
	if gotNow, _ := b.forcePoll("p", 7, chain.Hash{8}, now.Add(forceGap)); !gotNow {
		t.Error("a new block behind the status forceGap after the last forced exchange: not forced")
	}
	if gotNow, gotLater := b.forcePoll("unknown", 9, chain.Hash{9}, now.Add(time.Hour)); gotNow || gotLater != 0 {
		t.Error("a peer with no status: forced, want nothing (nothing holds its request back)")
	}
	// A forced request while an exchange is in flight is kept for after it;
	// the periodic poll's is not (the exchange in flight answers it).
	if !b.startPoll("p", now, true, true) {
		t.Fatal("no exchange started")
	}
	if b.startPoll("p", now, true, false) {
		t.Fatal("a second exchange started while one is in flight")
	}
	if b.endPoll("p") {
		t.Error("a periodic poll during an exchange asked for another after it")
	}
	if !b.startPoll("p", now, true, true) {
		t.Fatal("no exchange started")
	}
	if b.startPoll("p", now, true, true) {
		t.Fatal("a second exchange started while one is in flight")
	}
	if !b.endPoll("p") {
		t.Error("the forced request made during the exchange was lost")
	}
	if b.endPoll("p") {
		t.Error("the request is asked for twice")
	}
}

// heldPreverifier is a node whose Preverify of the batch starting at height
// from waits until release is closed.
type heldPreverifier struct {
	*node.Node
	from    uint64
	entered chan struct{}
	release chan struct{}
}

func (l heldPreverifier) Preverify(ctx context.Context, blocks []*chain.Block, parent *chain.Block) {
	if blocks[0].Header.Height == l.from {
		close(l.entered)
		<-l.release
	}
	l.Node.Preverify(ctx, blocks, parent)
}

// TestSyncAsksBeforeVerifying: the next batch is requested as soon as one
// arrives, before that one's signatures are verified: with the second
// batch's verification held, the third is asked for all the same; the sync
// then ends done.
func TestSyncAsksBeforeVerifying(t *testing.T) {
	ctx := testContext(t, 20*time.Second)
	params := chain.TestParams("ask-ahead")
	const n = 3*MaxBatch + 10
	server, requests := countingServer(t, ctx, params, n)
	held := heldPreverifier{from: MaxBatch + 1, entered: make(chan struct{}), release: make(chan struct{})}
	client, nd := syncFrom(t, ctx, params, server, func(n *node.Node) Ledger {
		held.Node = n
		return held
	})
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(held.release) }) }
	t.Cleanup(release) // before the client closes: it waits for the held verification
	select {
	case <-held.entered:
	case <-ctx.Done():
		t.Fatal("the second batch was never verified ahead")
	}
	waitUntil(t, ctx, "the third batch requested while the second is being verified", func() bool { return requests.Load() >= 3 })
	release()
	waitUntil(t, ctx, "the client syncs", func() bool { return nd.Status().Height == n && !client.Sync().Syncing })
	if last := client.LastSync(); last.Result != syncDone.String() || last.Done != n {
		t.Errorf("last sync %+v, want done with %d blocks", last, n)
	}
}

// refusingLedger is a node that finds the first batch of a sync invalid
// (a peer's fault) once the next batch's verification ahead has begun.
type refusingLedger struct {
	heldPreverifier
	stopped chan bool     // whether the peer was refused already when the held verification was stopped
	ready   chan struct{} // closed once host is set
	host    *atomic.Pointer[Host]
	server  peer.ID
}

func (l refusingLedger) AddBlocks(ctx context.Context, blocks []*chain.Block) (int, error) {
	if blocks[0].Header.Height == 1 {
		<-l.entered
		<-l.ready
		return 0, &chain.RuleError{Code: chain.ErrBadSignature, Detail: "reading 7"}
	}
	return l.Node.AddBlocks(ctx, blocks)
}

func (l refusingLedger) Preverify(ctx context.Context, blocks []*chain.Block, parent *chain.Block) {
	if blocks[0].Header.Height != l.from {
		return
	}
	close(l.entered)
	select {
	case <-ctx.Done():
		_, refused := l.host.Load().gater.isRefused(l.server)
		l.stopped <- refused
	case <-l.release:
	}
}

// TestRefusedSyncStopsVerifyingAhead: a batch found invalid ends the sync,
// and the next batch's verification ahead is stopped before its peer is
// refused, so that nothing the refused peer sent is still being verified
// once it is refused (a new peer ID it comes back with is then counted
// alone).
func TestRefusedSyncStopsVerifyingAhead(t *testing.T) {
	ctx := testContext(t, 20*time.Second)
	params := chain.TestParams("refused-ahead")
	server, _ := countingServer(t, ctx, params, 3*MaxBatch)
	var host atomic.Pointer[Host]
	l := refusingLedger{
		heldPreverifier: heldPreverifier{from: MaxBatch + 1, entered: make(chan struct{}), release: make(chan struct{})},
		stopped:         make(chan bool, 1), ready: make(chan struct{}), host: &host, server: server.ID(),
	}
	t.Cleanup(func() { close(l.release) })
	client, _ := syncFrom(t, ctx, params, server, func(n *node.Node) Ledger {
		l.Node = n
		return l
	})
	host.Store(client)
	close(l.ready)
	select {
	case refused := <-l.stopped:
		if refused {
			t.Fatal("the peer was refused while its next batch was still being verified ahead")
		}
	case <-ctx.Done():
		t.Fatal("the next batch's verification ahead was never stopped")
	}
	waitUntil(t, ctx, "the peer refused", func() bool { _, ok := client.gater.isRefused(server.ID()); return ok })
}

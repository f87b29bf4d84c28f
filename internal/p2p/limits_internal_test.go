package p2p

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-msgio"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
)

// Tests of the limits on what one peer may cost: the sync manager's
// strikes, the caps on a blocks response, the server's rate limits, the
// gossip budget and the bounded tables. Attackers are bare libp2p hosts on
// 127.0.0.1 that speak docs/PROTOCOL.md as they please.

// withLimits lets a test change the host's limits.
func withLimits(f func(*limits)) Option { return func(c *config) { f(&c.limits) } }

// victim is a host with a node behind it.
type victim struct {
	*Host
	node *node.Node
}

func startVictim(t *testing.T, ctx context.Context, params chain.Params, opts ...Option) victim {
	t.Helper()
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(params, key)
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(ctx, n, append([]Option{WithKey(key), WithListenAddrs("/ip4/127.0.0.1/tcp/0")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return victim{Host: h, node: n}
}

// rawHost is a bare libp2p host, closed at the end of the test.
func rawHost(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func connectRaw(t *testing.T, ctx context.Context, raw host.Host, v victim) {
	t.Helper()
	if err := raw.Connect(ctx, peer.AddrInfo{ID: v.ID(), Addrs: v.host.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

func waitUntil(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// buildBlocks makes n blocks on genesis of params (difficulty 0), each with
// perBlock readings whose subjects are subjectLen bytes long.
func buildBlocks(t *testing.T, params chain.Params, n, perBlock, subjectLen int) []*chain.Block {
	t.Helper()
	c, err := chain.New(params)
	if err != nil {
		t.Fatal(err)
	}
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	var out []*chain.Block
	for i := range n {
		at := time.UnixMilli(params.GenesisTime).Add(time.Duration(i+1) * time.Second)
		rs := make([]chain.Reading, perBlock)
		for j := range rs {
			subject := fmt.Sprintf("%d-%d-", i, j)
			subject += strings.Repeat("s", max(0, subjectLen-len(subject)))
			if rs[j], err = chain.NewReading(key, subject, chain.MinBPM+j%100, at); err != nil {
				t.Fatal(err)
			}
		}
		b := c.NewBlock(rs, at)
		if err := chain.Solve(context.Background(), &b.Header); err != nil {
			t.Fatal(err)
		}
		if _, err := c.AddBlock(b, at); err != nil {
			t.Fatalf("block %d: %v", i+1, err)
		}
		out = append(out, b)
	}
	return out
}

// lyingStatus answers every status exchange with a claim of a chain far
// better than any: a huge height and work.
var lyingStatus = claimStatus(func(theirs chain.Status) chain.Status {
	return chain.Status{Genesis: theirs.Genesis, Tip: chain.Hash{0xba, 0xd}, Height: 1 << 40, Work: new(big.Int).Lsh(big.NewInt(1), 200)}
})

// claimStatus answers every status exchange with what claim makes of the
// caller's status.
func claimStatus(claim func(theirs chain.Status) chain.Status) network.StreamHandler {
	return func(s network.Stream) {
		defer s.Close()
		r := msgio.NewVarintReaderSize(s, statusSize)
		msg, err := r.ReadMsg()
		if err != nil {
			_ = s.Reset()
			return
		}
		theirs, err := DecodeStatus(msg)
		if err != nil {
			_ = s.Reset()
			return
		}
		b, _ := EncodeStatus(claim(theirs))
		_ = msgio.NewVarintWriter(s).WriteMsg(b)
	}
}

// serveBlocks answers every blocks request with send (after reading the
// request) and counts the requests.
func serveBlocks(count *atomic.Int32, send func(w msgio.WriteCloser)) network.StreamHandler {
	return func(s network.Stream) {
		count.Add(1)
		r := msgio.NewVarintReaderSize(s, maxRequestSize)
		if _, err := r.ReadMsg(); err != nil {
			_ = s.Reset()
			return
		}
		send(msgio.NewVarintWriter(s))
		_ = s.Close()
	}
}

// TestLiarStruckAndRefused: a peer that claims a huge tip and then sends
// only blocks the victim has, or nothing, ends each sync after one batch,
// is struck and backed off, and after MaxStrikes syncs is refused; the
// victim is not left syncing.
func TestLiarStruckAndRefused(t *testing.T) {
	params := chain.TestParams("liar")
	blocks := buildBlocks(t, params, 5, 1, 8)
	for _, tc := range []struct {
		name string
		send func(w msgio.WriteCloser)
	}{
		{"known blocks", func(w msgio.WriteCloser) {
			for _, b := range blocks {
				data, _ := b.MarshalBinary()
				if w.WriteMsg(data) != nil {
					return
				}
			}
		}},
		{"empty response", func(msgio.WriteCloser) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t, 60*time.Second)
			v := startVictim(t, ctx, params, withLimits(func(l *limits) {
				l.uselessBackoff = 50 * time.Millisecond
			}))
			if _, err := v.node.AddBlocks(ctx, blocks); err != nil {
				t.Fatal(err)
			}
			liar := rawHost(t)
			var requests atomic.Int32
			liar.SetStreamHandler(StatusProtocol, lyingStatus)
			liar.SetStreamHandler(BlocksProtocol, serveBlocks(&requests, tc.send))
			connectRaw(t, ctx, liar, v)

			waitUntil(t, ctx, "the liar is refused", func() bool { return !v.gater.allowed(liar.ID()) })
			if reason, _ := v.gater.isRefused(liar.ID()); !strings.Contains(reason, "claimed a better chain") {
				t.Errorf("refused for %q", reason)
			}
			if got := requests.Load(); got != MaxStrikes {
				t.Errorf("%d blocks requests to the liar, want %d (one batch per sync)", got, MaxStrikes)
			}
			waitUntil(t, ctx, "the victim stops syncing", func() bool { return !v.Sync().Syncing })
			last := v.LastSync()
			if last.Peer != liar.ID() || last.Result != syncUseless.String() || last.Done != 0 {
				t.Errorf("last sync %+v, want a useless one from the liar with nothing done", last)
			}
			if h := v.node.Status().Height; h != uint64(len(blocks)) {
				t.Errorf("victim at height %d, want %d", h, len(blocks))
			}
		})
	}
}

// TestResponseByteCap: a peer that answers a blocks request with more bytes
// than the cap (many blocks of the largest size) is cut off once it passes
// the cap, and the victim's heap grows by no more than a few times the cap.
func TestResponseByteCap(t *testing.T) {
	ctx := testContext(t, 90*time.Second)
	params := chain.TestParams("bytecap")
	large := buildBlocks(t, params, 1, params.MaxReadings, chain.MaxSubjectLen)[0]
	data, err := large.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < params.MaxBlockSize()*9/10 {
		t.Fatalf("block of %d bytes, want nearly %d", len(data), params.MaxBlockSize())
	}
	limit := maxBatchBytes + params.MaxBlockSize()
	copies := MaxBatch // without the byte cap the victim would hold them all
	if copies*len(data) < 4*limit {
		t.Fatalf("%d copies of %d bytes do not exceed the cap enough", copies, len(data))
	}

	v := startVictim(t, ctx, params)
	flood := rawHost(t)
	var requests, sent atomic.Int32
	flood.SetStreamHandler(StatusProtocol, lyingStatus)
	flood.SetStreamHandler(BlocksProtocol, serveBlocks(&requests, func(w msgio.WriteCloser) {
		for range copies {
			if w.WriteMsg(data) != nil {
				return
			}
			sent.Add(1)
		}
	}))

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.HeapInuse
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	connectRaw(t, ctx, flood, v)
	waitUntil(t, ctx, "the flooding peer is refused", func() bool { return !v.gater.allowed(flood.ID()) })
	close(stop)
	wg.Wait()

	if reason, _ := v.gater.isRefused(flood.ID()); !strings.Contains(reason, "bytes of blocks") {
		t.Errorf("refused for %q, want the byte cap", reason)
	}
	growth := int64(peak.Load()) - int64(before)
	t.Logf("the peer wrote %d blocks; heap in use grew by at most %d MiB (cap %d MiB, unbounded would hold %d MiB)",
		sent.Load(), growth>>20, limit>>20, copies*len(data)>>20)
	if growth > int64(6*limit) {
		t.Errorf("heap in use grew by %d bytes, over 6 times the %d-byte cap", growth, limit)
	}
	if h := v.node.Status().Height; h != 0 {
		t.Errorf("victim at height %d", h)
	}
}

// floodCounts is what a flood of blocks requests got.
type floodCounts struct {
	answered, reset, received int64   // streams answered, streams reset, block bytes received
	answeredBy                []int64 // streams answered, by host
}

// floodBlocks sends the blocks request req to v from every host, workers
// streams at a time each, one after another for length (pausing pause
// after each answer), and counts the answers. It returns them and how
// long the flood took, the last answers included.
func floodBlocks(t *testing.T, ctx context.Context, v victim, params chain.Params, hosts []host.Host, workers int,
	req []byte, length, pause time.Duration) (floodCounts, time.Duration) {
	t.Helper()
	var received, answered, reset atomic.Int64
	answeredBy := make([]atomic.Int64, len(hosts))
	start := time.Now()
	var wg sync.WaitGroup
	for i, h := range hosts {
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Since(start) < length && ctx.Err() == nil {
					s, err := h.NewStream(ctx, v.ID(), BlocksProtocol)
					if err != nil {
						t.Errorf("open stream: %v", err)
						return
					}
					_ = s.SetDeadline(time.Now().Add(10 * time.Second))
					if err := msgio.NewVarintWriter(s).WriteMsg(req); err != nil {
						reset.Add(1)
						_ = s.Reset()
						continue
					}
					_ = s.CloseWrite()
					_, got, ok := readBlocksAnswer(s, params)
					if ok {
						answered.Add(1)
						answeredBy[i].Add(1)
					} else {
						reset.Add(1)
					}
					received.Add(got)
					_ = s.Close()
					time.Sleep(pause)
				}
			}()
		}
	}
	wg.Wait()
	c := floodCounts{answered: answered.Load(), reset: reset.Load(), received: received.Load()}
	for i := range answeredBy {
		c.answeredBy = append(c.answeredBy, answeredBy[i].Load())
	}
	return c, time.Since(start)
}

// TestServeRateLimit: a peer flooding blocks requests gets its streams
// reset beyond the request and stream limits, and is served no more bytes
// than its bucket allows.
func TestServeRateLimit(t *testing.T) {
	ctx := testContext(t, 60*time.Second)
	params := chain.TestParams("flood")
	const rateBytes, burst = 64 << 10, 128 << 10
	v := startVictim(t, ctx, params, withLimits(func(l *limits) {
		l.sendRate, l.sendBurst = rateBytes, burst
		l.blocksRate, l.blocksBurst = 20, 10
	}))
	blocks := buildBlocks(t, params, 20, 10, 16)
	if _, err := v.node.AddBlocks(ctx, blocks); err != nil {
		t.Fatal(err)
	}
	flood := rawHost(t)
	connectRaw(t, ctx, flood, v)
	req, err := BlocksRequest{Max: MaxBatch, Locator: []chain.Hash{v.node.Status().Genesis}}.Encode()
	if err != nil {
		t.Fatal(err)
	}

	c, elapsed := floodBlocks(t, ctx, v, params, []host.Host{flood}, 4, req, 2*time.Second, 0)

	bound := float64(burst) + rateBytes*elapsed.Seconds()*1.5
	st := v.peers.stats(flood.ID())
	t.Logf("%v: %d streams answered (%d bytes), %d reset; victim counts %d bytes, %d requests, %d resets",
		elapsed.Round(time.Millisecond), c.answered, c.received, c.reset, st.servedBytes, st.servedRequests, st.resets)
	if c.answered == 0 || c.received == 0 {
		t.Fatal("nothing was served")
	}
	if c.reset == 0 || st.resets == 0 || v.Traffic().StreamsReset == 0 {
		t.Error("no stream was reset")
	}
	if float64(c.received) > bound || float64(st.servedBytes) > bound {
		t.Errorf("served %d bytes (victim counts %d) in %v, over the bucket's %.0f", c.received, st.servedBytes, elapsed, bound)
	}
}

// TestServeTotalLimit: several peers, each within its own budget, together
// get no more bytes of blocks than the node's budget for all peers. A
// request over it waits for the budget (up to the busy wait) or, past
// that, is reset; neither counts against the peer. Before, each identity
// had a budget of its own and nothing bounded their sum.
func TestServeTotalLimit(t *testing.T) {
	for _, c := range []struct {
		name string
		wait time.Duration
	}{{"reset", 0}, {"wait", 5 * time.Second}} {
		t.Run(c.name, func(t *testing.T) { serveTotal(t, c.wait) })
	}
}

func serveTotal(t *testing.T, busyWait time.Duration) {
	ctx := testContext(t, 60*time.Second)
	params := chain.TestParams("flood-total")
	const rateBytes, burst = 64 << 10, 128 << 10
	v := startVictim(t, ctx, params, withLimits(func(l *limits) {
		l.totalRate, l.totalBurst = rateBytes, burst // each peer's own budget is the default, 64 times more
		l.busyWait = busyWait
	}))
	blocks := buildBlocks(t, params, 20, 10, 16)
	if _, err := v.node.AddBlocks(ctx, blocks); err != nil {
		t.Fatal(err)
	}
	req, err := BlocksRequest{Max: MaxBatch, Locator: []chain.Hash{v.node.Status().Genesis}}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	const peers, length = 4, 2 * time.Second
	var hosts []host.Host
	for range peers {
		h := rawHost(t)
		connectRaw(t, ctx, h, v)
		hosts = append(hosts, h)
	}
	c, elapsed := floodBlocks(t, ctx, v, params, hosts, 1, req, length, 20*time.Millisecond) // within each peer's request budget

	bound := float64(burst) + rateBytes*elapsed.Seconds()*1.5
	var served, peerResets uint64
	for _, h := range hosts {
		st := v.peers.stats(h.ID())
		served += st.servedBytes
		peerResets += st.resets
	}
	busy := v.Traffic().ServeBusy
	t.Logf("%v: %d streams answered (%d bytes), %d reset; the victim served %d bytes, %d requests waited or were reset for the total, %d resets counted against peers",
		elapsed.Round(time.Millisecond), c.answered, c.received, c.reset, served, busy, peerResets)
	if c.answered == 0 || c.received == 0 {
		t.Fatal("nothing was served")
	}
	if float64(c.received) > bound || float64(served) > bound {
		t.Errorf("served %d bytes (victim counts %d) to %d peers in %v, over the total budget's %.0f", c.received, served, peers, elapsed, bound)
	}
	if busy == 0 {
		t.Error("no request waited or was reset for the total")
	}
	if peerResets != 0 {
		t.Errorf("%d resets counted against peers that kept within their own budgets", peerResets)
	}
	if busyWait == 0 && c.reset == 0 {
		t.Error("no request was reset, with no wait for the total")
	}
	if busyWait > 0 {
		if c.reset != 0 {
			t.Errorf("%d requests reset, where each could wait for the total", c.reset)
		}
		for i, n := range c.answeredBy {
			if n == 0 {
				t.Errorf("peer %d was never served", i)
			}
		}
	}
}

// TestStatusRateLimit: status exchanges beyond the request limit are reset.
func TestStatusRateLimit(t *testing.T) {
	ctx := testContext(t, 60*time.Second)
	params := chain.TestParams("statusflood")
	const rate, burst, tries = 1, 5, 30
	v := startVictim(t, ctx, params, withLimits(func(l *limits) { l.statusRate, l.statusBurst = rate, burst }))
	flood := rawHost(t)
	connectRaw(t, ctx, flood, v)
	ours, err := EncodeStatus(v.node.Status())
	if err != nil {
		t.Fatal(err)
	}
	answered, reset := 0, 0
	start := time.Now()
	for range tries {
		s, err := flood.NewStream(ctx, v.ID(), StatusProtocol)
		if err != nil {
			t.Fatal(err)
		}
		_ = s.SetDeadline(time.Now().Add(10 * time.Second))
		_ = msgio.NewVarintWriter(s).WriteMsg(ours)
		_ = s.CloseWrite()
		if _, err := msgio.NewVarintReaderSize(s, statusSize).ReadMsg(); err != nil {
			reset++
		} else {
			answered++
		}
		_ = s.Close()
	}
	elapsed := time.Since(start)
	t.Logf("%v: %d status exchanges answered, %d reset", elapsed.Round(time.Millisecond), answered, reset)
	if answered < burst || float64(answered) > burst+rate*elapsed.Seconds()*1.5+1 || reset == 0 {
		t.Errorf("%d answered and %d reset of %d in %v: want the burst answered and the rest mostly reset", answered, reset, tries, elapsed)
	}
}

// gossiper is a bare host in the victim's blocks topic, with the network's
// GossipSub settings unless opts are given.
func gossiper(t *testing.T, ctx context.Context, v victim, opts ...pubsub.Option) (host.Host, *pubsub.Topic) {
	t.Helper()
	h := rawHost(t)
	if opts == nil {
		opts = GossipOptions(MaxGossipSize(v.node.Params()))
	}

	ps, err := pubsub.NewGossipSub(ctx, h, opts...)
	if err != nil {
		t.Fatal(err)
	}
	topic, err := ps.Join(BlocksTopic(v.node.Status().Genesis))
	if err != nil {
		t.Fatal(err)
	}
	// Not subscribed: a publish goes to the topic's peers at once (fanout),
	// where a subscriber's would wait for its mesh, and a message is named
	// by its data, so a copy that found no mesh is never sent again.
	connectRaw(t, ctx, h, v)
	waitUntil(t, ctx, "the victim joins the topic", func() bool { return len(topic.ListPeers()) > 0 })
	return h, topic
}

// TestGossipRejectedCounted: oversized and malformed gossip is rejected,
// counted and gets its relayer refused.
func TestGossipRejectedCounted(t *testing.T) {
	ctx := testContext(t, 60*time.Second)
	params := chain.TestParams("gossipjunk")
	v := startVictim(t, ctx, params)
	for _, tc := range []struct {
		name  string
		data  func(i int) []byte
		count func(Traffic) uint64 // the reason's own counter (the metric's label)
	}{
		{"oversized", func(i int) []byte { b := make([]byte, params.MaxBlockSize()+1); b[0] = byte(i); return b },
			func(t Traffic) uint64 { return t.Oversized }},
		{"malformed", func(i int) []byte { return []byte(fmt.Sprintf("not a block %d", i)) },
			func(t Traffic) uint64 { return t.Malformed }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, topic := gossiper(t, ctx, v)
			before := v.Traffic().Rejected
			for i := 0; v.Traffic().Rejected == before; i++ {
				if ctx.Err() != nil {
					t.Fatal("never rejected")
				}
				_ = topic.Publish(ctx, tc.data(i))
				time.Sleep(50 * time.Millisecond)
			}
			waitUntil(t, ctx, "the relayer is refused", func() bool { return !v.gater.allowed(h.ID()) })
			if tc.count(v.Traffic()) == 0 {
				t.Errorf("rejected, but not counted as %s: %+v", tc.name, v.Traffic())
			}
		})
	}
}

// TestGossipSignedRefused: the blocks topic carries unsigned messages only
// (PROTOCOL.md section 11). A block published with its origin's signature,
// as version 1 of the topic had it, never reaches the ledger; the same
// block published unsigned does.
func TestGossipSignedRefused(t *testing.T) {
	ctx := testContext(t, 60*time.Second)
	params := chain.TestParams("gossipsigned")
	v := startVictim(t, ctx, params)
	b := buildBlocks(t, params, 1, 1, 8)[0]
	data, err := b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	_, signed := gossiper(t, ctx, v, pubsub.WithMessageIdFn(messageID),
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign))
	before := v.mesh.rejected.Load()
	if err := signed.Publish(ctx, data); err != nil { // named by its data: sent once
		t.Fatal(err)
	}
	waitUntil(t, ctx, "the victim rejects the signed message", func() bool { return v.mesh.rejected.Load() > before })
	if v.node.IsMainChain(b.Hash()) || v.Traffic().GossipIn != 0 {
		t.Fatalf("a signed gossip message reached the ledger (gossip in %d)", v.Traffic().GossipIn)
	}
	_, unsigned := gossiper(t, ctx, v)
	for ctx.Err() == nil {
		if v.node.IsMainChain(b.Hash()) {
			return
		}
		if err := unsigned.Publish(ctx, data); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the unsigned copy of the block never arrived")
}

// TestSyncRejectedCounted: a peer that answers a sync with bytes that are
// not a block, or with a block over the size limit, is refused, and the
// block is counted under its reason like gossip's.
func TestSyncRejectedCounted(t *testing.T) {
	ctx := testContext(t, 60*time.Second)
	params := chain.TestParams("syncjunk")
	for _, tc := range []struct {
		name  string
		data  []byte
		count func(Traffic) uint64
	}{
		{"oversized", make([]byte, params.MaxBlockSize()+1), func(t Traffic) uint64 { return t.Oversized }},
		{"malformed", []byte("not a block"), func(t Traffic) uint64 { return t.Malformed }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := startVictim(t, ctx, params)
			peer := rawHost(t)
			var requests atomic.Int32
			peer.SetStreamHandler(StatusProtocol, lyingStatus)
			peer.SetStreamHandler(BlocksProtocol, serveBlocks(&requests, func(w msgio.WriteCloser) { _ = w.WriteMsg(tc.data) }))
			connectRaw(t, ctx, peer, v)
			waitUntil(t, ctx, "the peer is refused", func() bool { return !v.gater.allowed(peer.ID()) })
			if tc.count(v.Traffic()) != 1 {
				t.Errorf("counted %+v, want one %s block", v.Traffic(), tc.name)
			}
		})
	}
}

// TestGossipBudget: a peer relaying blocks faster than its budget gets the
// excess ignored and counted, without blame.
func TestGossipBudget(t *testing.T) {
	ctx := testContext(t, 60*time.Second)
	params := chain.TestParams("gossipbudget")
	v := startVictim(t, ctx, params, withLimits(func(l *limits) { l.gossipRate, l.gossipBurst = 1, 3 }))
	// Blocks 2 and up of a chain whose block 1 the victim never gets:
	// well formed, each with an unknown parent.
	blocks := buildBlocks(t, params, 31, 1, 8)[1:]
	h, topic := gossiper(t, ctx, v)
	for i, b := range blocks {
		data, _ := b.MarshalBinary()
		for ctx.Err() == nil {
			// The first copies may go out before the victim's side of the
			// topic is ready: publish the first block until it arrives.
			if err := topic.Publish(ctx, data); err != nil {
				t.Fatal(err)
			}
			if i > 0 || v.Traffic().GossipIn > 0 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitUntil(t, ctx, "blocks over the budget are throttled", func() bool { return v.Traffic().GossipThrottled > 0 })
	time.Sleep(200 * time.Millisecond)
	if !v.gater.allowed(h.ID()) || v.Traffic().Rejected != 0 {
		t.Error("a peer over its gossip budget was blamed")
	}
	if got := v.peers.stats(h.ID()).gossipThrottled; got == 0 {
		t.Error("the peer's throttled blocks are not counted")
	}
}

// TestGaterBounded: the refused list stays at its cap, evicting the oldest,
// and forgets a peer after RefuseFor.
func TestGaterBounded(t *testing.T) {
	g := newGater()
	now := time.Unix(1e9, 0)
	g.now = func() time.Time { return now }
	id := func(i int) peer.ID { return peer.ID(fmt.Sprintf("peer-%d", i)) }
	for i := range MaxRefused + 100 {
		g.refuse(id(i), "test")
		now = now.Add(time.Millisecond)
	}
	if n := g.size(); n != MaxRefused {
		t.Fatalf("%d refused peers, want the cap %d", n, MaxRefused)
	}
	if g.allowed(id(MaxRefused+99)) || !g.allowed(id(0)) || !g.allowed(id(99)) || g.allowed(id(100)) {
		t.Fatal("eviction is not oldest first")
	}
	g.refuse(id(100), "again") // refreshed: now the newest
	now = now.Add(RefuseFor - time.Second)
	if g.allowed(id(100)) {
		t.Fatal("a peer was forgotten before RefuseFor")
	}
	if !g.allowed(id(150)) {
		t.Fatal("a peer refused more than RefuseFor ago is still refused")
	}
	now = now.Add(2 * time.Second)
	if !g.allowed(id(100)) {
		t.Fatal("a peer was refused for longer than RefuseFor")
	}
}

// TestPeerBookBounded: per-peer state is capped and dropped on disconnect.
func TestPeerBookBounded(t *testing.T) {
	lim := defaultLimits()
	lim.peers = 2
	b := newPeerBook(lim)
	for i := range 3 {
		b.add(peer.ID(fmt.Sprintf("p%d", i)))
	}
	if n := b.len(); n != 2 {
		t.Fatalf("%d peer states, want the cap 2", n)
	}
	if _, why := b.openStream("p9", protoStatus, time.Now()); why == "" {
		t.Fatal("a peer beyond the cap was served")
	}

	ctx := testContext(t, 30*time.Second)
	v := startVictim(t, ctx, chain.TestParams("peerbook"))
	raw := rawHost(t)
	connectRaw(t, ctx, raw, v)
	waitUntil(t, ctx, "the peer gets a state", func() bool { return v.peers.len() == 1 })
	_ = raw.Close()
	waitUntil(t, ctx, "the state is dropped", func() bool { return v.peers.len() == 0 })
}

// TestDepartedPenalties: a peer's sync penalties outlive its connection,
// for the last lim.departed peers to leave; a stall backs a peer off
// longer each time in a row.
func TestDepartedPenalties(t *testing.T) {
	lim := defaultLimits()
	lim.departed = 2
	b := newPeerBook(lim)
	now := time.Unix(1e9, 0)
	for i, p := range []peer.ID{"a", "b", "c", "clean"} {
		b.add(p)
		if p != "clean" {
			for range i + 1 {
				b.syncEnded(p, syncStalled, false, now)
			}
		}
		b.forget(p)
	}
	if n := len(b.departed); n != 2 {
		t.Fatalf("%d departed peers kept, want the cap 2", n)
	}
	b.add("a")
	if st := b.stats("a"); !st.backoff.IsZero() {
		t.Fatalf("the oldest departed peer was kept: back-off %v", st.backoff)
	}
	b.add("c")
	if wait := b.stats("c").backoff.Sub(now); wait != lim.stallDelay<<2 {
		t.Fatalf("back-off %v after three stalls and a reconnection, want %v", wait, lim.stallDelay<<2)
	}
	if _, ok := b.departed["c"]; ok || len(b.departed) != 1 {
		t.Fatal("a returning peer's penalty is still kept among the departed")
	}
	// A sync that ends after its peer left counts against it all the same:
	// strikes booked while away are there when it comes back.
	b.add("liar")
	b.forget("liar")
	var v verdict
	for range lim.maxStrikes {
		v = b.syncEnded("liar", syncUseless, false, now)
	}
	if !v.refuse {
		t.Fatalf("%d useless syncs booked after the peer left: not refused", lim.maxStrikes)
	}
	b.add("liar")
	if st := b.stats("liar"); st.backoff.IsZero() {
		t.Fatal("a peer back after syncs booked while it was away has no back-off")
	}
}

// holdsNothing is a ledger's HasBlock that holds no block.
func holdsNothing(chain.Hash) bool { return false }

// TestSyncBookkeeping: strikes, back-offs and the choice of peer.
func TestSyncBookkeeping(t *testing.T) {
	lim := defaultLimits()
	b := newPeerBook(lim)
	now := time.Unix(1e9, 0)
	ours := chain.Status{Tip: chain.Hash{9}, Height: 10, Work: big.NewInt(10)}
	claim := func(p peer.ID, work int64) {
		b.setStatus(p, chain.Status{Tip: chain.Hash{byte(work)}, Height: uint64(work), Work: big.NewInt(work)}, now)
	}
	claim("honest", 20)
	claim("liar", 1000)
	claim("behind", 5)
	if p, _, ok, _ := b.best(ours, holdsNothing, now); !ok || p != "liar" {
		t.Fatalf("best %q, want the best claim", p)
	}
	for i := 1; i < lim.maxStrikes; i++ {
		if v := b.syncEnded("liar", syncUseless, false, now); v.refuse {
			t.Fatalf("refused after %d strikes", i)
		}
		if p, _, _, retry := b.best(ours, holdsNothing, now); p != "honest" || !retry.IsZero() {
			t.Fatalf("best %q during the liar's back-off, want the next claim", p)
		}
		wait := b.stats("liar").backoff.Sub(now)
		if want := lim.uselessBackoff << (i - 1); wait != want {
			t.Fatalf("back-off %v after strike %d, want %v", wait, i, want)
		}
		now = now.Add(wait)
	}
	if v := b.syncEnded("liar", syncUseless, false, now); !v.refuse {
		t.Fatal("not refused after MaxStrikes useless syncs")
	}
	b.forget("liar") // as Host.refuse does
	// Strikes are forgotten strikeMemory after the last one.
	b.syncEnded("honest", syncUseless, false, now)
	now = now.Add(lim.strikeMemory + time.Second)
	b.syncEnded("honest", syncUseless, false, now)
	if s := b.stats("honest").strikes; s != 1 {
		t.Fatalf("%d strikes, want the old one forgotten", s)
	}
	// Failures back off, more each time, up to the maximum; progress resets.
	for range 30 {
		b.syncEnded("behind", syncFailed, false, now)
	}
	if wait := b.stats("behind").backoff.Sub(now); wait != lim.maxFailDelay {
		t.Fatalf("back-off %v after many failures, want %v", wait, lim.maxFailDelay)
	}
	// A too-deep fork: a long back-off, logged once.
	if v := b.syncEnded("honest", syncForked, false, now); !v.warnFork {
		t.Fatal("first deep fork not flagged for a warning")
	}
	if v := b.syncEnded("honest", syncForked, false, now); v.warnFork {
		t.Fatal("deep fork flagged twice")
	}
	if _, _, ok, retry := b.best(ours, holdsNothing, now); ok || !retry.Equal(now.Add(lim.forkBackoff)) {
		t.Fatalf("a peer in back-off was chosen, or retry %v is wrong", retry)
	}
}

// readBlocksAnswer reads a blocks response to its end and returns how many
// blocks and bytes came, and whether it ended cleanly (false: reset).
func readBlocksAnswer(s network.Stream, params chain.Params) (blocks, bytes int64, ok bool) {
	r := msgio.NewVarintReaderSize(s, params.MaxBlockSize())
	for {
		msg, err := r.ReadMsg()
		if errors.Is(err, io.EOF) {
			return blocks, bytes, true
		}
		if err != nil {
			return blocks, bytes, false
		}
		blocks, bytes = blocks+1, bytes+int64(len(msg))
		r.ReleaseMsg(msg)
	}
}

// TestServeQueueOrder: requests that find the bucket of all peers short
// take it in turn, first come first served: only the first waits for the
// bucket, the next for its turn, and neither a later one nor one that
// comes while they wait takes the refill before them. Before, every waiter
// slept until the bucket held enough and the first to wake took it, so
// one could lose each race until its busy wait ran out and it was reset
// (TestServeTotalLimit/wait failed about one run in three).
func TestServeQueueOrder(t *testing.T) {
	lim := defaultLimits()
	lim.totalRate, lim.totalBurst = 1000, 1000
	b := newPeerBook(lim)
	for _, p := range []peer.ID{"a", "b", "c", "d"} {
		b.add(p)
	}
	now := time.Now().Add(time.Millisecond)
	if n, _, _, ok := b.reserveSend("a", now, 1000, 1000, nil); !ok || n != 1000 {
		t.Fatalf("the first request: %d bytes, %v", n, ok)
	}
	b.settleSend("a", 1000, 1000, false)
	var tb, tc, td sendTurn
	if _, wait, turn, ok := b.reserveSend("b", now, 1000, 1000, &tb); ok || turn || wait <= 0 {
		t.Fatalf("b, the bucket empty: wait %v, turn %v, ok %v; want to wait for the bucket", wait, turn, ok)
	}
	select {
	case <-tb.ready:
	default:
		t.Fatal("b is first in the queue, and its turn is not ready")
	}
	if _, _, turn, ok := b.reserveSend("c", now, 1000, 1000, &tc); ok || !turn {
		t.Fatalf("c behind b: turn %v, ok %v; want to wait for its turn", turn, ok)
	}
	later := now.Add(2 * time.Second) // the bucket is full again
	if _, _, turn, ok := b.reserveSend("d", later, 1000, 1000, &td); ok || !turn {
		t.Fatalf("d, coming while b and c wait: turn %v, ok %v; want behind them", turn, ok)
	}
	if _, _, turn, ok := b.reserveSend("c", later, 1000, 1000, &tc); ok || !turn {
		t.Fatalf("c before its turn: turn %v, ok %v; want to wait", turn, ok)
	}
	select {
	case <-tc.ready:
		t.Fatal("c's turn is ready while b waits")
	default:
	}
	if n, _, _, ok := b.reserveSend("b", later, 500, 1000, &tb); !ok || n != 500 {
		t.Fatalf("b in its turn, c and d behind it: %d bytes, %v; want one block's worth (500), so that turns are short", n, ok)
	}
	select {
	case <-tc.ready:
	default:
		t.Fatal("b was served, and c's turn is not ready")
	}
	b.leaveSendQueue(&tc) // c gives up: d's turn
	select {
	case <-td.ready:
	default:
		t.Fatal("c gave up, and d's turn is not ready")
	}
	if _, wait, turn, ok := b.reserveSend("d", later, 1000, 1000, &td); ok || turn || wait <= 0 {
		t.Fatalf("d first, the bucket empty: wait %v, turn %v, ok %v", wait, turn, ok)
	}
	if n, _, _, ok := b.reserveSend("d", later.Add(2*time.Second), 1000, 1000, &td); !ok || n != 1000 {
		t.Fatalf("d once the bucket refilled: %d bytes, %v", n, ok)
	}
	if q := b.sendQueue.Len(); q != 0 {
		t.Errorf("%d left in the queue, want none", q)
	}
}

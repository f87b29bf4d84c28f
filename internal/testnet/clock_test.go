package testnet_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/store"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// skew is how far the clocks of the skewed nodes of TestClockTrouble are
// off: more than the network's MaxFutureDrift (2 minutes).
const skew = 5 * time.Minute

// clockPeer is a durable node whose clock is time.Now plus an offset the
// test sets.
type clockPeer struct {
	*testnet.Peer
	name   string
	offset atomic.Int64 // nanoseconds
	log    *testnet.LogBuffer
}

func startClockPeer(t *testing.T, ctx context.Context, params chain.Params, name string, offset time.Duration) *clockPeer {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), name), params)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() }) // after the peer's Close (cleanups run last first)
	s, err := st.LoadRecent()
	if err != nil {
		t.Fatal(err)
	}
	cp := &clockPeer{name: name, log: &testnet.LogBuffer{}}
	cp.offset.Store(int64(offset))
	cp.Peer, err = testnet.Start(ctx, testnet.Config{
		Params: params, SyncInterval: 300 * time.Millisecond,
		Log:         slog.New(slog.NewTextHandler(cp.log, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Clock:       func() time.Time { return time.Now().Add(time.Duration(cp.offset.Load())) },
		NodeOptions: []node.Option{node.WithStore(st, *s)},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Close() })
	return cp
}

// onMain reports whether the reading id is in p's main chain (not pending).
func onMain(p *clockPeer, id chain.Hash) bool {
	info, ok, _ := p.Node.LocateReading(id)
	return ok && !info.Pending
}

func waitOnMain(t *testing.T, ctx context.Context, what string, id chain.Hash, peers ...*clockPeer) {
	t.Helper()
	for _, p := range peers {
		if err := testnet.WaitFor(ctx, func() bool { return onMain(p, id) }); err != nil {
			t.Fatalf("%s: not on the main chain of %s (height %d): %v", what, p.name, p.Node.Status().Height, err)
		}
	}
}

func submitAt(t *testing.T, p *clockPeer, bpm int) chain.Hash {
	t.Helper()
	r, err := p.Node.Submit("clock-"+p.name, bpm)
	if err != nil {
		t.Fatalf("submit at %s: %v", p.name, err)
	}
	return r.ID()
}

func connected(p, to *clockPeer) bool {
	for _, info := range p.Host.Peers() {
		if info.ID == to.Host.ID() {
			return true
		}
	}
	return false
}

// TestClockTrouble runs two honest nodes H0 and H1 (connected) and two
// nodes whose clocks are off by 5 minutes, more than the network's
// MaxFutureDrift of 2: F ahead, S behind, each connected to both honest
// nodes. Real libp2p hosts on loopback, durable stores, difficulty 0. It
// checks what each accepts, refuses and says (docs/RELIABILITY.md, "Clock
// trouble"):
//
//   - S's block, made at its clock 5 minutes ago, is accepted everywhere: no
//     rule gives a block time a lower bound;
//   - the honest blocks are accepted by F and refused by S (ErrTimeTooNew,
//     not relayed, nobody's fault): S stops at its own block and warns that
//     its clock looks behind; F warns that its clock looks ahead;
//   - F's block is refused by H0 and H1 (ErrTimeTooNew), so its reading does
//     not reach them while they keep mining; the honest nodes judge no
//     clock wrong and cut off neither F nor S;
//   - once both clocks are right again and F's reading is no longer in the
//     future, the four converge on one chain holding every reading, and
//     both warnings are taken back.
func TestClockTrouble(t *testing.T) {
	if testing.Short() {
		t.Skip("runs four nodes on loopback")
	}
	params := chain.TestParams("clock")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	h0 := startClockPeer(t, ctx, params, "H0", 0)
	h1 := startClockPeer(t, ctx, params, "H1", 0)
	f := startClockPeer(t, ctx, params, "F", skew)
	s := startClockPeer(t, ctx, params, "S", -skew)
	all := []*clockPeer{h0, h1, f, s}
	for _, l := range [][2]*clockPeer{{h1, h0}, {f, h0}, {f, h1}, {s, h0}, {s, h1}} {
		if err := l[0].Connect(ctx, l[1].Peer); err != nil {
			t.Fatalf("%s dialing %s: %v", l[0].name, l[1].name, err)
		}
	}
	if err := testnet.WaitMesh(ctx, []*testnet.Peer{h0.Peer, h1.Peer, f.Peer, s.Peer}, 2); err != nil {
		t.Fatal(err)
	}

	// 1. S's block, timed 5 minutes ago by its clock, on genesis.
	fromS := submitAt(t, s, 61)
	waitOnMain(t, ctx, "S's reading", fromS, all...)

	// 2. Honest blocks, from both honest nodes: F takes them, S refuses
	// them.
	var honest []chain.Hash
	for i := 0; i < 8; i++ {
		id := submitAt(t, []*clockPeer{h0, h1}[i%2], 70+i)
		waitOnMain(t, ctx, "an honest reading", id, h0, h1, f)
		honest = append(honest, id)
	}
	if err := testnet.WaitFor(ctx, func() bool { return s.Node.ClockCheck().Skewed }); err != nil {
		t.Fatalf("S does not find its clock skewed: %+v", s.Node.ClockCheck())
	}
	cs, cf := s.Node.ClockCheck(), f.Node.ClockCheck()
	t.Logf("S (clock 5 min behind): %+v, height %d; F (5 min ahead): %+v, height %d; honest height %d",
		cs, s.Node.Status().Height, cf, f.Node.Status().Height, h0.Node.Status().Height)
	if cs.Offset < skew-30*time.Second || cs.Offset > skew+30*time.Second || cs.TooNew == 0 {
		t.Errorf("S's clock check %+v: want an offset of about +%v and blocks refused as too new", cs, skew)
	}
	if !cf.Skewed || cf.Offset > -skew+30*time.Second || cf.Offset < -skew-30*time.Second {
		t.Errorf("F's clock check %+v: want skewed, an offset of about -%v", cf, skew)
	}
	for _, id := range honest {
		if onMain(s, id) {
			t.Errorf("S has honest reading %s on its main chain: its clock should refuse the blocks", id.Short())
		}
	}
	if got := s.Node.Status().Height; got != 1 {
		t.Errorf("S is at height %d, want 1: its own block, no honest one", got)
	}
	if !strings.Contains(s.log.String(), "clock looks behind") {
		t.Errorf("S did not warn that its clock looks behind; its log:\n%s", s.log.String())
	}
	if !strings.Contains(f.log.String(), "clock looks ahead") {
		t.Errorf("F did not warn that its clock looks ahead; its log:\n%s", f.log.String())
	}

	// 3. F's block: refused by the honest nodes, which go on mining.
	fromF := submitAt(t, f, 62)
	if err := testnet.WaitFor(ctx, func() bool { return h0.Node.ClockCheck().TooNew > 0 && h1.Node.ClockCheck().TooNew > 0 }); err != nil {
		t.Fatalf("the honest nodes never refused F's block as too new: H0 %+v, H1 %+v", h0.Node.ClockCheck(), h1.Node.ClockCheck())
	}
	for i := 0; i < 3; i++ {
		id := submitAt(t, []*clockPeer{h0, h1}[i%2], 80+i)
		waitOnMain(t, ctx, "an honest reading after F's", id, h0, h1, f)
	}
	for _, p := range []*clockPeer{h0, h1} {
		if onMain(p, fromF) {
			t.Errorf("%s has F's reading on its main chain: F's block is 5 minutes ahead", p.name)
		}
		if c := p.Node.ClockCheck(); c.Skewed {
			t.Errorf("%s finds its own (right) clock skewed: %+v", p.name, c)
		}
		for _, q := range []*clockPeer{f, s} {
			if !connected(p, q) {
				t.Errorf("%s cut off %s: a skewed clock is nobody's fault", p.name, q.name)
			}
		}
		if n := p.Node.Rejected()[chain.ErrTimeTooNew.String()]; n != 0 {
			t.Errorf("%s counts %d blocks too new as rejected (invalid)", p.name, n)
		}
	}
	t.Logf("F's block refused: H0 %+v, H1 %+v; F at height %d with %d pending, honest height %d",
		h0.Node.ClockCheck(), h1.Node.ClockCheck(), f.Node.Status().Height, f.Node.Pending(), h0.Node.Status().Height)

	// 4. The clocks are put right, and 4 minutes pass (every clock is
	// moved on): everything converges, the warnings go. F's reading, taken
	// at its clock 5 minutes ahead, can be mined only in a block at most
	// MaxFutureDrift older than it (rule 6d): it waits in F's pool until
	// then, and the 4 minutes let it go.
	for _, p := range all {
		p.offset.Store(int64(4 * time.Minute))
	}
	begin := time.Now()
	for i := 0; i < 40 && !(!f.Node.ClockCheck().Skewed && !s.Node.ClockCheck().Skewed &&
		onMain(h0, fromF) && s.Node.Status().Tip == h0.Node.Status().Tip); i++ {
		id := submitAt(t, []*clockPeer{h0, h1}[i%2], 90+i)
		waitOnMain(t, ctx, "an honest reading after the fix", id, h0, h1)
		time.Sleep(100 * time.Millisecond)
	}
	peers := []*testnet.Peer{h0.Peer, h1.Peer, f.Peer, s.Peer}
	if err := testnet.WaitConverged(ctx, peers); err != nil {
		t.Fatal(err)
	}
	t.Logf("converged %v after the clocks were put right, at height %d; S %+v; F %+v",
		time.Since(begin).Round(time.Millisecond), h0.Node.Status().Height, s.Node.ClockCheck(), f.Node.ClockCheck())
	for _, p := range all {
		for _, id := range append([]chain.Hash{fromS, fromF}, honest...) {
			if !onMain(p, id) {
				t.Errorf("%s lacks reading %s after the clocks were put right", p.name, id.Short())
			}
		}
	}
	for _, p := range []*clockPeer{f, s} {
		if c := p.Node.ClockCheck(); c.Skewed {
			t.Errorf("%s still finds its clock skewed after it was put right: %+v", p.name, c)
		}
		if !strings.Contains(p.log.String(), "agrees with its peers' blocks again") {
			t.Errorf("%s did not say its clock agrees again", p.name)
		}
	}
}

package testnet_test

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pchain/p2pchain/internal/bft"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/p2p"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// TestForgedFarHeightDoesNotPollEveryPeer: on an authority network a
// stranger gossips, on the consensus topic, votes for height 2^40 with a
// junk signature (no key needed). The consensus machine took any message
// above its height as a sign that peers had decided that height, before
// any signature check, and the node answered with a status exchange with
// every connected peer, as often as its one-second freshness rule allowed
// (12 times the exchanges of the 10-second poll, measured). Now a message
// that does not verify is taken on trust at most once per poll interval.
func TestForgedFarHeightDoesNotPollEveryPeer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	keys := keysN(t, 1)
	net := authorityNet(t, "forged-far-height", keys)
	st, state := openStore(t, filepath.Join(t.TempDir(), "victim"), net.Params)
	victim, err := testnet.Start(ctx, testnet.Config{Params: net.Params, Key: keys[0],
		NodeOptions: []node.Option{node.WithAuthority(net.Authority()), node.WithStore(st, state)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = victim.Close() })
	info, err := peer.AddrInfoFromP2pAddr(victim.Host.TCPAddr())
	if err != nil {
		t.Fatal(err)
	}

	// Witnesses: peers that answer status honestly and count the asks.
	const witnesses = 4
	var polls atomic.Int64
	for range witnesses {
		a, err := testnet.NewAttacker(ctx, testnet.AttackerConfig{Params: net.Params, Target: *info,
			Status: func(theirs chain.Status) chain.Status { polls.Add(1); return theirs }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = a.Close() })
	}
	const window = 12 * time.Second
	time.Sleep(2 * time.Second) // the exchanges on connect
	base := polls.Load()
	time.Sleep(window)
	quiet := polls.Load() - base
	t.Logf("without the attacker: %d status exchanges with %d peers in %v", quiet, witnesses, window)

	// The attacker: a bare host on the consensus topic.
	h, err := libp2p.New(libp2p.NoListenAddrs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	ps, err := pubsub.NewGossipSub(ctx, h, p2p.GossipOptions(p2p.MaxGossipSize(net.Params))...)
	if err != nil {
		t.Fatal(err)
	}
	topic, err := ps.Join(p2p.ConsensusTopic(victim.Node.Status().Genesis))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Connect(ctx, *info); err != nil {
		t.Fatal(err)
	}
	if err := testnet.WaitFor(ctx, func() bool { return len(topic.ListPeers()) > 0 }); err != nil {
		t.Fatal("the victim never joined the consensus topic")
	}
	v := bft.Vote{Type: bft.KindPrevote, Height: 1 << 40, Hash: chain.Hash{1}} // junk signature
	msg := v.AppendBinary(nil)
	sent, bytes := 0, 0
	base = polls.Load()
	for end := time.Now().Add(window); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		data := make([]byte, 8, 8+len(msg))
		_, _ = rand.Read(data)
		data = append(data, msg...)
		if err := topic.Publish(ctx, data); err != nil {
			t.Fatal(err)
		}
		sent++
		bytes += len(data)
	}
	loud := polls.Load() - base
	connected := len(h.Network().ConnsToPeer(info.ID)) > 0
	t.Logf("with the attacker: %d status exchanges with %d peers in %v, for %d forged %d-byte messages (attacker still connected: %v)",
		loud, witnesses, window, sent, len(msg)+8, connected)
	if !connected || sent == 0 {
		t.Fatalf("the forged messages did not reach the victim over the window (%d sent, connected %v)", sent, connected)
	}
	// At most one exchange more with each peer per 10 s, twice in 12 s.
	if loud > 2*quiet+2*witnesses {
		t.Errorf("unsigned messages for a far height made the victim poll every peer %.1fx as often (%d vs %d status exchanges); the sender was %s",
			float64(loud)/float64(max(quiet, 1)), loud, quiet, map[bool]string{true: "not blamed", false: "cut off"}[connected])
	}
}

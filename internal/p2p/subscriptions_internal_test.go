package p2p

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"
	"github.com/libp2p/go-msgio"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/proto"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// TestSubscriptionsFiltered: a peer speaking GossipSub by hand subscribes
// to made-up topics. The victim tracks none of them, drops whole an RPC
// with more than MaxSubscriptionsPerRPC subscriptions (its unsubscription
// from the blocks topic included), and tracks the network's own topics.
// RPCs of one stream are handled in order, so once the victim has seen the
// last one (a subscription to the readings topic) it has handled the others.
func TestSubscriptionsFiltered(t *testing.T) {
	ctx := testContext(t, 60*time.Second)
	params := chain.TestParams("subs")
	v := startVictim(t, ctx, params)
	genesis := v.node.Status().Genesis
	att, sendRPC := gossipByHand(t, ctx, v)
	send := func(subs map[string]bool) {
		t.Helper()
		rpc := &pb.RPC{}
		for topic, sub := range subs {
			rpc.Subscriptions = append(rpc.Subscriptions, &pb.RPC_SubOpts{Subscribe: proto.Bool(sub), Topicid: proto.String(topic)})
		}
		sendRPC(rpc)
	}
	joined := func(topic string) bool { return slices.Contains(v.ps.ListPeers(topic), att.ID()) }

	send(map[string]bool{BlocksTopic(genesis): true})
	waitUntil(t, ctx, "the victim tracks the peer in the blocks topic", func() bool { return joined(BlocksTopic(genesis)) })

	var junk []string
	few := map[string]bool{}
	for i := range MaxSubscriptionsPerRPC {
		topic := fmt.Sprintf("junk-few-%d", i)
		junk, few[topic] = append(junk, topic), true
	}
	send(few) // within the limit: the made-up topics are filtered out
	many := map[string]bool{BlocksTopic(genesis): false}
	for i := range MaxSubscriptionsPerRPC {
		topic := fmt.Sprintf("junk-many-%d", i)
		junk, many[topic] = append(junk, topic), true
	}
	send(many) // over the limit: dropped whole
	send(map[string]bool{ReadingsTopic(genesis): true})
	waitUntil(t, ctx, "the victim tracks the peer in the readings topic", func() bool { return joined(ReadingsTopic(genesis)) })

	for _, topic := range junk {
		if peers := v.ps.ListPeers(topic); len(peers) > 0 {
			t.Fatalf("the victim tracks made-up topic %q (peers %v)", topic, peers)
		}
	}
	if !joined(BlocksTopic(genesis)) {
		t.Fatalf("an RPC of %d subscriptions was handled: the peer left the blocks topic", len(many))
	}
}

// TestPeerExchangeIgnored: a stranger's GossipSub PRUNE with peer exchange
// (signed peer records naming a host) makes the node dial nothing: the
// node takes no peer exchange (AcceptPXThreshold), so a stranger cannot
// point its dials at a third party or fill its outbound slots.
func TestPeerExchangeIgnored(t *testing.T) {
	ctx := testContext(t, 60*time.Second)
	params := chain.TestParams("px")
	v := startVictim(t, ctx, params)
	genesis := v.node.Status().Genesis
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var dialled atomic.Int64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			dialled.Add(1)
			_ = c.Close()
		}
	}()
	target, err := ma.NewMultiaddr(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", l.Addr().(*net.TCPAddr).Port))
	if err != nil {
		t.Fatal(err)
	}
	var px []*pb.PeerInfo
	for range 16 {
		priv, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromPrivateKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		env, err := record.Seal(peer.PeerRecordFromAddrInfo(peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{target}}), priv)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := env.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		px = append(px, &pb.PeerInfo{PeerID: []byte(id), SignedPeerRecord: rec})
	}

	att, send := gossipByHand(t, ctx, v)
	blocks := BlocksTopic(genesis)
	send(&pb.RPC{Subscriptions: []*pb.RPC_SubOpts{{Subscribe: proto.Bool(true), Topicid: proto.String(blocks)}}})
	for range 20 {
		send(&pb.RPC{Control: &pb.ControlMessage{Prune: []*pb.ControlPrune{{TopicID: proto.String(blocks), Peers: px}}}})
	}
	// RPCs of one stream are handled in order: once the victim tracks the
	// readings subscription sent last, it has handled the PRUNEs.
	send(&pb.RPC{Subscriptions: []*pb.RPC_SubOpts{{Subscribe: proto.Bool(true), Topicid: proto.String(ReadingsTopic(genesis))}}})
	waitUntil(t, ctx, "the victim handles the RPCs", func() bool {
		return slices.Contains(v.ps.ListPeers(ReadingsTopic(genesis)), att.ID())
	})
	time.Sleep(2 * time.Second) // peer exchange dials start at once, from a background connector
	if n := dialled.Load(); n != 0 {
		t.Fatalf("the victim dialled the hosts a stranger's peer exchange named: %d connections", n)
	}
}

// gossipByHand connects a raw host to v and opens a GossipSub stream to
// it; send writes one RPC on it, as a peer that speaks GossipSub by hand
// would. The host takes v's stream and drops what v sends (v lists only
// peers it can send to).
func gossipByHand(t *testing.T, ctx context.Context, v victim) (host.Host, func(*pb.RPC)) {
	t.Helper()
	att := rawHost(t)
	att.SetStreamHandler(pubsub.GossipSubID_v11, func(s network.Stream) { _, _ = io.Copy(io.Discard, s) })
	connectRaw(t, ctx, att, v)
	s, err := att.NewStream(ctx, v.ID(), pubsub.GossipSubID_v11)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Reset() })
	w := msgio.NewVarintWriter(s)
	return att, func(rpc *pb.RPC) {
		t.Helper()
		data, err := proto.Marshal(rpc)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteMsg(data); err != nil {
			t.Fatal(err)
		}
	}
}

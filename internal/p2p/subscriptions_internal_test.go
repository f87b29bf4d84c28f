package p2p

import (
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-msgio"
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
	att := rawHost(t)
	// The victim lists only peers it can send to: take its stream, read
	// and drop what it sends.
	att.SetStreamHandler(pubsub.GossipSubID_v11, func(s network.Stream) { _, _ = io.Copy(io.Discard, s) })
	connectRaw(t, ctx, att, v)
	s, err := att.NewStream(ctx, v.ID(), pubsub.GossipSubID_v11)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Reset()
	w := msgio.NewVarintWriter(s)
	send := func(subs map[string]bool) {
		t.Helper()
		rpc := &pb.RPC{}
		for topic, sub := range subs {
			rpc.Subscriptions = append(rpc.Subscriptions, &pb.RPC_SubOpts{Subscribe: proto.Bool(sub), Topicid: proto.String(topic)})
		}
		data, err := proto.Marshal(rpc)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteMsg(data); err != nil {
			t.Fatal(err)
		}
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

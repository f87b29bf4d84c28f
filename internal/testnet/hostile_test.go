package testnet

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/p2p"
)

// rawPeer is a bare libp2p host that speaks our protocols badly on purpose.
type rawPeer struct {
	host  host.Host
	topic *pubsub.Topic
}

func newRawPeer(t *testing.T, ctx context.Context, target *Peer) *rawPeer {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	ps, err := pubsub.NewGossipSub(ctx, h, p2p.GossipOptions(p2p.MaxGossipSize(target.Node.Params()))...)
	if err != nil {
		t.Fatal(err)
	}
	topic, err := ps.Join(p2p.BlocksTopic(target.Node.Status().Genesis))
	if err != nil {
		t.Fatal(err)
	}
	// Not subscribed: a publish goes to the topic's peers at once (fanout),
	// where a subscriber's would wait for its mesh, and a message is named
	// by its data, so a copy that found no mesh is never sent again.
	info, err := peer.AddrInfoFromP2pAddr(target.Host.TCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Connect(ctx, *info); err != nil {
		t.Fatal(err)
	}
	if err := WaitFor(ctx, func() bool { return len(topic.ListPeers()) > 0 }); err != nil {
		t.Fatal("target never joined the topic")
	}
	return &rawPeer{host: h, topic: topic}
}

func (r *rawPeer) connectedTo(p *Peer) bool {
	for _, c := range r.host.Network().ConnsToPeer(p.Host.ID()) {
		if !c.IsClosed() {
			return true
		}
	}
	return false
}

// minedBlock returns a block on genesis with valid proof of work, then lets
// spoil break it.
func minedBlock(t *testing.T, params chain.Params, spoil func(b *chain.Block)) []byte {
	t.Helper()
	c, err := chain.New(params)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := p2p.GenerateKey()
	r, err := chain.NewReading(key, "mallory", 70, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b := c.NewBlock([]chain.Reading{r}, time.Now())
	if spoil != nil {
		spoil(b)
	}
	if err := chain.Solve(context.Background(), &b.Header); err != nil {
		t.Fatal(err)
	}
	data, err := b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestHostileGossip: peers that gossip garbage or invalid blocks are cut off;
// the node keeps its chain and keeps serving honest peers. A block with an
// unknown parent is not held against its sender.
func TestHostileGossip(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	params := chain.TestParams("hostile")
	params.Difficulty = 8
	target := startN(t, ctx, 1, Config{Params: params})[0]

	cases := []struct {
		name    string
		data    []byte
		refused bool
	}{
		{"garbage", []byte("this is not a block"), true},
		{"huge reading count", binary.BigEndian.AppendUint32(make([]byte, chain.HeaderSize), 1<<31), true},
		{"bad signature", minedBlock(t, params, func(b *chain.Block) { b.Readings[0].Sig[0] ^= 1 }), true},
		{"bad root", minedBlock(t, params, func(b *chain.Block) { b.Header.Root[0] ^= 1 }), true},
		{"wrong difficulty", minedBlock(t, params, func(b *chain.Block) { b.Header.Difficulty = 1 }), true},
		{"unknown parent", minedBlock(t, params, func(b *chain.Block) { b.Header.Parent = chain.Hash{1}; b.Header.Height = 7 }), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRawPeer(t, ctx, target)
			before := target.Host.Traffic().GossipIn
			// Publish until the node has seen the message: the first copy
			// may go out before the node's side of the topic is set up.
			err := WaitFor(ctx, func() bool {
				if target.Host.Traffic().GossipIn > before {
					return true
				}
				_ = r.topic.Publish(ctx, tc.data)
				time.Sleep(100 * time.Millisecond)
				return false
			})
			if err != nil {
				t.Fatal("the node never received the message")
			}
			if tc.refused {
				if err := WaitFor(ctx, func() bool { return !r.connectedTo(target) }); err != nil {
					t.Fatal("the node kept a peer that gossiped an invalid block")
				}
				if err := r.host.Connect(ctx, peer.AddrInfo{ID: target.Host.ID(), Addrs: []ma.Multiaddr{target.Host.TCPAddr()}}); err == nil {
					// The dial may complete the transport handshake; the
					// gater must close it straight away.
					if err := WaitFor(ctx, func() bool { return !r.connectedTo(target) }); err != nil {
						t.Fatal("a refused peer reconnected")
					}
				}
			} else if time.Sleep(300 * time.Millisecond); !r.connectedTo(target) {
				t.Fatal("a peer was cut off for a block with an unknown parent")
			}
			if h := target.Node.Status().Height; h != 0 {
				t.Fatalf("the node's chain moved to height %d", h)
			}
		})
	}

	// The node still works for honest peers.
	honest := startN(t, ctx, 1, Config{Params: params})[0]
	if err := honest.Connect(ctx, target); err != nil {
		t.Fatal(err)
	}
	if _, err := target.Node.Submit("alice", 72); err != nil {
		t.Fatal(err)
	}
	waitHeight(t, ctx, honest, 1)
}

// TestHostileStreams: malformed sync requests are answered with a reset and
// change nothing; the node then serves an honest sync.
func TestHostileStreams(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	params := chain.TestParams("streams")
	target := startN(t, ctx, 1, Config{Params: params})[0]
	if _, err := target.Node.Submit("alice", 72); err != nil {
		t.Fatal(err)
	}
	waitHeight(t, ctx, target, 1)
	r := newRawPeer(t, ctx, target)

	huge := binary.AppendUvarint(nil, 1<<40) // a length prefix far over any cap
	for _, proto := range []string{p2p.StatusProtocol, p2p.BlocksProtocol} {
		for _, payload := range [][]byte{huge, {5, 1, 2}, append(binary.AppendUvarint(nil, 3), 0, 9, 0)} {
			s, err := r.host.NewStream(ctx, target.Host.ID(), protocolID(proto))
			if err != nil {
				t.Fatal(err)
			}
			_ = s.SetDeadline(time.Now().Add(5 * time.Second))
			_, _ = s.Write(payload)
			_ = s.CloseWrite()
			buf := make([]byte, 1)
			if n, err := s.Read(buf); err == nil && n > 0 && proto == p2p.BlocksProtocol {
				t.Errorf("%s answered a malformed request %x", proto, payload)
			}
			s.Close()
		}
	}
	late := startN(t, ctx, 1, Config{Params: params})[0]
	if err := late.Connect(ctx, target); err != nil {
		t.Fatal(err)
	}
	waitHeight(t, ctx, late, 1)
}

func protocolID(s string) protocol.ID { return protocol.ID(s) }

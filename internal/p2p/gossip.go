package p2p

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// BlocksTopic is the GossipSub topic on which a network's new blocks travel.
// It names the genesis hash, so networks never share a topic. Version 2 of
// the topics carries unsigned messages (GossipOptions); version 1 carried
// messages signed by their origin.
func BlocksTopic(genesis chain.Hash) string { return "/p2pchain/blocks/2/" + genesis.String() }

// messageID identifies a gossip message by the SHA-256 of its data: the same
// block relayed by different peers is one message.
func messageID(m *pb.Message) string {
	s := sha256.Sum256(m.Data)
	return string(s[:])
}

// GossipOptions are the GossipSub settings every peer of a network must
// share (PROTOCOL.md section 11): messages carry no author, sequence number
// or signature, and one that does is rejected; a message is named by the
// hash of its data; an RPC frame is at most maxSize bytes. What travels
// authenticates itself (a block's proof of work or seal and its readings'
// signatures, a consensus message's signature), so a signature by the
// origin would cost every node a second Ed25519 check per message and prove
// nothing the node relies on: relays are judged by who forwarded, not by
// who claims to have published.
func GossipOptions(maxSize int) []pubsub.Option {
	return []pubsub.Option{
		pubsub.WithNoAuthor(),
		pubsub.WithMessageIdFn(messageID),
		pubsub.WithMaxMessageSize(maxSize),
	}
}

// MaxSubscriptionsPerRPC is the most topic subscriptions one GossipSub RPC
// of a peer may carry: an honest peer announces at most the network's three
// topics at once. An RPC with more is dropped whole, before its topics are
// looked at.
const MaxSubscriptionsPerRPC = 16

// subscriptionFilter makes GossipSub track peers' subscriptions to the
// topics of the network whose genesis hash is genesis only (blocks,
// consensus and readings; the last two carry nothing on a proof-of-work
// network but cost as little to track). Without it GossipSub keeps an entry
// for every topic any peer names, so one peer could make the node hold any
// number of made-up topics for as long as it stays connected.
func subscriptionFilter(genesis chain.Hash) pubsub.Option {
	allow := pubsub.NewAllowlistSubscriptionFilter(BlocksTopic(genesis), ConsensusTopic(genesis), ReadingsTopic(genesis))
	return pubsub.WithSubscriptionFilter(pubsub.WrapLimitSubscriptionFilter(allow, MaxSubscriptionsPerRPC))
}

// joinBlocks subscribes to the blocks topic with the block validator
// (joinTopic: the validator adds every accepted block to the ledger; the
// subscription only keeps us in the mesh).
func (h *Host) joinBlocks(ctx context.Context) error {
	t, err := h.joinTopic(ctx, BlocksTopic(h.ledger.Status().Genesis), h.validateBlock)
	h.topic = t
	return err
}

// SourcedLedger is a Ledger that is told which peer relayed a gossiped
// block: the gossip validator calls AddBlockFrom instead of AddBlock, with
// the relayer's peer ID. The node uses it to compare its clock with its
// peers' blocks (node.ClockCheck).
type SourcedLedger interface {
	AddBlockFrom(ctx context.Context, b *chain.Block, from string) error
}

// FaultReporter is a SourcedLedger that judges some gossiped blocks after
// AddBlockFrom returned (a block that arrived before its parent, kept until
// the parent comes): it tells the function OnPeerFault registered which
// relayer (the from AddBlockFrom was given) relayed such a block that
// proved invalid, and why. The host refuses that peer, as it refuses the
// relayer of an invalid block it judged at once.
type FaultReporter interface {
	OnPeerFault(f func(from, reason string))
}

// validateBlock decides the fate of a gossiped block, cheap checks first:
// size, then the relayer's budget (GossipBlocksPerSecond: over it the block
// is ignored and counted, without blame), then decoding, and only then the
// ledger, whose verdict maps to GossipSub's. Malformed, oversized and
// invalid blocks are rejected, counted, and the peer that relayed them is
// cut off; duplicates, blocks from the near future and valid blocks that
// fork below our final blocks are ignored (not relayed); a block whose
// parent is unknown is ignored and makes the sync manager ask the relayer
// for its status.
func (h *Host) validateBlock(ctx context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	if from == h.host.ID() {
		return pubsub.ValidationAccept // our own block, added before publishing
	}
	h.metrics.gossipBytesIn.Add(uint64(len(m.Data)))
	params := h.ledger.Params()
	if len(m.Data) > params.MaxBlockSize() {
		h.metrics.rejected.Add(1)
		h.metrics.oversized.Add(1)
		h.refuse(from, fmt.Sprintf("relayed a %d-byte block, over the %d-byte limit", len(m.Data), params.MaxBlockSize()))
		return pubsub.ValidationReject
	}
	if !h.peers.gossipAllowed(from, time.Now()) {
		h.metrics.gossipThrottled.Add(1)
		return pubsub.ValidationIgnore
	}
	b, err := chain.DecodeBlock(m.Data, params.MaxReadings)
	if err != nil {
		h.metrics.rejected.Add(1)
		h.metrics.malformed.Add(1)
		h.refuse(from, "relayed bytes that are not a block: "+err.Error())
		return pubsub.ValidationReject
	}
	if sl, ok := h.ledger.(SourcedLedger); ok {
		err = sl.AddBlockFrom(ctx, b, string(from))
	} else {
		err = h.ledger.AddBlock(ctx, b)
	}
	switch {
	case err == nil:
		h.peers.sawBlock(from, b.Header.Height, b.Hash())
		return pubsub.ValidationAccept
	case errors.Is(err, chain.ErrUnknownParent):
		// The relayer holds a chain we lack. Its status is asked for even
		// if fresh when the block shows that status is out of date (a
		// peer that reorganised since tells us so only by such a block),
		// at most once per forceGap (peerBook.forcePoll).
		now, later := h.peers.forcePoll(from, b.Header.Height, b.Hash(), time.Now())
		h.sync.request(from, now)
		if later > 0 {
			time.AfterFunc(later, func() {
				h.peers.forceFired(from, time.Now())
				h.sync.request(from, true)
			})
		}
		return pubsub.ValidationIgnore
	case chain.IsPeerFault(err):
		// Honest peers validate before they relay, so whoever relayed an
		// invalid block is at fault: reject it and cut the peer off.
		h.metrics.rejected.Add(1)
		h.refuse(from, "relayed an invalid block: "+err.Error())
		return pubsub.ValidationReject
	default:
		// Duplicates, ErrTimeTooNew, ErrForkTooDeep, ErrTooManyForks and
		// local failures: not the relayer's fault, not worth relaying.
		return pubsub.ValidationIgnore
	}
}

// BroadcastBlock publishes a block the ledger has already accepted.
func (h *Host) BroadcastBlock(ctx context.Context, b *chain.Block) error {
	data, err := b.MarshalBinary()
	if err != nil {
		return err
	}
	if err := h.topic.Publish(ctx, data); err != nil {
		return fmt.Errorf("gossip: publish block %d: %w", b.Header.Height, err)
	}
	h.metrics.gossipBytesOut.Add(uint64(len(data)))
	return nil
}

// MeshPeers returns how many peers are in our GossipSub mesh for blocks:
// those we forward a new block to at once.
func (h *Host) MeshPeers() int { return h.mesh.size(h.topic.String()) }

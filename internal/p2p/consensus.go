package p2p

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pchain/p2pchain/internal/bft"
	"github.com/p2pchain/p2pchain/internal/chain"
)

// On an authority network (chain.Authority) two more GossipSub topics
// carry what the consensus needs beside blocks:
//
//   - the consensus topic: the authorities' proposals (each followed by
//     its block), votes and commits (docs/BFT.md). Each message is sent
//     behind an 8-byte random nonce, so that the byte-identical resends
//     the consensus makes (a peer may have lost the first) get past
//     GossipSub's seen-message cache, which identifies messages by the
//     hash of their bytes;
//   - the readings topic: readings submitted to any node, so that they
//     reach the proposers, also behind a nonce: a node sends a reading
//     that stays pending again, and GossipSub drops a repeat of its own
//     message as quietly as a peer's. Peers recognise a known reading
//     without verifying its signature twice (the signature cache).
//
// Both validators do the cheap checks (size, the relayer's budget,
// decoding) before the node's, and map its verdict to GossipSub's as the
// blocks topic does: accepted messages are relayed, a peer that relays a
// message that breaks the protocol is cut off, the rest is ignored.

// ConsensusTopic and ReadingsTopic name the topics of the network whose
// genesis hash is genesis.
func ConsensusTopic(genesis chain.Hash) string { return "/p2pchain/consensus/2/" + genesis.String() }

// ReadingsTopic is the topic on which an authority network's readings travel.
func ReadingsTopic(genesis chain.Hash) string { return "/p2pchain/readings/2/" + genesis.String() }

// nonceSize is the size of the nonce in front of a consensus message.
const nonceSize = 8

// ConsensusLedger is what the consensus topics need from the node
// (internal/node implements it).
type ConsensusLedger interface {
	// HandleConsensus takes a consensus message: nil when accepted, an
	// error that bft.IsPeerFault or chain.IsPeerFault holds a fault for
	// when its sender broke the protocol.
	HandleConsensus(ctx context.Context, msg []byte) error
	// ReceiveReading takes a reading a peer relayed.
	ReceiveReading(r chain.Reading) error
}

// joinConsensus subscribes to the consensus and readings topics, on an
// authority network whose ledger handles them.
func (h *Host) joinConsensus(ctx context.Context) error {
	if h.ledger.Params().Consensus != chain.Authority {
		return nil
	}
	cl, ok := h.ledger.(ConsensusLedger)
	if !ok {
		return errors.New("p2p: an authority network's ledger must handle consensus messages")
	}
	h.cons = cl
	genesis := h.ledger.Status().Genesis
	var err error
	if h.consTopic, err = h.joinTopic(ctx, ConsensusTopic(genesis), h.validateConsensus); err != nil {
		return err
	}
	h.readTopic, err = h.joinTopic(ctx, ReadingsTopic(genesis), h.validateReading)
	return err
}

// joinTopic joins topic with a validator and keeps a subscription, which
// keeps the node in the topic's mesh (the validator does the work).
func (h *Host) joinTopic(ctx context.Context, topic string, v func(context.Context, peer.ID, *pubsub.Message) pubsub.ValidationResult) (*pubsub.Topic, error) {
	if err := h.ps.RegisterTopicValidator(topic, v); err != nil {
		return nil, fmt.Errorf("gossip: register validator for %s: %w", topic, err)
	}
	t, err := h.ps.Join(topic)
	if err != nil {
		return nil, fmt.Errorf("gossip: join %s: %w", topic, err)
	}
	sub, err := t.Subscribe()
	if err != nil {
		return nil, fmt.Errorf("gossip: subscribe to %s: %w", topic, err)
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for {
			if _, err := sub.Next(ctx); err != nil {
				sub.Cancel()
				return
			}
		}
	}()
	return t, nil
}

// verdict maps the node's answer to GossipSub's, cutting off a peer that
// relayed what breaks the protocol.
func (h *Host) verdict(from peer.ID, what string, err error) pubsub.ValidationResult {
	switch {
	case err == nil:
		return pubsub.ValidationAccept
	case bft.IsPeerFault(err), chain.IsPeerFault(err):
		h.metrics.rejected.Add(1)
		h.refuse(from, "relayed an invalid "+what+": "+err.Error())
		return pubsub.ValidationReject
	default:
		return pubsub.ValidationIgnore
	}
}

// validateConsensus checks a consensus message: size, the relayer's
// budget, then the node (which decodes it and checks its signature
// against the authority set of its height before anything else).
func (h *Host) validateConsensus(ctx context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	if from == h.host.ID() {
		return pubsub.ValidationAccept
	}
	h.metrics.gossipBytesIn.Add(uint64(len(m.Data)))
	if max := nonceSize + bft.ProposalSize + h.ledger.Params().MaxBlockSize(); len(m.Data) > max || len(m.Data) <= nonceSize {
		h.metrics.oversized.Add(1)
		h.refuse(from, fmt.Sprintf("relayed a %d-byte consensus message (limit %d)", len(m.Data), max))
		return pubsub.ValidationReject
	}
	if !h.peers.messageAllowed(from, time.Now()) {
		h.metrics.gossipThrottled.Add(1)
		return pubsub.ValidationIgnore
	}
	return h.verdict(from, "consensus message", h.cons.HandleConsensus(ctx, m.Data[nonceSize:]))
}

// validateReading checks a relayed reading: size, the relayer's budget,
// decoding, then the node (known, or the relayed half of the pending set
// full, before the signature).
func (h *Host) validateReading(ctx context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	if from == h.host.ID() {
		return pubsub.ValidationAccept
	}
	h.metrics.gossipBytesIn.Add(uint64(len(m.Data)))
	if len(m.Data) > nonceSize+chain.MaxReadingSize || len(m.Data) <= nonceSize {
		h.metrics.oversized.Add(1)
		h.refuse(from, fmt.Sprintf("relayed a %d-byte reading (limit %d)", len(m.Data), nonceSize+chain.MaxReadingSize))
		return pubsub.ValidationReject
	}
	if !h.peers.messageAllowed(from, time.Now()) {
		h.metrics.gossipThrottled.Add(1)
		return pubsub.ValidationIgnore
	}
	var r chain.Reading
	if err := r.UnmarshalBinary(m.Data[nonceSize:]); err != nil {
		h.metrics.malformed.Add(1)
		return h.verdict(from, "reading", err)
	}
	err := h.cons.ReceiveReading(r)
	if errors.Is(err, chain.ErrBadReadingTime) {
		// Ahead of our clock: the relayer's clock may differ from ours by
		// more than the allowed drift. Not relayed, not blamed.
		return pubsub.ValidationIgnore
	}
	return h.verdict(from, "reading", err)
}

// withNonce returns msg behind a fresh random nonce.
func withNonce(msg []byte) []byte {
	data := make([]byte, nonceSize, nonceSize+len(msg))
	_, _ = rand.Read(data)
	return append(data, msg...)
}

// BroadcastConsensus publishes a consensus message of this node behind a
// fresh nonce (a resend is a new gossip message).
func (h *Host) BroadcastConsensus(ctx context.Context, msg []byte) error {
	if h.consTopic == nil {
		return errors.New("gossip: not an authority network")
	}
	data := withNonce(msg)
	if err := h.consTopic.Publish(ctx, data); err != nil {
		return fmt.Errorf("gossip: publish consensus message: %w", err)
	}
	h.metrics.gossipBytesOut.Add(uint64(len(data)))
	return nil
}

// BroadcastReading publishes a reading submitted to this node.
func (h *Host) BroadcastReading(ctx context.Context, r chain.Reading) error {
	if h.readTopic == nil {
		return errors.New("gossip: not an authority network")
	}
	enc, err := r.MarshalBinary()
	if err != nil {
		return err
	}
	data := withNonce(enc)
	if err := h.readTopic.Publish(ctx, data); err != nil {
		return fmt.Errorf("gossip: publish reading: %w", err)
	}
	h.metrics.gossipBytesOut.Add(uint64(len(data)))
	return nil
}

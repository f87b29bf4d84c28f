package api

import (
	"encoding/hex"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/netfile"
)

// The JSON bodies of responses. Blocks and readings themselves use their
// JSON form from package chain (the form of export files too), so a client
// can decode them with chain.Block and chain.Reading and check their hashes;
// the API adds where they stand beside them.

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

// StorageView is the storage state inside StatusView: state "ok", "full"
// or "failed" (see StorageState); error and since only when not ok.
type StorageView struct {
	State string `json:"state"`
	Error string `json:"error,omitempty"`
	Since int64  `json:"since,omitempty"` // Unix ms, while full
}

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
}

func newConsensusStateView(c Consensus) consensusStateView {
	return consensusStateView{Height: c.Height, Round: c.Round, Step: c.Step, Authorities: peerIDs(c.Authorities),
		Self: c.Self, Decided: c.Decided, Rounds: c.Rounds, MissedTurns: c.MissedTurns}
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

func syncView(st Status) SyncView {
	s := SyncView{Progress: 1, Height: st.Chain.Height, Target: max(st.Chain.Height, st.BestPeer)}
	switch {
	case st.Sync.Syncing:
		s.State, s.Peer, s.From, s.Height, s.Target = syncStateSyncing, st.Sync.Peer, st.Sync.From, st.Sync.Height, st.Sync.Target
		if st.Sync.Target > 0 {
			s.Progress = min(1, float64(st.Sync.Height)/float64(st.Sync.Target))
		}
	case st.Peers == 0:
		s.State = syncStateNoPeers
	case st.BestPeer > st.Chain.Height:
		s.State = syncStateBehind
		s.Progress = float64(st.Chain.Height) / float64(st.BestPeer)
	default:
		s.State = syncStateSynced
	}
	return s
}

func newStatusView(st Status) StatusView {
	addrs := st.Addrs
	if addrs == nil {
		addrs = []string{}
	}
	v := StatusView{
		PeerID: st.PeerID, Addrs: addrs, Network: st.Network, Difficulty: st.Difficulty,
		Genesis: st.Chain.Genesis.String(), Tip: st.Chain.Tip.String(), Height: st.Chain.Height,
		TipTime: st.TipTime, TotalWork: work(st.Chain.Work).String(),
		FinalizedHeight: st.FinalHeight, FinalizedHash: st.Final.String(), Consensus: st.Consensus,
		Peers: st.Peers, Pending: st.Pending, Sync: syncView(st),
		Storage: StorageView{State: st.Storage.State, Error: st.Storage.Error, Since: st.Storage.Since},
	}
	if v.Storage.State == "" {
		v.Storage.State = StorageOK
	}
	if v.Consensus == "" {
		v.Consensus = ConsensusPoW
	}
	if c := st.Authority; c != nil {
		v.Authority = &AuthorityStatusView{consensusStateView: newConsensusStateView(*c), Evidence: len(c.Evidence)}
	}
	return v
}

// keyPeerID returns the libp2p peer ID of an authority key, the form the
// API shows keys in (their hex if they are no Ed25519 key, which the node
// never holds).
func keyPeerID(k Key) string {
	if id, err := netfile.PeerIDOf(k); err == nil {
		return id
	}
	return hex.EncodeToString(k[:])
}

func peerIDs(keys []Key) []string {
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

func newConsensusView(c Consensus) consensusView {
	v := consensusView{Kind: c.Kind, consensusStateView: newConsensusStateView(c),
		Evidence: make([]evidenceView, 0, len(c.Evidence)), Approved: make([]changeView, 0, len(c.Approved))}
	for _, e := range c.Evidence {
		v.Evidence = append(v.Evidence, evidenceView{Height: e.Height, Offender: e.Offender, Hex: hex.EncodeToString(e.Binary)})
	}
	for _, ch := range c.Approved {
		v.Approved = append(v.Approved, changeView{Op: ch.Op, PeerID: keyPeerID(ch.Key), Height: ch.Height})
	}
	return v
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

func newBlockSummary(b *chain.Block, tip, final uint64) blockSummary {
	h := &b.Header
	s := blockSummary{
		Height: h.Height, Hash: h.Hash(), Parent: h.Parent, Time: h.Time, Root: h.Root,
		Difficulty: h.Difficulty, Nonce: h.Nonce, Version: h.Version, Readings: len(b.Readings),
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

func newBlockView(b BlockInfo) blockView {
	v := blockView{Block: b.Block, Main: b.Main, Final: b.Final}
	if b.Main && b.Block.Header.Height <= b.Tip {
		v.Confirmations = b.Tip - b.Block.Header.Height + 1
	}
	return v
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

func newReadingView(r ReadingInfo) readingView {
	if r.Pending {
		return readingView{Reading: r.Reading, Status: readingPending}
	}
	v := readingView{Reading: r.Reading, Status: readingInBlock, Height: &r.Height, Block: &r.Block, Final: r.Final}
	if r.Height <= r.Tip {
		v.Confirmations = r.Tip - r.Height + 1
	}
	return v
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

func newPeerView(p Peer) peerView {
	addrs := p.Addrs
	if addrs == nil {
		addrs = []string{}
	}
	v := peerView{ID: p.ID, Addrs: addrs, Height: p.Height}
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

func newBlockedView(ids []string) blockedView {
	if ids == nil {
		ids = []string{}
	}
	return blockedView{Count: len(ids), Blocked: ids}
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

package api

import (
	"context"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pchain/p2pchain/internal/bft"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/p2p"
)

// NodeService is the Service of a running node: its chain owner and its
// network host. It only translates types; this file is the one place
// package api sees packages node and p2p.
type NodeService struct {
	Node *node.Node
	Host *p2p.Host
}

var _ Service = NodeService{}

// Status implements Service.
func (s NodeService) Status() Status {
	params := s.Node.Params()
	st := Status{
		PeerID:     s.Host.ID().String(),
		Network:    params.Name,
		Difficulty: params.Difficulty,
		Chain:      s.Node.Status(),
		TipTime:    s.Node.TipBlock().Header.Time,
		Pending:    s.Node.Pending(),
		Storage:    storageState(s.Node.Storage()),
	}
	st.FinalHeight, st.Final = s.Node.Final()
	st.Consensus = params.Consensus.String()
	if params.Consensus == chain.Authority {
		c := s.consensus(false) // the status counts the evidence only
		st.Authority = &c
	}
	for _, a := range s.Host.Addrs() {
		st.Addrs = append(st.Addrs, a.String())
	}
	peers := s.Host.Peers()
	st.Peers = len(peers)
	for _, p := range peers {
		st.BestPeer = max(st.BestPeer, p.Height)
	}
	sy := s.Host.Sync()
	st.Sync = SyncState{Syncing: sy.Syncing, From: sy.From, Height: sy.Height, Target: sy.Target}
	if sy.Syncing {
		st.Sync.Peer = sy.Peer.String()
	}
	return st
}

// Blocks implements Service.
func (s NodeService) Blocks(from uint64, limit int) []*chain.Block { return s.Node.Blocks(from, limit) }

// The final height is read before a block or reading is looked up: a
// main-chain block at or below it is then final (final blocks never leave
// the main chain), whatever changed in between.

// BlockByHash implements Service.
func (s NodeService) BlockByHash(h chain.Hash) (BlockInfo, bool) {
	final := s.Node.FinalHeight()
	b, ok := s.Node.BlockByHash(h)
	return blockInfo(b, final), ok
}

// BlockByHeight implements Service.
func (s NodeService) BlockByHeight(height uint64) (BlockInfo, bool) {
	final := s.Node.FinalHeight()
	b, ok := s.Node.BlockByHeight(height)
	return blockInfo(b, final), ok
}

func blockInfo(b node.BlockInfo, final uint64) BlockInfo {
	return BlockInfo{Block: b.Block, Main: b.Main, Tip: b.Tip, Final: b.Main && b.Block != nil && b.Block.Header.Height <= final}
}

func readingInfo(r node.ReadingInfo, final uint64) ReadingInfo {
	return ReadingInfo{Reading: r.Reading, Pending: r.Pending, Height: r.Height, Block: r.Block, Tip: r.Tip,
		Final: !r.Pending && r.Height <= final}
}

// BlocksWithPrefix implements Service.
func (s NodeService) BlocksWithPrefix(p chain.HashPrefix, limit int) (Matches, error) {
	m, err := s.Node.BlocksWithPrefix(p, limit)
	return Matches(m), err
}

// ReadingsWithPrefix implements Service.
func (s NodeService) ReadingsWithPrefix(p chain.HashPrefix, limit int) (Matches, error) {
	m, err := s.Node.ReadingsWithPrefix(p, limit)
	return Matches(m), err
}

// Reading implements Service.
func (s NodeService) Reading(id chain.Hash) (ReadingInfo, bool) {
	final := s.Node.FinalHeight()
	r, ok := s.Node.LocateReading(id)
	return readingInfo(r, final), ok
}

// SubjectReadings implements Service.
func (s NodeService) SubjectReadings(subject string, from Cursor, limit int) SubjectPage {
	final := s.Node.FinalHeight()
	p := s.Node.SubjectReadings(subject, node.ReadingPos(from), limit)
	out := SubjectPage{Next: Cursor(p.Next), More: p.More, Tip: p.Tip}
	for _, r := range p.Readings {
		out.Readings = append(out.Readings, readingInfo(r, final))
	}
	return out
}

// PendingOf implements Service.
func (s NodeService) PendingOf(subject string, limit int) []chain.Reading {
	return s.Node.PendingOf(subject, limit)
}

// Submit implements Service.
func (s NodeService) Submit(subject string, bpm int) (chain.Reading, error) {
	r, err := s.Node.Submit(subject, bpm)
	if errors.Is(err, node.ErrStoreFull) {
		err = DiskFull(err)
	}
	return r, err
}

func storageState(st node.Storage) StorageState {
	switch {
	case st.Failed != nil:
		return StorageState{State: StorageFailed, Error: st.Failed.Error()}
	case st.Full:
		return StorageState{State: StorageFull, Error: st.Err.Error(), Since: st.Since.UnixMilli()}
	}
	return StorageState{State: StorageOK}
}

// Peers implements Service.
func (s NodeService) Peers() []Peer {
	var out []Peer
	for _, p := range s.Host.Peers() {
		q := Peer{ID: p.ID.String(), Height: p.Height, Tip: p.Tip}
		for _, a := range p.Addrs {
			q.Addrs = append(q.Addrs, a.String())
		}
		out = append(out, q)
	}
	return out
}

// Connect implements Service.
func (s NodeService) Connect(ctx context.Context, addr string) error {
	return s.Host.Connect(ctx, addr)
}

// Block implements Service.
func (s NodeService) Block(ids []string) error {
	ps, err := decodePeerIDs(ids)
	if err != nil {
		return err
	}
	return s.Host.Block(ps...)
}

// Unblock implements Service.
func (s NodeService) Unblock(ids []string) {
	ps, _ := decodePeerIDs(ids) // the handler has checked them
	s.Host.Unblock(ps...)
}

// Blocked implements Service.
func (s NodeService) Blocked() []string {
	var out []string
	for _, p := range s.Host.Blocked() {
		out = append(out, p.String())
	}
	return out
}

func decodePeerIDs(ids []string) ([]peer.ID, error) {
	out := make([]peer.ID, 0, len(ids))
	for _, s := range ids {
		p, err := peer.Decode(s)
		if err != nil {
			return nil, fmt.Errorf("peer ID %q: %w", s, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// Subscribe implements Service. Events are translated by a goroutine that
// ends when the subscription does.
func (s NodeService) Subscribe(buffer int) (<-chan ChainEvent, func()) {
	in, stop := s.Node.Subscribe(buffer)
	out := make(chan ChainEvent, buffer)
	go func() {
		defer close(out)
		for e := range in {
			if e.Kind == node.EventFinal {
				ev := ChainEvent{Final: &FinalEvent{Height: e.Final, Hash: e.FinalHash, Latencies: e.Latencies}}
				select {
				case out <- ev:
				default:
				}
				continue
			}
			if e.Kind != node.EventTip || e.Update == nil {
				continue
			}
			ev := ChainEvent{Height: e.Height, Tip: e.Tip, Connected: len(e.Update.Connected), Disconnected: len(e.Update.Disconnected)}
			if d := e.Update.Disconnected; len(d) > 0 {
				ev.OldTip = d[0].Hash()
				ev.ForkHeight = d[len(d)-1].Header.Height - 1
				ev.Returned = len(e.Update.Returned)
			}
			select {
			case out <- ev:
			default: // the subscriber is behind: drop, as the node does
			}
		}
	}()
	return out, stop
}

// Counters implements Service. Rejected adds the blocks the host refused
// before the node saw them (oversized, and malformed: the same reason as
// the chain's own ErrMalformed) to those the node refused by rule.
func (s NodeService) Counters() Counters {
	t, d := s.Host.Traffic(), s.Host.DiscoveryStats()
	rejected := s.Node.Rejected()
	rejected[chain.ErrMalformed.String()] += t.Malformed
	rejected[RejectedOversized] += t.Oversized
	clock := s.Node.ClockCheck()
	return Counters{
		GossipBytesIn: t.GossipIn, GossipBytesOut: t.GossipOut, SyncBytesIn: t.SyncIn, SyncBytesOut: t.SyncOut,
		Rejected: rejected, MeshPeers: s.Host.MeshPeers(), KnownBlocks: s.Node.KnownBlocks(),
		MDNSFound: d.MDNSFound, DHTFound: d.DHTFound, Dials: d.Dials, DialErrors: d.DialErrors,
		ClockOffset: clock.Offset, ClockSkewed: clock.Skewed, BlocksTooNew: clock.TooNew,
	}
}

// Consensus implements Service.
func (s NodeService) Consensus() Consensus { return s.consensus(true) }

// consensus is Consensus; without full, evidence carries no encoding.
func (s NodeService) consensus(full bool) Consensus {
	ci := s.Node.Consensus()
	c := Consensus{Kind: ci.Kind, Height: ci.Height, Round: ci.Round, Step: ci.Step, Authorities: ci.Authorities,
		Self: ci.Self, Decided: ci.Decided, Rounds: ci.Rounds, MissedTurns: ci.MissedTurns}
	for _, e := range ci.Evidence {
		ev := Evidence{Height: e.Height(), Offender: -1}
		if set := s.Node.AuthoritySet(ev.Height); set != nil {
			ev.Offender = e.Offender(set) // the set of its height: the node keeps them all
		}
		if full {
			ev.Binary = e.AppendBinary(nil)
		}
		c.Evidence = append(c.Evidence, ev)
	}
	for _, ch := range ci.Approved {
		c.Approved = append(c.Approved, Change{Op: opName(ch.Op), Height: ch.Height, Key: ch.Key})
	}
	return c
}

func opName(op bft.Op) string {
	switch op {
	case bft.OpAdd:
		return OpAdd
	case bft.OpRemove:
		return OpRemove
	}
	return fmt.Sprintf("op%d", op)
}

// Approve implements Service.
func (s NodeService) Approve(c Change) error {
	var op bft.Op
	switch c.Op {
	case OpAdd:
		op = bft.OpAdd
	case OpRemove:
		op = bft.OpRemove
	default:
		return fmt.Errorf("unknown membership operation %q: want %q or %q", c.Op, OpAdd, OpRemove)
	}
	return s.Node.Approve(bft.Change{Op: op, Height: c.Height, Key: c.Key})
}

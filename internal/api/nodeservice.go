package api

import (
	"context"

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
	}
	st.FinalHeight, st.Final = s.Node.Final()
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

// BlockByHash implements Service.
func (s NodeService) BlockByHash(h chain.Hash) (BlockInfo, bool) {
	b, ok := s.Node.BlockByHash(h)
	return BlockInfo(b), ok
}

// BlockByHeight implements Service.
func (s NodeService) BlockByHeight(height uint64) (BlockInfo, bool) {
	b, ok := s.Node.BlockByHeight(height)
	return BlockInfo(b), ok
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
	r, ok := s.Node.LocateReading(id)
	return ReadingInfo(r), ok
}

// SubjectReadings implements Service.
func (s NodeService) SubjectReadings(subject string, from Cursor, limit int) SubjectPage {
	p := s.Node.SubjectReadings(subject, node.ReadingPos(from), limit)
	out := SubjectPage{Next: Cursor(p.Next), More: p.More, Tip: p.Tip}
	for _, r := range p.Readings {
		out.Readings = append(out.Readings, ReadingInfo(r))
	}
	return out
}

// PendingOf implements Service.
func (s NodeService) PendingOf(subject string, limit int) []chain.Reading {
	return s.Node.PendingOf(subject, limit)
}

// Submit implements Service.
func (s NodeService) Submit(subject string, bpm int) (chain.Reading, error) {
	return s.Node.Submit(subject, bpm)
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

// Subscribe implements Service. Events are translated by a goroutine that
// ends when the subscription does.
func (s NodeService) Subscribe(buffer int) (<-chan ChainEvent, func()) {
	in, stop := s.Node.Subscribe(buffer)
	out := make(chan ChainEvent, buffer)
	go func() {
		defer close(out)
		for e := range in {
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
	return Counters{
		GossipBytesIn: t.GossipIn, GossipBytesOut: t.GossipOut, SyncBytesIn: t.SyncIn, SyncBytesOut: t.SyncOut,
		Rejected: rejected, MeshPeers: s.Host.MeshPeers(), KnownBlocks: s.Node.KnownBlocks(),
		MDNSFound: d.MDNSFound, DHTFound: d.DHTFound, Dials: d.Dials, DialErrors: d.DialErrors,
	}
}

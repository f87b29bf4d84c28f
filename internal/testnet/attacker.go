package testnet

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	noise "github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/libp2p/go-msgio"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/p2p"
)

// The attacker toolkit: a hostile peer built from go-libp2p directly, which
// speaks docs/PROTOCOL.md as it pleases, and a forger of blocks. It works
// against any node it can dial, in this process or another.

// statusSize and maxRequestSize are the read caps of the status message and
// the blocks request (docs/PROTOCOL.md sections 9.1 and 10.1).
const (
	statusSize     = 104
	maxRequestSize = 3 + chain.MaxLocator*chain.HashSize
)

// AttackerConfig says how an Attacker behaves.
type AttackerConfig struct {
	Params chain.Params  // the target's network
	Target peer.AddrInfo // the node to attack
	// Gossip joins the blocks topic (without subscribing) and waits until
	// the target is a peer on it, so that Publish reaches the target.
	Gossip bool
	// Status answers the status exchanges the target opens, given the
	// target's status. Nil: echo the target's own status, which is on its
	// network and never better than its tip, so the target neither refuses
	// nor syncs from the attacker.
	Status func(theirs chain.Status) chain.Status
	// Blocks answers the target's blocks requests, writing framed blocks to
	// w. Nil: the attacker does not speak the blocks protocol.
	Blocks func(req p2p.BlocksRequest, w msgio.Writer)
}

// Attacker is one identity of a hostile peer: a bare libp2p host (TCP and
// Noise only, no listener) connected to its target. Peer IDs cost nothing,
// so an attack makes a new Attacker whenever the target refuses the last.
type Attacker struct {
	Host    host.Host
	target  peer.ID
	genesis chain.Hash
	topic   *pubsub.Topic // nil unless cfg.Gossip
	cancel  context.CancelFunc
}

// NewAttacker makes a fresh identity and connects it to cfg.Target. ctx
// bounds the setup; the attacker lives until Close.
func NewAttacker(ctx context.Context, cfg AttackerConfig) (*Attacker, error) {
	h, err := libp2p.New(
		libp2p.NoListenAddrs,
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
	)
	if err != nil {
		return nil, fmt.Errorf("attacker host: %w", err)
	}
	life, cancel := context.WithCancel(context.Background())
	a := &Attacker{Host: h, target: cfg.Target.ID, genesis: cfg.Params.Genesis().Hash(), cancel: cancel}
	answer := cfg.Status
	if answer == nil {
		answer = func(theirs chain.Status) chain.Status { return theirs }
	}
	h.SetStreamHandler(p2p.StatusProtocol, func(s network.Stream) { answerStatus(s, answer) })
	if cfg.Blocks != nil {
		h.SetStreamHandler(p2p.BlocksProtocol, func(s network.Stream) { answerBlocks(s, cfg.Blocks) })
	}
	if cfg.Gossip {
		ps, err := pubsub.NewGossipSub(life, h, p2p.GossipOptions(p2p.MaxGossipSize(cfg.Params))...)
		if err == nil {
			a.topic, err = ps.Join(p2p.BlocksTopic(a.genesis))
		}
		if err != nil {
			a.Close()
			return nil, fmt.Errorf("attacker gossip: %w", err)
		}
	}
	if err := h.Connect(ctx, cfg.Target); err != nil {
		a.Close()
		return nil, fmt.Errorf("attacker %s: connect to the target: %w", h.ID().ShortString(), err)
	}
	if cfg.Gossip {
		for !a.topicHasTarget() {
			select {
			case <-ctx.Done():
				a.Close()
				return nil, fmt.Errorf("attacker %s: the target never joined the blocks topic: %w", h.ID().ShortString(), ctx.Err())
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	return a, nil
}

func (a *Attacker) topicHasTarget() bool {
	for _, p := range a.topic.ListPeers() {
		if p == a.target {
			return true
		}
	}
	return false
}

// Close ends the identity: its connections, its gossip and its host.
func (a *Attacker) Close() error {
	a.cancel()
	return a.Host.Close()
}

// Connected reports whether the attacker still has an open connection to
// its target; false after the target refused it.
func (a *Attacker) Connected() bool {
	return a.Host.Network().Connectedness(a.target) == network.Connected
}

// WaitRefused waits until the target has closed every connection to the
// attacker, or ctx ends.
func (a *Attacker) WaitRefused(ctx context.Context) error {
	for a.Connected() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("attacker %s is still connected: %w", a.Host.ID().ShortString(), ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
	return nil
}

// Publish gossips data on the blocks topic (the attacker must have been
// made with Gossip). The same data twice is sent once: pubsub drops a
// message it has seen.
func (a *Attacker) Publish(ctx context.Context, data []byte) error {
	if a.topic == nil {
		return errors.New("attacker: publish without gossip")
	}
	return a.topic.Publish(ctx, data)
}

// ExchangeStatus runs a status exchange as its initiator, sending ours (on
// the target's genesis, else the target refuses the attacker), and returns
// the target's status.
func (a *Attacker) ExchangeStatus(ctx context.Context, ours chain.Status) (chain.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := a.Host.NewStream(ctx, a.target, p2p.StatusProtocol)
	if err != nil {
		return chain.Status{}, fmt.Errorf("status: open stream: %w", err)
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	msg, err := p2p.EncodeStatus(ours)
	if err == nil {
		err = msgio.NewVarintWriter(s).WriteMsg(msg)
	}
	if err != nil {
		_ = s.Reset()
		return chain.Status{}, fmt.Errorf("status: write: %w", err)
	}
	_ = s.CloseWrite()
	reply, err := msgio.NewVarintReaderSize(s, statusSize).ReadMsg()
	if err != nil {
		_ = s.Reset()
		return chain.Status{}, fmt.Errorf("status: read: %w", err)
	}
	return p2p.DecodeStatus(reply)
}

// RequestBlocks sends one blocks request and reads the whole response
// without decoding it, as cheaply as a client can. It returns the bytes
// received; a stream the target reset (over a limit) is an error.
func (a *Attacker) RequestBlocks(ctx context.Context, req p2p.BlocksRequest) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	msg, err := req.Encode()
	if err != nil {
		return 0, err
	}
	s, err := a.Host.NewStream(ctx, a.target, p2p.BlocksProtocol)
	if err != nil {
		return 0, fmt.Errorf("blocks: open stream: %w", err)
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	if err := msgio.NewVarintWriter(s).WriteMsg(msg); err != nil {
		_ = s.Reset()
		return 0, fmt.Errorf("blocks: write request: %w", err)
	}
	_ = s.CloseWrite()
	n, err := io.Copy(io.Discard, s)
	if err != nil {
		_ = s.Reset()
		return n, fmt.Errorf("blocks: read response: %w", err)
	}
	return n, nil
}

// answerStatus is the responder side of a status exchange.
func answerStatus(s network.Stream, answer func(chain.Status) chain.Status) {
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	msg, err := msgio.NewVarintReaderSize(s, statusSize).ReadMsg()
	if err != nil {
		_ = s.Reset()
		return
	}
	theirs, err := p2p.DecodeStatus(msg)
	if err != nil {
		_ = s.Reset()
		return
	}
	reply, err := p2p.EncodeStatus(answer(theirs))
	if err != nil {
		_ = s.Reset()
		return
	}
	_ = msgio.NewVarintWriter(s).WriteMsg(reply)
}

// answerBlocks is the server side of a blocks exchange.
func answerBlocks(s network.Stream, serve func(p2p.BlocksRequest, msgio.Writer)) {
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(60 * time.Second))
	msg, err := msgio.NewVarintReaderSize(s, maxRequestSize).ReadMsg()
	if err != nil {
		_ = s.Reset()
		return
	}
	req, err := p2p.DecodeBlocksRequest(msg)
	if err != nil {
		_ = s.Reset()
		return
	}
	serve(req, msgio.NewVarintWriter(s))
}

// ChainStatus is the status of a chain of the network of params whose tip is
// tip, as an honest node would claim it.
func ChainStatus(params chain.Params, tip *chain.Block) chain.Status {
	return chain.Status{
		Genesis: params.Genesis().Hash(), Tip: tip.Hash(), Height: tip.Header.Height,
		Work: new(big.Int).Mul(chain.BlockWork(params.Difficulty), new(big.Int).SetUint64(tip.Header.Height+1)),
	}
}

// Forger makes readings and blocks for attacks: every reading it signs is
// new (its subject carries a counter), and as large as a reading can be.
// It is not safe for concurrent use.
type Forger struct {
	Params chain.Params
	Key    ed25519.PrivateKey
	seq    uint64
}

// NewForger returns a forger with a new key.
func NewForger(params chain.Params) (*Forger, error) {
	key, err := p2p.GenerateKey()
	if err != nil {
		return nil, err
	}
	return &Forger{Params: params, Key: key}, nil
}

// Readings signs n new readings taken at at.
func (f *Forger) Readings(n int, at time.Time) ([]chain.Reading, error) {
	out := make([]chain.Reading, n)
	for i := range out {
		f.seq++
		subject := "m" + strconv.FormatUint(f.seq, 36) + "-"
		subject += strings.Repeat("x", chain.MaxSubjectLen-len(subject))
		r, err := chain.NewReading(f.Key, subject, chain.MinBPM+int(f.seq%200), at)
		if err != nil {
			return nil, err
		}
		out[i] = r
	}
	return out, nil
}

// Block returns a block on parent holding readings, its header committing to
// them, with its proof of work solved. Its time is at, or its parent's if
// that is later.
func (f *Forger) Block(ctx context.Context, parent *chain.Block, readings []chain.Reading, at time.Time) (*chain.Block, error) {
	b := &chain.Block{Readings: readings}
	b.Header = chain.Header{
		Version: chain.HeaderVersion, Height: parent.Header.Height + 1, Parent: parent.Hash(),
		Time: max(at.UnixMilli(), parent.Header.Time), Count: uint32(len(readings)),
		Difficulty: f.Params.Difficulty,
	}
	return b, f.Reseal(ctx, b)
}

// Reseal makes b's header commit to its readings again (root and count)
// after they were changed, and solves the proof of work anew from the next
// nonce, so the block has a new hash even if nothing else changed.
func (f *Forger) Reseal(ctx context.Context, b *chain.Block) error {
	b.Header.Root = b.ReadingsRoot()
	b.Header.Count = uint32(len(b.Readings))
	b.Header.Nonce++
	return chain.Solve(ctx, &b.Header)
}

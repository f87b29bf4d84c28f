package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// Broadcaster relays a block the node has accepted to its peers.
type Broadcaster interface {
	BroadcastBlock(ctx context.Context, b *chain.Block) error
}

// Node holds a chain, its pending readings and the node's signing key.
type Node struct {
	params chain.Params
	key    ed25519.PrivateKey
	log    *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	chain   *chain.Chain
	pool    *chain.Pool
	changed chan struct{} // closed and replaced on every change of tip or pool
	subs    map[chan Event]struct{}
}

type config struct {
	log      *slog.Logger
	now      func() time.Time
	poolSize int
}

// Option configures a Node.
type Option func(*config)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithClock sets the clock (default time.Now).
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithPoolSize sets how many readings may wait to be mined (default 100000).
func WithPoolSize(n int) Option { return func(c *config) { c.poolSize = n } }

// New returns a node on the network of params, signing readings with key.
func New(params chain.Params, key ed25519.PrivateKey, opts ...Option) (*Node, error) {
	cfg := config{log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: time.Now, poolSize: 100000}
	for _, o := range opts {
		o(&cfg)
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("node: an Ed25519 private key is required")
	}
	c, err := chain.New(params)
	if err != nil {
		return nil, err
	}
	return &Node{
		params: params, key: key, log: cfg.log, now: cfg.now,
		chain: c, pool: chain.NewPool(cfg.poolSize),
		changed: make(chan struct{}), subs: map[chan Event]struct{}{},
	}, nil
}

// Params returns the network parameters.
func (n *Node) Params() chain.Params { return n.params }

// PublicKey returns the key that signs this node's readings.
func (n *Node) PublicKey() ed25519.PublicKey { return n.key.Public().(ed25519.PublicKey) }

// Status returns the chain status.
func (n *Node) Status() chain.Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.chain.Status()
}

// Locator returns a block locator starting at the known block from (the tip
// if from is unknown or zero).
func (n *Node) Locator(from chain.Hash) []chain.Hash {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.chain.LocatorFrom(from)
}

// BlocksAfter serves main-chain blocks after a locator.
func (n *Node) BlocksAfter(locator []chain.Hash, max, maxBytes int) ([]*chain.Block, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.chain.BlocksAfter(locator, max, maxBytes)
}

// Pending returns the number of readings waiting to be mined.
func (n *Node) Pending() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.pool.Len()
}

// PendingReadings returns the readings waiting to be mined, oldest first.
func (n *Node) PendingReadings() []chain.Reading {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.pool.All()
}

// Blocks returns up to limit main-chain blocks, from height down.
func (n *Node) Blocks(from uint64, limit int) []*chain.Block {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []*chain.Block
	for h := min(from, n.chain.Height()); len(out) < limit; h-- {
		b, _ := n.chain.BlockAt(h)
		out = append(out, b)
		if h == 0 {
			break
		}
	}
	return out
}

// BlockAt returns the main-chain block at a height.
func (n *Node) BlockAt(height uint64) (*chain.Block, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.chain.BlockAt(height)
}

// ReadingStatus says where a reading is: in the main chain at a height, or
// pending.
type ReadingStatus struct {
	Reading chain.Reading
	Pending bool
	Height  uint64 // when not pending
}

// FindReading looks a reading up in the main chain and the pending set.
func (n *Node) FindReading(id chain.Hash) (ReadingStatus, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if r, b, ok := n.chain.FindReading(id); ok {
		return ReadingStatus{Reading: r, Height: b.Header.Height}, true
	}
	if r, ok := n.pool.Get(id); ok {
		return ReadingStatus{Reading: r, Pending: true}, true
	}
	return ReadingStatus{}, false
}

// Submit signs a reading of subject with the node's key and adds it to the
// pending set. The returned reading's ID is its receipt.
func (n *Node) Submit(subject string, bpm int) (chain.Reading, error) {
	r, err := chain.NewReading(n.key, subject, bpm, n.now())
	if err != nil {
		return r, err
	}
	return r, n.SubmitReading(r)
}

// SubmitReading adds a signed reading (from this node or a client) to the
// pending set after checking it.
func (n *Node) SubmitReading(r chain.Reading) error {
	now := n.now()
	if err := chain.CheckReading(&r, n.params, now.UnixMilli()); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	id := r.ID()
	if n.chain.HasReading(id) {
		return &chain.RuleError{Code: chain.ErrKnownReading, Detail: "reading " + id.Short() + " is already in the chain"}
	}
	if err := n.pool.Add(r); err != nil {
		return err
	}
	n.signalLocked()
	return nil
}

// AddBlock validates a block from a peer (or the miner) and adds it. It
// returns the chain's rule error if the block is not accepted.
func (n *Node) AddBlock(_ context.Context, b *chain.Block) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	u, err := n.chain.AddBlock(b, n.now())
	if err != nil {
		return err
	}
	n.pool.Apply(u)
	if u.TipChanged {
		n.signalLocked()
		if len(u.Disconnected) > 0 {
			n.log.Info("reorganised", "disconnected", len(u.Disconnected), "connected", len(u.Connected),
				"returned_readings", len(u.Returned), "tip", n.chain.TipHash().Short(), "height", n.chain.Height())
		}
		n.publishLocked(Event{Kind: EventTip, Update: u, Height: n.chain.Height(), Tip: n.chain.TipHash()})
	}
	return nil
}

// signalLocked wakes everything waiting for a change. n.mu must be held.
func (n *Node) signalLocked() {
	close(n.changed)
	n.changed = make(chan struct{})
}

// Run mines pending readings until ctx ends, relaying each block it finds
// through b.
func (n *Node) Run(ctx context.Context, b Broadcaster) error {
	for {
		n.mu.Lock()
		changed := n.changed
		var blk *chain.Block
		if n.pool.Len() > 0 {
			blk = n.chain.NewBlock(n.pool.Take(n.params.MaxReadings), n.now())
		}
		n.mu.Unlock()
		if blk == nil {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-changed:
				continue
			}
		}
		if err := n.mine(ctx, blk, changed); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue // the tip or pool changed: start again on the new state
		}
		if err := n.AddBlock(ctx, blk); err != nil {
			// A block that arrived meanwhile may have taken a reading.
			n.log.Debug("mined block not accepted", "height", blk.Header.Height, "err", err)
			continue
		}
		n.log.Debug("mined block", "height", blk.Header.Height, "hash", blk.Hash().Short(), "readings", len(blk.Readings))
		if b != nil {
			if err := b.BroadcastBlock(ctx, blk); err != nil && ctx.Err() == nil {
				n.log.Warn("relay mined block", "height", blk.Header.Height, "err", err)
			}
		}
	}
}

// mine solves blk's proof of work, giving up when the tip changes.
func (n *Node) mine(ctx context.Context, blk *chain.Block, changed <-chan struct{}) error {
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-changed:
				// Only a new tip makes the work stale; new readings wait for
				// the next block.
				n.mu.Lock()
				stale := n.chain.TipHash() != blk.Header.Parent
				changed = n.changed
				n.mu.Unlock()
				if stale {
					cancel()
					return
				}
			case <-stop:
				return
			}
		}
	}()
	if err := chain.Solve(mctx, &blk.Header); err != nil {
		return fmt.Errorf("mine block %d: %w", blk.Header.Height, err)
	}
	return nil
}

package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// Broadcaster relays a block the node has accepted to its peers.
type Broadcaster interface {
	BroadcastBlock(ctx context.Context, b *chain.Block) error
}

// Store is the node's durable copy of its chain and pending readings
// (package store implements it).
type Store interface {
	// Commit records in one atomic, durable transaction new blocks, the
	// main-chain changes they caused, and changes to the pending set.
	Commit(blocks []*chain.Block, updates []*chain.Update, pendingAdd []chain.Reading, pendingRemove []chain.Hash) error
	// AddPending durably records a submitted reading.
	AddPending(r chain.Reading) error
}

// State is what a node starts from: the blocks and pending readings its
// store holds.
type State struct {
	Main    []*chain.Block  // main chain from height 1, in order
	Side    []*chain.Block  // blocks of other branches, parents first
	Pending []chain.Reading // oldest first
}

// Node holds a chain, its pending readings and the node's signing key.
type Node struct {
	params chain.Params
	key    ed25519.PrivateKey
	log    *slog.Logger
	now    func() time.Time
	store  Store // nil: memory only

	mu      sync.Mutex
	chain   *chain.Chain
	pool    *chain.Pool
	changed chan struct{} // closed and replaced on every change of tip or pool
	subs    map[chan Event]struct{}
	failed  error         // set when the store failed: the node must stop
	dead    chan struct{} // closed when failed is set

	rejected map[chain.ErrorCode]uint64 // invalid blocks received, by rule
}

type config struct {
	log      *slog.Logger
	now      func() time.Time
	poolSize int
	store    Store
	state    State
}

// Option configures a Node.
type Option func(*config)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithClock sets the clock (default time.Now).
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithPoolSize sets how many readings may wait to be mined (default 100000).
func WithPoolSize(n int) Option { return func(c *config) { c.poolSize = n } }

// WithStore makes the node durable: it starts from state (read from s) and
// records every change in s before acknowledging it.
func WithStore(s Store, state State) Option {
	return func(c *config) { c.store, c.state = s, state }
}

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
	n := &Node{
		params: params, key: key, log: cfg.log, now: cfg.now, store: cfg.store,
		chain: c, pool: chain.NewPool(cfg.poolSize),
		changed: make(chan struct{}), subs: map[chan Event]struct{}{}, dead: make(chan struct{}),
		rejected: map[chain.ErrorCode]uint64{},
	}
	if err := n.restore(cfg.state); err != nil {
		return nil, err
	}
	return n, nil
}

// restore rebuilds the chain and pending set from stored state. Blocks are
// not validated again (they were before they were stored); a quick check
// that the main chain comes out as stored catches a damaged store.
func (n *Node) restore(st State) error {
	for _, b := range append(st.Main, st.Side...) {
		if _, err := n.chain.Restore(b); err != nil {
			return fmt.Errorf("stored chain is inconsistent at height %d: %w", b.Header.Height, err)
		}
	}
	if len(st.Main) > 0 {
		want := st.Main[len(st.Main)-1]
		if n.chain.TipHash() != want.Hash() || n.chain.Height() != want.Header.Height {
			return fmt.Errorf("stored chain is inconsistent: stored tip %s at height %d, blocks give %s at height %d",
				want.Hash().Short(), want.Header.Height, n.chain.TipHash().Short(), n.chain.Height())
		}
	}
	for _, r := range st.Pending {
		if !n.chain.HasReading(r.ID()) {
			_ = n.pool.Add(r) // stored pending readings are never refused for space
		}
	}
	return nil
}

// Done is closed when the node has failed (its store could not record a
// change) and must stop; Err says why.
func (n *Node) Done() <-chan struct{} { return n.dead }

// Err returns why the node failed, or nil.
func (n *Node) Err() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.failed
}

// failLocked records a storage failure. Memory and disk may now disagree, so
// the node refuses all further changes; a restart reloads the last state the
// store committed. n.mu must be held.
func (n *Node) failLocked(err error) error {
	if n.failed == nil {
		n.failed = fmt.Errorf("storage failed, the node must stop: %w", err)
		n.log.Error("storage failed; stopping", "err", err)
		close(n.dead)
	}
	return n.failed
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
	if n.failed != nil {
		return n.failed
	}
	id := r.ID()
	if n.chain.HasReading(id) {
		return &chain.RuleError{Code: chain.ErrKnownReading, Detail: "reading " + id.Short() + " is already in the chain"}
	}
	if err := n.pool.Add(r); err != nil {
		return err
	}
	if n.store != nil {
		// Durable before acknowledged.
		if err := n.store.AddPending(r); err != nil {
			n.pool.Remove(id)
			return fmt.Errorf("reading not stored: %w", err)
		}
	}
	n.signalLocked()
	return nil
}

// AddBlock validates a block from a peer (or the miner) and adds it. It
// returns the chain's rule error if the block is not accepted.
func (n *Node) AddBlock(_ context.Context, b *chain.Block) error {
	blocks := []*chain.Block{b}
	checks := checkBlocks(blocks, n.params)
	n.mu.Lock()
	defer n.mu.Unlock()
	_, err := n.addLocked(blocks, checks, false)
	return err
}

// AddBlocks adds blocks in order, as a sync receives them, skipping blocks it
// already has, and records all it accepted in one store transaction. It stops
// at the first block that is not accepted and returns how many were added,
// and that block's error.
func (n *Node) AddBlocks(_ context.Context, blocks []*chain.Block) (int, error) {
	checks := checkBlocks(blocks, n.params)
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.addLocked(blocks, checks, true)
}

// checkBlocks runs chain.CheckBlock (proof of work, readings root,
// signatures: everything that needs no chain state, and nearly all the CPU
// time of accepting a block) on every core, before the caller takes the lock.
func checkBlocks(blocks []*chain.Block, params chain.Params) []error {
	errs := make([]error, len(blocks))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(blocks)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(blocks); i = int(next.Add(1) - 1) {
				errs[i] = chain.CheckBlock(blocks[i], params)
			}
		}()
	}
	wg.Wait()
	return errs
}

// addLocked adds blocks whose CheckBlock verdicts are checks. n.mu must be
// held.
func (n *Node) addLocked(blocks []*chain.Block, checks []error, skipKnown bool) (int, error) {
	if n.failed != nil {
		return 0, n.failed
	}
	var (
		added   []*chain.Block
		updates []*chain.Update
		err     error
	)
	now := n.now()
	for i, b := range blocks {
		var u *chain.Update
		if n.chain.HasBlock(b.Hash()) {
			u, err = nil, &chain.RuleError{Code: chain.ErrDuplicateBlock, Detail: "block " + b.Hash().Short()}
		} else if err = checks[i]; err == nil {
			u, err = n.chain.AddCheckedBlock(b, now)
		}
		if err != nil {
			if skipKnown && errors.Is(err, chain.ErrDuplicateBlock) {
				err = nil
				continue
			}
			break
		}
		added, updates = append(added, b), append(updates, u)
	}
	if chain.IsPeerFault(err) {
		n.rejected[chain.CodeOf(err)]++
	}
	if len(added) == 0 {
		return 0, err
	}
	// The pending set changes for every reading that left or joined the
	// main chain; record where each one ends up after all the updates.
	touched := map[chain.Hash]bool{}
	for _, u := range updates {
		n.pool.Apply(u)
		for _, r := range u.Returned {
			touched[r.ID()] = true
		}
		for _, c := range u.Connected {
			for _, id := range c.ReadingIDs() {
				touched[id] = true
			}
		}
	}
	if n.store != nil {
		var add []chain.Reading
		var remove []chain.Hash
		for id := range touched {
			if r, ok := n.pool.Get(id); ok {
				add = append(add, r)
			} else {
				remove = append(remove, id)
			}
		}
		if serr := n.store.Commit(added, updates, add, remove); serr != nil {
			return 0, n.failLocked(serr)
		}
	}
	for _, u := range updates {
		if !u.TipChanged {
			continue
		}
		if len(u.Disconnected) > 0 {
			n.log.Info("reorganised", "disconnected", len(u.Disconnected), "connected", len(u.Connected),
				"returned_readings", len(u.Returned), "tip", n.chain.TipHash().Short(), "height", n.chain.Height())
		}
		n.publishLocked(Event{Kind: EventTip, Update: u, Height: u.Connected[len(u.Connected)-1].Header.Height,
			Tip: u.Connected[len(u.Connected)-1].Hash()})
	}
	n.signalLocked()
	return len(added), err
}

// Rejected returns how many invalid blocks the node refused, by the name of
// the rule they broke.
func (n *Node) Rejected() map[string]uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[string]uint64, len(n.rejected))
	for code, count := range n.rejected {
		out[code.String()] = count
	}
	return out
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

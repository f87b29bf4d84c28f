package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2pchain/p2pchain/internal/bft"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/store"
)

// Broadcaster relays to the node's peers a block the node has accepted and,
// on an authority network, its consensus messages and the readings
// submitted to it (which must reach the proposers).
type Broadcaster interface {
	BroadcastBlock(ctx context.Context, b *chain.Block) error
	BroadcastConsensus(ctx context.Context, msg []byte) error
	BroadcastReading(ctx context.Context, r chain.Reading) error
	// CatchUp asks the peers for blocks this node lacks (it never blocks).
	CatchUp()
}

// Store is the node's durable copy of its chain and pending readings
// (package store implements it).
type Store interface {
	// Apply records in one atomic, durable transaction new blocks, the
	// main-chain changes they caused, and changes to the pending set.
	Apply(blocks []*chain.Block, updates []*chain.Update, pendingAdd []chain.Reading, pendingRemove []chain.Hash) error
	// AddPending durably records submitted readings in one batch (one
	// sync), leaving out those the stored main chain holds.
	AddPending(rs ...chain.Reading) error
	// BlockByHash and ReadingBlock read back what the chain let go of
	// (chain.Archive): bodies of all but its newest blocks, and where the
	// readings of final blocks are.
	chain.Archive
	// BlocksWithPrefix and ReadingsWithPrefix return, in order, up to limit
	// hashes of stored blocks (any branch), and of main-chain and pending
	// readings, that start with p: the ordered indexes that lookups by a
	// short hash search.
	BlocksWithPrefix(p chain.HashPrefix, limit int) ([]chain.Hash, error)
	ReadingsWithPrefix(p chain.HashPrefix, limit int) ([]chain.Hash, error)
	// SaveConsensus durably records an authority's consensus state, which
	// Consensus returns (nil if none), with the blocks of its height it
	// must hold after a restart, which ConsensusBlocks returns (newHeight:
	// drop those of the height before); AddEvidence records evidence of an
	// equivocating authority (authority networks).
	SaveConsensus(state []byte, blocks []*chain.Block, newHeight bool) error
	Consensus() ([]byte, error)
	ConsensusBlocks() ([]*chain.Block, error)
	// SaveApprovals records the membership changes an authority's operator
	// approved that no block carries yet, which Approvals returns.
	SaveApprovals(changes []byte) error
	Approvals() ([]byte, error)
	AddEvidence(ev []byte) error
	Evidence() ([][]byte, error)
	// The subject index: a page of a subject's main-chain readings, newest
	// first, or in time order; its readings in blocks above a mark; the
	// subjects in byte order; whether one has readings (subjects.go).
	SubjectReadingsIn(subject string, q store.SubjectQuery) (store.SubjectPage, error)
	ReadingsByTime(subject string, q store.TimeQuery) (store.TimePage, error)
	ScanSubject(subject string, since store.Mark, fn func(store.SubjectEntry) error) (store.Mark, error)
	Subjects(after string, fn func(subject string) (bool, error)) error
	HasSubject(subject string) (bool, error)
	// Err says why the store failed, nil while it works, and Failed is
	// closed when it fails: a lookup of chain.Archive that answered
	// "absent" may have been a read the store could not do
	// (store_fault.go).
	Err() error
	Failed() <-chan struct{}
}

// State is what a node starts from: the blocks and pending readings its
// store holds, as the store loads them (store.Load, store.LoadRecent).
type State = store.State

// Node holds a chain, its pending readings and the node's signing key.
type Node struct {
	params chain.Params
	key    ed25519.PrivateKey
	log    *slog.Logger
	now    func() time.Time
	store  Store         // nil: memory only
	arch   chain.Archive // the store as the chain reads it back (archive), nil without one

	mu      sync.Mutex
	chain   *chain.Chain
	pool    *chain.Pool
	changed chan struct{} // closed and replaced on every change of tip or pool
	subs    map[chan Event]struct{}
	failed  error         // set when the store failed: the node must stop
	dead    chan struct{} // closed when failed is set

	rejected map[chain.ErrorCode]uint64 // invalid blocks received, by rule
	orphans  *orphanPool                // blocks waiting for their parent (guarded by mu)
	refused  *refusedBlocks             // blocks refused on a rule their hash decides (guarded by mu)

	peerFault atomic.Pointer[func(from, reason string)] // OnPeerFault

	sigs *chain.SigCache // signatures verified; safe for concurrent use

	flightMu sync.Mutex
	inFlight map[chain.Hash]chan struct{} // blocks being validated, closed when done

	commits commitQueue // store commits of accepted blocks, in order

	cons      *consensus               // authority networks; nil on proof of work
	submitted map[chain.Hash]time.Time // readings submitted here, not yet final (guarded by mu)
	finalSeen uint64                   // the final height last reported (guarded by mu)
	outbox    chan chain.Reading       // submitted readings to send to peers (authority networks)
	wr        pendingWriter            // group commit of submitted readings (writer.go)
	// durable is the tip last announced, so durably stored (guarded by
	// mu): a final event names no block above it.
	durable struct {
		height uint64
		tip    chain.Hash
	}

	space      spaceState    // a full disk (space.go); guarded by mu
	spaceRetry time.Duration // how often a full disk is looked at again
	disk       diskWatch     // the store writes in flight, timed (slow.go)

	clock clockWatch // peers' block times against our clock (clock.go); guarded by mu

	subjectCache subjectCache // subjects' figures between requests (subjects.go)
}

// SigCacheSize is how many verified reading signatures a node remembers
// (about 200 bytes each with the map, 13 MB in all): more than the readings
// of the largest batch a sync checks ahead of its lock (8 MiB of blocks,
// about 49,000 readings). A signature that fell out is verified again,
// never trusted.
const SigCacheSize = 1 << 16

type config struct {
	log      *slog.Logger
	now      func() time.Time
	poolSize int
	store    Store
	state    State
	cp       *chain.Checkpoint
	auth     *Authority

	spaceRetry time.Duration
	diskSlow   time.Duration
	writeWait  time.Duration
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

// WithCheckpoint makes the node require a block on its chain (nil: none);
// see chain.SetCheckpoint.
func WithCheckpoint(cp *chain.Checkpoint) Option { return func(c *config) { c.cp = cp } }

// New returns a node on the network of params, signing readings with key.
func New(params chain.Params, key ed25519.PrivateKey, opts ...Option) (*Node, error) {
	cfg := config{log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: time.Now, poolSize: 100000,
		spaceRetry: DefaultSpaceRetry, diskSlow: DefaultDiskSlow, writeWait: DefaultWriteWait}
	for _, o := range opts {
		o(&cfg)
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("node: an Ed25519 private key is required")
	}
	if cfg.diskSlow <= 0 || cfg.writeWait <= 0 {
		return nil, fmt.Errorf("node: the slow-disk threshold (%v) and the write wait (%v) must be positive", cfg.diskSlow, cfg.writeWait)
	}
	c, err := chain.New(params)
	if err != nil {
		return nil, err
	}
	n := &Node{
		params: params, key: key, log: cfg.log, now: cfg.now, store: cfg.store,
		chain: c, pool: chain.NewPool(cfg.poolSize),
		changed: make(chan struct{}), subs: map[chan Event]struct{}{}, dead: make(chan struct{}),
		rejected: map[chain.ErrorCode]uint64{}, orphans: newOrphanPool(), refused: newRefusedBlocks(),
		sigs: chain.NewSigCache(SigCacheSize), inFlight: map[chain.Hash]chan struct{}{},
		submitted:  map[chain.Hash]time.Time{},
		wr:         pendingWriter{max: cfg.poolSize, storing: map[chain.Hash]*pendingBatch{}},
		spaceRetry: cfg.spaceRetry,
		disk:       diskWatch{slowAfter: cfg.diskSlow, wait: cfg.writeWait},
	}
	if n.store != nil {
		n.arch = archive{n.store, n.log}
	}
	c.SetSigCache(n.sigs)
	switch {
	case cfg.auth != nil:
		if n.cons, err = newConsensus(params, *cfg.auth, key); err != nil {
			return nil, err
		}
		n.outbox = make(chan chain.Reading, 4096)
	case params.Consensus == chain.Authority:
		return nil, errors.New("node: an authority network needs its authority set (the network file)")
	}
	if err := n.restore(cfg.state); err != nil {
		return nil, err
	}
	if cfg.cp != nil {
		if err := c.SetCheckpoint(*cfg.cp); err != nil {
			return nil, fmt.Errorf("checkpoint: %w; this data directory holds another chain: move its chain directory away and let the node sync again", err)
		}
	}
	if n.store != nil {
		c.SetArchive(n.arch)
		c.Compact()
	}
	n.finalSeen = c.Advance(n.now())
	n.durable.height, n.durable.tip = c.Height(), c.TipHash() // loaded from the store, or genesis
	if n.cons != nil && n.store != nil {
		if err := n.cons.loadEvidence(n.store); err != nil {
			return nil, err
		}
		if err := n.loadApprovals(); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// restore rebuilds the chain and pending set from stored state. Signatures
// are not verified again (they were before the blocks were stored), but
// every header's proof of work and difficulty, and every body against its
// header's readings root (which commits to the signatures), are: a block
// altered on disk is reported, never served. Side blocks that fork below
// the final depth are dropped; the next commit that prunes forgets them.
// A state that starts at a final block (State.Final, store.LoadRecent)
// resumes the chain from it: the final chain below stays in the store,
// which the chain reads when asked, so a restart does not grow with the
// chain.
func (n *Node) restore(st State) error {
	now := n.now()
	if st.Final != nil {
		if n.store == nil || n.cons != nil {
			return errors.New("node: a state that starts at a final block needs a store, and a proof-of-work network")
		}
		n.chain.SetArchive(n.arch)
		if err := n.chain.Resume(st.Final); err != nil {
			return fmt.Errorf("stored chain is inconsistent: %w; "+
				"run `p2pchain verify` on the data directory, or move its chain directory away and let the node sync again", err)
		}
	}
	for _, b := range st.Main {
		_, err := n.chain.Restore(b, now)
		if err == nil && n.cons != nil {
			// Its seal was checked before it was stored; its changes shape
			// the authority sets of the heights after it.
			var changes []bft.Change
			if changes, err = bft.DecodeChanges(b.Changes); err == nil {
				err = n.cons.sched.Apply(b.Header.Height, changes...)
			}
		}
		if err != nil {
			return fmt.Errorf("stored main-chain block %s at height %d is damaged: %w; "+
				"run `p2pchain verify` on the data directory, or move its chain directory away and let the node sync again",
				b.Hash().Short(), b.Header.Height, err)
		}
	}
	for _, b := range st.Side {
		if _, err := n.chain.Restore(b, now); err != nil {
			if errors.Is(err, chain.ErrForkTooDeep) || errors.Is(err, chain.ErrUnknownParent) ||
				errors.Is(err, chain.ErrTooManyForks) {
				continue // a branch that can no longer win
			}
			return fmt.Errorf("stored side block %s at height %d is damaged: %w; "+
				"run `p2pchain verify` on the data directory, or move its chain directory away and let the node sync again",
				b.Hash().Short(), b.Header.Height, err)
		}
	}
	if want := st.Final; len(st.Main) > 0 || want != nil {
		if len(st.Main) > 0 {
			want = st.Main[len(st.Main)-1]
		}
		if n.chain.TipHash() != want.Hash() || n.chain.Height() != want.Header.Height {
			return fmt.Errorf("stored chain is inconsistent: stored tip %s at height %d, blocks give %s at height %d",
				want.Hash().Short(), want.Header.Height, n.chain.TipHash().Short(), n.chain.Height())
		}
	}
	self := n.PublicKey()
	for _, r := range st.Pending {
		if n.chain.HasReading(r.ID()) {
			continue
		}
		if n.pool.Add(r) != nil { // stored pending readings are never refused for space
			continue
		}
		if bytes.Equal(r.Author[:], self) {
			// Signed with this node's key: submitted here. Which readings
			// were submitted here, and when, is not stored; without this a
			// follower's readings that no peer took before the restart
			// would wait here for ever, never proposed nor sent again. So
			// they are marked as before (proposed first, sent again), as
			// submitted at the restart: not at the time they were taken,
			// which may be long before their submission (an import), and
			// would count that long in the time to finality reported
			// (p2pchain_finality_seconds). A reading a client signed with a
			// key of its own is not told apart from a relayed one here.
			n.acceptedLocked(&pendingEntry{r: r, id: r.ID(), local: true, at: now})
		}
	}
	return nil
}

// archive is the node's store as the chain's archive, logging damage with
// what to do. The store checks each body it reads against its hash (the
// header the chain holds) and its readings root.
type archive struct {
	Store
	log *slog.Logger
}

func (a archive) BlockByHash(h chain.Hash) (*chain.Block, error) {
	b, err := a.Store.BlockByHash(h)
	if err != nil {
		a.log.Error("cannot read a stored block; run `p2pchain verify` on the data directory", "block", h.Short(), "err", err)
	}
	return b, err
}

func (a archive) HeaderByHash(h chain.Hash) (chain.Header, error) {
	hdr, err := a.Store.HeaderByHash(h)
	// Not found is no damage here: Chain.Header asks the archive for any
	// hash it does not hold (a peer's, a client's).
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		a.log.Error("cannot read a stored block's header; run `p2pchain verify` on the data directory", "block", h.Short(), "err", err)
	}
	return hdr, err
}

// Done is closed when the node has failed (its store could not record a
// change) and must stop; Err says why.
func (n *Node) Done() <-chan struct{} { return n.dead }

// Err returns why the node failed, or nil. A store that failed fails the
// node (watchStore); Err reports it from the moment the store did, so that
// a caller whose read met the failure learns it is the node's.
func (n *Node) Err() error {
	n.mu.Lock()
	err := n.failed
	n.mu.Unlock()
	if err == nil {
		err = n.storeErr()
	}
	return err
}

// failLocked records a storage failure (any but a full disk, which the
// node waits out: space.go). Memory and disk may now disagree, so the node
// refuses all further changes; a restart reloads the last state the store
// committed, which holds everything the node acknowledged. n.mu must be
// held.
func (n *Node) failLocked(err error) error {
	if n.failed == nil {
		n.failed = fmt.Errorf("storage failed, the node must stop (start it again once the cause is fixed: "+
			"it reloads everything it acknowledged): %w", err)
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

// Overview is what a status report shows, read under one lock: the chain
// status, the tip's time and the pending readings belong to the same moment.
// (Read one by one, a block committed in between could show the old height
// beside the new, smaller, pending count.)
type Overview struct {
	chain.Status
	TipTime int64
	Pending int
	// Stored is the height of the tip last written durably (and
	// announced): below Height while a block the chain holds is still
	// being written, for long only on a slow disk. A crash loses at
	// most the blocks above it, which nobody was told of.
	Stored uint64
}

// Overview returns the chain status, tip time, pending count and stored
// height together.
func (n *Node) Overview() Overview {
	n.mu.Lock()
	defer n.mu.Unlock()
	return Overview{Status: n.chain.Status(), TipTime: n.chain.Tip().Header.Time, Pending: n.pool.Len(), Stored: n.durable.height}
}

// FinalHeight returns the height of the node's highest final block, as of
// now (see chain.Chain.FinalHeight).
func (n *Node) FinalHeight() uint64 {
	h, _ := n.Final()
	return h
}

// Final returns the height and hash of the node's highest final block, as
// of now.
func (n *Node) Final() (uint64, chain.Hash) {
	n.mu.Lock()
	defer n.mu.Unlock()
	h := n.finalHeightLocked()
	hash, _ := n.chain.HashAt(h)
	return h, hash
}

// Locator returns a block locator starting at the known block from (the tip
// if from is unknown or zero).
func (n *Node) Locator(from chain.Hash) []chain.Hash {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.chain.LocatorFrom(from)
}

// BlocksAfter serves main-chain blocks after a locator.
// Bodies no longer in memory are read from the store after the lock is
// released, so that serving a peer never holds up the chain.
func (n *Node) BlocksAfter(locator []chain.Hash, max, maxBytes int) ([]*chain.Block, error) {
	n.mu.Lock()
	hashes, blocks, err := n.chain.MainAfter(locator, max)
	n.mu.Unlock()
	if err != nil {
		return nil, err
	}
	load := func(chain.Hash) (*chain.Block, error) { return nil, errors.New("no store") }
	if n.store != nil {
		load = n.store.BlockByHash
	}
	return chain.FillBlocks(hashes, blocks, maxBytes, load)
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

// Blocks returns up to limit main-chain blocks, from height down (from
// the tip if height is above it). Bodies are read after n.mu is released
// (chain.Ref); a body that cannot be read back is an error (the store
// logs it).
func (n *Node) Blocks(from uint64, limit int) ([]*chain.Block, error) {
	refs, err := n.mainRefs(from, limit)
	if err != nil {
		return nil, err
	}
	out := make([]*chain.Block, 0, len(refs))
	for _, r := range refs {
		b, err := r.Load(n.arch)
		if err != nil {
			return nil, fmt.Errorf("block %s at height %d: %w", r.Hash.Short(), r.Height, err)
		}
		out = append(out, b)
	}
	return out, nil
}

// mainRefs is the chain's MainRefs, with the store's failure when its
// archive could not read all of them (it answers the heights it could).
func (n *Node) mainRefs(from uint64, limit int) ([]chain.Ref, error) {
	n.mu.Lock()
	refs := n.chain.MainRefs(from, limit)
	want := min(uint64(max(limit, 0)), min(from, n.chain.Height())+1)
	n.mu.Unlock()
	if uint64(len(refs)) < want {
		if err := n.readFailed(nil); err != nil {
			return nil, fmt.Errorf("main-chain blocks from height %d: %w", from, err)
		}
	}
	return refs, nil
}

// Headers returns the headers of up to limit main-chain blocks, from
// height down, as Blocks does but without reading any body.
func (n *Node) Headers(from uint64, limit int) ([]chain.Header, error) {
	refs, err := n.mainRefs(from, limit)
	if err != nil {
		return nil, err
	}
	out := make([]chain.Header, 0, len(refs))
	for _, r := range refs {
		h, err := r.LoadHeader(n.arch)
		if err != nil {
			return nil, fmt.Errorf("block %s at height %d: %w", r.Hash.Short(), r.Height, err)
		}
		out = append(out, h)
	}
	return out, nil
}

// Submit signs a reading of subject with the node's key and adds it to the
// pending set. The returned reading's ID is its receipt.
func (n *Node) Submit(subject string, bpm int) (chain.Reading, error) {
	return n.SubmitAt(subject, bpm, time.Time{})
}

// SubmitAt is Submit with the time the reading was taken (zero: now), for
// readings recorded elsewhere first. The chain's rules bound it: not before
// the genesis block, not beyond the allowed drift into the future.
func (n *Node) SubmitAt(subject string, bpm int, at time.Time) (chain.Reading, error) {
	r, err := n.sign(subject, bpm, at)
	if err != nil {
		return r, err
	}
	return r, n.SubmitReading(r)
}

// sign makes a reading signed with the node's key, at (zero: now).
func (n *Node) sign(subject string, bpm int, at time.Time) (chain.Reading, error) {
	if at.IsZero() {
		at = n.now()
	}
	r, err := chain.NewReading(n.key, subject, bpm, at)
	if err != nil {
		return r, err
	}
	// The node just made this signature with its own key: it is valid by
	// construction, so it goes into the signature cache unverified (a
	// third of the signature work of a reading on a three-node network).
	n.sigs.Add(r.ID(), &r.Sig)
	return r, nil
}

// Submission is a reading for SubmitAll to sign: Time zero means now. Or,
// with Signed, a reading its author signed elsewhere (an export of another
// node), taken as it is once its signature checks: it keeps its id and its
// author; Subject, BPM and Time are not used.
type Submission struct {
	Subject string
	BPM     int
	Time    time.Time
	Signed  *chain.Reading
}

// ErrNotAdded answers the readings of an atomic SubmitAll that were not
// added because another of the batch was refused.
var ErrNotAdded = errors.New("not added: another reading of the batch was refused, and the batch is all or nothing")

// MaxSubmitAll is the most readings one SubmitAll takes.
const MaxSubmitAll = 1000

// SubmitAll signs readings and adds them as SubmitAt does, all at once so
// that they share the group commit's syncs. It returns each reading and its
// answer, in order. With atomic it first checks every reading (the chain's
// rules, readings already known, the same reading twice in the batch) and
// adds none if one fails: those get their rule error and the others
// ErrNotAdded; a pending set without room for the whole batch refuses all
// of it (chain.ErrPoolFull), before any reading is signed or checked, as a
// full pending set refuses a batch that is not atomic. A refusal that only
// the write can find (a full disk, a reading mined meanwhile, submissions
// racing for the last room) can still leave an atomic batch partly added;
// each answer says which. A reading without a time takes the node's clock
// when it is signed: two with the same subject and BPM signed in one
// millisecond are the same reading.
func (n *Node) SubmitAll(subs []Submission, atomic bool) ([]chain.Reading, []error) {
	if len(subs) > MaxSubmitAll {
		subs = subs[:MaxSubmitAll]
	}
	rs := make([]chain.Reading, len(subs))
	errs := make([]error, len(subs))
	// The cheap check first: a batch the pending set has no room for is
	// refused before a reading is signed or checked (the room is checked
	// again below, under the same lock as the known readings).
	n.mu.Lock()
	held := n.heldLocked()
	n.mu.Unlock()
	if (atomic && held+len(subs) > n.wr.max) || held >= n.wr.max {
		full := n.poolFull(held, len(subs))
		for i := range errs {
			errs[i] = full
		}
		return rs, errs
	}
	// Readings signed elsewhere (an import of another node's export:
	// mostly readings this node holds) are looked up before their
	// signatures are checked: a known one, or a repeat within the batch,
	// costs no verification.
	known := make([]error, len(subs))
	n.mu.Lock()
	for i, s := range subs {
		if s.Signed != nil {
			known[i] = n.knownReadingLocked(s.Signed.ID())
		}
	}
	n.mu.Unlock()
	refused := false
	seen := make(map[chain.Hash]int, len(subs))
	now := n.now()
	for i, s := range subs {
		if s.Signed != nil {
			rs[i] = *s.Signed
		} else {
			rs[i], errs[i] = n.sign(s.Subject, s.BPM, s.Time)
		}
		if errs[i] == nil {
			id := rs[i].ID()
			j, dup := seen[id]
			switch {
			case dup:
				errs[i] = &chain.RuleError{Code: chain.ErrKnownReading, Detail: fmt.Sprintf("reading %s repeats reading %d of the batch", id.Short(), j)}
			case known[i] != nil:
				errs[i] = known[i]
			default:
				seen[id] = i
				errs[i] = chain.CheckReading(&rs[i], n.params, now.UnixMilli(), n.sigs)
			}
		}
		refused = refused || errs[i] != nil
	}
	if atomic {
		n.mu.Lock()
		for i := range rs {
			if errs[i] != nil {
				continue
			}
			id := rs[i].ID()
			if n.chain.HasReading(id) || n.pool.Has(id) {
				errs[i] = &chain.RuleError{Code: chain.ErrKnownReading, Detail: "reading " + id.Short() + " is already known"}
				refused = true
			}
		}
		// Room for all of them: a pending set that fills halfway through
		// would leave the batch half added.
		if held := n.heldLocked(); !refused && held+len(rs) > n.wr.max {
			full := n.poolFull(held, len(rs))
			for i := range errs {
				errs[i] = full
			}
			n.mu.Unlock()
			return rs, errs
		}
		n.mu.Unlock()
		if refused {
			for i := range errs {
				if errs[i] == nil {
					errs[i] = ErrNotAdded
				}
			}
			return rs, errs
		}
	}
	// A few submitters at a time: enough to fill a group commit's batch,
	// not a goroutine per reading.
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(submitAllWorkers, len(rs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = n.SubmitReading(rs[i])
			}
		}()
	}
	for i := range rs {
		if errs[i] == nil {
			next <- i
		}
	}
	close(next)
	wg.Wait()
	return rs, errs
}

// poolFull is the refusal of a batch of k readings with held pending.
func (n *Node) poolFull(held, k int) error {
	return &chain.RuleError{Code: chain.ErrPoolFull,
		Detail: fmt.Sprintf("%d readings pending, room for %d: the batch of %d waits until blocks are mined", held, max(0, n.wr.max-held), k)}
}

// submitAllWorkers is how many of a SubmitAll's readings are submitted at
// once.
const submitAllWorkers = 64

// SubmitReading adds a signed reading (from this node or a client) to the
// pending set after checking it. On an authority network the node then
// sends it to its peers, so that it reaches the proposers.
func (n *Node) SubmitReading(r chain.Reading) error {
	return n.addReading(r, true)
}

// addReading checks a reading and adds it to the pending set; local: it was
// submitted here (not gossiped by a peer). A durable node answers once the
// reading is on disk, group-committed with the readings submitted at the
// same time, and never syncs under n.mu (see writer.go).
func (n *Node) addReading(r chain.Reading, local bool) error {
	now := n.now()
	id := r.ID()
	// A reading the node holds is known before its signature is checked:
	// a peer relaying chain readings again (each behind a new gossip
	// message id) costs a hash and a lookup, not an Ed25519 check, even
	// once they have left the signature cache.
	// So is a relayed reading with its half of the pending set full: a
	// stranger flooding valid readings of its own costs no Ed25519 check
	// once it has filled that half. That is a count, checked first: a
	// reading refused on it is no one's fault, so a flood of such
	// readings, signed or not, must cost no look-up. The look-up is in
	// memory under n.mu (the chain's recent readings, the pending set)
	// and, for the readings the chain let go of, in the store after it is
	// released: a known reading is no fault of its relayer either, so a
	// peer can relay chain readings again at its whole budget, and each
	// must not cost a store read with the node's lock held.
	var err error
	n.mu.Lock()
	if !local {
		err = n.relayedFullLocked()
	}
	if err == nil {
		err = n.recentReadingLocked(id)
	}
	n.mu.Unlock()
	if err == nil && n.store != nil {
		// As the chain looks a reading up in its archive: the block the
		// store has it in, and that block on the stored main chain.
		if bh, stored := n.store.ReadingBlock(id); stored {
			if _, main := n.store.MainHeight(bh); main {
				err = &chain.RuleError{Code: chain.ErrKnownReading, Detail: "reading " + id.Short() + " is already in the chain"}
			}
		}
	}
	if err != nil {
		return err
	}
	if err := chain.CheckReading(&r, n.params, now.UnixMilli(), n.sigs); err != nil {
		return err
	}
	e := pendingEntry{r: r, id: id, local: local, at: now}
	for {
		n.mu.Lock()
		if err := n.failed; err != nil {
			n.mu.Unlock()
			return err
		}
		// Again: it may have joined the chain or the pending set while its
		// signature was checked. In memory only: the store was looked in
		// before, and a reading that joined the chain since is in a block
		// the chain holds in memory (it lets go of deep blocks only), so
		// a stranger's new reading costs no store read under n.mu.
		if err := n.recentReadingLocked(e.id); err != nil {
			n.mu.Unlock()
			return err
		}
		if !local {
			if err := n.relayedFullLocked(); err != nil {
				n.mu.Unlock()
				return err
			}
		}
		if n.store == nil {
			err := n.pool.Add(r)
			if err == nil {
				n.acceptedLocked(&e)
				n.signalLocked()
			}
			n.mu.Unlock()
			return err
		}
		b, ok := n.wr.storing[e.id]
		if !ok {
			return n.storeReading(e) // releases n.mu
		}
		// Being written by another submission: wait for its answer, then
		// look again (known, or written again if that write failed), at
		// most the write wait (slow.go).
		n.mu.Unlock()
		select {
		case <-b.done:
		case <-time.After(n.disk.wait):
			return n.stillStoring(e.id)
		}
	}
}

// relayedFullLocked refuses a reading relayed by a peer (authority
// networks) once half the pending set is held: a stranger who signs
// readings with keys of its own must not leave this node's own submitters
// without room. Not the peer's fault: the relayer's origin keeps its
// reading pending and sends it again. n.mu must be held.
func (n *Node) relayedFullLocked() error {
	if held := n.heldLocked(); held >= n.wr.max/2 {
		return &chain.RuleError{Code: chain.ErrPoolFull,
			Detail: fmt.Sprintf("%d readings pending: readings relayed by peers may fill half of the %d", held, n.wr.max)}
	}
	return nil
}

// recentReadingLocked is knownReadingLocked for the readings the node
// holds in memory: those of the chain's recent blocks and the pending
// ones. It reads nothing from the store. n.mu must be held.
func (n *Node) recentReadingLocked(id chain.Hash) error {
	if _, ok := n.chain.RecentReadingHeight(id); ok {
		return &chain.RuleError{Code: chain.ErrKnownReading, Detail: "reading " + id.Short() + " is already in the chain"}
	}
	if n.pool.Has(id) {
		return &chain.RuleError{Code: chain.ErrKnownReading, Detail: "reading " + id.Short() + " is already pending"}
	}
	return nil
}

// knownReadingLocked returns chain.ErrKnownReading if the reading id is in
// the chain or pending, else nil. n.mu must be held.
func (n *Node) knownReadingLocked(id chain.Hash) error {
	switch {
	case n.chain.HasReading(id):
		return &chain.RuleError{Code: chain.ErrKnownReading, Detail: "reading " + id.Short() + " is already in the chain"}
	case n.pool.Has(id):
		return &chain.RuleError{Code: chain.ErrKnownReading, Detail: "reading " + id.Short() + " is already pending"}
	}
	return nil
}

// AddBlock validates a block from a peer (or the miner) and adds it. It
// returns the chain's rule error if the block is not accepted. A block whose
// parent is unknown waits in a small orphan pool (ErrUnknownParent is still
// returned, so the caller syncs) and is added when its parent arrives.
func (n *Node) AddBlock(ctx context.Context, b *chain.Block) error {
	return n.AddBlockFrom(ctx, b, "")
}

// AddBlockFrom is AddBlock for a block that peer from relayed by gossip
// (p2p.SourcedLedger): its time is compared with the node's clock
// (clock.go). The miner's own blocks do not come this way.
func (n *Node) AddBlockFrom(ctx context.Context, b *chain.Block, from string) error {
	now := n.now()
	_, err := n.process(ctx, []*chain.Block{b}, false, from, n.disk.wait)
	n.watchClock(now, b, err, from)
	return err
}

// OnPeerFault registers f to be told of a peer that relayed an invalid
// block the node judged after the call that brought it returned: a block
// gossiped before its parent, kept in the orphan pool, that fails a rule
// once its parent arrives. from is the peer ID AddBlockFrom was given; f
// is called outside the node's lock. The network host registers its
// refusal (p2p.FaultReporter).
func (n *Node) OnPeerFault(f func(from, reason string)) { n.peerFault.Store(&f) }

// AddBlocks adds blocks in order, as a sync receives them, skipping blocks it
// already has, and records those it accepted in one store transaction (or
// one per part, for a batch process takes in parts). It stops
// at the first block that is not accepted and returns how many blocks were
// newly added, and that block's error.
func (n *Node) AddBlocks(ctx context.Context, blocks []*chain.Block) (int, error) {
	added, err := n.process(ctx, blocks, true, "", n.disk.wait)
	if errors.Is(err, chain.ErrTimeTooNew) {
		n.watchClock(n.now(), nil, err, "") // counted, no sample (clock.go)
	}
	return added, err
}

// process is the node's one path for blocks, from gossip, sync or the miner.
// The chain's rules run in their order (chain.Process) under the lock; the
// signatures, nearly all the CPU time of a block, are verified before the
// lock is taken, on every core, into the shared signature cache, and only
// for blocks that passed the cheap checks (not known, header and proof of
// work, known parent, place in the tree). A block being validated by
// another goroutine is waited for, not validated twice.
//
// A batch holding more readings than half the signature cache is taken in
// parts that each hold at most that many (or one block), so that the
// signatures verified ahead of the rules are still cached when the rules
// reach them. A block refused before on a rule its hash decides
// (refusedBlocks) costs no signature (precheckLocked) and is refused again
// with that rule's error (addLocked).
func (n *Node) process(ctx context.Context, blocks []*chain.Block, skipKnown bool, from string, wait time.Duration) (int, error) {
	if k := verifiedAhead(blocks); k < len(blocks) {
		total := 0
		for len(blocks) > 0 {
			k := verifiedAhead(blocks)
			added, err := n.process(ctx, blocks[:k], skipKnown, from, wait)
			total += added
			if err != nil {
				return total, err
			}
			blocks = blocks[k:]
		}
		return total, nil
	}
	hashes := make([]chain.Hash, len(blocks))
	for i, b := range blocks {
		hashes[i] = b.Hash()
	}
	release, err := n.claim(ctx, hashes)
	if err != nil {
		return 0, err
	}
	n.mu.Lock()
	if n.space.holding {
		// A commit waits for space: addLocked would refuse these blocks;
		// spare the signatures (space.go).
		err := fullErr("block not taken", n.space.err)
		n.mu.Unlock()
		release()
		return 0, err
	}
	if err := n.behindLocked(); err != nil {
		// The disk is slow: addLocked would refuse these blocks too.
		n.mu.Unlock()
		release()
		return 0, err
	}
	worth := n.precheckLocked(blocks, hashes)
	n.mu.Unlock()
	n.verifySignatures(ctx, blocks, worth, !skipKnown)
	if err := ctx.Err(); err != nil {
		// Given up while verifying: what was left would be verified
		// under the lock by the rules.
		release()
		return 0, err
	}

	n.mu.Lock()
	added, tips, pc, err := n.addLocked(blocks, hashes, skipKnown)
	var ready []orphan
	for _, h := range tips {
		ready = append(ready, n.orphans.children(h)...)
	}
	orphaned := errors.Is(err, chain.ErrUnknownParent) && len(blocks) == 1 && !n.orphans.has(hashes[0])
	n.mu.Unlock()
	if pc != nil {
		// Durable before announced, and before the caller (a gossip
		// validator, the sync, the miner) relays or acknowledges it.
		if cerr := n.awaitCommit(ctx, pc, wait); cerr != nil {
			release()
			return 0, cerr
		}
	}
	// Release the claim before the orphans: one of them may be a block of
	// this very batch, arrived by gossip before the batch connected it.
	release()

	// A block whose parent is unknown waits for it in the orphan pool,
	// checked without the mutex; if the parent arrived meanwhile (its
	// children were looked for before this block was in the pool), the
	// block is processed again now, and that verdict is the caller's (a
	// gossip validator relays it). This call added nothing, so no orphan
	// waits on it. A block the pool holds already costs no check again.
	if orphaned && worthKeeping(blocks[0], n.params) {
		n.mu.Lock()
		arrived := n.chain.HasBlock(blocks[0].Header.Parent)
		if !arrived {
			n.orphans.add(blocks[0], hashes[0], from)
		}
		n.mu.Unlock()
		if arrived {
			return n.process(ctx, blocks, skipKnown, from, wait)
		}
	}

	// Orphans whose parent arrived: add them too (each may free others).
	// Its relayer is blamed as the gossip validator blames the relayer of
	// an invalid block (OnPeerFault): it did not validate before relaying.
	for _, o := range ready {
		_, oerr := n.process(ctx, []*chain.Block{o.block}, false, o.from, wait)
		if oerr == nil {
			continue
		}
		n.log.Debug("orphan block not accepted", "height", o.block.Header.Height, "err", oerr)
		if f := n.peerFault.Load(); f != nil && o.from != "" && chain.IsPeerFault(oerr) {
			(*f)(o.from, "relayed an invalid block: "+oerr.Error())
		}
	}
	return added, err
}

// verifiedAhead returns how many of blocks, from the first, hold at most
// half the signature cache's readings (at least one block).
func verifiedAhead(blocks []*chain.Block) int {
	readings := 0
	for i, b := range blocks {
		if readings += len(b.Readings); readings > SigCacheSize/2 {
			return max(i, 1)
		}
	}
	return len(blocks)
}

// awaitCommit writes pc (writeCommit) and returns its error. It stops
// waiting before the commit is written once wait has passed (0: no limit)
// or, if ctx ends first, once the disk is full or slow: the commit goes on
// and is announced once written, but the caller does not relay or
// acknowledge its blocks; it gets ErrStoreFull while the commit waits for
// space (space.go), else ErrDiskSlow (slow.go). A commit on a disk that is
// neither is quick: it is waited for even if ctx ended.
func (n *Node) awaitCommit(ctx context.Context, pc *pendingCommit, wait time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- n.writeCommit(pc) }()
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	timedOut := false
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	case <-timeout:
		timedOut = true
	}
	for {
		n.mu.Lock()
		holding, err := n.space.holding, n.space.err
		n.mu.Unlock()
		if holding {
			return fullErr("block accepted but not yet stored", err)
		}
		if serr := n.slowErr(); serr != nil || timedOut {
			if serr == nil {
				serr = writeNotDone(wait)
			}
			return fmt.Errorf("block accepted but not yet stored, and announced once it is: %w", serr)
		}
		select {
		case err := <-done:
			return err
		case <-timeout:
			timedOut = true
		case <-time.After(n.spaceRetry):
		}
	}
}

// claim marks hashes as being validated by the caller, first waiting until
// none of them is being validated by another goroutine. release ends the
// claim.
func (n *Node) claim(ctx context.Context, hashes []chain.Hash) (release func(), err error) {
	for {
		n.flightMu.Lock()
		var busy chan struct{}
		for _, h := range hashes {
			if ch, ok := n.inFlight[h]; ok {
				busy = ch
				break
			}
		}
		if busy == nil {
			done := make(chan struct{})
			for _, h := range hashes {
				n.inFlight[h] = done
			}
			n.flightMu.Unlock()
			return func() {
				n.flightMu.Lock()
				for _, h := range hashes {
					if n.inFlight[h] == done {
						delete(n.inFlight, h)
					}
				}
				n.flightMu.Unlock()
				close(done)
			}, nil
		}
		n.flightMu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// precheckLocked returns which blocks are worth verifying signatures for:
// those that pass chain.CheckContext, and in a batch those that follow such
// a block and pass its header and link checks. n.mu must be held.
func (n *Node) precheckLocked(blocks []*chain.Block, hashes []chain.Hash) []bool {
	worth := make([]bool, len(blocks))
	now := n.now()
	for i, b := range blocks {
		if n.refused.get(hashes[i]) != nil {
			continue // refused again in addLocked, its signatures unchecked
		}
		err := n.chain.CheckContext(&b.Header, now)
		if errors.Is(err, chain.ErrUnknownParent) && i > 0 && worth[i-1] && b.Header.Parent == hashes[i-1] {
			err = chain.CheckHeader(&b.Header, n.params)
			if err == nil {
				err = chain.CheckLink(&b.Header, &blocks[i-1].Header, now, n.params)
			}
		}
		if err == nil && n.cons != nil {
			// The seal before the readings: a badly sealed block costs a
			// few signatures, not all of its readings'. Checked against
			// the schedule as of the tip: a block after a membership
			// change in the same batch may fail here and is then verified
			// under the lock instead.
			if _, err = n.checkSealLocked(b); err == nil {
				n.cons.sealed[b] = n.cons.version
			}
		}
		worth[i] = err == nil
	}
	return worth
}

// verifySignatures checks, on every core, the body and the signatures of
// the blocks marked worth, into the signature cache. Errors are left for
// chain.Process to report in rule order. With lookup (a block relayed by
// gossip or proposed), a block holding a reading of the main chain is left
// to chain.Process (holdsAny). A sync's batches skip that look: it costs a
// store read per reading, which on a syncing node's busy store slowed the
// sync by a third, and a peer that serves recycled readings is refused at
// its first such block (rule 7), having paid a proof of work for each.
//
// Blocks are taken in order, and none after the first whose body or a
// signature fails is started: chain.Process stops at that block, so a
// batch led by an invalid block costs its sender's victim that block's
// signatures (and those of the blocks other cores had begun), not the
// whole batch's. Its callers give it at most half the signature cache's
// readings (verifiedAhead), so the first are still cached when the rules
// reach them. None is started once ctx is done.
func (n *Node) verifySignatures(ctx context.Context, blocks []*chain.Block, worth []bool, lookup bool) {
	var todo []*chain.Block
	for i, b := range blocks {
		if worth[i] && len(b.Readings) > 0 {
			todo = append(todo, b)
		}
	}
	if len(todo) == 0 {
		return
	}
	if len(todo) == 1 && len(todo[0].Readings) < 64 {
		n.verifyOne(todo[0], lookup)
		return
	}
	var next, failed atomic.Int64
	failed.Store(int64(len(todo))) // the first block that failed; none yet
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < failed.Load() && ctx.Err() == nil; i = next.Add(1) - 1 {
				if n.verifyOne(todo[i], lookup) {
					continue
				}
				for f := failed.Load(); i < f && !failed.CompareAndSwap(f, i); f = failed.Load() {
				}
			}
		}()
	}
	wg.Wait()
}

// verifyOne checks b's body and verifies its signatures into the cache; it
// reports false if the body or a signature failed (true also for a block
// left to chain.Process, holdsAny).
func (n *Node) verifyOne(b *chain.Block, lookup bool) bool {
	ids, err := chain.CheckBody(b, n.params)
	if err != nil {
		return false
	}
	if lookup && n.holdsAny(b, ids) {
		return true
	}
	return chain.CheckSignatures(b, ids, n.sigs) == nil
}

// holdsAny reports whether one of the block's readings that would cost a
// verification (its signature is not in the cache) is a reading of the
// node's main chain. A block holding one is left to chain.Process: rule 7
// refuses it on lookups before any signature (readings copied from the
// chain cost their sender nothing, so they must cost the node no
// verifying), and a side branch that may hold it has its signatures
// verified there. A reading whose signature the cache holds costs nothing
// either way, so it is not looked up: in an honest block that is nearly
// every reading (each was verified when it was relayed or submitted), and
// a look-up is a store read. The store answers outside n.mu; a node
// without one asks the chain.
func (n *Node) holdsAny(b *chain.Block, ids []chain.Hash) bool {
	var ask []chain.Hash
	for i := range b.Readings {
		if !n.sigs.Has(ids[i], &b.Readings[i].Sig) {
			ask = append(ask, ids[i])
		}
	}
	if len(ask) == 0 {
		return false
	}
	if n.store != nil {
		for _, id := range ask {
			if _, ok := n.store.ReadingBlock(id); ok {
				return true
			}
		}
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, id := range ask {
		if n.chain.HasReading(id) {
			return true
		}
	}
	return false
}

// addLocked runs blocks through chain.Process in order. It returns how
// many blocks were added, the hashes of those added (whose orphans may now
// connect), the store commit of what was accepted, which the caller writes
// with writeCommit after releasing n.mu (nil without a store: then the
// changes are announced at once), and the error of the first block not
// accepted. n.mu must be held.
func (n *Node) addLocked(blocks []*chain.Block, hashes []chain.Hash, skipKnown bool) (int, []chain.Hash, *pendingCommit, error) {
	if n.failed != nil {
		return 0, nil, nil, n.failed
	}
	if n.space.holding {
		// A commit waits for space: take no more blocks into memory
		// until it is written (space.go).
		return 0, nil, nil, fullErr("block not taken", n.space.err)
	}
	if err := n.behindLocked(); err != nil {
		// The disk is slow: take no more blocks into memory until the
		// writer catches up (slow.go).
		return 0, nil, nil, err
	}
	var (
		added   []*chain.Block
		updates []*chain.Update
		err     error
	)
	now := n.now()
	for i, b := range blocks {
		if err = n.refused.get(hashes[i]); err != nil {
			break // refused before on a rule its hash decides
		}
		var u *chain.Update
		u, err = n.processLocked(b, now)
		if err != nil {
			if skipKnown && errors.Is(err, chain.ErrDuplicateBlock) {
				err = nil
				continue
			}
			n.refused.note(b, hashes[i], err, n.params)
			break
		}
		added, updates = append(added, b), append(updates, u)
	}
	if n.cons != nil {
		clear(n.cons.sealed) // the precheck's memo serves one pass (another caller's re-verifies)
	}
	if chain.IsPeerFault(err) {
		n.rejected[chain.CodeOf(err)]++
	}
	if len(added) == 0 {
		return 0, nil, nil, err
	}
	// The pending set changes for every reading that left or joined the
	// main chain, or was adopted from a tying branch; record where each one
	// ends up after all the updates.
	touched := map[chain.Hash]bool{}
	for _, u := range updates {
		n.pool.Apply(u)
		for _, r := range u.Returned {
			touched[r.ID()] = true
		}
		for _, r := range u.Adopted {
			touched[r.ID()] = true
		}
		for _, c := range u.Connected {
			for _, id := range c.ReadingIDs() {
				touched[id] = true
			}
		}
	}
	var got []chain.Hash
	for _, b := range added {
		if n.chain.HasBlock(b.Hash()) {
			got = append(got, b.Hash())
		}
	}
	if n.store != nil {
		pc := &pendingCommit{blocks: added, updates: updates, now: now}
		for id := range touched {
			if r, ok := n.pool.Get(id); ok {
				pc.add = append(pc.add, r)
			} else {
				pc.remove = append(pc.remove, id)
			}
		}
		n.commits.take(pc)
		return len(added), got, pc, err
	}
	n.announceLocked(updates, now)
	return len(added), got, nil, err
}

// announceLocked tells subscribers and waiters what updates changed, once
// they are durable. n.mu must be held.
func (n *Node) announceLocked(updates []*chain.Update, now time.Time) {
	for _, u := range updates {
		if u.TipChanged {
			last := u.Connected[len(u.Connected)-1]
			n.durable.height, n.durable.tip = last.Header.Height, last.Hash()
		}
	}
	n.finalLocked(now)
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
}

// SignaturesVerified returns how many reading signatures the node has
// verified since it started (each one once: see chain.SigCache), counting
// those it made itself (Submit) as verified.
func (n *Node) SignaturesVerified() uint64 { return n.sigs.Added() }

// Orphans returns how many blocks wait in the orphan pool for their parent.
func (n *Node) Orphans() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.orphans.len()
}

// Rejected returns how many invalid blocks the node refused, by the name of
// the rule they broke: every rule a peer can break, 0 for those no block
// broke yet (a counter that appears only at its first count hides that
// count from rate-based alerts).
func (n *Node) Rejected() map[string]uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := map[string]uint64{}
	// The codes are consecutive from 1; past the last, String has no name.
	for code := chain.ErrorCode(1); !strings.HasPrefix(code.String(), "ErrorCode("); code++ {
		if chain.IsPeerFault(code) {
			out[code.String()] = 0
		}
	}
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

// Run makes blocks until ctx ends: on a proof-of-work network it mines
// pending readings, relaying each block it finds through b; on an
// authority network it runs the consensus (runAuthority).
func (n *Node) Run(ctx context.Context, b Broadcaster) error {
	go n.finalByAge(ctx)
	go n.watchStore(ctx) // a store failing in the background stops the node
	if n.cons != nil {
		if b != nil {
			go n.sendReadings(ctx, b)
		}
		return n.runAuthority(ctx, b)
	}
	for {
		n.mu.Lock()
		changed := n.changed
		var blk *chain.Block
		var later <-chan time.Time // a reading from the future becomes mineable
		if n.pool.Len() > 0 {
			now := n.now()
			rs, wait := mineable(n.pool.Take(n.params.MaxReadings), now, n.params)
			if len(rs) > 0 {
				blk = n.chain.NewBlock(rs, now)
			} else if wait > 0 {
				later = time.After(wait)
			}
		}
		n.mu.Unlock()
		if blk == nil {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-changed:
				continue
			case <-later:
				continue
			}
		}
		if err := n.mine(ctx, blk, changed); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue // the tip or pool changed: start again on the new state
		}
		// The miner waits for its block's commit as long as the disk
		// takes (0): it relays the block once stored (slow.go).
		if _, err := n.process(ctx, []*chain.Block{blk}, false, "", 0); err != nil {
			if ctx.Err() != nil {
				// Stopped: at difficulty 0 the proof of work does not
				// look at ctx, and every block would be refused for it.
				return ctx.Err()
			}
			// A block that arrived meanwhile may have taken a reading.
			n.log.Debug("mined block not accepted", "height", blk.Header.Height, "err", err)
			if errors.Is(err, ErrStoreFull) || errors.Is(err, ErrDiskSlow) {
				// The disk is full or slow: mine again later.
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(n.spaceRetry):
				}
			}
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
	// The proof of work at the lowest priority: what checking and
	// relaying leave of the cores (atLowestPriority).
	var err error
	atLowestPriority(func() { err = chain.Solve(mctx, &blk.Header) })
	if err != nil {
		return fmt.Errorf("mine block %d: %w", blk.Header.Height, err)
	}
	return nil
}

// processLocked is chain.Process for a block from a peer, the miner or the
// consensus: on an authority network the block's seal and membership
// changes are checked against the authority set of its height after the
// cheap checks (known, header, parent, place) and before the chain's body
// and signature rules, and its changes apply once it joins. n.mu must be
// held.
func (n *Node) processLocked(b *chain.Block, now time.Time) (*chain.Update, error) {
	if n.cons == nil {
		return n.chain.Process(b, now, 0)
	}
	if err := n.chain.CheckContext(&b.Header, now); err != nil {
		return nil, err
	}
	changes, err := n.checkSealLocked(b)
	if err != nil {
		return nil, err
	}
	u, err := n.chain.Process(b, now, chain.Sealed)
	if err != nil {
		return nil, err
	}
	n.connectedLocked(b, changes)
	return u, nil
}

// finalByAge lets time make blocks final while no block arrives (a block
// is final by depth and by age, chain.Advance): every second until ctx ends
// it moves the final height up to what now allows and reports a rise, as a
// new block would. Without it a quiet network's last blocks became final
// only when something asked, and no final event reported them.
func (n *Node) finalByAge(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.dead:
			return
		case <-t.C:
			n.mu.Lock()
			n.finalLocked(n.now())
			n.mu.Unlock()
		}
	}
}

// finalHeightLocked is the node's final height as of now: the chain's,
// capped at the tip last announced (finalLocked). n.mu must be held.
func (n *Node) finalHeightLocked() uint64 {
	n.finalLocked(n.now())
	return n.finalSeen
}

// finalLocked reports a rise of the final height to subscribers
// (EventFinal), with the time to finality of the readings submitted here
// that it made final; never above the tip last announced (n.durable): the
// chain takes blocks in memory before their commit is written, and a final
// event promises a block that never leaves the chain. n.mu must be held.
func (n *Node) finalLocked(now time.Time) {
	final := min(n.chain.Advance(now), n.durable.height)
	if final <= n.finalSeen {
		return
	}
	from := n.finalSeen + 1
	if final-from > 64 {
		from = final - 64 // older blocks' readings: their time is not reported
		// Nor kept: the map holds only readings still on their way
		// (pending, or in blocks not final yet), since past maxSubmitted
		// a new one is not kept, and loses its rebroadcast. A pass over the map,
		// in memory, on a jump only (a sync, a clock moved on).
		for id := range n.submitted {
			if h, ok := n.chain.RecentReadingHeight(id); ok && h < from || !ok && !n.pool.Has(id) {
				delete(n.submitted, id)
			}
		}
	}
	n.finalSeen = final
	var lat []time.Duration
	if len(n.submitted) > 0 {
		for h := from; h <= final; h++ {
			b, ok := n.chain.BlockAt(h)
			if !ok {
				continue
			}
			for i := range b.Readings {
				id := b.Readings[i].ID()
				if t, ok := n.submitted[id]; ok {
					lat = append(lat, now.Sub(t))
					delete(n.submitted, id)
				}
			}
		}
	}
	hash, _ := n.chain.HashAt(final)
	n.publishLocked(Event{Kind: EventFinal, Height: n.durable.height, Tip: n.durable.tip, Final: final, FinalHash: hash, Latencies: lat})
}

// sendReadings sends the readings submitted here to the peers (authority
// networks), outside every lock.
func (n *Node) sendReadings(ctx context.Context, b Broadcaster) {
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-n.outbox:
			if err := b.BroadcastReading(ctx, r); err != nil && ctx.Err() == nil {
				n.log.Debug("send reading", "err", err)
			}
		}
	}
}

// Preverify verifies, on every core and into the signature cache, the
// signatures of a batch that a sync will add next, so that they are verified
// while the batch before is still being verified, added and committed;
// AddBlocks then finds them verified. It checks nothing else and reports
// nothing: the blocks are validated in full when added. It verifies only
// blocks that pass the cheap checks and follow the previous block of the
// batch, and a first block that follows parent (the sync's previous batch,
// which the chain may not hold yet: its header and link are checked) or,
// without one or when it does not follow it, a parent the chain knows
// (chain.CheckContext); none of a block the chain holds already (known
// blocks cost no signature: a peer may serve them again and again); none
// from a block refused before on (refusedBlocks);
// and no more blocks than hold half the signature cache, so that they do
// not push out the batch being added. On an authority network it does nothing: there a
// block's seal, checked under the lock, decides whether its readings are
// worth verifying. It starts no block once ctx is done (the sync dropped
// the batch).
func (n *Node) Preverify(ctx context.Context, blocks []*chain.Block, parent *chain.Block) {
	if n.cons != nil {
		return
	}
	blocks = blocks[:verifiedAhead(blocks)]
	linked := make([]bool, len(blocks)) // its header and its link to the block before check out
	known := make([]bool, len(blocks))  // the chain holds it: its signatures cost nothing again
	now := n.now()
	n.mu.Lock()
	for i, b := range blocks { // none from a block refused before on
		h := b.Hash()
		if n.refused.get(h) != nil {
			blocks = blocks[:i]
			break
		}
		// In memory only: a block of the next batch follows the batch
		// before, which is off the main chain, so it is new or of a side
		// branch (kept in memory), never a main-chain block the archive
		// holds; and a store read here would be under n.mu.
		known[i] = n.chain.Holds(h)
	}
	if len(blocks) == 0 {
		n.mu.Unlock()
		return
	}
	first := &blocks[0].Header
	if parent != nil && first.Parent == parent.Hash() {
		linked[0] = chain.CheckHeader(first, n.params) == nil && chain.CheckLink(first, &parent.Header, now, n.params) == nil
	} else {
		linked[0] = n.chain.CheckContext(first, now) == nil
	}
	n.mu.Unlock()
	for i := 1; i < len(blocks); i++ {
		h := &blocks[i].Header
		linked[i] = linked[i-1] && h.Parent == blocks[i-1].Hash() &&
			chain.CheckHeader(h, n.params) == nil && chain.CheckLink(h, &blocks[i-1].Header, now, n.params) == nil
	}
	// A block the chain holds is recognised by its hash when added
	// (rule 2): verifying its signatures ahead would cost what a known
	// block must not, and a peer could serve a side branch it made the
	// node store once, again and again, after the signature cache let
	// go of its readings.
	worth := make([]bool, len(blocks))
	for i := range blocks {
		worth[i] = linked[i] && !known[i]
	}
	n.verifySignatures(ctx, blocks, worth, false)
}

// The chain changes in memory under n.mu; its store commits are written
// after, outside the lock, one at a time in the order the chain changed
// (raft's shape: one writer that persists in order and announces after the
// fsync). Readers and submitters never wait for a block's fsync; whoever
// added the block does, and only then is it announced (events, the
// signal), relayed or acknowledged. What the chain lets go of to its
// archive (Compact) is limited to blocks whose commit is written.

// pendingCommit is a store commit of blocks the chain accepted, waiting
// for its turn.
type pendingCommit struct {
	ticket  uint64
	low     uint64 // lowest main-chain height it connects (MaxUint64: none)
	blocks  []*chain.Block
	updates []*chain.Update
	add     []chain.Reading
	remove  []chain.Hash
	now     time.Time
}

// commitQueue orders the pending commits.
type commitQueue struct {
	mu     sync.Mutex
	turn   *sync.Cond
	next   uint64                    // the next ticket to give
	done   uint64                    // tickets finished
	flight map[uint64]*pendingCommit // taken, not finished
	failed error
}

// take gives pc the next ticket. n.mu must be held (tickets follow the
// order of the chain's changes).
func (q *commitQueue) take(pc *pendingCommit) {
	pc.low = math.MaxUint64
	for _, u := range pc.updates {
		if len(u.Connected) > 0 {
			pc.low = min(pc.low, u.Connected[0].Header.Height)
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.turn == nil {
		q.turn = sync.NewCond(&q.mu)
		q.flight = map[uint64]*pendingCommit{}
	}
	pc.ticket = q.next
	q.next++
	q.flight[pc.ticket] = pc
}

// queued returns how many commits were taken and are not yet written.
func (q *commitQueue) queued() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.next - q.done
}

// durableBelow returns the height below the first block that a commit
// after ticket connects: the chain may compact up to it.
func (q *commitQueue) durableBelow(ticket uint64) uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	limit := uint64(math.MaxUint64)
	for t, pc := range q.flight {
		if t > ticket && pc.low != math.MaxUint64 {
			limit = min(limit, pc.low-1)
		}
	}
	return limit
}

// writeCommit waits for pc's turn, writes it durably and announces it. A
// write the store refuses for want of space is tried again until it is
// stored (space.go); any other failed write makes the node fail (memory is
// ahead of the store), and every later commit fails with it.
func (n *Node) writeCommit(pc *pendingCommit) error {
	q := &n.commits
	q.mu.Lock()
	for q.done != pc.ticket {
		q.turn.Wait()
	}
	err := q.failed
	q.mu.Unlock()
	if err == nil {
		err = n.applyCommit(pc) // waits while the disk is full
	}
	n.mu.Lock()
	if err != nil {
		err = n.failLocked(err)
	} else {
		n.chain.CompactTo(q.durableBelow(pc.ticket)) // durable now: what the store holds may leave memory
		n.announceLocked(pc.updates, pc.now)
	}
	n.mu.Unlock()
	q.mu.Lock()
	if err != nil && q.failed == nil {
		q.failed = err
	}
	delete(q.flight, pc.ticket)
	q.done++
	q.turn.Broadcast()
	q.mu.Unlock()
	return err
}

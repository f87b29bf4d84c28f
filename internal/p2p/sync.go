package p2p

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// The sync manager: the client side of catching up. One manager per host
// runs at most one sync at a time, from the peer that claims the best tip.
// Its bookkeeping (what each peer claims, strikes, back-offs: peers.go) is
// kept apart from the networking that carries a sync (this file), in the
// manner of btcd's syncManager and CometBFT's block pool.
//
// Statuses come from the handshakes of both directions (a new connection
// makes each side ask the other), from a poll of every peer each interval,
// and from a peer that relayed a block whose parent we lack. Whenever one
// arrives, or a sync ends, or a back-off runs out, the manager looks for the
// best claim better than our tip, from a peer not in a back-off, and syncs
// from it. A claim is never trusted until blocks prove it: a sync that gets
// nothing new while the peer still claims better ends at once and costs the
// peer a strike and a back-off, and MaxStrikes strikes get it refused.

const (
	// statusFresh: a status younger than this is not asked for again when
	// a peer relays a block whose parent we lack (the poll asks anyway),
	// unless the block shows the status is behind (peerBook.forcePoll).
	statusFresh = time.Second
	// forceGap: relayed blocks force at most one status exchange with a
	// peer this often (peerBook.forcePoll), a fifth of the peer's own
	// StatusRequestsPerSecond budget.
	forceGap = 500 * time.Millisecond
	// announceBatches: a long sync announces our tip by gossip every this
	// many batches, besides at its end.
	announceBatches = 64
	// progressLog is how often a running sync logs its progress.
	progressLog = 3 * time.Second
	// addTimeout bounds the ledger's work on one batch (512 blocks of the
	// largest size take well under a minute to verify): one sync at a time
	// must never mean no sync ever again.
	addTimeout = 5 * time.Minute
)

// SyncState is the progress of a catch-up. Target and Total rest on the
// peer's claimed status: they are estimates that its blocks may prove wrong,
// and they grow if the peer moves on while we sync.
type SyncState struct {
	Syncing bool
	Peer    peer.ID
	From    uint64 // our height when the sync started
	Height  uint64 // height of the last block received
	Target  uint64 // the height the peer claims (at least Height)

	Done  uint64        // blocks received and accepted so far
	Total uint64        // Done plus the blocks the peer claims are left (at least Done)
	Rate  float64       // blocks per second so far
	Left  time.Duration // time left at that rate; 0 when unknown

	Started time.Time
	Result  string // how a finished sync ended: "done", "failed", "stalled", "useless", "fork too deep", "refused"
}

// syncManager decides when and from whom to catch up, and runs the syncs.
type syncManager struct {
	h        *Host
	interval time.Duration
	wakeCh   chan struct{}    // something changed: look for a peer to sync from
	polls    chan pollRequest // peers to ask for their status

	mu    sync.Mutex
	state SyncState // the running sync (zero if none)
	last  SyncState // the last finished one
}

// syncResult is what a sync did.
type syncResult struct {
	peer    peer.ID
	outcome syncOutcome
	added   int // blocks new to us
	err     error
}

func newSyncManager(h *Host, interval time.Duration) *syncManager {
	return &syncManager{h: h, interval: interval, wakeCh: make(chan struct{}, 1), polls: make(chan pollRequest, 64)}
}

// wake makes the manager look for a peer to sync from. It never blocks.
func (m *syncManager) wake() {
	select {
	case m.wakeCh <- struct{}{}:
	default:
	}
}

// CatchUp asks every connected peer whose status is not fresh for it,
// and syncs from the best: the consensus calls it when peers have decided
// heights this node has not (bft.Update.Behind). It never blocks.
func (h *Host) CatchUp() {
	for _, p := range h.host.Network().Peers() {
		h.sync.request(p, false)
	}
	h.sync.wake()
}

// pollRequest asks for a peer's status; with force even if the status we
// have is fresh (the peer has shown that it moved on since).
type pollRequest struct {
	p     peer.ID
	force bool
}

// request asks the manager to learn p's status (p may have blocks we lack):
// unless force, not if p's status is fresh. It never blocks: if the queue is
// full, the next poll covers p.
func (m *syncManager) request(p peer.ID, force bool) {
	select {
	case m.polls <- pollRequest{p, force}:
	default:
	}
}

func (m *syncManager) loop(ctx context.Context) {
	defer m.h.wg.Done()
	tick := time.NewTicker(m.interval)
	defer tick.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	done := make(chan syncResult, 1)
	running := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			m.h.peers.sweep(m.h.connected)
			for _, p := range m.h.host.Network().Peers() {
				m.poll(ctx, p, true, false) // one in flight answers it: no second
			}
		case r := <-m.polls:
			m.poll(ctx, r.p, r.force, r.force)
		case <-m.wakeCh:
		case <-retry.C:
		case r := <-done:
			running = false
			m.ended(r)
		}
		if running {
			continue
		}
		p, theirs, ok, next := m.h.peers.best(m.h.ledger.Status(), m.h.ledger.HasBlock, time.Now())
		if !ok {
			if !next.IsZero() {
				retry.Reset(time.Until(next) + 10*time.Millisecond)
			}
			continue
		}
		running = true
		m.h.wg.Add(1)
		go func() {
			defer m.h.wg.Done()
			done <- m.run(ctx, p, theirs) // done has room: one sync at a time
		}()
	}
}

// poll runs a status exchange with p in the background, unless one is
// running (with repoll, it is asked again after it: peerBook.startPoll) or
// (force false) p's status is fresh. Its result wakes the manager.
func (m *syncManager) poll(ctx context.Context, p peer.ID, force, repoll bool) {
	if !m.h.peers.startPoll(p, time.Now(), force, repoll) {
		return
	}
	m.h.wg.Add(1)
	go func() {
		defer m.h.wg.Done()
		defer func() {
			if m.h.peers.endPoll(p) {
				m.request(p, true)
			}
		}()
		if _, err := m.h.exchangeStatus(ctx, p); err != nil && ctx.Err() == nil {
			m.h.log.Debug("status exchange failed", "peer", p, "err", err)
		}
	}()
}

// ended books a finished sync and acts on the verdict.
func (m *syncManager) ended(r syncResult) {
	v := m.h.peers.syncEnded(r.peer, r.outcome, r.added > 0, time.Now())
	if r.added > 0 {
		// Its blocks joined our chain: keep it when connections are trimmed
		// or inbound peers evicted (evict.go).
		m.h.markSynced(r.peer)
	}
	switch {
	case v.refuse:
		m.h.refuse(r.peer, fmt.Sprintf("claimed a better chain than it had, %d times", m.h.peers.lim.maxStrikes))
	case v.warnFork && errors.Is(r.err, chain.ErrCheckpoint):
		m.h.log.Warn("peer's chain does not pass through this node's checkpoint; not syncing from it for a while: "+
			"check -checkpoint HEIGHT:HASH against a node you trust (p2pchain block HEIGHT), or connect to peers on that chain",
			"peer", r.peer, "backoff", m.h.peers.lim.forkBackoff, "err", r.err)
	case v.warnFork:
		m.h.log.Warn("peer is on a chain that forks below our final blocks; not syncing from it for a while",
			"peer", r.peer, "backoff", m.h.peers.lim.forkBackoff, "err", r.err)
	}
}

// run catches up with p, whose claimed status is theirs: batches of blocks
// until our tip is at least as good as p's (asking p again for its status
// when we reach its claim, in case it moved on). Each request's locator
// starts at the last block of the previous batch, so a long branch that has
// not yet overtaken our main chain is fetched block after block, never
// twice.
//
// Fetching, verifying and adding overlap: as soon as batch k arrives, the
// next batch is requested (its locator built from batch k's blocks); while
// batch k's signatures are verified and it is added, batch k+1 arrives and,
// if the ledger can, its signatures are verified ahead. At most two batches
// are held, the one being verified or added and the next; the next is
// dropped if batch k ends the sync.
func (m *syncManager) run(ctx context.Context, p peer.ID, theirs chain.Status) (res syncResult) {
	res.peer = p
	ours := m.h.ledger.Status()
	if !worthSyncing(theirs, ours, m.h.ledger.HasBlock) {
		return res // syncDone: nothing to fetch
	}
	announced := ours.Tip
	pr := newProgress(p, ours.Height, theirs.Height, time.Now())
	m.setState(pr.st)
	m.h.log.Info("syncing", "peer", p, "height", ours.Height, "claimed_height", theirs.Height)
	defer func() {
		if res.added > 0 {
			m.announce(ctx, &announced)
		}
		m.finish(pr.end(res.outcome))
		st := pr.st
		took := time.Since(st.Started).Round(time.Millisecond).Seconds()
		if res.outcome == syncDone {
			now := m.h.ledger.Status()
			m.h.log.Info("synced", "peer", p, "height", now.Height, "tip", now.Tip.Short(), "blocks", st.Done,
				"new", res.added, "seconds", took)
			return
		}
		m.h.log.Debug("sync ended", "peer", p, "result", res.outcome.String(), "done", st.Done, "new", res.added,
			"height", m.h.ledger.Status().Height, "seconds", took, "err", res.err)
	}()

	from := ours.Tip
	var sideHeight uint64 // highest known side-branch block a batch led to
	lastLog := time.Now()
	var next *fetch // the next batch, requested while the last one is added
	// A sync that ends drops the next batch, and waits for its request and
	// its verification ahead to stop; but a peer that broke the protocol
	// sending it is refused, and the sync is booked so.
	drop := func(res syncResult) syncResult {
		if next == nil {
			return res
		}
		next.cancel()
		f := <-next.done
		next = nil
		if errors.Is(f.err, errBrokeProtocol) && res.outcome != syncRefused {
			return res.end(syncRefused, f.err)
		}
		return res
	}
	defer func() { res = drop(res) }()
	for batch := 1; ; batch++ {
		cur := next
		if cur == nil {
			cur = m.fetch(ctx, p, m.h.ledger.Locator(from), nil)
		}
		next = nil
		if r := <-cur.arrived; r.err == nil && len(r.blocks) > 0 {
			first, last := r.blocks[0], r.blocks[len(r.blocks)-1]
			if last.Header.Height < theirs.Height && !m.h.ledger.IsMainChain(last.Hash()) &&
				m.h.ledger.IsMainChain(first.Header.Parent) {
				// The peer claims more, and this batch leads our main
				// chain on: ask for the next now, while this one is
				// verified and added.
				next = m.fetch(ctx, p, m.nextLocator(r.blocks), last)
			}
		}
		f := <-cur.done
		cur.cancel()
		blocks, err := f.blocks, f.err
		if errors.Is(err, errBrokeProtocol) {
			return res.end(syncRefused, err)
		}
		if len(blocks) > 0 {
			last := blocks[len(blocks)-1]
			pr.first(blocks[0].Header.Height)
			actx, cancel := context.WithTimeout(ctx, addTimeout)
			n, aerr := m.h.ledger.AddBlocks(actx, blocks)
			cancel()
			res.added += n
			if aerr != nil {
				pr.batch(n, blocks[len(blocks)-1].Header.Height, time.Now())
				// The next batch stops before the peer is refused: once
				// refused, its blocks cost the node nothing more.
				if res = drop(res); res.outcome == syncRefused {
					return res // it broke the protocol: refused already
				}
				return m.addFailed(p, aerr, res)
			}
			if n == 0 && err == nil && !knownBranch(m.h.ledger, last, &sideHeight) &&
				theirs.Better(m.h.ledger.Status()) {
				return res.end(syncUseless, fmt.Errorf("a batch of %d blocks we already had, from a peer claiming height %d", len(blocks), theirs.Height))
			}
			pr.batch(len(blocks), last.Header.Height, time.Now())
			from = last.Hash()
		}
		if errors.Is(err, errStalled) {
			return res.end(syncStalled, err)
		}
		if err != nil {
			return res.end(syncFailed, err)
		}
		ours := m.h.ledger.Status()
		if len(blocks) == 0 && theirs.Better(ours) {
			if tieHeld(theirs, ours, m.h.ledger.HasBlock) {
				return res.end(syncDone, nil) // we hold its branch now: no strike
			}
			return res.end(syncUseless, fmt.Errorf("nothing after our locator, from a peer claiming height %d", theirs.Height))
		}
		m.setState(pr.st)
		if time.Since(lastLog) >= progressLog {
			lastLog = time.Now()
			st := pr.st
			m.h.log.Info("syncing", "peer", p, "done", st.Done, "target", fmt.Sprintf("~%d", st.Total),
				"blocks_per_s", int(st.Rate), "left", st.Left.Round(time.Second), "height", st.Height)
		}
		if batch%announceBatches == 0 {
			m.announce(ctx, &announced)
		}
		if !theirs.Better(ours) {
			// We have what the peer claimed; ask whether it moved on.
			if theirs, err = m.h.exchangeStatus(ctx, p); err != nil {
				if errors.Is(err, errOtherNetwork) {
					return res.end(syncRefused, err)
				}
				return res.end(syncFailed, err)
			}
			if !worthSyncing(theirs, ours, m.h.ledger.HasBlock) {
				return res.end(syncDone, nil)
			}
			pr.claimed(theirs.Height)
		}
	}
}

// tieHeld reports whether theirs is better than ours only by the tie
// rule (the same work, a lower tip hash) and we hold its tip already (has):
// our fork choice keeps our tip once it is older than chain.TieWindow, so
// there is nothing to fetch, and the peer's claim is honest (no strike),
// until the next block breaks the tie.
func tieHeld(theirs, ours chain.Status, has func(chain.Hash) bool) bool {
	return theirs.Work != nil && ours.Work != nil && theirs.Work.Cmp(ours.Work) == 0 && has(theirs.Tip)
}

// worthSyncing reports whether a sync from a peer claiming theirs can bring
// us anything: its claim is better than ours, and not a tie on a tip we
// hold. The manager chooses peers by it (peerBook.best) and a sync ends by
// it, so that a held tie starts no sync at all, not one after another.
func worthSyncing(theirs, ours chain.Status, has func(chain.Hash) bool) bool {
	return theirs.Better(ours) && !tieHeld(theirs, ours, has)
}

// Preverifier is a Ledger that can verify a batch's signatures before
// AddBlocks takes it, while the batches before it are still being verified
// and added. The sync uses it when the ledger has it. parent is the block
// before blocks[0] when the sync holds it but the ledger may not yet (the
// previous batch's last block), nil otherwise.
type Preverifier interface {
	Preverify(ctx context.Context, blocks []*chain.Block, parent *chain.Block)
}

// fetch is one blocks request running in the background.
type fetch struct {
	cancel  context.CancelFunc
	arrived chan fetched // receives the answer once, as soon as it is read
	done    chan fetched // receives it again once its signatures are verified ahead
}

// fetched is a blocks request's answer: the blocks read before any error.
type fetched struct {
	blocks []*chain.Block
	err    error
}

// fetch paces and sends a blocks request to p in the background. The
// answer comes on arrived as soon as it is read, so that the sync can ask
// for the batch after it at once, and on done after the blocks' signatures
// were verified ahead (Preverifier; only for a batch that follows parent, a
// block of the previous batch, when parent is not nil).
func (m *syncManager) fetch(ctx context.Context, p peer.ID, locator []chain.Hash, parent *chain.Block) *fetch {
	ctx, cancel := context.WithCancel(ctx)
	f := &fetch{cancel: cancel, arrived: make(chan fetched, 1), done: make(chan fetched, 1)}
	go func() {
		var r fetched
		if r.err = m.h.paceFetch(ctx, p); r.err == nil {
			r.blocks, r.err = m.h.requestBlocks(ctx, p, locator, MaxBatch)
		}
		f.arrived <- r
		if pv, ok := m.h.ledger.(Preverifier); ok && parent != nil && r.err == nil && len(r.blocks) > 0 && ctx.Err() == nil {
			pv.Preverify(ctx, r.blocks, parent)
		}
		f.done <- r
	}()
	return f
}

// nextLocator returns the locator that starts at the last of blocks, a
// batch not yet added: its hashes from the batch as chain.LocatorFrom
// spaces them, then our locator from the batch's parent (which we hold),
// ending with genesis.
func (m *syncManager) nextLocator(blocks []*chain.Block) []chain.Hash {
	var loc []chain.Hash
	step := 1
	for i := len(blocks) - 1; i >= 0; i -= step {
		loc = append(loc, blocks[i].Hash())
		if len(loc) >= 10 {
			step *= 2
		}
	}
	base := m.h.ledger.Locator(blocks[0].Header.Parent)
	if len(loc)+len(base) > chain.MaxLocator {
		loc = append(loc, base[:chain.MaxLocator-1-len(loc)]...)
		return append(loc, base[len(base)-1])
	}
	return append(loc, base...)
}

func (r syncResult) end(o syncOutcome, err error) syncResult {
	r.outcome, r.err = o, err
	return r
}

// addFailed ends a sync whose batch the ledger did not take in full.
func (m *syncManager) addFailed(p peer.ID, err error, res syncResult) syncResult {
	switch {
	case chain.IsPeerFault(err):
		m.h.refuse(p, "sent an invalid block during sync: "+err.Error())
		return res.end(syncRefused, err)
	case errors.Is(err, chain.ErrForkTooDeep), errors.Is(err, chain.ErrCheckpoint):
		// Valid blocks, maybe an honest peer cut off from us for long,
		// but useless: its chain conflicts with our final blocks, or
		// does not pass through our checkpoint.
		return res.end(syncForked, err)
	case errors.Is(err, chain.ErrUnknownParent):
		// Our locator's blocks are known to us; blocks that follow none of
		// them do not answer the request.
		return res.end(syncUseless, fmt.Errorf("blocks that do not follow our locator: %w", err))
	default:
		return res.end(syncFailed, err)
	}
}

// knownBranch reports whether a batch of blocks we all had led along a side
// branch we hold, higher than any such batch before in this sync: an honest
// peer does that when an earlier sync fetched part of its branch and ended
// before the branch overtook our main chain. Heights only grow, so this
// costs at most our known side blocks.
func knownBranch(l Ledger, last *chain.Block, sideHeight *uint64) bool {
	if last.Header.Height <= *sideHeight || l.IsMainChain(last.Hash()) {
		return false
	}
	*sideHeight = last.Header.Height
	return true
}

// announce publishes our tip by gossip if it is not the last one announced,
// so peers behind us start catching up now, not at their next poll.
func (m *syncManager) announce(ctx context.Context, last *chain.Hash) {
	tip := m.h.ledger.TipBlock()
	if tip == nil || tip.Hash() == *last {
		return
	}
	*last = tip.Hash()
	if err := m.h.BroadcastBlock(ctx, tip); err != nil && ctx.Err() == nil {
		m.h.log.Debug("cannot announce the tip", "height", tip.Header.Height, "err", err)
	}
}

func (m *syncManager) setState(st SyncState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.state = st
}

func (m *syncManager) finish(st SyncState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.state, m.last = SyncState{}, st
}

// State returns the running sync's progress (zero if none).
func (m *syncManager) State() SyncState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state
}

// Last returns the last finished sync's final progress.
func (m *syncManager) Last() SyncState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last
}

// progress computes a sync's SyncState.
type progress struct {
	st    SyncState
	base  uint64 // height the peer's blocks start after (From until known)
	seen  bool   // base is known
	claim uint64 // the height the peer claims
}

func newProgress(p peer.ID, from, claim uint64, now time.Time) *progress {
	pr := &progress{st: SyncState{Syncing: true, Peer: p, From: from, Height: from, Started: now}, base: from, claim: claim}
	pr.update(now)
	return pr
}

// first learns where the peer's blocks start: below our height if its
// branch forks from ours.
func (pr *progress) first(height uint64) {
	if !pr.seen && height > 0 {
		pr.seen, pr.base = true, min(pr.base, height-1)
	}
}

func (pr *progress) batch(n int, last uint64, now time.Time) {
	pr.st.Done += uint64(n)
	if n > 0 {
		pr.st.Height = last
	}
	pr.update(now)
}

func (pr *progress) claimed(height uint64) { pr.claim = max(pr.claim, height); pr.update(time.Now()) }

func (pr *progress) update(now time.Time) {
	st := &pr.st
	st.Target = max(pr.claim, st.Height)
	st.Total = st.Done
	if pr.claim > pr.base {
		st.Total = max(st.Done, pr.claim-pr.base)
	}
	st.Rate, st.Left = 0, 0
	if secs := now.Sub(st.Started).Seconds(); secs > 0 && st.Done > 0 {
		st.Rate = float64(st.Done) / secs
		st.Left = time.Duration(float64(st.Total-st.Done) / st.Rate * float64(time.Second))
	}
}

func (pr *progress) end(o syncOutcome) SyncState {
	pr.update(time.Now())
	pr.st.Syncing, pr.st.Result = false, o.String()
	return pr.st
}

// paceFetch waits until a blocks request to p keeps within p's limits
// (section 14), which we take to be ours: a request token, and room in its
// byte bucket for at least one block of the largest size.
func (h *Host) paceFetch(ctx context.Context, p peer.ID) error {
	bytes, reqs, ok := h.peers.fetchLimiters(p)
	if !ok {
		return errors.New("no state for the peer: disconnected")
	}
	if err := reqs.Wait(ctx); err != nil {
		return err
	}
	need := float64(h.ledger.Params().MaxBlockSize())
	if t := bytes.Tokens(); t < need {
		wait := time.Duration((need - t) / float64(bytes.Limit()) * float64(time.Second))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	return nil
}

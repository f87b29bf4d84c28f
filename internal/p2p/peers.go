package p2p

import (
	"container/list"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// What one peer may ask of us (the server side of the stream protocols and
// the gossip validator). A stream over a limit is reset before its request
// is read. docs/PROTOCOL.md section 14 states them as rules clients must
// respect; the reference client paces itself to them (sync.go).
const (
	// ServeBytesPerSecond and ServeBytesBurst bound the encoded blocks sent
	// to one peer: a token bucket. A blocks response is cut to the tokens
	// there are, and a request that would get not even its first block is
	// reset.
	ServeBytesPerSecond = 4 << 20
	ServeBytesBurst     = 8 << 20
	// ServeBytesTotalPerSecond and ServeBytesTotalBurst bound the encoded
	// blocks sent to all peers together: a second token bucket that every
	// response also takes its bytes from. Each peer keeping within its own
	// budget, many identities would otherwise add up to the node's whole
	// CPU and, since a response's blocks are read before they are sent,
	// to 8 MiB of memory per peer. Four peers syncing at full rate fit;
	// beyond, a response is cut to what the bucket holds, or waits for it
	// up to ServeBusyWait before anything is read (so the clients sync
	// more slowly), and past that is reset; the peer is not at fault, and
	// its own bucket keeps its bytes.
	ServeBytesTotalPerSecond = 16 << 20
	ServeBytesTotalBurst     = 32 << 20
	// ServeBytesHeld bounds the encoded blocks that the responses under
	// way hold in memory, all peers together: a response's blocks are read
	// before they are sent, and a peer that stops reading keeps them until
	// its stream's write times out (stallTimeout per block). The buckets
	// bound how fast responses start, not how long each lasts, so without
	// it slow readers could hold the bucket's whole output of a minute (a
	// GiB at the default rate). A response that finds it full is reset
	// without blame; what it had reserved goes back to the buckets.
	ServeBytesHeld = 64 << 20
	// ServeBusyWait is the longest a blocks request waits for the bucket
	// of all peers: well under the client's stallTimeout, so that an
	// honest client sees a slow answer, not a stall.
	ServeBusyWait = 5 * time.Second
	// busyPoll is how often the request first in the queue for that
	// bucket looks at it again while it waits.
	busyPoll = 50 * time.Millisecond
	// StatusRequestsPerSecond and StatusRequestsBurst bound the status
	// exchanges one peer opens with us.
	StatusRequestsPerSecond = 10
	StatusRequestsBurst     = 20
	// BlocksRequestsPerSecond and BlocksRequestsBurst bound the blocks
	// requests of one peer. An honest sync of small blocks makes a few dozen
	// a second, limited by its own validation, not by this.
	BlocksRequestsPerSecond = 50
	BlocksRequestsBurst     = 100
	// MaxStreamsPerPeer is how many streams of one protocol one peer may
	// have open with us at once.
	MaxStreamsPerPeer = 2
	// GossipBlocksPerSecond and GossipBlocksBurst bound the gossiped blocks
	// of one peer that we validate: over the budget a block is ignored (not
	// forwarded, no penalty); it reaches us again through a sync. An honest
	// peer relays the blocks of every miner of the network, so the budget is
	// well above what a network mines (about 20 blocks a second per core at
	// the default difficulty); each block that gets as far as its
	// signatures has cost its maker a proof of work and a signature per
	// reading, so the budget bounds a peer's count, not its price.
	GossipBlocksPerSecond = 100
	GossipBlocksBurst     = 200
	// GossipMessagesPerSecond and GossipMessagesBurst bound the consensus
	// messages and readings (authority networks) we validate from one
	// relayer: each costs at most a signature or two to check.
	GossipMessagesPerSecond = 2000
	GossipMessagesBurst     = 4000
	// maxPeerStates caps the per-peer table. Entries exist only for
	// connected peers; a peer beyond the cap is not served and not synced
	// from until others leave.
	maxPeerStates = 1024
	// maxDepartedPenalties caps the table that keeps the sync penalties
	// (strikes, failures, back-off) of peers that disconnected, so that
	// coming back does not wipe them; one more evicts the oldest. Peer IDs
	// cost nothing to make, so the table only has to outlast a peer that
	// reconnects under the same ID.
	maxDepartedPenalties = 4096
)

// The sync manager's patience (local policy).
const (
	// MaxStrikes is how many useless syncs (section 13: the peer's claimed
	// tip proved false) get a peer refused.
	MaxStrikes = 3
	// strikeMemory is how long strikes are remembered after the last one.
	strikeMemory = time.Hour
	// uselessBackoff is how long no sync is made from a peer after its
	// first strike; it doubles with each further strike.
	uselessBackoff = 30 * time.Second
	// failBackoff is the pause after a sync that failed (a stream error, a
	// timeout) without adding a block; it doubles with each such failure in
	// a row, up to maxFailBackoff. retryBackoff is the pause after a failed
	// sync that did add blocks.
	failBackoff    = 2 * time.Second
	maxFailBackoff = 5 * time.Minute
	retryBackoff   = time.Second
	// stallTimeout is how long a peer we sync from may leave a blocks
	// request without a word: the stream opened and its first block (or
	// the end of an empty response) read, and then each next block. A
	// server has the blocks at hand, so an honest one answers in far less;
	// blocksTimeout still bounds the whole response. A peer that stalls
	// is backed off for stallBackoff, doubling with each failure in a row,
	// up to maxFailBackoff: a peer that claims the best chain and never
	// answers holds the one sync slot for stallTimeout, not blocksTimeout,
	// and then lets the others be tried.
	stallTimeout = 10 * time.Second
	stallBackoff = 30 * time.Second
	// forkBackoff is how long no sync is made from a peer whose chain
	// forks below our final blocks (chain.ErrForkTooDeep).
	forkBackoff = time.Hour
)

// limits are the numbers above, gathered so that tests can shrink them.
type limits struct {
	sendRate                  rate.Limit
	sendBurst                 int
	totalRate                 rate.Limit // bytes served to all peers
	totalBurst                int
	held                      int           // bytes of blocks the responses under way may hold, all peers together
	busyWait                  time.Duration // the longest a blocks request waits for the bucket of all peers
	statusRate, blocksRate    rate.Limit
	statusBurst, blocksBurst  int
	streams                   int
	gossipRate                rate.Limit
	gossipBurst               int
	peers                     int
	maxStrikes                int
	strikeMemory              time.Duration
	uselessBackoff, failDelay time.Duration
	maxFailDelay, retryDelay  time.Duration
	forkBackoff               time.Duration
	statusFresh               time.Duration // a status younger is not asked for again, unless forced
	stallTimeout, stallDelay  time.Duration
	blocksTimeout             time.Duration // a blocks request we send, whole
	departed                  int           // sync penalties of departed peers kept
}

func defaultLimits() limits {
	return limits{
		sendRate: ServeBytesPerSecond, sendBurst: ServeBytesBurst,
		totalRate: ServeBytesTotalPerSecond, totalBurst: ServeBytesTotalBurst, busyWait: ServeBusyWait,
		held:       ServeBytesHeld,
		statusRate: StatusRequestsPerSecond, statusBurst: StatusRequestsBurst,
		blocksRate: BlocksRequestsPerSecond, blocksBurst: BlocksRequestsBurst,
		streams:    MaxStreamsPerPeer,
		gossipRate: GossipBlocksPerSecond, gossipBurst: GossipBlocksBurst,
		peers:      maxPeerStates,
		maxStrikes: MaxStrikes, strikeMemory: strikeMemory,
		uselessBackoff: uselessBackoff, failDelay: failBackoff, maxFailDelay: maxFailBackoff,
		retryDelay: retryBackoff, forkBackoff: forkBackoff,
		statusFresh:  statusFresh,
		stallTimeout: stallTimeout, stallDelay: stallBackoff, blocksTimeout: blocksTimeout,
		departed: maxDepartedPenalties,
	}
}

// The stream protocols, as indexes into per-protocol state.
const (
	protoStatus = iota
	protoBlocks
	numProtocols
)

// peerState is all the host keeps about one connected peer. It is dropped
// when the peer disconnects, all but its syncPenalty (peerBook.departed).
type peerState struct {
	// What the peer claims of its chain: its last status (from a handshake
	// in either direction or a poll), raised by valid blocks it relays.
	// Never trusted until blocks prove it.
	status   chain.Status
	statusAt time.Time // zero: no status yet
	polling  bool      // a status exchange we opened is in flight
	repoll   bool      // a forced exchange was asked for while one was in flight
	// The block that last forced an exchange (forcePoll), when, and
	// whether one waits for forceGap to pass.
	forcedHeight uint64
	forcedTip    chain.Hash
	forcedAt     time.Time
	forceQueued  bool

	syncPenalty

	// Server side: what it costs us.
	send           byteBucket                  // bytes of blocks sent to it
	reqs           [numProtocols]*rate.Limiter // streams it opens
	open           [numProtocols]int           // streams of ours open now
	servedBytes    uint64
	servedRequests uint64
	resets         uint64 // streams reset for a limit

	// Client side: our blocks requests to it keep within its limits.
	fetchBytes, fetchReqs *rate.Limiter

	// Gossip: its blocks we validate.
	gossip          *rate.Limiter
	gossipThrottled uint64
	msgs            *rate.Limiter // consensus messages and readings
}

// syncPenalty is what the syncs from a peer taught us against it (see
// syncEnded). Unlike the rest of its state it outlives its connection.
type syncPenalty struct {
	strikes    int       // useless syncs, forgotten strikeMemory after the last
	uselessAt  time.Time // when the last useless sync ended
	fails      int       // failed or stalled syncs in a row (failed: that added nothing)
	backoff    time.Time // no sync from the peer before this
	forkWarned bool      // its too-deep fork was logged at warn
}

// peerBook holds the peerState of every connected peer, at most lim.peers
// of them, and the syncPenalty of at most lim.departed peers that left, so
// that a peer that stalls or lies cannot shed its penalty by reconnecting.
type peerBook struct {
	lim limits

	mu            sync.Mutex
	send          byteBucket // bytes of blocks sent to all peers together
	sendBusy      uint64     // blocks requests that waited for it, or were reset
	sendQueue     *list.List // of *sendTurn: the requests waiting for it, first come first served
	held          int        // bytes of blocks held by the responses under way (lim.held at most)
	peers         map[peer.ID]*peerState
	departed      map[peer.ID]*list.Element // of *departedPeer
	departedOrder *list.List                // oldest departure first
}

type departedPeer struct {
	id peer.ID
	syncPenalty
}

func newPeerBook(lim limits) *peerBook {
	return &peerBook{lim: lim, send: newByteBucket(float64(lim.totalRate), lim.totalBurst, time.Now()),
		peers: map[peer.ID]*peerState{}, departed: map[peer.ID]*list.Element{}, departedOrder: list.New(), sendQueue: list.New()}
}

// add makes the state of a newly connected peer, unless the table is full.
func (b *peerBook) add(p peer.ID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.getLocked(p, true)
}

// getLocked returns p's state; create says to make it if there is none and
// the table has room. Only a peer that just talked to us is created (it is
// connected, or was a moment ago: sweep drops the leftovers). b.mu must be
// held.
func (b *peerBook) getLocked(p peer.ID, create bool) *peerState {
	if s, ok := b.peers[p]; ok || !create {
		return s
	}
	if len(b.peers) >= b.lim.peers {
		return nil
	}
	l := b.lim
	s := &peerState{
		send:       newByteBucket(float64(l.sendRate), l.sendBurst, time.Now()),
		reqs:       [numProtocols]*rate.Limiter{rate.NewLimiter(l.statusRate, l.statusBurst), rate.NewLimiter(l.blocksRate, l.blocksBurst)},
		fetchBytes: rate.NewLimiter(l.sendRate, l.sendBurst),
		fetchReqs:  rate.NewLimiter(l.blocksRate, l.blocksBurst),
		gossip:     rate.NewLimiter(l.gossipRate, l.gossipBurst),
		msgs:       rate.NewLimiter(GossipMessagesPerSecond, GossipMessagesBurst),
	}
	if e, ok := b.departed[p]; ok {
		s.syncPenalty = e.Value.(*departedPeer).syncPenalty
		b.departedOrder.Remove(e)
		delete(b.departed, p)
	}
	b.peers[p] = s
	return s
}

// forget drops p's state, keeping its sync penalty if it has one.
func (b *peerBook) forget(p peer.ID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dropLocked(p)
}

// sweep drops the state of peers no longer connected (a handler that ran
// after the disconnection may have made one).
func (b *peerBook) sweep(connected func(peer.ID) bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for p := range b.peers {
		if !connected(p) {
			b.dropLocked(p)
		}
	}
}

// departedLocked returns the sync penalty kept for p, which has left (one
// made now if none was kept, the oldest dropped beyond lim.departed), or
// nil if none are kept: a sync that ends after its peer disconnected still
// counts against it, or a peer could shed each strike by leaving before it
// is booked. b.mu must be held.
func (b *peerBook) departedLocked(p peer.ID) *syncPenalty {
	if b.lim.departed <= 0 {
		return nil
	}
	e, ok := b.departed[p]
	if ok {
		b.departedOrder.MoveToBack(e)
	} else {
		e = b.departedOrder.PushBack(&departedPeer{id: p})
		b.departed[p] = e
		for b.departedOrder.Len() > b.lim.departed {
			oldest := b.departedOrder.Front()
			b.departedOrder.Remove(oldest)
			delete(b.departed, oldest.Value.(*departedPeer).id)
		}
	}
	return &e.Value.(*departedPeer).syncPenalty
}

// dropLocked drops p's state and keeps its sync penalty, if any, among the
// departed, evicting the oldest beyond lim.departed. b.mu must be held.
func (b *peerBook) dropLocked(p peer.ID) {
	s, ok := b.peers[p]
	if !ok {
		return
	}
	delete(b.peers, p)
	if s.syncPenalty == (syncPenalty{}) || b.lim.departed <= 0 {
		return
	}
	if e, ok := b.departed[p]; ok { // made by a handler after an earlier drop
		b.departedOrder.Remove(e)
	}
	b.departed[p] = b.departedOrder.PushBack(&departedPeer{id: p, syncPenalty: s.syncPenalty})
	for b.departedOrder.Len() > b.lim.departed {
		oldest := b.departedOrder.Front()
		b.departedOrder.Remove(oldest)
		delete(b.departed, oldest.Value.(*departedPeer).id)
	}
}

func (b *peerBook) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.peers)
}

// setStatus records p's claimed status.
func (b *peerBook) setStatus(p peer.ID, st chain.Status, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s := b.getLocked(p, true); s != nil {
		s.status, s.statusAt = st, now
	}
}

// sawBlock notes that p relayed a valid block: p has it, so its height is at
// least the block's.
func (b *peerBook) sawBlock(p peer.ID, height uint64, hash chain.Hash) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s := b.getLocked(p, false); s != nil && !s.statusAt.IsZero() && height > s.status.Height {
		s.status.Height, s.status.Tip = height, hash
	}
}

// forcePoll says whether a block p relayed, whose parent we lack, should
// make us ask p for its status even if the status we hold is fresh: when
// that status, if we have one, is behind the block (lower than its height,
// or at its height with another tip: p reorganised since) and the block is
// not the one that forced the last exchange. At most one exchange is forced
// per forceGap: now reports that one is due at once; a positive later that
// one is due then (the caller asks then, and calls forceFired), and no
// other is queued meanwhile. So a peer that reorganised is asked at once,
// and a peer relaying blocks that its status answers never catch up with
// costs us one exchange per forceGap, well within its own status budget.
func (b *peerBook) forcePoll(p peer.ID, height uint64, hash chain.Hash, at time.Time) (now bool, later time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.getLocked(p, false)
	if s == nil || s.statusAt.IsZero() {
		return false, 0 // no status: the request is not held back by freshness
	}
	behind := height > s.status.Height || (height == s.status.Height && hash != s.status.Tip)
	if !behind || (height == s.forcedHeight && hash == s.forcedTip) || s.forceQueued {
		return false, 0
	}
	s.forcedHeight, s.forcedTip = height, hash
	if wait := forceGap - at.Sub(s.forcedAt); wait > 0 {
		s.forceQueued = true
		return false, wait
	}
	s.forcedAt = at
	return true, 0
}

// forceFired books the forced exchange forcePoll put off, asked for now.
func (b *peerBook) forceFired(p peer.ID, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s := b.getLocked(p, false); s != nil {
		s.forceQueued, s.forcedAt = false, at
	}
}

func (b *peerBook) status(p peer.ID) (chain.Status, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.getLocked(p, false)
	if s == nil || s.statusAt.IsZero() {
		return chain.Status{}, false
	}
	return s.status, true
}

// startPoll reports whether a status exchange with p should start now, and
// if so marks one in flight: not if one is, nor (unless force) if p's status
// is younger than the statusFresh limit. With repoll (a request forced by
// what p relayed, whose answer must postdate it) one asked for while an
// exchange is in flight is kept for after it.
func (b *peerBook) startPoll(p peer.ID, now time.Time, force, repoll bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.getLocked(p, false)
	if s != nil && s.polling && repoll {
		s.repoll = true // endPoll asks again once this exchange is over
	}
	if s == nil || s.polling || (!force && !s.statusAt.IsZero() && now.Sub(s.statusAt) < b.lim.statusFresh) {
		return false
	}
	s.polling = true
	return true
}

// endPoll ends the exchange startPoll marked, and reports whether a forced
// one was asked for meanwhile (its answer may predate what forced it).
func (b *peerBook) endPoll(p peer.ID) (repoll bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s := b.getLocked(p, false); s != nil {
		s.polling = false
		repoll, s.repoll = s.repoll, false
	}
	return repoll
}

// openStream admits a stream of protocol proto that p opened, or reports
// why not: p has no state (the table is full), too many streams open, or
// too many requests lately. done must be called when the stream ends.
func (b *peerBook) openStream(p peer.ID, proto int, now time.Time) (done func(), refused string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.getLocked(p, true)
	switch {
	case s == nil:
		return nil, "no room for the peer"
	case s.open[proto] >= b.lim.streams:
		s.resets++
		return nil, "too many streams at once"
	case !s.reqs[proto].AllowN(now, 1):
		s.resets++
		return nil, "too many requests"
	}
	s.open[proto]++
	s.servedRequests++
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		s.open[proto]--
	}, ""
}

// reserveSend takes from p's send bucket, and from the one of all peers,
// the bytes of blocks that a response may hold, before any block is looked
// up: all both buckets hold, at most `most`. Taking them at once means two
// streams cannot both spend the same bytes; settleSend must follow. If p's
// bucket holds less than least it takes nothing (false, a reset counted
// against p); if the bucket of all peers does, it takes nothing either and
// says how long until that bucket holds least (wait > 0): the node serves
// others at its limit, which is not p's doing, so p's bucket keeps its
// bytes.
//
// The requests that wait for the bucket of all peers take it in turn, in
// the order they first found it short (t, one per request; nil: one that
// does not wait): only the first of them waits for the bucket (wait > 0);
// the others wait for their turn (turn: t.ready is closed when it comes),
// and a request that comes meanwhile queues behind them even if the
// bucket holds enough. Otherwise the waiters, woken together, raced for
// each refill, and one could lose every race until its wait ran out.
// While others wait behind it, a request gets at most least bytes (about
// one block), so that a turn is short: behind a queue of a hundred others
// a request waits about a second at the default limits, not the minute
// that a hundred whole budgets (8 MiB each) would take. A request leaves
// the queue when it gets its bytes or is refused here; one that gives up
// calls leaveSendQueue.
func (b *peerBook) reserveSend(p peer.ID, now time.Time, least, most int, t *sendTurn) (n int, wait time.Duration, turn, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.getLocked(p, false)
	if s == nil {
		b.leaveLocked(t)
		return 0, 0, false, false
	}
	n, ok = s.send.take(now, least, most)
	if !ok {
		s.resets++
		b.leaveLocked(t)
		return 0, 0, false, false
	}
	if t != nil && t.elem == nil && b.sendQueue.Len() > 0 {
		// Others wait already: behind them.
		s.send.give(n)
		t.elem, t.ready = b.sendQueue.PushBack(t), make(chan struct{})
		return 0, 0, true, false
	}
	if t != nil && t.elem != nil && b.sendQueue.Front() != t.elem {
		s.send.give(n)
		return 0, 0, true, false
	}
	if others := b.sendQueue.Len(); others > 1 || others == 1 && (t == nil || t.elem == nil) {
		// Others wait behind it: one block's worth, so that each turn
		// is short and a request behind a queue of others (many
		// identities, each asking for its whole budget) still gets its
		// turn within the busy wait.
		s.send.give(n - min(n, least))
		n = min(n, least)
	}
	m, ok := b.send.take(now, least, n)
	if !ok {
		s.send.give(n)
		if t != nil && t.elem == nil {
			t.elem, t.ready = b.sendQueue.PushBack(t), make(chan struct{})
			close(t.ready) // first in the queue: its turn
		}
		return 0, b.send.until(least), false, false
	}
	s.send.give(n - m)
	b.leaveLocked(t)
	return m, 0, false, true
}

// hold takes n bytes of the room that the responses under way have for
// their blocks (lim.held), or reports false if there is not that much.
func (b *peerBook) hold(n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.held+n > b.lim.held {
		return false
	}
	b.held += n
	return true
}

// unhold gives back n bytes taken by hold.
func (b *peerBook) unhold(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.held -= n
}

// heldBytes returns the bytes of blocks the responses under way hold.
func (b *peerBook) heldBytes() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.held
}

// sendTurn is a blocks request's place in the queue for the bucket of all
// peers (peerBook.reserveSend).
type sendTurn struct {
	elem  *list.Element // nil: not queued
	ready chan struct{} // closed once it is first in the queue
}

// leaveSendQueue takes t out of the queue for the bucket of all peers
// (a request that gave up waiting), handing the turn on if it had it.
func (b *peerBook) leaveSendQueue(t *sendTurn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.leaveLocked(t)
}

// leaveLocked is leaveSendQueue with b.mu held; t may be nil or not queued.
func (b *peerBook) leaveLocked(t *sendTurn) {
	if t == nil || t.elem == nil {
		return
	}
	first := b.sendQueue.Front() == t.elem
	b.sendQueue.Remove(t.elem)
	t.elem = nil
	if next := b.sendQueue.Front(); first && next != nil {
		close(next.Value.(*sendTurn).ready)
	}
}

// countBusy counts a blocks request that waited for the bucket of all
// peers, or was reset for it.
func (b *peerBook) countBusy() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sendBusy++
}

// serveBusy returns how many blocks requests waited, or were reset,
// because all peers together had used the node's serving budget.
func (b *peerBook) serveBusy() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sendBusy
}

// settleSend ends a reservation of reserveSend: sent bytes were sent, and
// the rest of reserved goes back to p's bucket unless keep (the peer pays
// for what was read for it but not sent).
func (b *peerBook) settleSend(p peer.ID, reserved, sent int, keep bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !keep && reserved > sent {
		b.send.give(reserved - sent)
	}
	s := b.getLocked(p, false)
	if s == nil {
		return
	}
	if !keep && reserved > sent {
		s.send.give(reserved - sent)
	}
	s.servedBytes += uint64(sent)
}

// byteBucket is a token bucket of bytes. Unlike rate.Limiter it lets a
// server take every token there is before it knows how many it will use,
// and give back the rest. The peerBook's lock guards it.
type byteBucket struct {
	rate, burst, tokens float64
	at                  time.Time // when tokens was last brought up to date
}

func newByteBucket(rate float64, burst int, now time.Time) byteBucket {
	return byteBucket{rate: rate, burst: float64(burst), tokens: float64(burst), at: now}
}

func (k *byteBucket) fill(now time.Time) {
	if now.After(k.at) {
		k.tokens = min(k.burst, k.tokens+now.Sub(k.at).Seconds()*k.rate)
		k.at = now
	}
}

// take takes all the tokens, at most most, if there are at least least.
func (k *byteBucket) take(now time.Time, least, most int) (int, bool) {
	k.fill(now)
	if k.tokens < float64(least) {
		return 0, false
	}
	n := int(min(k.tokens, float64(most)))
	k.tokens -= float64(n)
	return n, true
}

// until returns how long until the bucket holds n tokens (brought up to
// date by the take before it), at least a millisecond.
func (k *byteBucket) until(n int) time.Duration {
	if k.rate <= 0 {
		return time.Hour
	}
	return max(time.Millisecond, time.Duration((float64(n)-k.tokens)/k.rate*float64(time.Second)))
}

// give puts n tokens back, up to the burst.
func (k *byteBucket) give(n int) { k.tokens = min(k.burst, k.tokens+float64(n)) }

// gossipAllowed takes one block from p's gossip budget, or counts p's block
// as throttled and reports false.
func (b *peerBook) gossipAllowed(p peer.ID, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.getLocked(p, true)
	if s == nil {
		return false
	}
	if !s.gossip.AllowN(now, 1) {
		s.gossipThrottled++
		return false
	}
	return true
}

// messageAllowed takes one message from p's budget for consensus messages
// and readings, or counts it as throttled and reports false.
func (b *peerBook) messageAllowed(p peer.ID, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.getLocked(p, true)
	if s == nil {
		return false
	}
	if !s.msgs.AllowN(now, 1) {
		s.gossipThrottled++
		return false
	}
	return true
}

// fetchLimiters returns the limiters that pace our blocks requests to p.
func (b *peerBook) fetchLimiters(p peer.ID) (bytes, reqs *rate.Limiter, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.getLocked(p, false)
	if s == nil {
		return nil, nil, false
	}
	return s.fetchBytes, s.fetchReqs, true
}

// peerStats is what PeerInfo shows of a peerState.
type peerStats struct {
	servedBytes, servedRequests, resets, gossipThrottled uint64
	strikes                                              int
	backoff                                              time.Time
}

func (b *peerBook) stats(p peer.ID) peerStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.getLocked(p, false)
	if s == nil {
		return peerStats{}
	}
	return peerStats{servedBytes: s.servedBytes, servedRequests: s.servedRequests, resets: s.resets,
		gossipThrottled: s.gossipThrottled, strikes: s.strikes, backoff: s.backoff}
}

// Sync bookkeeping: which peer to catch up from, and what a finished sync
// says about the peer. No networking here; sync.go does that.

// best returns the peer to sync from: of the peers not in a back-off, the
// one whose claimed tip is best, if better than ours. When there is none,
// retry is the earliest end of a back-off of a peer that claims a better tip
// (zero if none does).
func (b *peerBook) best(ours chain.Status, has func(chain.Hash) bool, now time.Time) (p peer.ID, theirs chain.Status, ok bool, retry time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for id, s := range b.peers {
		if s.statusAt.IsZero() || !worthSyncing(s.status, ours, has) {
			continue
		}
		if now.Before(s.backoff) {
			if retry.IsZero() || s.backoff.Before(retry) {
				retry = s.backoff
			}
			continue
		}
		if !ok || s.status.Better(theirs) || (!theirs.Better(s.status) && id < p) {
			p, theirs, ok = id, s.status, true
		}
	}
	if ok {
		retry = time.Time{}
	}
	return p, theirs, ok, retry
}

// syncOutcome is how a sync ended.
type syncOutcome int

const (
	syncDone    syncOutcome = iota // caught up with what the peer claimed
	syncFailed                     // a stream or local error: no blame
	syncStalled                    // the peer left a blocks request unanswered (stallTimeout)
	syncUseless                    // the peer's claim proved false: a strike
	syncForked                     // its chain forks below our final blocks
	syncRefused                    // it broke the rules and is refused already
)

func (o syncOutcome) String() string {
	return [...]string{"done", "failed", "stalled", "useless", "fork too deep", "refused"}[o]
}

// verdict is what the manager must do after syncEnded.
type verdict struct {
	refuse   bool // strikes reached the limit: refuse the peer
	warnFork bool // first too-deep fork of this peer: log it at warn
}

// syncEnded records the outcome of a sync from p (progressed: it added at
// least one block) and sets p's back-off.
func (b *peerBook) syncEnded(p peer.ID, o syncOutcome, progressed bool, now time.Time) verdict {
	b.mu.Lock()
	defer b.mu.Unlock()
	var s *syncPenalty
	if st := b.getLocked(p, false); st != nil {
		s = &st.syncPenalty
	} else if s = b.departedLocked(p); s == nil {
		return verdict{}
	}
	l := b.lim
	var v verdict
	switch o {
	case syncDone:
		s.fails, s.backoff = 0, time.Time{}
	case syncFailed:
		if progressed {
			s.fails, s.backoff = 0, now.Add(l.retryDelay)
			break
		}
		s.fails++
		s.backoff = now.Add(min(l.failDelay<<min(s.fails-1, 20), l.maxFailDelay))
	case syncStalled:
		// Nothing came (a slow peer that delivers blocks ends as failed,
		// with progress): back off, so that the others get the slot.
		s.fails++
		s.backoff = now.Add(min(l.stallDelay<<min(s.fails-1, 20), l.maxFailDelay))
	case syncUseless:
		if now.Sub(s.uselessAt) > l.strikeMemory {
			s.strikes = 0
		}
		s.strikes++
		s.uselessAt = now
		s.backoff = now.Add(l.uselessBackoff << min(s.strikes-1, 20))
		v.refuse = s.strikes >= l.maxStrikes
	case syncForked:
		s.backoff = now.Add(l.forkBackoff)
		v.warnFork = !s.forkWarned
		s.forkWarned = true
	}
	return v
}

// fetched takes n bytes that p sent us from the bucket that paces our blocks
// requests to it (it may go below zero: the next request waits).
func (b *peerBook) fetched(p peer.ID, n int) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if s := b.getLocked(p, false); s != nil {
		s.fetchBytes.ReserveN(time.Now(), min(n, s.fetchBytes.Burst()))
	}
}

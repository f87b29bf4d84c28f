package node

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/store"
)

// Read-only queries for the HTTP API and other tools. Each one answers from
// one consistent view of the chain: it takes the node's mutex once (or, for
// the long scan of SubjectReadings, once per bounded chunk).

// BlockInfo is a block and where it stands in the node's chain at the time
// of the lookup.
type BlockInfo struct {
	Block *chain.Block // shared: do not modify
	Main  bool         // on the main chain (false: a side branch)
	Tip   uint64       // main-chain height when looked up
}

// Confirmations is the number of main-chain blocks from the block up to
// and including the tip: 1 for the tip itself, 0 off the main chain.
func (b BlockInfo) Confirmations() uint64 {
	if !b.Main || b.Block.Header.Height > b.Tip {
		return 0
	}
	return b.Tip - b.Block.Header.Height + 1
}

// BlockByHash returns a known block of any branch by its hash: false, nil
// for a block the node does not hold; an error for one it cannot read back
// (the store failed, and the node with it: store_fault.go).
func (n *Node) BlockByHash(h chain.Hash) (BlockInfo, bool, error) {
	n.mu.Lock()
	ref, ok := n.chain.RefOf(h)
	tip := n.chain.Height()
	n.mu.Unlock()
	return n.blockInfo(ref, ok, tip)
}

// BlockByHeight returns the main-chain block at height: false, nil for a
// height the main chain does not reach; an error for a block the node
// cannot read back (the store failed, and the node with it).
func (n *Node) BlockByHeight(height uint64) (BlockInfo, bool, error) {
	n.mu.Lock()
	ref, ok := n.chain.MainRef(height)
	tip := n.chain.Height()
	n.mu.Unlock()
	return n.blockInfo(ref, ok, tip)
}

// blockInfo reads ref's body, after n.mu is released (chain.Ref). A ref
// not found is a read failure if the store failed (its lookup answered
// "absent" because it could not read).
func (n *Node) blockInfo(ref chain.Ref, ok bool, tip uint64) (BlockInfo, bool, error) {
	if !ok {
		return BlockInfo{}, false, n.readFailed(nil)
	}
	b, err := ref.Load(n.arch)
	if err != nil {
		if rerr := n.readFailed(err); rerr != nil {
			return BlockInfo{}, false, fmt.Errorf("block %s at height %d: %w", ref.Hash.Short(), ref.Height, rerr)
		}
		return BlockInfo{}, false, nil
	}
	return BlockInfo{Block: b, Main: ref.Main, Tip: tip}, true, nil
}

// TipBlock returns the main-chain tip.
func (n *Node) TipBlock() *chain.Block {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.chain.Tip()
}

// KnownBlocks returns how many blocks the node knows, genesis and side
// branches included. Blocks are never forgotten while the node runs, so it
// only grows.
func (n *Node) KnownBlocks() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.chain.Len()
}

// ReadingInfo is a reading and where it is: pending, or in a main-chain
// block.
type ReadingInfo struct {
	Reading chain.Reading
	Pending bool
	Height  uint64     // of the block holding it, when not pending
	Block   chain.Hash // the block holding it, when not pending
	Tip     uint64     // main-chain height when looked up
	Final   bool       // its block was final when looked up
}

// Confirmations is the number of main-chain blocks from the reading's block
// up to and including the tip; 0 while pending.
func (r ReadingInfo) Confirmations() uint64 {
	if r.Pending || r.Height > r.Tip {
		return 0
	}
	return r.Tip - r.Height + 1
}

// LocateReading looks a reading up in the main chain, then in the pending
// set: false, nil for a reading the node does not hold; an error for one it
// cannot read back (the store failed, and the node with it:
// store_fault.go). Under the node's lock it costs one map lookup (the chain
// indexes reading ids), or one index read for a final block's reading; the
// block is read and searched after. Final says whether its block was final
// when looked up.
func (n *Node) LocateReading(id chain.Hash) (ReadingInfo, bool, error) {
	n.mu.Lock()
	final := n.finalHeightLocked() // a block final now stays final whatever happens after
	tip := n.chain.Height()
	ref, ok := n.chain.ReadingRef(id)
	if !ok {
		r, pending := n.pool.Get(id)
		n.mu.Unlock()
		if !pending {
			return ReadingInfo{}, false, n.readFailed(nil)
		}
		return ReadingInfo{Reading: r, Pending: true, Tip: tip}, true, nil
	}
	n.mu.Unlock()
	b, err := ref.Load(n.arch)
	if err != nil {
		if rerr := n.readFailed(err); rerr != nil {
			return ReadingInfo{}, false, fmt.Errorf("reading %s in block %s: %w", id.Short(), ref.Hash.Short(), rerr)
		}
		return ReadingInfo{}, false, nil
	}
	i, ok := chain.ReadingIndex(b, id)
	if !ok {
		return ReadingInfo{}, false, nil
	}
	return ReadingInfo{Reading: b.Readings[i], Height: ref.Height, Block: ref.Hash, Tip: tip, Final: ref.Height <= final}, true, nil
}

// PendingOf returns up to limit pending readings of subject, the latest
// arrivals first. It costs the readings it returns (the pending set keeps
// each subject's in arrival order), not the subject's or the whole set's.
func (n *Node) PendingOf(subject string, limit int) []chain.Reading {
	if limit <= 0 {
		return nil
	}
	// The limit newest arrivals, newest first: the pending set walks the
	// subject's arrivals from the newest, so this costs limit readings,
	// not one a reading (a subject may have all 100,000 of the pending
	// set, and this runs under n.mu).
	var out []chain.Reading
	n.mu.Lock()
	n.pool.NewestOf(subject, func(r *chain.Reading, _ uint64) bool {
		out = append(out, *r)
		return len(out) < limit
	})
	n.mu.Unlock()
	return out
}

// ReadingPos is a position in the main chain's readings, ordered newest
// first: by block height, then by index in the block, both descending.
type ReadingPos struct {
	Height uint64 // block height
	Index  int    // index of a reading in that block
}

// StartAt is the position just before every reading of the block at height:
// a scan from it begins with that block's last reading.
func StartAt(height uint64) ReadingPos {
	return ReadingPos{Height: height, Index: chain.MaxReadingsLimit}
}

// SubjectPage is one page of a subject's main-chain readings.
type SubjectPage struct {
	Readings []ReadingInfo // newest first
	// Next is where the next page starts (pass it back as from); More is
	// false when the scan reached the genesis block.
	Next ReadingPos
	More bool
	Tip  uint64 // main-chain height when the scan started
}

// Scan bounds of SubjectReadings.
const (
	// MaxScanReadings is the most readings one SubjectReadings call
	// examines: it bounds the cost of a page for a subject with few readings
	// in a long chain.
	MaxScanReadings = 1 << 16
	// scanChunk is how many readings are examined per hold of the mutex, so
	// a long scan never stalls the miner or the network for long.
	scanChunk = 4096
)

// SubjectReadings returns up to limit main-chain readings of subject,
// newest first (by block height, then index in the block), starting
// strictly before position from (use StartAt(h) to start with block h's
// readings; a height above the tip means the tip).
//
// A durable node reads its store's subject index: a reverse seek and one
// block read per block the page touches, O(log n + limit) however long the
// chain and however rare the subject, on one snapshot of the store (Tip is
// the store's height, which may trail the chain by the commit in flight).
// Without a store it scans the main chain downwards, comparing subjects,
// examining at most MaxScanReadings readings per call, so a page may hold
// fewer than limit readings while More is true; the caller continues from
// Next. That scan takes the node's mutex once per chunk of about 4,096
// readings; a reorganisation during it may make a page mix blocks of the
// old and the new main chain.
//
// The error is the store's failure: the index could not be read (the node
// fails with it). A page is never cut short silently: a patient's history
// shown without some of its readings would look complete.
func (n *Node) SubjectReadings(subject string, from ReadingPos, limit int) (SubjectPage, error) {
	return n.SubjectReadingsIn(subject, store.SubjectQuery{From: store.SubjectPos(from), Limit: limit})
}

// SubjectReadingsBetween is SubjectReadings of the readings taken at
// since <= time < until (Unix ms; until 0: no upper bound), examining at
// most maxScan entries of the subject index (0: no bound; a page that
// reaches it ends there with More): a durable node skips the readings
// outside the window in its index, reading no block for them. Without a
// store the scan's page is filtered by time afterwards.
func (n *Node) SubjectReadingsBetween(subject string, from ReadingPos, limit int, since, until int64, maxScan int) (SubjectPage, error) {
	return n.SubjectReadingsIn(subject, store.SubjectQuery{From: store.SubjectPos(from), Limit: limit, Since: since, Until: until, MaxScan: maxScan})
}

// SubjectReadingsIn is SubjectReadingsBetween with the query as the store
// takes it.
func (n *Node) SubjectReadingsIn(subject string, q store.SubjectQuery) (SubjectPage, error) {
	from, limit := ReadingPos(q.From), q.Limit
	if n.store != nil && limit > 0 {
		p, err := n.store.SubjectReadingsIn(subject, q)
		if err != nil {
			// Not a scan of the chain instead: its block reads go to
			// the same failing store, and would end the page early.
			if rerr := n.readFailed(err); rerr != nil {
				return SubjectPage{}, fmt.Errorf("readings of subject %q: %w", subject, rerr)
			}
			return SubjectPage{}, fmt.Errorf("readings of subject %q: %w", subject, err)
		}
		page := SubjectPage{Next: ReadingPos(p.Next), More: p.More, Tip: p.Tip}
		for _, r := range p.Readings {
			page.Readings = append(page.Readings, ReadingInfo{Reading: r.Reading, Height: r.Height, Block: r.Block, Tip: p.Tip})
		}
		return page, nil
	}
	page := n.scanSubject(subject, from, limit)
	if q.Since != 0 || q.Until != 0 {
		kept := page.Readings[:0]
		for _, r := range page.Readings {
			if r.Reading.Time >= q.Since && (q.Until == 0 || r.Reading.Time < q.Until) {
				kept = append(kept, r)
			}
		}
		page.Readings = kept
	}
	return page, nil
}

// TimeQuery asks SubjectReadingsByTime for a page (store.TimeQuery):
// newest or oldest first, after a reading's time and id (a TimePos), within
// a time window, up to a limit.
type (
	TimeQuery = store.TimeQuery
	TimePos   = store.TimePos
)

// SubjectReadingsByTime returns a page of subject's main-chain readings in
// the order of their own times (ties by id), oldest or newest first, from
// the store's subject time index: O(log n + q.Limit) however long the chain
// and however many readings the subject has. Next is unused: a page
// continues after its last reading's time and id (q.After). A node without
// a store has no such index: ErrNoIndex (a scan of the chain would cost
// its whole length).
func (n *Node) SubjectReadingsByTime(subject string, q TimeQuery) (SubjectPage, error) {
	if n.store == nil {
		return SubjectPage{}, ErrNoIndex
	}
	p, err := n.store.ReadingsByTime(subject, q)
	if err != nil {
		if rerr := n.readFailed(err); rerr != nil {
			return SubjectPage{}, fmt.Errorf("readings of subject %q by time: %w", subject, rerr)
		}
		return SubjectPage{}, fmt.Errorf("readings of subject %q by time: %w", subject, err)
	}
	page := SubjectPage{More: p.More, Tip: p.Tip}
	for _, r := range p.Readings {
		page.Readings = append(page.Readings, ReadingInfo{Reading: r.Reading, Height: r.Height, Block: r.Block, Tip: p.Tip})
	}
	return page, nil
}

// scanSubject is SubjectReadings without a subject index: a scan of the
// main chain downwards (a node without a store).
func (n *Node) scanSubject(subject string, from ReadingPos, limit int) SubjectPage {
	var page SubjectPage
	n.mu.Lock()
	page.Tip = n.chain.Height()
	n.mu.Unlock()
	if from.Height > page.Tip {
		from = StartAt(page.Tip)
	}
	if limit <= 0 {
		return SubjectPage{Next: from, More: true, Tip: page.Tip}
	}
	pos, examined := from, 0
	for {
		n.mu.Lock()
		chunk, full := 0, false
		for chunk < scanChunk && !full {
			b, ok := n.chain.BlockAt(pos.Height)
			if !ok {
				// The chain got shorter meanwhile (a reorganisation):
				// go on from the new tip.
				pos = StartAt(n.chain.Height())
				continue
			}
			var hash chain.Hash
			i := min(pos.Index, len(b.Readings))
			for i--; i >= 0; i-- {
				chunk++
				r := &b.Readings[i]
				if r.Subject != subject {
					continue
				}
				if hash.IsZero() {
					hash = b.Hash()
				}
				page.Readings = append(page.Readings, ReadingInfo{Reading: *r, Height: pos.Height, Block: hash, Tip: n.chain.Height()})
				if full = len(page.Readings) == limit; full {
					break
				}
			}
			switch {
			case full:
				pos.Index = i // the next page starts before reading i
			case pos.Height == 0:
				n.mu.Unlock()
				return page // reached genesis: no more
			default:
				pos = StartAt(pos.Height - 1)
				chunk++ // an empty block still costs a lookup
			}
		}
		n.mu.Unlock()
		examined += chunk
		if full || examined >= MaxScanReadings {
			page.Next, page.More = pos, true
			return page
		}
	}
}

// MaxMatches is the most matches a lookup by hash prefix counts: past it, a
// prefix is reported as matching more than MaxMatches.
const MaxMatches = 100

// Matches is what a lookup by hash prefix found.
type Matches struct {
	Hashes []chain.Hash // the first matches in hash order, at most the number asked for
	Count  int          // how many match, at most MaxMatches
	More   bool         // more than MaxMatches match
}

// BlocksWithPrefix finds the known blocks, on the main chain or not, whose
// hash starts with p (a short hash a person typed), and returns up to limit
// of them. With a store it seeks in the store's ordered block index, O(log
// blocks + MaxMatches); a node without a store examines every block it
// knows.
func (n *Node) BlocksWithPrefix(p chain.HashPrefix, limit int) (Matches, error) {
	var found []chain.Hash
	if n.store != nil {
		// The store may hold a few side blocks the chain dropped at
		// restore: keep those the chain knows.
		stored, err := n.store.BlocksWithPrefix(p, MaxMatches+1)
		if err != nil {
			return Matches{}, err
		}
		// In memory under n.mu; the blocks only the store holds (final
		// main-chain blocks below the base) after it is released: up to
		// MaxMatches store reads for a request that needs no token.
		var rest []chain.Hash
		n.mu.Lock()
		base := n.chain.Base()
		for _, h := range stored {
			if n.chain.Holds(h) {
				found = append(found, h)
			} else if base > 0 {
				rest = append(rest, h)
			}
		}
		n.mu.Unlock()
		for _, h := range rest {
			if height, ok := n.store.MainHeight(h); ok && height < base || h == n.chain.Genesis() {
				found = append(found, h)
			}
		}
		if len(found) < len(stored) {
			if err := n.readFailed(nil); err != nil {
				return Matches{}, err // the chain's lookup could not read
			}
		}
	} else {
		n.mu.Lock()
		found = n.chain.BlocksWithPrefix(p, MaxMatches+1)
		n.mu.Unlock()
	}
	return matches(found, limit), nil
}

// ReadingsWithPrefix finds the main-chain and pending readings whose id
// starts with p, and returns up to limit of them; its cost is that of
// BlocksWithPrefix, over readings.
func (n *Node) ReadingsWithPrefix(p chain.HashPrefix, limit int) (Matches, error) {
	var found []chain.Hash
	if n.store != nil {
		stored, err := n.store.ReadingsWithPrefix(p, MaxMatches+1)
		if err != nil {
			return Matches{}, err
		}
		// In memory under n.mu (the chain's recent readings, the pending
		// set); those only the store holds after it is released, as
		// BlocksWithPrefix does.
		var rest []chain.Hash
		n.mu.Lock()
		for _, id := range stored {
			if _, ok := n.chain.RecentReadingHeight(id); ok || n.pool.Has(id) {
				found = append(found, id)
			} else {
				rest = append(rest, id)
			}
		}
		n.mu.Unlock()
		for _, id := range rest {
			if bh, ok := n.store.ReadingBlock(id); ok {
				if _, main := n.store.MainHeight(bh); main {
					found = append(found, id)
				}
			}
		}
		if len(found) < len(stored) {
			if err := n.readFailed(nil); err != nil {
				return Matches{}, err
			}
		}
	} else {
		n.mu.Lock()
		found = append(n.chain.ReadingsWithPrefix(p, MaxMatches+1), n.pool.WithPrefix(p, MaxMatches+1)...)
		n.mu.Unlock()
	}
	return matches(found, limit), nil
}

// matches sorts found and sums it up, keeping up to limit hashes.
func matches(found []chain.Hash, limit int) Matches {
	slices.SortFunc(found, func(a, b chain.Hash) int { return bytes.Compare(a[:], b[:]) })
	found = slices.Compact(found)
	m := Matches{Count: min(len(found), MaxMatches), More: len(found) > MaxMatches}
	m.Hashes = found[:min(len(found), max(limit, 0))]
	return m
}

// Header returns the header of a known block of any branch: from memory,
// or read back from the store without its body, after n.mu is released
// (an API client asks for the headers of as many old blocks as it likes,
// and a store read under n.mu would hold up the node for as long as the
// disk takes). A block below the chain's base is a final main-chain
// block, which never changes.
func (n *Node) Header(h chain.Hash) (chain.Header, bool) {
	n.mu.Lock()
	hdr, ok := n.chain.HeldHeader(h)
	base := n.chain.Base()
	n.mu.Unlock()
	if ok || base == 0 || n.store == nil {
		return hdr, ok
	}
	if h == n.chain.Genesis() {
		return n.params.Genesis().Header, true
	}
	hdr, err := n.store.HeaderByHash(h)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			n.log.Error("cannot read a stored block's header; run `p2pchain verify` on the data directory", "block", h.Short(), "err", err)
		}
		return chain.Header{}, false
	}
	if hdr.Height >= base {
		return chain.Header{}, false // not archived: a block the chain let go of (a side branch pruned)
	}
	if m, ok := n.store.MainHash(hdr.Height); !ok || m != h {
		return chain.Header{}, false
	}
	return hdr, true
}

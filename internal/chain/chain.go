package chain

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"sort"
	"time"
)

// entry is one known, fully validated block in the block tree. With an
// Archive, Compact drops the body of an older main-chain block (block) from
// memory, once the block is final its reading ids too (ids), and once a
// newer block is final the whole entry (see Chain.base); all of it is read
// back from the archive on demand.
type entry struct {
	header   Header
	block    *Block // nil once the body is dropped
	hash     Hash
	ids      []Hash // reading ids, cached; nil once the block is final and compacted
	parent   *entry
	height   uint64
	children int       // known blocks whose parent this is
	since    time.Time // when it joined the main chain (main-chain blocks)
}

// Archive is the owner's durable copy of the chain (its store), from which
// the chain reads back what Compact let go of. BlockByHash checks what it
// read against its hash and readings root and reports damage as an error,
// so that a damaged body is never served. ReadingBlock returns the
// main-chain block holding a reading, MainHash the hash of the main-chain
// block at a height and MainHeight the height of a main-chain block, as of
// the owner's last commit; false when there is none (or it cannot be read).
// MainHashes returns the hashes of up to max main-chain blocks from height
// from on, in one read (fewer where the chain ends or cannot be read).
// HeaderByHash returns a stored block's header alone, checked against its
// hash, without decoding or checking the body (what a chain of headers,
// such as a receipt's, needs). The
// chain asks MainHash, MainHeight and MainHashes only about final blocks,
// which never leave the main chain.
type Archive interface {
	BlockByHash(h Hash) (*Block, error)
	ReadingBlock(id Hash) (Hash, bool)
	MainHash(height uint64) (Hash, bool)
	MainHeight(h Hash) (uint64, bool)
	MainHashes(from uint64, max int) []Hash
	HeaderByHash(h Hash) (Header, error)
}

// KeepBodies is how many of the newest main-chain blocks keep their body in
// memory when the chain has an Archive: enough for a reorganisation to
// disconnect without reading back, and for peers that sync the tip.
const KeepBodies = 32

// Limits on side branches (blocks off the main chain). Only branches that
// fork above the final depth are kept at all; within that window an
// attacker can still mine siblings, each at the price of a block, and these
// caps bound what they hold. When a cap is reached the side leaf with the
// least work makes room, or the new block is refused (ErrTooManyForks) if it
// has less work than every leaf.
const (
	MaxSideBlocks = 1 << 15
	MaxSideBytes  = 16 << 20
)

// TieWindow is how long a new tip can still be displaced by a block of equal
// work with a lower hash. Two blocks mined at the same time on different
// nodes reach each other well within it, and every node then picks the
// lower hash; a sibling made later than that never displaces an
// established tip, whatever its hash.
const TieWindow = 2 * time.Second

// Chain is the tree of every valid block a node knows within the final
// depth, and the main chain: the branch with the most work. It is not safe
// for concurrent use.
type Chain struct {
	params    Params
	work      *big.Int // work of one block: the network's difficulty is fixed
	archive   Archive
	genesis   Hash
	base      uint64          // main blocks below this height have no entry: the archive holds them
	keptFrom  uint64          // main blocks from this height up have their body in memory
	idsFrom   uint64          // main blocks from this height up have their readings in the readings map
	final     uint64          // height of the highest final block
	index     map[Hash]*entry // every block with an entry: main from base up, and side
	main      []*entry        // main[h-base] is the main-chain block at height h
	readings  map[Hash]uint64 // reading id -> height of the main-chain block holding it
	side      map[Hash]*entry // blocks off the main chain
	sideBytes int             // their encoded size
	tipSince  time.Time       // when the tip became the tip; zero if restored
	cp        *Checkpoint     // the block this node requires, if any
	sigs      *SigCache       // signatures verified, shared with the owner
}

// Status summarises a chain for peers: enough to tell whose tip is better.
type Status struct {
	Genesis Hash
	Tip     Hash
	Height  uint64
	Work    *big.Int
}

// Better reports whether s has a tip worth fetching from o's point of view:
// more work, or equal work and a lower hash (which wins only within
// TieWindow; see (*Chain).Process).
func (s Status) Better(o Status) bool {
	if c := s.Work.Cmp(o.Work); c != 0 {
		return c > 0
	}
	return s.Tip.Less(o.Tip)
}

// Update says what Process changed and what the caller must do about it.
type Update struct {
	Hash   Hash   // the block added
	Height uint64 // its height
	// TipChanged is true when the block made the main chain change: it
	// extended the tip or triggered a reorganisation.
	TipChanged bool
	// Disconnected lists the blocks that left the main chain, tip first.
	Disconnected []*Block
	// Connected lists the blocks that joined the main chain, lowest first.
	Connected []*Block
	// Returned lists readings of disconnected blocks that are not in the new
	// main chain: the owner must put them back into its pending set.
	Returned []Reading
	// Adopted lists readings of a side branch that ties the main chain's
	// work without winning, that the main chain lacks: the owner should add
	// them to its pending set (space permitting), so that the next block
	// holds them and the tie ends with every reading on one chain.
	Adopted []Reading
	// Pruned lists blocks dropped from the tree: side branches that fork
	// below the final depth, or that made room under the side-branch caps.
	// The owner deletes them from its store.
	Pruned []Hash
	// Final is the chain's final height once the block is added: the
	// owner records it with the update, so that a restart resumes from it
	// (Resume) without reading the blocks below.
	Final uint64
}

// New returns a chain holding only the genesis block of p.
func New(p Params) (*Chain, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("network parameters: %w", err)
	}
	g := p.Genesis()
	e := &entry{header: g.Header, block: g, hash: g.Hash(), height: 0}
	return &Chain{
		params:   p,
		genesis:  e.hash,
		work:     BlockWork(p.Difficulty),
		index:    map[Hash]*entry{e.hash: e},
		main:     []*entry{e},
		readings: map[Hash]uint64{},
		side:     map[Hash]*entry{},
		keptFrom: 1,
		idsFrom:  1,
	}, nil
}

// SetArchive gives the chain the owner's durable copy of it. From then on
// Compact may drop from memory what the archive holds; without an archive
// everything stays in memory.
func (c *Chain) SetArchive(a Archive) { c.archive = a }

// Compact lets go of what the archive holds for good, so that memory does
// not grow with the chain: the bodies of main-chain blocks below the newest
// KeepBodies, the reading index entries and reading ids of final blocks (a
// final block never leaves the main chain, so the archive's reading index
// answers for it), and the entries (headers) of main-chain blocks below the
// final height, which the archive's height index answers for: the chain
// keeps whole only the part that can still change, the main chain from the
// final block up and the side branches. The owner calls it after each
// durable commit of the chain's updates, never before: what is dropped
// must already be in the archive.
func (c *Chain) Compact() { c.CompactTo(math.MaxUint64) }

// CompactTo is Compact for the main-chain blocks at or below height limit
// only: an owner that commits in the background calls it with the height
// below the first block whose commit is still being written.
func (c *Chain) CompactTo(limit uint64) {
	if c.archive == nil {
		return
	}
	for ; c.idsFrom <= c.final && c.idsFrom <= limit; c.idsFrom++ {
		e := c.at(c.idsFrom)
		for _, id := range c.idsOf(e) {
			delete(c.readings, id)
		}
		e.ids = nil
	}
	for ; c.keptFrom+KeepBodies <= c.Height() && c.keptFrom <= limit; c.keptFrom++ {
		c.at(c.keptFrom).block = nil
	}
	// Entries below the final block (a branch may still fork at it) and
	// durable: below idsFrom-1 = min(final, limit). And below every side
	// branch's fork point (Advance may have made a side branch dead that
	// the next block prunes): the parent of each branch's first block.
	base := c.idsFrom - 1
	for _, s := range c.side {
		if c.onMain(s.parent) {
			base = min(base, s.parent.height)
		}
	}
	if base <= c.base {
		return
	}
	drop := c.main[:base-c.base]
	for i, e := range drop {
		delete(c.index, e.hash)
		drop[i] = nil // the array outlives the slice until append moves it
	}
	c.main = c.main[base-c.base:]
	c.main[0].parent = nil
	c.base = base
	c.keptFrom = max(c.keptFrom, base)
}

// Resume starts a chain that holds only the genesis block from final, a
// block the owner recorded as final (Update.Final) and its archive holds
// with its whole main chain below: the chain keeps no entry below it and
// asks the archive (set with SetArchive first) about those blocks. The
// owner then restores the blocks above it with Restore, and the side
// branches, as after New. A node restarts so in a time and memory that do
// not grow with the length of its chain.
func (c *Chain) Resume(final *Block) error {
	switch {
	case c.archive == nil:
		return errors.New("resume: the chain has no archive")
	case len(c.index) != 1 || c.Height() != 0:
		return errors.New("resume: the chain holds more than the genesis block")
	case final.Header.Height == 0:
		return nil
	}
	h := final.Hash()
	if mh, ok := c.archive.MainHash(final.Header.Height); !ok || mh != h {
		return fmt.Errorf("resume: block %s is not the archive's main-chain block at height %d", h.Short(), final.Header.Height)
	}
	e := &entry{header: final.Header, block: final, hash: h, height: final.Header.Height}
	c.index = map[Hash]*entry{h: e}
	c.main = []*entry{e}
	c.base, c.final = e.height, e.height
	c.keptFrom, c.idsFrom = e.height, e.height+1
	return nil
}

// at returns the main-chain entry at height, nil below the base or above
// the tip.
func (c *Chain) at(height uint64) *entry {
	if height < c.base || height-c.base >= uint64(len(c.main)) {
		return nil
	}
	return c.main[height-c.base]
}

// archived returns the height of h if it is a main-chain block whose
// entry Compact dropped (the archive answers).
func (c *Chain) archived(h Hash) (uint64, bool) {
	if c.base == 0 {
		return 0, false
	}
	if h == c.genesis {
		return 0, true
	}
	height, ok := c.archive.MainHeight(h)
	if !ok || height >= c.base {
		return 0, false
	}
	return height, true
}

// archivedHeader returns the header of h if it is a main-chain block below
// the base, which only the archive holds: one header read and one
// height-index read (archived, then the header, would read the header
// twice).
func (c *Chain) archivedHeader(h Hash) (Header, bool) {
	if c.base == 0 {
		return Header{}, false
	}
	if h == c.genesis {
		return c.params.Genesis().Header, true
	}
	hdr, err := c.archive.HeaderByHash(h)
	if err != nil || hdr.Height >= c.base {
		return Header{}, false
	}
	if m, ok := c.archive.MainHash(hdr.Height); !ok || m != h {
		return Header{}, false
	}
	return hdr, true
}

// mainBlock returns the main-chain block at height, from memory or the
// archive.
func (c *Chain) mainBlock(height uint64) (*Block, error) {
	if e := c.at(height); e != nil {
		return c.body(e)
	}
	h, ok := c.HashAt(height)
	if !ok {
		return nil, fmt.Errorf("no main-chain block at height %d", height)
	}
	b, err := c.archivedBlock(h)
	if err != nil {
		return nil, fmt.Errorf("block %s at height %d: %w", h.Short(), height, err)
	}
	return b, nil
}

// archivedBlock reads back a main-chain block whose entry Compact dropped
// (the genesis block follows from the parameters).
func (c *Chain) archivedBlock(h Hash) (*Block, error) {
	if h == c.genesis {
		return c.params.Genesis(), nil
	}
	return c.archive.BlockByHash(h)
}

// idsOf returns e's reading ids, from memory or from its body.
func (c *Chain) idsOf(e *entry) []Hash {
	if e.ids != nil || e.header.Count == 0 {
		return e.ids
	}
	if b, err := c.body(e); err == nil {
		return b.ReadingIDs()
	}
	return nil
}

// body returns e's block, from memory or the archive.
func (c *Chain) body(e *entry) (*Block, error) {
	if e.block != nil {
		return e.block, nil
	}
	if c.archive == nil {
		return nil, fmt.Errorf("block %s at height %d: body not in memory and no archive", e.hash.Short(), e.height)
	}
	b, err := c.archive.BlockByHash(e.hash)
	if err != nil {
		return nil, fmt.Errorf("block %s at height %d: %w", e.hash.Short(), e.height, err)
	}
	return b, nil
}

// mainReading returns the height of the main-chain block holding reading
// id: from the readings map, or for a final block whose entries Compact
// dropped, from the archive.
func (c *Chain) mainReading(id Hash) (uint64, bool) {
	if h, ok := c.readings[id]; ok {
		return h, true
	}
	if c.idsFrom == 1 {
		return 0, false // nothing compacted: the map is complete
	}
	bh, ok := c.archive.ReadingBlock(id)
	if !ok {
		return 0, false
	}
	if e, ok := c.index[bh]; ok {
		if e.height < c.idsFrom && c.onMain(e) {
			return e.height, true
		}
		return 0, false
	}
	return c.archived(bh)
}

// workAt is the cumulative work of a chain whose tip is at height: the
// difficulty is the network's for every block.
func (c *Chain) workAt(height uint64) *big.Int {
	return new(big.Int).Mul(new(big.Int).SetUint64(height+1), c.work)
}

// SetSigCache makes the chain skip signatures that cache holds as verified,
// and add those it verifies. The owner shares the cache with whatever
// verifies signatures outside its lock (a batch from a sync, on all cores).
func (c *Chain) SetSigCache(cache *SigCache) { c.sigs = cache }

// Params returns the network parameters.
func (c *Chain) Params() Params { return c.params }

// Genesis returns the genesis block hash.
func (c *Chain) Genesis() Hash { return c.genesis }

func (c *Chain) tip() *entry { return c.main[len(c.main)-1] }

// Tip returns the main-chain tip.
func (c *Chain) Tip() *Block { return c.tip().block }

// TipHash returns the hash of the main-chain tip.
func (c *Chain) TipHash() Hash { return c.tip().hash }

// Height returns the height of the main-chain tip.
func (c *Chain) Height() uint64 { return c.tip().height }

// FinalHeight returns the height of the highest final block: no block at or
// below it can leave the main chain. A main-chain block becomes final once
// it has at least Params.MaxReorgDepth blocks on top of it and has been on
// the main chain for Params.FinalAge, as of the latest time the chain was
// given (Process, Advance). With a checkpoint the chain is below, nothing
// but genesis is final yet: the checkpoint, not the depth, decides which
// branch is followed up to it. The final height never goes down.
func (c *Chain) FinalHeight() uint64 { return c.final }

// Advance moves the final height up to what now allows (see FinalHeight)
// and returns it. Process calls it; an owner calls it to let time make
// blocks final while no block arrives. Side branches that fall below the
// final height are pruned by the next block Process accepts.
func (c *Chain) Advance(now time.Time) uint64 {
	if c.params.Consensus == Authority {
		// Every block joins an authority chain final (Process).
		c.final = c.Height()
		return c.final
	}
	if c.cp != nil && c.Height() < c.cp.Height {
		return c.final
	}
	for next, last := c.final+1, c.params.DepthFinal(c.Height()); next <= last; next++ {
		if e := c.at(next); !now.IsZero() && now.Sub(e.since) < c.params.FinalAge {
			break
		}
		c.final = next
	}
	return c.final
}

// Checkpoint is a block a node requires on its main chain, learnt from a
// source the operator trusts (another node's `p2pchain status`). It is the
// node's own policy, not a network parameter.
type Checkpoint struct {
	Height uint64
	Hash   Hash
}

// SetCheckpoint makes the chain refuse every block at cp.Height but cp.Hash
// (ErrCheckpoint), and hold no block final below it until its main chain
// reaches it, so that a new node led onto another branch by its first
// peers still moves to the branch through the checkpoint. It fails if the
// main chain already holds another block at that height.
func (c *Chain) SetCheckpoint(cp Checkpoint) error {
	if cp.Height == 0 {
		return errors.New("checkpoint at height 0: the genesis block is fixed by the network")
	}
	if h, ok := c.HashAt(cp.Height); ok && h != cp.Hash {
		return ruleErr(ErrCheckpoint, "the main chain holds %s at height %d, the checkpoint is %s",
			h.Short(), cp.Height, cp.Hash.Short())
	}
	c.cp = &cp
	if c.Height() < cp.Height {
		// Nothing is final until the checkpoint is reached, but what
		// Compact already let go of (call SetCheckpoint before Compact).
		c.final = c.idsFrom - 1
	}
	return nil
}

// Status returns the chain's status.
func (c *Chain) Status() Status {
	t := c.tip()
	return Status{Genesis: c.Genesis(), Tip: t.hash, Height: t.height, Work: c.workAt(t.height)}
}

// Len returns the number of blocks in the tree, side branches included
// (and main-chain blocks whose entries Compact dropped).
func (c *Chain) Len() int { return int(c.base) + len(c.index) }

// SideLen returns the number of blocks off the main chain and their encoded
// size in bytes.
func (c *Chain) SideLen() (blocks, bytes int) { return len(c.side), c.sideBytes }

// Block returns a known block by hash, on the main chain or not. A body
// that cannot be read back is not found (LoadBlock says why).
func (c *Chain) Block(h Hash) (*Block, bool) {
	b, err := c.LoadBlock(h)
	return b, err == nil
}

// ErrNotKnown is returned by LoadBlock for a hash the chain does not know.
var ErrNotKnown = errors.New("block not known")

// LoadBlock returns a known block by hash, on the main chain or not, or why
// its body could not be read back.
func (c *Chain) LoadBlock(h Hash) (*Block, error) {
	e, ok := c.index[h]
	if !ok {
		if _, ok := c.archived(h); ok {
			return c.archivedBlock(h)
		}
		return nil, ErrNotKnown
	}
	return c.body(e)
}

// Header returns the header of a known block.
func (c *Chain) Header(h Hash) (Header, bool) {
	if e, ok := c.index[h]; ok {
		return e.header, true
	}
	return c.archivedHeader(h)
}

// HasBlock reports whether the block is known.
func (c *Chain) HasBlock(h Hash) bool {
	if _, ok := c.index[h]; ok {
		return true
	}
	_, ok := c.archived(h)
	return ok
}

// Holds reports whether h is a block the chain keeps in memory: one of
// any branch above the base. Unlike HasBlock it reads nothing from the
// archive, so its owner may ask it under a lock about blocks a peer sent.
func (c *Chain) Holds(h Hash) bool {
	_, ok := c.index[h]
	return ok
}

// HeldHeader returns the header of a block the chain keeps in memory
// (Holds), reading nothing from the archive.
func (c *Chain) HeldHeader(h Hash) (Header, bool) {
	e, ok := c.index[h]
	if !ok {
		return Header{}, false
	}
	return e.header, true
}

// Base returns the height below which the main chain's blocks are the
// archive's only (0: the chain keeps them all). It only rises, and blocks
// below it are final: an owner that reads the archive outside its lock
// takes it under the lock first.
func (c *Chain) Base() uint64 { return c.base }

// BlockAt returns the main-chain block at height.
func (c *Chain) BlockAt(height uint64) (*Block, bool) {
	b, err := c.mainBlock(height)
	return b, err == nil
}

// HashAt returns the hash of the main-chain block at height.
func (c *Chain) HashAt(height uint64) (Hash, bool) {
	if e := c.at(height); e != nil {
		return e.hash, true
	}
	if height < c.base {
		if height == 0 {
			return c.genesis, true
		}
		return c.archive.MainHash(height)
	}
	return Hash{}, false
}

// IsMain reports whether the block with hash h is on the main chain.
func (c *Chain) IsMain(h Hash) bool {
	if e, ok := c.index[h]; ok {
		return c.onMain(e)
	}
	_, ok := c.archived(h)
	return ok
}

func (c *Chain) onMain(e *entry) bool { return c.at(e.height) == e }

// FindReading returns a main-chain reading by id and the block holding it.
func (c *Chain) FindReading(id Hash) (Reading, *Block, bool) {
	h, ok := c.mainReading(id)
	if !ok {
		return Reading{}, nil, false
	}
	b, err := c.mainBlock(h)
	if err != nil {
		return Reading{}, nil, false
	}
	i, ok := ReadingIndex(b, id)
	if !ok {
		return Reading{}, nil, false // unreachable while the index is consistent
	}
	return b.Readings[i], b, true
}

// HasReading reports whether a reading is in the main chain.
func (c *Chain) HasReading(id Hash) bool { _, ok := c.mainReading(id); return ok }

// RecentReadingHeight returns the height of the main-chain block holding a
// reading if that block is in the part of the chain whose readings are held
// in memory (not compacted to the archive); it reads nothing from the
// archive.
func (c *Chain) RecentReadingHeight(id Hash) (uint64, bool) {
	h, ok := c.readings[id]
	return h, ok
}

// Flags change how Process treats a block.
type Flags uint8

const (
	// Restored marks a block read back from the node's own store, which
	// the node validated before it stored it: its signatures and the
	// future-time rule are not checked again (the readings root, which
	// commits to every signature, is), and it cannot displace a tip of
	// equal work.
	Restored Flags = 1 << iota
	// Sealed marks a block of an authority network whose seal the owner
	// verified (package bft: the commit of the authorities of its height,
	// and its membership changes against the schedule). On an authority
	// network Process accepts no other block but restored ones; a sealed
	// block is final as soon as it joins the chain.
	Sealed
	// Check runs every rule and adds nothing: an authority judges a
	// proposed block (which has no seal yet) on the tip with it.
	Check
)

// Process is the one entry point for a block: it checks every rule, in the
// order of the package doc (cheap checks first: a known block costs one
// header hash, a block on an unknown parent a header and no signature), and
// adds the block to the tree. If it gives a better tip, the main chain moves
// to it (reorganising if needed). now is the caller's clock, used for the
// future-time rule and the tie window.
func (c *Chain) Process(b *Block, now time.Time, flags Flags) (*Update, error) {
	hash := b.Hash()
	parent, err := c.checkContext(&b.Header, hash, now, flags)
	if err != nil {
		return nil, err
	}
	// Rule 6: the body against the header, no signature yet.
	ids, err := CheckBody(b, c.params)
	if err != nil {
		return nil, err
	}
	// Rule 7: no reading already in an ancestor (lookups).
	if err := c.checkAncestry(parent, ids); err != nil {
		return nil, err
	}
	// Rule 8: signatures, the costly part, last.
	if flags&Restored == 0 {
		if err := CheckSignatures(b, ids, c.sigs); err != nil {
			return nil, err
		}
	}
	if flags&Check != 0 {
		return &Update{Hash: hash, Height: b.Header.Height}, nil
	}
	// Rule 9, authority networks: the owner verified the seal.
	if c.params.Consensus == Authority && flags&(Sealed|Restored) == 0 {
		return nil, ruleErr(ErrBadSeal, "block %s at height %d has no verified seal", hash.Short(), b.Header.Height)
	}
	return c.insert(b, hash, ids, parent, now, flags&Restored != 0)
}

// CheckContext checks rules 2 to 5 of a header (Process's checks before the
// body): not known, a valid header, a known parent, and its place in the
// tree. It adds nothing to the tree (it may move the final height up to
// now, as Advance does). An owner uses it to decide, under its lock, which
// blocks deserve their signatures checked outside it.
func (c *Chain) CheckContext(h *Header, now time.Time) error {
	_, err := c.checkContext(h, h.Hash(), now, 0)
	return err
}

func (c *Chain) checkContext(h *Header, hash Hash, now time.Time, flags Flags) (*entry, error) {
	c.Advance(now)
	// Rule 2: a block is processed once. Below the base, the archive's
	// height index answers (one lookup: the header names the height).
	if _, ok := c.index[hash]; ok {
		return nil, ruleErr(ErrDuplicateBlock, "block %s", hash.Short())
	}
	if h.Height < c.base {
		if mh, ok := c.HashAt(h.Height); ok && mh == hash {
			return nil, ruleErr(ErrDuplicateBlock, "block %s", hash.Short())
		}
	}
	// Rule 3: the header alone.
	if h.Height == 0 {
		return nil, ruleErr(ErrBadGenesis, "block %s claims height 0", hash.Short())
	}
	if err := CheckHeader(h, c.params); err != nil {
		return nil, err
	}
	// Rules 4 and 5: the block's place in the tree, its time and its depth.
	parent, ok := c.index[h.Parent]
	if !ok && h.Height <= c.base {
		// A parent whose entry Compact dropped is final, and not the
		// final block (whose entry stays): the block forks below it.
		if ph, ok := c.HashAt(h.Height - 1); ok && ph == h.Parent {
			return nil, ruleErr(ErrForkTooDeep, "block at height %d forks from the main chain at %d, below the final height %d",
				h.Height, h.Height-1, c.FinalHeight())
		}
	}
	if !ok {
		return nil, ruleErr(ErrUnknownParent, "block %s at height %d has parent %s", hash.Short(), h.Height, h.Parent.Short())
	}
	linkNow := now
	if flags&Restored != 0 {
		linkNow = time.Time{}
	}
	if err := CheckLink(h, &parent.header, linkNow, c.params); err != nil {
		return nil, err
	}
	if c.cp != nil && h.Height == c.cp.Height && hash != c.cp.Hash {
		return nil, ruleErr(ErrCheckpoint, "block %s at height %d is not the checkpoint %s", hash.Short(), h.Height, c.cp.Hash.Short())
	}
	// The branch's fork point, not only a main-chain parent: Advance can
	// raise the final height above a side branch before the next tip
	// change prunes it, and that branch must not grow past a final block.
	fork := parent
	for !c.onMain(fork) {
		fork = fork.parent
	}
	if fork.height < c.FinalHeight() {
		return nil, ruleErr(ErrForkTooDeep, "block at height %d forks from the main chain at %d, below the final height %d",
			h.Height, fork.height, c.FinalHeight())
	}
	return parent, nil
}

// CheckLink checks that h follows parent: height one more, time not before
// the parent's and, unless now is zero, not more than Params.MaxFutureDrift
// ahead of now.
func CheckLink(h, parent *Header, now time.Time, p Params) error {
	if h.Height != parent.Height+1 {
		return ruleErr(ErrBadHeight, "height %d on a parent at %d", h.Height, parent.Height)
	}
	if h.Time < parent.Time {
		return ruleErr(ErrTimeBeforeParent, "time %d before parent's %d", h.Time, parent.Time)
	}
	if !now.IsZero() {
		if limit := addMillis(now.UnixMilli(), p.MaxFutureDrift.Milliseconds()); h.Time > limit {
			return ruleErr(ErrTimeTooNew, "time %d is %d ms ahead of now", h.Time, h.Time-now.UnixMilli())
		}
	}
	return nil
}

// AddBlock is Process without flags: a block from a peer or the miner.
func (c *Chain) AddBlock(b *Block, now time.Time) (*Update, error) { return c.Process(b, now, 0) }

// Restore is Process with Restored: a block read back from the node's own
// store at start-up, now being the time of the start. Blocks must come
// parents first. Restored blocks count as joining the main chain at now:
// a node that was down does not hold its newest blocks final until it has
// been up with them for Params.FinalAge.
func (c *Chain) Restore(b *Block, now time.Time) (*Update, error) { return c.Process(b, now, Restored) }

// insert puts a checked block into the tree and moves the tip to it if it is
// better: more work, or equal work, a lower hash and a tip younger than
// TieWindow (never for a restored block, nor over a restored tip).
func (c *Chain) insert(b *Block, hash Hash, ids []Hash, parent *entry, now time.Time, restored bool) (*Update, error) {
	e := &entry{header: b.Header, block: b, hash: hash, ids: ids, parent: parent, height: b.Header.Height}
	t := c.tip()
	cmp := cmpHeight(e.height, t.height) // every block has the same work
	wins := cmp > 0 || (cmp == 0 && !restored && !c.tipSince.IsZero() && hash.Less(t.hash) && now.Sub(c.tipSince) < TieWindow)
	u := &Update{Hash: hash, Height: e.height}
	if !wins {
		if err := c.makeRoom(e, b.EncodedSize(), u); err != nil {
			return nil, err
		}
	} else if err := c.loadBranch(parent); err != nil {
		return nil, err
	}
	c.index[hash] = e
	parent.children++
	if wins {
		since := now
		c.setTip(e, u, now, restored)
		c.Advance(since)
		c.prune(u)
		u.Final = c.final
		return u, nil
	}
	c.addSide(e)
	if cmp == 0 && !restored {
		u.Adopted = c.missingReadings(e)
	}
	u.Final = c.final
	return u, nil
}

func (c *Chain) addSide(e *entry) {
	c.side[e.hash] = e
	c.sideBytes += e.block.EncodedSize()
}

// dropSide removes a side block from the tree.
func (c *Chain) dropSide(e *entry, u *Update) {
	delete(c.side, e.hash)
	delete(c.index, e.hash)
	c.sideBytes -= e.block.EncodedSize()
	e.parent.children--
	u.Pruned = append(u.Pruned, e.hash)
}

// makeRoom keeps the side branches within MaxSideBlocks and MaxSideBytes
// before e (size bytes) joins them: side leaves with the least work go
// first, and e is refused if it has less work than every leaf.
func (c *Chain) makeRoom(e *entry, size int, u *Update) error {
	for len(c.side)+1 > MaxSideBlocks || c.sideBytes+size > MaxSideBytes {
		var least *entry
		for _, s := range c.side {
			if s.children == 0 && s != e.parent && (least == nil || s.height < least.height ||
				(s.height == least.height && least.hash.Less(s.hash))) {
				least = s
			}
		}
		if least == nil || e.height <= least.height {
			return ruleErr(ErrTooManyForks, "%d side blocks (%d bytes) kept, and block %s has no more work than any",
				len(c.side), c.sideBytes, e.hash.Short())
		}
		c.dropSide(least, u)
	}
	return nil
}

// prune drops the side branches that fork below the final height:
// they can no longer win.
func (c *Chain) prune(u *Update) {
	final := c.FinalHeight()
	if final == 0 || len(c.side) == 0 {
		return
	}
	// The fork point of each side block, each found once.
	fork := make(map[*entry]*entry, len(c.side))
	find := func(e *entry) *entry {
		if c.onMain(e) {
			return e
		}
		if f, ok := fork[e]; ok {
			return f
		}
		var path []*entry
		x := e
		for ; !c.onMain(x); x = x.parent {
			if f, ok := fork[x]; ok {
				x = f
				break
			}
			path = append(path, x)
		}
		for _, p := range path {
			fork[p] = x
		}
		return x
	}
	var dead []*entry
	for _, s := range c.side {
		if find(s).height < final {
			dead = append(dead, s)
		}
	}
	// Children before parents, so that each drop removes a leaf.
	sort.Slice(dead, func(i, j int) bool { return dead[i].height > dead[j].height })
	for _, s := range dead {
		c.dropSide(s, u)
	}
}

// missingReadings returns the readings of e's branch, from the fork point
// up, that the main chain does not hold.
func (c *Chain) missingReadings(e *entry) []Reading {
	var out []Reading
	for x := e; !c.onMain(x); x = x.parent {
		for i, id := range x.ids {
			if _, ok := c.mainReading(id); !ok {
				out = append(out, x.block.Readings[i])
			}
		}
	}
	return out
}

// checkAncestry reports ErrDuplicateReading if one of ids is in parent or
// any of its ancestors. Side ancestors are few (a side branch forks above
// the final depth); main-chain ancestors are found through the index.
func (c *Chain) checkAncestry(parent *entry, ids []Hash) error {
	if len(ids) == 0 {
		return nil
	}
	want := make(map[Hash]struct{}, len(ids))
	for _, id := range ids {
		want[id] = struct{}{}
	}
	x := parent
	for ; !c.onMain(x); x = x.parent {
		for _, id := range x.ids {
			if _, dup := want[id]; dup {
				return ruleErr(ErrDuplicateReading, "reading %s already in ancestor %s", id.Short(), x.hash.Short())
			}
		}
	}
	// Main-chain ancestors: x is the fork point; use the index.
	for _, id := range ids {
		if at, ok := c.mainReading(id); ok && at <= x.height {
			return ruleErr(ErrDuplicateReading, "reading %s already in block at height %d", id.Short(), at)
		}
	}
	return nil
}

// setTip makes e the main-chain tip, disconnecting the old branch down to the
// fork point and connecting the new one, and records both in u.
// The bodies of the blocks it disconnects must be in memory (loadBranch).
func (c *Chain) setTip(e *entry, u *Update, now time.Time, restored bool) {
	var path []*entry // new branch, tip first
	fork := e
	for ; !c.onMain(fork); fork = fork.parent {
		path = append(path, fork)
	}
	var gone []*entry
	for h := c.tip().height; h > fork.height; h-- {
		old := c.at(h)
		gone = append(gone, old)
		u.Disconnected = append(u.Disconnected, old.block)
		for _, id := range old.ids {
			delete(c.readings, id)
		}
	}
	c.main = c.main[:fork.height+1-c.base]
	for i := len(path) - 1; i >= 0; i-- {
		n := path[i]
		if _, ok := c.side[n.hash]; ok {
			delete(c.side, n.hash)
			c.sideBytes -= n.block.EncodedSize()
		}
		n.since = now
		c.main = append(c.main, n)
		u.Connected = append(u.Connected, n.block)
		for _, id := range n.ids {
			c.readings[id] = n.height
		}
	}
	for _, old := range gone {
		c.addSide(old)
	}
	for _, b := range u.Disconnected {
		for i := range b.Readings {
			if !c.HasReading(b.Readings[i].ID()) {
				u.Returned = append(u.Returned, b.Readings[i])
			}
		}
	}
	c.tipSince = now
	if restored {
		c.tipSince = time.Time{} // an established tip: never displaced on equal work
	}
	u.TipChanged = true
	c.keptFrom = min(c.keptFrom, fork.height+1)
}

// loadBranch reads back from the archive the bodies Compact dropped of the
// main-chain blocks a reorganisation to the branch of parent would
// disconnect: they become side blocks, which keep their bodies.
func (c *Chain) loadBranch(parent *entry) error {
	fork := parent
	for !c.onMain(fork) {
		fork = fork.parent
	}
	for h := c.tip().height; h > fork.height; h-- {
		if old := c.at(h); old.block == nil {
			b, err := c.body(old)
			if err != nil {
				return fmt.Errorf("reorganisation from height %d: %w", fork.height, err)
			}
			old.block = b
		}
	}
	return nil
}

func cmpHeight(a, b uint64) int {
	switch {
	case a > b:
		return 1
	case a < b:
		return -1
	}
	return 0
}

// MaxLocator is the most hashes a block locator may hold.
const MaxLocator = 64

// Locator returns a block locator of the main chain: LocatorFrom the tip.
func (c *Chain) Locator() []Hash { return c.LocatorFrom(c.TipHash()) }

// LocatorFrom returns hashes of the known block from and its ancestors, back
// to genesis: the first ten one by one, then at doubling distances, always
// ending with genesis. A peer finds the highest one it has on its main chain
// to learn where to continue. Starting from a block of a side branch (the
// last block a sync received) lets a sync continue along a branch that has
// not yet overtaken the main chain. An unknown from means the tip.
func (c *Chain) LocatorFrom(from Hash) []Hash {
	x, ok := c.index[from] // the block while off the main chain, nil on it
	height := c.Height()
	switch {
	case ok:
		height = x.height
	case c.base > 0:
		if h, ok := c.archived(from); ok {
			height = h
		}
	}
	var loc []Hash
	step := uint64(1)
	for {
		if x != nil && c.onMain(x) {
			x = nil
		}
		if x != nil {
			loc = append(loc, x.hash)
		} else if h, ok := c.HashAt(height); ok {
			loc = append(loc, h)
		} else {
			break // the archive cannot answer: genesis ends the locator
		}
		if height == 0 || len(loc) == MaxLocator-1 {
			break
		}
		if len(loc) >= 10 {
			step *= 2
		}
		height -= min(step, height)
		for x != nil && x.height > height && !c.onMain(x) {
			x = x.parent
		}
	}
	if len(loc) == 0 || loc[len(loc)-1] != c.Genesis() {
		loc = append(loc, c.Genesis())
	}
	return loc
}

// BlocksAfter returns main-chain blocks following the highest locator hash
// that is on the main chain, at most max blocks and, beyond the first block,
// at most maxBytes of encoded blocks. It fails with ErrBadGenesis if no
// locator hash is on the main chain (the peer is on another network).
func (c *Chain) BlocksAfter(locator []Hash, max, maxBytes int) ([]*Block, error) {
	hashes, blocks, err := c.MainAfter(locator, max)
	if err != nil {
		return nil, err
	}
	load := func(Hash) (*Block, error) { return nil, errors.New("body not in memory and no archive") }
	if c.archive != nil {
		load = c.archive.BlockByHash
	}
	return FillBlocks(hashes, blocks, maxBytes, load)
}

// MainAfter is the first half of BlocksAfter, for an owner that reads
// bodies outside its lock: the hashes of up to max main-chain blocks after
// the highest locator hash on the main chain, and those of the blocks whose
// bodies are in memory (nil for the others). FillBlocks completes it.
func (c *Chain) MainAfter(locator []Hash, max int) ([]Hash, []*Block, error) {
	from, found := uint64(0), false
	for _, h := range locator {
		if e, ok := c.index[h]; ok {
			if c.onMain(e) {
				from, found = e.height, true
				break
			}
		} else if height, ok := c.archived(h); ok {
			from, found = height, true
			break
		}
	}
	if !found {
		return nil, nil, ruleErr(ErrBadGenesis, "no locator hash is on this chain")
	}
	var hashes []Hash
	var blocks []*Block
	h := from + 1
	if h < c.base && max > 0 {
		// Final blocks without an entry: their hashes in one read.
		hashes = c.archive.MainHashes(h, int(min(uint64(max), c.base-h)))
		blocks = make([]*Block, len(hashes))
		if h += uint64(len(hashes)); h < c.base {
			return hashes, blocks, nil // the archive could not answer further: serve what comes before
		}
	}
	for ; h <= c.Height() && len(hashes) < max; h++ {
		e := c.at(h)
		hashes, blocks = append(hashes, e.hash), append(blocks, e.block)
	}
	return hashes, blocks, nil
}

// FillBlocks is the second half of BlocksAfter: it reads the missing
// bodies with load, in order, and stops before maxBytes of encoded blocks
// (the first block always goes). An error of load ends the list there; it
// is returned only if no block could be given.
func FillBlocks(hashes []Hash, blocks []*Block, maxBytes int, load func(Hash) (*Block, error)) ([]*Block, error) {
	var out []*Block
	size := 0
	for i, h := range hashes {
		b := blocks[i]
		if b == nil {
			var err error
			if b, err = load(h); err != nil {
				if len(out) == 0 {
					return nil, fmt.Errorf("block %s: %w", h.Short(), err)
				}
				return out, nil
			}
		}
		size += b.EncodedSize()
		if len(out) > 0 && size > maxBytes {
			break
		}
		out = append(out, b)
	}
	return out, nil
}

// NewBlock returns an unsolved block on the tip holding readings (at most
// Params.MaxReadings of them; the caller passes pending readings, which are
// never in the main chain). Its time is now, or the tip's if that is later.
func (c *Chain) NewBlock(readings []Reading, now time.Time) *Block {
	if len(readings) > c.params.MaxReadings {
		readings = readings[:c.params.MaxReadings]
	}
	t := c.tip()
	b := &Block{Readings: append([]Reading(nil), readings...)}
	b.Header = Header{
		Version:    HeaderVersion,
		Height:     t.height + 1,
		Parent:     t.hash,
		Time:       max(now.UnixMilli(), t.header.Time),
		Root:       b.ReadingsRoot(),
		Count:      uint32(len(b.Readings)),
		Difficulty: c.params.Difficulty,
	}
	return b
}

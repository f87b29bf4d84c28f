package chain

import (
	"fmt"
	"math/big"
	"time"
)

// entry is one known, fully validated block in the block tree.
type entry struct {
	block  *Block
	hash   Hash
	ids    []Hash // reading ids, cached
	parent *entry
	height uint64
	work   *big.Int // cumulative work from genesis up to and including this block
}

// Chain is the tree of every valid block a node knows, and the main chain:
// the branch with the most work. It is not safe for concurrent use.
type Chain struct {
	params   Params
	index    map[Hash]*entry
	main     []*entry        // main[h] is the main-chain block at height h
	readings map[Hash]uint64 // reading id -> height of the main-chain block holding it
}

// Status summarises a chain for peers: enough to tell whose tip is better.
type Status struct {
	Genesis Hash
	Tip     Hash
	Height  uint64
	Work    *big.Int
}

// Better reports whether s has a better tip than o by the fork-choice rule.
func (s Status) Better(o Status) bool { return betterTip(s.Work, s.Tip, o.Work, o.Tip) }

func betterTip(workA *big.Int, hashA Hash, workB *big.Int, hashB Hash) bool {
	if c := workA.Cmp(workB); c != 0 {
		return c > 0
	}
	return hashA.Less(hashB)
}

// Update says what AddBlock changed and what the caller must do about it.
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
}

// New returns a chain holding only the genesis block of p.
func New(p Params) (*Chain, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("network parameters: %w", err)
	}
	g := p.Genesis()
	e := &entry{block: g, hash: g.Hash(), height: 0, work: BlockWork(p.Difficulty)}
	return &Chain{
		params:   p,
		index:    map[Hash]*entry{e.hash: e},
		main:     []*entry{e},
		readings: map[Hash]uint64{},
	}, nil
}

// Params returns the network parameters.
func (c *Chain) Params() Params { return c.params }

// Genesis returns the genesis block hash.
func (c *Chain) Genesis() Hash { return c.main[0].hash }

func (c *Chain) tip() *entry { return c.main[len(c.main)-1] }

// Tip returns the main-chain tip.
func (c *Chain) Tip() *Block { return c.tip().block }

// TipHash returns the hash of the main-chain tip.
func (c *Chain) TipHash() Hash { return c.tip().hash }

// Height returns the height of the main-chain tip.
func (c *Chain) Height() uint64 { return c.tip().height }

// Status returns the chain's status.
func (c *Chain) Status() Status {
	t := c.tip()
	return Status{Genesis: c.Genesis(), Tip: t.hash, Height: t.height, Work: new(big.Int).Set(t.work)}
}

// Len returns the number of blocks in the tree, side branches included.
func (c *Chain) Len() int { return len(c.index) }

// Block returns a known block by hash, on the main chain or not.
func (c *Chain) Block(h Hash) (*Block, bool) {
	e, ok := c.index[h]
	if !ok {
		return nil, false
	}
	return e.block, true
}

// HasBlock reports whether the block is known.
func (c *Chain) HasBlock(h Hash) bool { _, ok := c.index[h]; return ok }

// BlockAt returns the main-chain block at height.
func (c *Chain) BlockAt(height uint64) (*Block, bool) {
	if height >= uint64(len(c.main)) {
		return nil, false
	}
	return c.main[height].block, true
}

// IsMain reports whether the block with hash h is on the main chain.
func (c *Chain) IsMain(h Hash) bool {
	e, ok := c.index[h]
	return ok && c.onMain(e)
}

func (c *Chain) onMain(e *entry) bool {
	return e.height < uint64(len(c.main)) && c.main[e.height] == e
}

// FindReading returns a main-chain reading by id and the block holding it.
func (c *Chain) FindReading(id Hash) (Reading, *Block, bool) {
	h, ok := c.readings[id]
	if !ok {
		return Reading{}, nil, false
	}
	e := c.main[h]
	for i, rid := range e.ids {
		if rid == id {
			return e.block.Readings[i], e.block, true
		}
	}
	return Reading{}, nil, false // unreachable while the index is consistent
}

// HasReading reports whether a reading is in the main chain.
func (c *Chain) HasReading(id Hash) bool { _, ok := c.readings[id]; return ok }

// AddBlock validates b against every rule and adds it to the block tree. If
// it gives a better tip, the main chain moves to it (reorganising if needed).
// now is the caller's clock, used only for the future-time rule.
func (c *Chain) AddBlock(b *Block, now time.Time) (*Update, error) {
	hash := b.Hash()
	if _, ok := c.index[hash]; ok {
		return nil, ruleErr(ErrDuplicateBlock, "block %s", hash.Short())
	}
	if b.Header.Height == 0 {
		return nil, ruleErr(ErrBadGenesis, "block %s claims height 0", hash.Short())
	}
	if err := CheckBlock(b, c.params); err != nil {
		return nil, err
	}
	return c.addChecked(b, hash, now)
}

// AddCheckedBlock is AddBlock for a block that passed CheckBlock with this
// chain's parameters already (on any goroutine): it checks rules 6 to 9.
func (c *Chain) AddCheckedBlock(b *Block, now time.Time) (*Update, error) {
	hash := b.Hash()
	if _, ok := c.index[hash]; ok {
		return nil, ruleErr(ErrDuplicateBlock, "block %s", hash.Short())
	}
	if b.Header.Height == 0 {
		return nil, ruleErr(ErrBadGenesis, "block %s claims height 0", hash.Short())
	}
	return c.addChecked(b, hash, now)
}

func (c *Chain) addChecked(b *Block, hash Hash, now time.Time) (*Update, error) {
	h := &b.Header
	// Rules 6 to 8: the block's place in the tree and its time.
	parent, ok := c.index[h.Parent]
	if !ok {
		return nil, ruleErr(ErrUnknownParent, "block %s at height %d has parent %s", hash.Short(), h.Height, h.Parent.Short())
	}
	if h.Height != parent.height+1 {
		return nil, ruleErr(ErrBadHeight, "height %d on a parent at %d", h.Height, parent.height)
	}
	if h.Time < parent.block.Header.Time {
		return nil, ruleErr(ErrTimeBeforeParent, "time %d before parent's %d", h.Time, parent.block.Header.Time)
	}
	if limit := now.Add(c.params.MaxFutureDrift).UnixMilli(); h.Time > limit {
		return nil, ruleErr(ErrTimeTooNew, "time %d is %d ms ahead of now", h.Time, h.Time-now.UnixMilli())
	}
	// Rule 9: no reading already in an ancestor.
	ids := b.ReadingIDs()
	if err := c.checkAncestry(parent, ids); err != nil {
		return nil, err
	}

	return c.insert(b, hash, ids, parent), nil
}

// insert puts a checked block into the tree and moves the tip to it if it is
// better.
func (c *Chain) insert(b *Block, hash Hash, ids []Hash, parent *entry) *Update {
	e := &entry{block: b, hash: hash, ids: ids, parent: parent, height: b.Header.Height,
		work: new(big.Int).Add(parent.work, BlockWork(b.Header.Difficulty))}
	c.index[hash] = e
	u := &Update{Hash: hash, Height: e.height}
	if t := c.tip(); betterTip(e.work, e.hash, t.work, t.hash) {
		c.setTip(e, u)
	}
	return u
}

// Restore adds a block that this node validated before, read back from its
// own store at start-up: it checks only that the block links to a known
// parent at the right height, not its proof of work, signatures or readings,
// which is what makes a restart with a long chain fast. Blocks must come
// parents first. Fork choice runs as in AddBlock, and the Update is returned
// for the caller to compare against what it had stored. Never use it for
// blocks from anywhere but the node's own store.
func (c *Chain) Restore(b *Block) (*Update, error) {
	hash := b.Hash()
	if _, ok := c.index[hash]; ok {
		return nil, ruleErr(ErrDuplicateBlock, "block %s", hash.Short())
	}
	parent, ok := c.index[b.Header.Parent]
	if !ok {
		return nil, ruleErr(ErrUnknownParent, "stored block %s at height %d has parent %s", hash.Short(), b.Header.Height, b.Header.Parent.Short())
	}
	if b.Header.Height != parent.height+1 {
		return nil, ruleErr(ErrBadHeight, "stored block at height %d on a parent at %d", b.Header.Height, parent.height)
	}
	return c.insert(b, hash, b.ReadingIDs(), parent), nil
}

// checkAncestry reports ErrDuplicateReading if one of ids is in parent or
// any of its ancestors.
func (c *Chain) checkAncestry(parent *entry, ids []Hash) error {
	if len(ids) == 0 {
		return nil
	}
	want := make(map[Hash]struct{}, len(ids))
	for _, id := range ids {
		want[id] = struct{}{}
	}
	// Side-branch ancestors: check their readings one by one.
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
		if at, ok := c.readings[id]; ok && at <= x.height {
			return ruleErr(ErrDuplicateReading, "reading %s already in block at height %d", id.Short(), at)
		}
	}
	return nil
}

// setTip makes e the main-chain tip, disconnecting the old branch down to the
// fork point and connecting the new one, and records both in u.
func (c *Chain) setTip(e *entry, u *Update) {
	var path []*entry // new branch, tip first
	fork := e
	for ; !c.onMain(fork); fork = fork.parent {
		path = append(path, fork)
	}
	for h := c.tip().height; h > fork.height; h-- {
		old := c.main[h]
		u.Disconnected = append(u.Disconnected, old.block)
		for _, id := range old.ids {
			delete(c.readings, id)
		}
	}
	c.main = c.main[:fork.height+1]
	for i := len(path) - 1; i >= 0; i-- {
		n := path[i]
		c.main = append(c.main, n)
		u.Connected = append(u.Connected, n.block)
		for _, id := range n.ids {
			c.readings[id] = n.height
		}
	}
	for _, b := range u.Disconnected {
		for i := range b.Readings {
			if !c.HasReading(b.Readings[i].ID()) {
				u.Returned = append(u.Returned, b.Readings[i])
			}
		}
	}
	u.TipChanged = true
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
	e, ok := c.index[from]
	if !ok {
		e = c.tip()
	}
	var loc []Hash
	step := uint64(1)
	for {
		loc = append(loc, e.hash)
		if e.height == 0 || len(loc) == MaxLocator-1 {
			break
		}
		if len(loc) >= 10 {
			step *= 2
		}
		e = c.ancestor(e, e.height-min(step, e.height))
	}
	if loc[len(loc)-1] != c.Genesis() {
		loc = append(loc, c.Genesis())
	}
	return loc
}

// ancestor returns e's ancestor at height (e itself if at that height).
func (c *Chain) ancestor(e *entry, height uint64) *entry {
	for e.height > height && !c.onMain(e) {
		e = e.parent
	}
	if e.height > height {
		return c.main[height] // e is on the main chain, so is its ancestor
	}
	return e
}

// BlocksAfter returns main-chain blocks following the highest locator hash
// that is on the main chain, at most max blocks and, beyond the first block,
// at most maxBytes of encoded blocks. It fails with ErrBadGenesis if no
// locator hash is on the main chain (the peer is on another network).
func (c *Chain) BlocksAfter(locator []Hash, max, maxBytes int) ([]*Block, error) {
	var from *entry
	for _, h := range locator {
		if e, ok := c.index[h]; ok && c.onMain(e) {
			from = e
			break
		}
	}
	if from == nil {
		return nil, ruleErr(ErrBadGenesis, "no locator hash is on this chain")
	}
	var out []*Block
	size := 0
	for h := from.height + 1; h < uint64(len(c.main)) && len(out) < max; h++ {
		b := c.main[h].block
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
		Time:       max(now.UnixMilli(), t.block.Header.Time),
		Root:       MerkleRoot(b.ReadingIDs()),
		Difficulty: c.params.Difficulty,
	}
	return b
}

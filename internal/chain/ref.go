package chain

// Ref is a block as the chain holds it in memory: its hash and height,
// whether it is on the main chain, and its header and body when the chain
// keeps them (nil when only the archive does: the body of main-chain
// blocks older than the newest KeepBodies once durable, the header of
// final blocks below the base; side blocks keep both).
//
// Refs let an owner that guards the chain with a lock read bodies after
// releasing it (Load): a body decoded from the store costs up to a
// millisecond for a full block, which every writer and reader would
// otherwise wait on. That is safe because the archive is safe for
// concurrent use and a stored block never changes; a block deleted
// meanwhile (only a main-chain block that a deep reorganisation turned
// into a pruned side branch could be) is simply not found, as if looked up
// a moment later.
type Ref struct {
	Hash   Hash
	Height uint64
	Main   bool
	Header *Header // nil: only the archive has it
	Block  *Block  // nil: only the archive has it
}

// Load returns r's block: the chain's copy, or else the archive's.
func (r Ref) Load(a Archive) (*Block, error) {
	if r.Block != nil {
		return r.Block, nil
	}
	if a == nil {
		return nil, ErrNotKnown
	}
	return a.BlockByHash(r.Hash)
}

// LoadHeader returns r's header: the chain's copy, or else the archive's.
func (r Ref) LoadHeader(a Archive) (Header, error) {
	if r.Header != nil {
		return *r.Header, nil
	}
	if a == nil {
		return Header{}, ErrNotKnown
	}
	return a.HeaderByHash(r.Hash)
}

// refOf is the Ref of an entry.
func (c *Chain) refOf(e *entry) Ref {
	hdr := e.header // a copy: the Ref is read without the owner's lock
	return Ref{Hash: e.hash, Height: e.height, Main: c.onMain(e), Header: &hdr, Block: e.block}
}

// archivedRef is the Ref of a main-chain block below the base, which only
// the archive holds (the genesis block follows from the parameters).
func (c *Chain) archivedRef(h Hash, height uint64) Ref {
	r := Ref{Hash: h, Height: height, Main: true}
	if h == c.genesis {
		g := c.params.Genesis()
		r.Header, r.Block = &g.Header, g
	}
	return r
}

// RefOf returns the Ref of a known block, on the main chain or not.
func (c *Chain) RefOf(h Hash) (Ref, bool) {
	if e, ok := c.index[h]; ok {
		return c.refOf(e), true
	}
	if height, ok := c.archived(h); ok {
		return c.archivedRef(h, height), true
	}
	return Ref{}, false
}

// MainRef returns the Ref of the main-chain block at height.
func (c *Chain) MainRef(height uint64) (Ref, bool) {
	if e := c.at(height); e != nil {
		return c.refOf(e), true
	}
	h, ok := c.HashAt(height)
	if !ok {
		return Ref{}, false
	}
	return c.archivedRef(h, height), true
}

// MainRefs returns the Refs of up to limit main-chain blocks from height
// from down (from the tip if from is above it), newest first. The hashes
// of blocks below the base come from the archive in one read; where it
// cannot answer, the list ends above them.
func (c *Chain) MainRefs(from uint64, limit int) []Ref {
	if limit <= 0 {
		return nil
	}
	h := min(from, c.Height())
	var out []Ref
	for ; h >= c.base && len(out) < limit; h-- {
		out = append(out, c.refOf(c.at(h)))
		if h == 0 {
			return out
		}
	}
	if len(out) == limit || h >= c.base {
		return out
	}
	// Heights h, h-1, ... below the base.
	n := min(uint64(limit-len(out)), h+1)
	lo := h + 1 - n
	hashes := c.archive.MainHashes(lo, int(n))
	if uint64(len(hashes)) != n {
		return out
	}
	for i := len(hashes) - 1; i >= 0; i-- {
		out = append(out, c.archivedRef(hashes[i], lo+uint64(i)))
	}
	return out
}

// ReadingRef returns the Ref of the main-chain block holding a reading.
func (c *Chain) ReadingRef(id Hash) (Ref, bool) {
	height, ok := c.mainReading(id)
	if !ok {
		return Ref{}, false
	}
	return c.MainRef(height)
}

// ReadingIndex returns the index of the reading with id in b.
func ReadingIndex(b *Block, id Hash) (int, bool) {
	for i := range b.Readings {
		if b.Readings[i].ID() == id {
			return i, true
		}
	}
	return 0, false
}

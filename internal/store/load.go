package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"runtime"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// State is everything a node needs to rebuild its in-memory chain and
// pending set at start.
type State struct {
	// Main is the main chain from height 1 to the tip, in order (the
	// genesis block is not included: it follows from the parameters).
	Main []*chain.Block
	// Side are the blocks off the main chain, parents before children.
	Side []*chain.Block
	// Pending are the pending readings, oldest first.
	Pending []chain.Reading
	// Final is, from LoadRecent, the block at the final height the last
	// commit recorded, whose ancestors were not read: Main then starts
	// above it. Nil from Load, and from LoadRecent on a store that
	// recorded no final height (Main then starts at height 1).
	Final *chain.Block
}

// Load reads the whole store from one consistent snapshot and checks it
// quickly: every main-chain height from genesis to the recorded tip is
// present, each block decodes, is stored under its own header hash, its
// readings match its header's readings root (which commits to every byte
// of the body, so a body changed on disk is caught), has the
// height of its index entry and the previous main block as its parent, the
// tip record names the last main block, and every side block's parent is
// stored. It does not re-check proof of work, Merkle roots or signatures
// (that is `p2pchain verify`). Any fault is a *CorruptError. Pending readings
// that are already in the main chain are left out.
func (s *Store) Load() (st *State, err error) {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.db == nil {
		return nil, ErrClosed
	}
	defer s.recoverPanic(&err)
	snap := s.db.NewSnapshot()
	defer snap.Close()

	tipHash, tipHeight, err := s.readTip(snap)
	if err != nil {
		return nil, err
	}

	// The height index: contiguous from genesis to the tip.
	hashes := make([]chain.Hash, 0, tipHeight+1)
	err = s.scan(snap, prefixHeight, nil, func(k, v []byte) error {
		if len(k) != 8 || len(v) != chain.HashSize {
			return corrupt(s.path, "height index entry of %d+%d bytes", len(k), len(v))
		}
		if h := binary.BigEndian.Uint64(k); h != uint64(len(hashes)) {
			return corrupt(s.path, "main chain: no block at height %d (next indexed height is %d)", len(hashes), h)
		}
		hashes = append(hashes, chain.Hash(v))
		return nil
	})
	if err != nil {
		return nil, err
	}
	switch {
	case len(hashes) == 0 || hashes[0] != s.genesis:
		return nil, corrupt(s.path, "main chain: height 0 is not the genesis block")
	case uint64(len(hashes)-1) != tipHeight:
		return nil, corrupt(s.path, "main chain ends at height %d, the tip record says %d", len(hashes)-1, tipHeight)
	case hashes[tipHeight] != tipHash:
		return nil, corrupt(s.path, "tip record %s is not the last main block %s", tipHash.Short(), hashes[tipHeight].Short())
	}

	blocks, err := s.loadBlocks(snap)
	if err != nil {
		return nil, err
	}

	st = &State{Main: make([]*chain.Block, 0, tipHeight)}
	for h := uint64(1); h <= tipHeight; h++ {
		b, ok := blocks[hashes[h]]
		switch {
		case !ok:
			return nil, corrupt(s.path, "main block %s at height %d is missing", hashes[h].Short(), h)
		case b.Header.Height != h:
			return nil, corrupt(s.path, "block %s is indexed at height %d but has height %d", hashes[h].Short(), h, b.Header.Height)
		case b.Header.Parent != hashes[h-1]:
			return nil, corrupt(s.path, "main block at height %d does not link to the block at height %d", h, h-1)
		}
		st.Main = append(st.Main, b)
		delete(blocks, hashes[h])
	}
	if g, ok := blocks[s.genesis]; !ok || g.Header != s.params.Genesis().Header {
		return nil, corrupt(s.path, "the genesis block is missing or differs")
	}
	delete(blocks, s.genesis)

	// Side blocks, lowest first: a parent is always one lower than its child.
	type side struct {
		hash chain.Hash
		b    *chain.Block
	}
	sides := make([]side, 0, len(blocks))
	for h, b := range blocks {
		sides = append(sides, side{h, b})
	}
	slices.SortFunc(sides, func(a, b side) int {
		if c := cmp.Compare(a.b.Header.Height, b.b.Header.Height); c != 0 {
			return c
		}
		return bytes.Compare(a.hash[:], b.hash[:])
	})
	for _, sb := range sides {
		if !s.parentStored(sb.b, blocks, hashes) {
			return nil, corrupt(s.path, "side block %s at height %d: parent %s is not stored",
				sb.hash.Short(), sb.b.Header.Height, sb.b.Header.Parent.Short())
		}
		st.Side = append(st.Side, sb.b)
	}

	st.Pending, err = s.loadPending(snap)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// parentStored reports whether the parent of side block b is stored: a side
// block one lower in sides, or the main block one lower in hashes.
func (s *Store) parentStored(b *chain.Block, sides map[chain.Hash]*chain.Block, hashes []chain.Hash) bool {
	h, p := b.Header.Height, b.Header.Parent
	if h == 0 {
		return false
	}
	if pb, ok := sides[p]; ok {
		return pb.Header.Height == h-1
	}
	return h-1 < uint64(len(hashes)) && hashes[h-1] == p
}

// rawBlock is a stored block not yet decoded.
type rawBlock struct {
	key  chain.Hash
	data []byte
}

// loadBlocks decodes every stored block, on all cores, and checks that each
// is stored under its header hash.
func (s *Store) loadBlocks(r reader) (map[chain.Hash]*chain.Block, error) {
	var raws []rawBlock
	var arena []byte
	err := s.scan(r, prefixBlock, nil, func(k, v []byte) error {
		if len(k) != chain.HashSize {
			return corrupt(s.path, "block key of %d bytes", len(k))
		}
		if len(arena)+len(v) > cap(arena) {
			arena = make([]byte, 0, max(1<<20, len(v)))
		}
		start := len(arena)
		arena = append(arena, v...)
		raws = append(raws, rawBlock{key: chain.Hash(k), data: arena[start:len(arena):len(arena)]})
		return nil
	})
	if err != nil {
		return nil, err
	}

	decoded := make([]*chain.Block, len(raws))
	workers := min(runtime.GOMAXPROCS(0), max(1, len(raws)/1024))
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					errs[w] = corrupt(s.path, "decoding blocks: %v", r)
				}
			}()
			for i := w; i < len(raws); i += workers {
				b, err := chain.DecodeBlock(raws[i].data, s.params.MaxReadings)
				if err != nil {
					errs[w] = corrupt(s.path, "block %s: %v", raws[i].key.Short(), err)
					return
				}
				if h := b.Hash(); h != raws[i].key {
					errs[w] = corrupt(s.path, "block stored as %s has hash %s", raws[i].key.Short(), h.Short())
					return
				}
				if uint64(len(b.Readings)) != uint64(b.Header.Count) || b.ReadingsRoot() != b.Header.Root {
					errs[w] = corrupt(s.path, "block %s: its readings do not match its header's readings root", raws[i].key.Short())
					return
				}
				decoded[i] = b
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	blocks := make(map[chain.Hash]*chain.Block, len(raws))
	for i, r := range raws {
		blocks[r.key] = decoded[i]
	}
	return blocks, nil
}

// loadPending returns the pending readings oldest first, without those
// already in the main chain's reading index.
func (s *Store) loadPending(r reader) ([]chain.Reading, error) {
	type pending struct {
		seq uint64
		r   chain.Reading
	}
	var ps []pending
	err := s.scanPending(r, func(seq uint64, rd chain.Reading) { ps = append(ps, pending{seq, rd}) })
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ps, func(a, b pending) int { return cmp.Compare(a.seq, b.seq) })
	out := make([]chain.Reading, 0, len(ps))
	for _, p := range ps {
		_, err := s.get(r, keyReading(p.r.ID()))
		if err == nil {
			continue // mined already
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		out = append(out, p.r)
	}
	return out, nil
}

// scanPending calls fn for each pending reading in id order.
func (s *Store) scanPending(r reader, fn func(seq uint64, rd chain.Reading)) error {
	return s.scan(r, prefixPending, nil, func(k, v []byte) error {
		if len(k) != chain.HashSize || len(v) < 8 {
			return corrupt(s.path, "pending entry of %d+%d bytes", len(k), len(v))
		}
		var rd chain.Reading
		if err := rd.UnmarshalBinary(v[8:]); err != nil {
			return corrupt(s.path, "pending reading %s: %v", chain.Hash(k).Short(), err)
		}
		if id := rd.ID(); id != chain.Hash(k) {
			return corrupt(s.path, "pending reading stored as %s has id %s", chain.Hash(k).Short(), id.Short())
		}
		fn(binary.BigEndian.Uint64(v), rd)
		return nil
	})
}

// sideIndex adds to b the changes of c to the side index: the blocks that
// end the commit off the main chain are indexed, those that end it on the
// main chain or pruned are not. The blocks c stores (Blocks) have no entry
// yet, so only the side ones are written, and a new main block costs
// nothing.
func sideIndex(b *pebble.Batch, c Commit) {
	side := make(map[chain.Hash]bool, len(c.Blocks)) // true: side; false: main or gone
	new := make(map[chain.Hash]bool, len(c.Blocks))
	for _, blk := range c.Blocks {
		side[blk.Hash()], new[blk.Hash()] = true, true
	}
	for _, u := range c.Updates {
		if u == nil {
			continue
		}
		for _, h := range u.Pruned {
			side[h] = false
		}
		if !u.TipChanged {
			continue
		}
		for _, blk := range u.Disconnected {
			side[blk.Hash()] = true
		}
		for _, blk := range u.Connected {
			side[blk.Hash()] = false
		}
	}
	for h, isSide := range side {
		switch {
		case isSide:
			b.Set(keySide(h), nil, nil)
		case !new[h]:
			b.Delete(keySide(h), nil)
		}
	}
}

// finalOf returns the highest final height the updates record.
func finalOf(us []*chain.Update) uint64 {
	var final uint64
	for _, u := range us {
		if u != nil {
			final = max(final, u.Final)
		}
	}
	return final
}

// LoadRecent is what a node reads at start: Load for the part of the chain
// that can still change, so that a restart takes a time that does not grow
// with the chain. It reads the block at the final height the last commit
// recorded (State.Final), the main chain above it (State.Main) and the side
// blocks, each checked as Load checks it, and the pending readings; the
// blocks below the final block are left on disk, where the chain reads them
// when asked (chain.Archive). It finds the side blocks through the side
// index; in a store written before the index, once, by walking the block
// records (decoding only those above the final height that are not on the
// main chain), after which it writes the index. A store that recorded no
// final height, or one of an authority
// network (whose node replays every block's membership changes), is read
// whole, as Load reads it.
func (s *Store) LoadRecent() (*State, error) {
	v, err := s.lookup(keyFinal)
	if errors.Is(err, ErrNotFound) || (err == nil && s.params.Consensus == chain.Authority) {
		return s.Load()
	}
	if err != nil {
		return nil, err
	}
	if len(v) != 8 {
		return nil, corrupt(s.path, "final height record of %d bytes", len(v))
	}
	final := binary.BigEndian.Uint64(v)
	if final == 0 {
		return s.Load()
	}
	_, err = s.lookup(keySideIndex)
	indexed := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	st, err := s.loadFrom(final, indexed)
	if err != nil || indexed {
		return st, err
	}
	// A store written before the side index: index its side blocks, once.
	err = s.write(func(b *pebble.Batch) error {
		for _, blk := range st.Side {
			b.Set(keySide(blk.Hash()), nil, nil)
		}
		return b.Set(keySideIndex, nil, nil)
	}, nil)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// loadFrom is LoadRecent from the final height final (above 0). With
// indexed, the side index names the side blocks; otherwise every block
// record is looked at.
func (s *Store) loadFrom(final uint64, indexed bool) (st *State, err error) {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.db == nil {
		return nil, ErrClosed
	}
	defer s.recoverPanic(&err)
	snap := s.db.NewSnapshot()
	defer snap.Close()

	tipHash, tipHeight, err := s.readTip(snap)
	if err != nil {
		return nil, err
	}
	if final > tipHeight {
		return nil, corrupt(s.path, "the final height %d is above the tip at %d", final, tipHeight)
	}

	// The height index from the final block: contiguous up to the tip.
	hashes := make([]chain.Hash, 0, tipHeight-final+1)
	err = s.scan(snap, prefixHeight, keyHeight(final)[1:], func(k, v []byte) error {
		if len(k) != 8 || len(v) != chain.HashSize {
			return corrupt(s.path, "height index entry of %d+%d bytes", len(k), len(v))
		}
		if h := binary.BigEndian.Uint64(k); h != final+uint64(len(hashes)) {
			return corrupt(s.path, "main chain: no block at height %d (next indexed height is %d)", final+uint64(len(hashes)), h)
		}
		hashes = append(hashes, chain.Hash(v))
		return nil
	})
	if err != nil {
		return nil, err
	}
	switch {
	case uint64(len(hashes)) != tipHeight-final+1:
		return nil, corrupt(s.path, "main chain ends at height %d, the tip record says %d", final+uint64(len(hashes))-1, tipHeight)
	case hashes[len(hashes)-1] != tipHash:
		return nil, corrupt(s.path, "tip record %s is not the last main block %s", tipHash.Short(), hashes[len(hashes)-1].Short())
	}

	// The final block and the main chain above it.
	st = &State{Main: make([]*chain.Block, 0, tipHeight-final)}
	main := make(map[chain.Hash]bool, len(hashes))
	for i, h := range hashes {
		height := final + uint64(i)
		b, err := s.block(snap, h)
		switch {
		case errors.Is(err, ErrNotFound):
			return nil, corrupt(s.path, "main block %s at height %d is missing", h.Short(), height)
		case err != nil:
			return nil, err
		case b.Header.Height != height:
			return nil, corrupt(s.path, "block %s is indexed at height %d but has height %d", h.Short(), height, b.Header.Height)
		case i > 0 && b.Header.Parent != hashes[i-1]:
			return nil, corrupt(s.path, "main block at height %d does not link to the block at height %d", height, height-1)
		}
		if i == 0 {
			st.Final = b
		} else {
			st.Main = append(st.Main, b)
		}
		main[h] = true
	}

	// Side blocks: those above the final height that are not main.
	var sides []*chain.Block
	if indexed {
		sides, err = s.indexedSides(snap, final, main)
	} else {
		sides, err = s.scanSides(snap, final, main)
	}
	if err != nil {
		return nil, err
	}
	slices.SortFunc(sides, func(a, b *chain.Block) int {
		if c := cmp.Compare(a.Header.Height, b.Header.Height); c != 0 {
			return c
		}
		ha, hb := a.Hash(), b.Hash()
		return bytes.Compare(ha[:], hb[:])
	})
	byHash := make(map[chain.Hash]*chain.Block, len(sides))
	for _, b := range sides {
		byHash[b.Hash()] = b
	}
	for _, b := range sides {
		h, p := b.Header.Height, b.Header.Parent
		ok := false
		if pb, found := byHash[p]; found {
			ok = pb.Header.Height == h-1
		} else if h-1 >= final && h-1-final < uint64(len(hashes)) {
			ok = hashes[h-1-final] == p
		}
		if !ok && h-1 <= final {
			// A parent at or below the final height that is not main: a
			// branch that can no longer win, whose blocks were not read.
			_, err := s.get(snap, keyBlock(p))
			if err != nil && !errors.Is(err, ErrNotFound) {
				return nil, err
			}
			ok = err == nil
		}
		if !ok {
			return nil, corrupt(s.path, "side block %s at height %d: parent %s is not stored",
				b.Hash().Short(), h, p.Short())
		}
		st.Side = append(st.Side, b)
	}

	st.Pending, err = s.loadPending(snap)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// scanSides returns the side blocks above the final height: the blocks
// above it that are not main (in main). It looks at every block record,
// and reads only the height of those it skips.
func (s *Store) scanSides(r reader, final uint64, main map[chain.Hash]bool) ([]*chain.Block, error) {
	var sides []*chain.Block
	err := s.scan(r, prefixBlock, nil, func(k, v []byte) error {
		if len(k) != chain.HashSize || len(v) < chain.HeaderSize {
			return corrupt(s.path, "block record of %d+%d bytes", len(k), len(v))
		}
		if binary.BigEndian.Uint64(v[4:12]) <= final || main[chain.Hash(k)] {
			return nil
		}
		b, err := s.checkBlock(chain.Hash(k), append([]byte(nil), v...)) // v is the engine's, for the call only
		if err != nil {
			return err
		}
		sides = append(sides, b)
		return nil
	})
	return sides, err
}

// indexedSides is scanSides through the side index. An entry that names a
// main block, or no block, is passed over: the index only saves the walk
// over every block (a binary from before the index may have written the
// store since, which LoadRecent cannot tell).
func (s *Store) indexedSides(r reader, final uint64, main map[chain.Hash]bool) ([]*chain.Block, error) {
	var hashes []chain.Hash
	err := s.scan(r, prefixSide, nil, func(k, _ []byte) error {
		if len(k) != chain.HashSize {
			return corrupt(s.path, "side index key of %d bytes", len(k))
		}
		if h := chain.Hash(k); !main[h] {
			hashes = append(hashes, h)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var sides []*chain.Block
	for _, h := range hashes {
		data, err := s.get(r, keyBlock(h))
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if len(data) < chain.HeaderSize {
			return nil, corrupt(s.path, "block record of %d+%d bytes", len(h), len(data))
		}
		if binary.BigEndian.Uint64(data[4:12]) <= final {
			continue
		}
		b, err := s.checkBlock(h, data)
		if err != nil {
			return nil, err
		}
		sides = append(sides, b)
	}
	return sides, nil
}

package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"runtime"
	"slices"
	"sync"

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

	tip, err := s.get(snap, keyTip)
	if err != nil {
		return nil, s.missing(err, "the tip record")
	}
	if len(tip) != chain.HashSize+8 {
		return nil, corrupt(s.path, "tip record of %d bytes", len(tip))
	}
	tipHash, tipHeight := chain.Hash(tip[:chain.HashSize]), binary.BigEndian.Uint64(tip[chain.HashSize:])

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

package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// Tip returns the hash of the main-chain tip (the genesis block of a new
// store).
func (s *Store) Tip() chain.Hash { return s.tip.Load().hash }

// Height returns the height of the main-chain tip.
func (s *Store) Height() uint64 { return s.tip.Load().height }

// Genesis returns the hash of the store's genesis block.
func (s *Store) Genesis() chain.Hash { return s.genesis }

// BlockByHash returns a stored block of any branch, or ErrNotFound.
func (s *Store) BlockByHash(h chain.Hash) (b *chain.Block, err error) {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.db == nil {
		return nil, ErrClosed
	}
	defer s.recoverPanic(&err)
	return s.block(s.db, h)
}

// HeaderByHash returns a stored block's header (any branch), or
// ErrNotFound: the block's first chain.HeaderSize bytes, checked against
// its hash; the body is neither decoded nor checked, so a chain of headers
// costs a read and a hash per block.
func (s *Store) HeaderByHash(h chain.Hash) (hdr chain.Header, err error) {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.db == nil {
		return hdr, ErrClosed
	}
	defer s.recoverPanic(&err)
	v, closer, err := s.db.Get(keyBlock(h))
	if errors.Is(err, pebble.ErrNotFound) {
		return hdr, ErrNotFound
	}
	if err != nil {
		return hdr, s.readErr(err)
	}
	defer closer.Close()
	if len(v) < chain.HeaderSize {
		return hdr, s.damaged("block %s: %d bytes is shorter than a header", h.Short(), len(v))
	}
	if err := hdr.UnmarshalBinary(v[:chain.HeaderSize]); err != nil {
		return hdr, s.damaged("block %s: %v", h.Short(), err)
	}
	if got := hdr.Hash(); got != h {
		return hdr, s.damaged("block stored as %s has hash %s", h.Short(), got.Short())
	}
	return hdr, nil
}

func (s *Store) block(r reader, h chain.Hash) (*chain.Block, error) {
	data, err := s.get(r, keyBlock(h))
	if err != nil {
		return nil, err
	}
	return s.checkBlock(h, data)
}

// damaged fails the store for damage a read found (corrupt's text): the
// node stops, as for any other read it could not answer (fault.go).
func (s *Store) damaged(format string, args ...any) error {
	return s.fail(corrupt(s.path, format, args...))
}

// checkBlock decodes the block stored under h and checks it against h and
// its header's readings root.
func (s *Store) checkBlock(h chain.Hash, data []byte) (*chain.Block, error) {
	b, err := chain.DecodeBlock(data, s.params.MaxReadings)
	if err != nil {
		return nil, s.damaged("block %s: %v", h.Short(), err)
	}
	if got := b.Hash(); got != h {
		return nil, s.damaged("block stored as %s has hash %s", h.Short(), got.Short())
	}
	// The header's readings root commits to every byte of the body: a body
	// changed on disk is caught here, before it is served or sent.
	if uint64(len(b.Readings)) != uint64(b.Header.Count) || b.ReadingsRoot() != b.Header.Root {
		return nil, s.damaged("block %s: its readings do not match its header's readings root", h.Short())
	}
	return b, nil
}

// BlockAtHeight returns the main-chain block at height (0: genesis), or
// ErrNotFound above the tip.
func (s *Store) BlockAtHeight(height uint64) (b *chain.Block, err error) {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.db == nil {
		return nil, ErrClosed
	}
	defer s.recoverPanic(&err)
	snap := s.db.NewSnapshot()
	defer snap.Close()
	return s.blockAt(snap, height)
}

func (s *Store) blockAt(r reader, height uint64) (*chain.Block, error) {
	v, err := s.get(r, keyHeight(height))
	if err != nil {
		return nil, err
	}
	if len(v) != chain.HashSize {
		return nil, corrupt(s.path, "height index entry %d of %d bytes", height, len(v))
	}
	b, err := s.block(r, chain.Hash(v))
	if errors.Is(err, ErrNotFound) {
		return nil, corrupt(s.path, "main block %s at height %d is missing", chain.Hash(v).Short(), height)
	}
	return b, err
}

// ReadingBlock returns the hash of the main-chain block holding the reading
// with id, and false if no main-chain block holds it. If the store cannot
// be read (a disk error, damage) it answers false too, and fails: Err
// reports it, and the store writes nothing more, so that nothing decided
// on that false answer is stored.
func (s *Store) ReadingBlock(id chain.Hash) (chain.Hash, bool) {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.db == nil {
		return chain.Hash{}, false
	}
	var v []byte
	err := func() (err error) {
		defer s.recoverPanic(&err)
		v, err = s.get(s.db, keyReading(id))
		return err
	}()
	if err == nil && len(v) != chain.HashSize {
		err = corrupt(s.path, "reading index entry of %d bytes", len(v))
	}
	if err != nil {
		s.lookupFailed(err)
		return chain.Hash{}, false
	}
	return chain.Hash(v), true
}

// Walk calls fn for each main-chain block from height from up to the tip, in
// order, on a consistent snapshot: Commits made meanwhile are not seen. It
// stops at the first error of fn and returns it. A missing height or a block
// that does not decode or does not link to the previous one is a
// *CorruptError.
func (s *Store) Walk(from uint64, fn func(*chain.Block) error) (err error) {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.db == nil {
		return ErrClosed
	}
	defer s.recoverPanic(&err)
	snap := s.db.NewSnapshot()
	defer snap.Close()
	type entry struct {
		height uint64
		hash   chain.Hash
	}
	// Read the index in pages, so the walk holds few hashes at a time.
	const page = 1024
	next := from
	var prev *chain.Hash
	for {
		var entries []entry
		err := s.scan(snap, prefixHeight, keyHeight(next)[1:], func(k, v []byte) error {
			if len(k) != 8 || len(v) != chain.HashSize {
				return corrupt(s.path, "height index entry of %d+%d bytes", len(k), len(v))
			}
			entries = append(entries, entry{height: binary.BigEndian.Uint64(k), hash: chain.Hash(v)})
			if len(entries) == page {
				return errPageFull
			}
			return nil
		})
		if err != nil && !errors.Is(err, errPageFull) {
			return err
		}
		for _, e := range entries {
			if e.height != next {
				return corrupt(s.path, "main chain: no block at height %d", next)
			}
			b, err := s.block(snap, e.hash)
			if errors.Is(err, ErrNotFound) {
				return corrupt(s.path, "main block %s at height %d is missing", e.hash.Short(), e.height)
			}
			if err != nil {
				return err
			}
			if b.Header.Height != e.height || (prev != nil && b.Header.Parent != *prev) {
				return corrupt(s.path, "main block at height %d does not link to the block at height %d", e.height, e.height-1)
			}
			if err := fn(b); err != nil {
				return err
			}
			h := e.hash
			prev = &h
			next++
		}
		if len(entries) < page {
			return nil
		}
	}
}

var errPageFull = fmt.Errorf("page full")

// BlocksWithPrefix returns the hashes of stored blocks (any branch) that
// start with p, in order, at most limit of them: a seek in the ordered block
// index, O(log blocks + limit).
func (s *Store) BlocksWithPrefix(p chain.HashPrefix, limit int) ([]chain.Hash, error) {
	return s.withPrefix(p, limit, prefixBlock)
}

// ReadingsWithPrefix returns the ids of main-chain and pending readings that
// start with p, in order, at most limit of them: seeks in the ordered
// reading and pending indexes, O(log readings + limit).
func (s *Store) ReadingsWithPrefix(p chain.HashPrefix, limit int) ([]chain.Hash, error) {
	return s.withPrefix(p, limit, prefixReading, prefixPending)
}

// withPrefix returns up to limit hashes that start with p among the keys of
// the given hash-keyed indexes, in order, without repeats.
func (s *Store) withPrefix(p chain.HashPrefix, limit int, indexes ...byte) (out []chain.Hash, err error) {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.db == nil {
		return nil, ErrClosed
	}
	defer s.recoverPanic(&err)
	if limit <= 0 {
		return nil, nil
	}
	snap := s.db.NewSnapshot()
	defer snap.Close()
	low := p.Low()
	seen := map[chain.Hash]bool{}
	for _, index := range indexes {
		n := 0
		err := s.scan(snap, index, low[:], func(k, _ []byte) error {
			if len(k) != chain.HashSize {
				return corrupt(s.path, "index %q key of %d bytes", index, len(k))
			}
			h := chain.Hash(k)
			if !p.Matches(h) || n == limit {
				return errPageFull // past the prefix: the keys are in order
			}
			n++
			if !seen[h] {
				seen[h] = true
				out = append(out, h)
			}
			return nil
		})
		if err != nil && !errors.Is(err, errPageFull) {
			return nil, err
		}
	}
	slices.SortFunc(out, func(a, b chain.Hash) int { return bytes.Compare(a[:], b[:]) })
	return out[:min(len(out), limit)], nil
}

// MainHash returns the hash of the main-chain block at height, and false
// above the tip (or if the store cannot be read: then the store fails, as
// in ReadingBlock). With MainHeight, it is how the chain (chain.Archive)
// finds the final blocks it keeps no entry for.
func (s *Store) MainHash(height uint64) (chain.Hash, bool) {
	v, err := s.lookup(keyHeight(height))
	if err == nil && len(v) != chain.HashSize {
		err = corrupt(s.path, "height index entry %d of %d bytes", height, len(v))
	}
	if err != nil {
		s.lookupFailed(err)
		return chain.Hash{}, false
	}
	return chain.Hash(v), true
}

// MainHashes returns the hashes of up to max main-chain blocks from height
// from on, in height order, from one walk of the height index: fewer where
// the chain ends, or where the index cannot be read (then the store fails,
// as in ReadingBlock) or has a gap.
func (s *Store) MainHashes(from uint64, max int) []chain.Hash {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.db == nil || max <= 0 {
		return nil
	}
	var out []chain.Hash
	err := func() (err error) {
		defer s.recoverPanic(&err)
		return s.scan(s.db, prefixHeight, keyHeight(from)[1:], func(k, v []byte) error {
			if len(k) != 8 || len(v) != chain.HashSize || binary.BigEndian.Uint64(k) != from+uint64(len(out)) {
				return errPageFull
			}
			out = append(out, chain.Hash(v))
			if len(out) == max {
				return errPageFull
			}
			return nil
		})
	}()
	if err != nil && !errors.Is(err, errPageFull) {
		s.lookupFailed(err)
		return nil
	}
	return out
}

// MainHeight returns the height of the main-chain block h, and false if h
// is not stored or not on the main chain (or the store cannot be read:
// then the store fails, as in ReadingBlock). It reads the stored block's
// header and the height index at its height.
func (s *Store) MainHeight(h chain.Hash) (uint64, bool) {
	hd, err := s.HeaderByHash(h)
	if err != nil {
		s.lookupFailed(err)
		return 0, false
	}
	if m, ok := s.MainHash(hd.Height); !ok || m != h {
		return 0, false
	}
	return hd.Height, true
}

// lookup returns the value of key, for the lookups that answer false
// rather than an error.
func (s *Store) lookup(key []byte) (v []byte, err error) {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.db == nil {
		return nil, ErrClosed
	}
	defer s.recoverPanic(&err)
	return s.get(s.db, key)
}

package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// Commit is one atomic change of the store: what the node must persist after
// its chain accepted blocks and its pending set changed.
type Commit struct {
	// Blocks are newly accepted blocks, of any branch.
	Blocks []*chain.Block
	// Updates are the chain's updates for those blocks, in the order the
	// chain produced them. Those with TipChanged move the main-chain
	// indexes; the others change no index.
	Updates []*chain.Update
	// PendingAdd are readings that became pending (submitted, or returned
	// by a reorganisation), oldest first.
	PendingAdd []chain.Reading
	// PendingRemove are ids of readings that left the pending set.
	PendingRemove []chain.Hash
}

// Commit applies c in one durable transaction: it returns after the change
// is on disk, and after a crash the store holds all of it or none of it.
//
// The blocks of every update's Pruned are deleted. For every update with
// TipChanged, the blocks of Disconnected leave the
// height and reading indexes and the blocks of Connected enter them; the tip
// is recorded with them. Each such update must follow the stored tip (the
// first disconnected block is the tip, or the first connected block is its
// child), as the chain's updates always do: otherwise Commit writes nothing
// and returns ErrBadCommit. A connected block that is neither in Blocks nor
// stored already is stored too.
func (s *Store) Commit(c Commit) error {
	var t tipRecord
	return s.write(func(b *pebble.Batch) error { return s.fillCommit(b, c, &t) }, func() { s.tip.Store(&t) })
}

// Apply is Commit with the commit's fields as arguments: the shape in which
// the node (package node) records its changes, so that a *Store is the
// node's store as it is.
func (s *Store) Apply(blocks []*chain.Block, updates []*chain.Update, pendingAdd []chain.Reading, pendingRemove []chain.Hash) error {
	return s.Commit(Commit{Blocks: blocks, Updates: updates, PendingAdd: pendingAdd, PendingRemove: pendingRemove})
}

// fillCommit adds c to b and leaves the tip it leads to in tip.
func (s *Store) fillCommit(b *pebble.Batch, c Commit, tip *tipRecord) error {
	stored := make(map[chain.Hash]bool, len(c.Blocks))
	for _, blk := range c.Blocks {
		if blk == nil {
			return errors.New("chain store: commit of a nil block")
		}
		h := blk.Hash()
		if err := putBlock(b, h, blk); err != nil {
			return err
		}
		stored[h] = true
	}

	t := *s.tip.Load()
	for _, u := range c.Updates {
		if u == nil {
			continue
		}
		// Side blocks the chain dropped (below the final depth, or over the
		// side-branch caps) leave the store in the same transaction.
		for _, h := range u.Pruned {
			b.Delete(keyBlock(h), nil)
			delete(stored, h)
		}
		if !u.TipChanged {
			continue
		}
		for _, blk := range u.Disconnected {
			if h := blk.Hash(); h != t.hash || blk.Header.Height != t.height {
				return fmt.Errorf("chain store: %w: disconnects %s at height %d, tip is %s at %d",
					ErrBadCommit, h.Short(), blk.Header.Height, t.hash.Short(), t.height)
			}
			b.Delete(keyHeight(blk.Header.Height), nil)
			ids := blk.ReadingIDs()
			for _, id := range ids {
				b.Delete(keyReading(id), nil)
			}
			indexSubjects(b, blk, ids, false)
			t = tipRecord{hash: blk.Header.Parent, height: blk.Header.Height - 1}
		}
		for _, blk := range u.Connected {
			if blk.Header.Parent != t.hash || blk.Header.Height != t.height+1 {
				return fmt.Errorf("chain store: %w: connects block at height %d on %s, tip is %s at %d",
					ErrBadCommit, blk.Header.Height, blk.Header.Parent.Short(), t.hash.Short(), t.height)
			}
			h := blk.Hash()
			if !stored[h] {
				if err := s.ensureBlock(b, h, blk); err != nil {
					return err
				}
				stored[h] = true
			}
			b.Set(keyHeight(blk.Header.Height), h[:], nil)
			ids := blk.ReadingIDs()
			for _, id := range ids {
				b.Set(keyReading(id), h[:], nil)
			}
			indexSubjects(b, blk, ids, true)
			t = tipRecord{hash: h, height: blk.Header.Height}
		}
		if t.hash != u.Hash {
			return fmt.Errorf("chain store: %w: update of %s leaves the tip at %s", ErrBadCommit, u.Hash.Short(), t.hash.Short())
		}
	}
	if old := s.tip.Load(); t != *old {
		b.Set(keyTip, encodeTip(t.hash, t.height), nil)
	}
	if final := finalOf(c.Updates); final > 0 {
		b.Set(keyFinal, binary.BigEndian.AppendUint64(nil, final), nil)
	}
	sideIndex(b, c)
	for _, r := range c.PendingAdd {
		if err := s.putPending(b, r); err != nil {
			return err
		}
	}
	for _, id := range c.PendingRemove {
		b.Delete(keyPending(id), nil)
	}
	*tip = t
	return nil
}

// write fills a new batch and commits it durably with the next commit count,
// holding the store open and the write lock throughout; committed, if not
// nil, runs under the same lock once the batch is on disk. An empty batch is
// not written.
func (s *Store) write(fill func(b *pebble.Batch) error, committed func()) (err error) {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.db == nil {
		return ErrClosed
	}
	defer s.recoverPanic(&err)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.Err(); err != nil {
		return err // failed (fault.go), or the engine stopped: write nothing
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := fill(b); err != nil {
		return err
	}
	if b.Empty() {
		return nil
	}
	if err := s.CheckSpace(); err != nil {
		return err // nothing written: the same write succeeds once space returns
	}
	if err := s.commitCounted(b); err != nil {
		return err
	}
	if committed != nil {
		committed()
	}
	return nil
}

// commitCounted commits b durably with the next commit count, then records
// the count in the commits file. s.wmu must be held. A failure of the
// engine's commit stops the store (recoverWrite).
func (s *Store) commitCounted(b *pebble.Batch) (err error) {
	defer s.recoverWrite(&err)
	n := s.commits + 1
	if err := b.Set(keyCommits, binary.BigEndian.AppendUint64(nil, n), nil); err != nil {
		return s.writeErr(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return s.writeErr(err)
	}
	s.commits = n
	s.writeCommitsFile(n)
	return nil
}

// writeCommitsFile records n in the commits file: the count (8 bytes, BE)
// and its CRC-32C (4 bytes, BE). s.wmu must be held (or the store not yet
// shared, at Open).
//
// Best effort, no sync: the check at Open only trusts a well-formed count
// that is ahead of the store, which a crash or power cut cannot cause. The
// file is opened once and its 12 bytes are overwritten in place, one
// pwrite per commit (reopening and truncating it each time cost 8% of a
// busy node's CPU). The count written is always one the store has already
// synced, so whatever a crash leaves (the previous count, this one, or a
// torn mix of the two, which the checksum rejects as damage) is never
// ahead of the store: the argument of checkCommits still holds.
func (s *Store) writeCommitsFile(n uint64) {
	if s.commitsF == nil {
		f, err := s.efs.OpenReadWrite(s.fs.PathJoin(s.path, commitsFile), vfs.WriteCategoryUnspecified)
		if err != nil {
			s.commitsFileFailed(err)
			return
		}
		s.commitsF = f
	}
	if _, err := s.commitsF.WriteAt(encodeCommits(n), 0); err != nil {
		_ = s.commitsF.Close() // opened again by the next commit
		s.commitsF = nil
		s.commitsFileFailed(err)
		return
	}
	s.commitsWarned = false
}

// commitsFileFailed reports a failed write of the commits file, once until
// one succeeds again (s.wmu held). The commit it follows is durable all the same; the
// next write that finds the disk full is refused (CheckSpace).
func (s *Store) commitsFileFailed(err error) {
	if s.commitsWarned {
		return
	}
	s.commitsWarned = true
	s.log.Warn("chain store: cannot update the commits file (the commit itself is stored)",
		"dir", s.path, "err", err)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func encodeCommits(n uint64) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, commitsFileSize), n)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeCommits reads the commits file's count. ok is false for a file that
// is damaged: a checksum that fails, or a length other than commitsFileSize
// and the old format's 8 bytes (a count without a checksum, still read).
func decodeCommits(b []byte) (n uint64, ok bool) {
	switch len(b) {
	case 8:
		return binary.BigEndian.Uint64(b), true
	case commitsFileSize:
		if crc32.Checksum(b[:8], castagnoli) != binary.BigEndian.Uint32(b[8:]) {
			return 0, false
		}
		return binary.BigEndian.Uint64(b), true
	}
	return 0, false
}

func putBlock(b *pebble.Batch, h chain.Hash, blk *chain.Block) error {
	data, err := blk.MarshalBinary()
	if err != nil {
		return fmt.Errorf("chain store: block %s: %w", h.Short(), err)
	}
	return b.Set(keyBlock(h), data, nil)
}

// ensureBlock adds blk to b unless it is stored already.
func (s *Store) ensureBlock(b *pebble.Batch, h chain.Hash, blk *chain.Block) error {
	_, closer, err := s.db.Get(keyBlock(h))
	if err == nil {
		return s.readErr(closer.Close())
	}
	if !errors.Is(err, pebble.ErrNotFound) {
		return s.readErr(err)
	}
	return putBlock(b, h, blk)
}

// putPending adds r to b with the next arrival number.
func (s *Store) putPending(b *pebble.Batch, r chain.Reading) error {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+r.EncodedSize()), s.seq.Add(1))
	v, err := r.AppendBinary(v)
	if err != nil {
		return fmt.Errorf("chain store: pending reading: %w", err)
	}
	return b.Set(keyPending(r.ID()), v, nil)
}

// AddPending stores pending readings durably, in one synced batch: once it
// returns nil, they survive a crash (acknowledge a reading only then). A
// node group-commits its submissions through it: the readings submitted
// while the previous batch synced share the next one. Adding a reading that
// is already pending moves it to the end of the arrival order. A reading
// the main chain holds (its block connected before this batch, in the
// store's order of writes) is left out: the commit that connected it
// removed it from the pending set, and it must not come back there. Writes
// are serialised (each is one synced batch).
func (s *Store) AddPending(rs ...chain.Reading) error {
	return s.write(func(b *pebble.Batch) error {
		for _, r := range rs {
			inChain, err := s.has(keyReading(r.ID()))
			if err != nil {
				return err
			}
			if inChain {
				continue
			}
			if err := s.putPending(b, r); err != nil {
				return err
			}
		}
		return nil
	}, nil)
}

// has reports whether key is stored.
func (s *Store) has(key []byte) (bool, error) {
	_, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, s.readErr(err)
	}
	return true, s.readErr(closer.Close())
}

// RemovePending durably drops pending readings by id (unknown ids are
// ignored). Readings that enter the main chain are better removed in the
// same Commit that connects their block.
func (s *Store) RemovePending(ids ...chain.Hash) error {
	return s.write(func(b *pebble.Batch) error {
		for _, id := range ids {
			if err := b.Delete(keyPending(id), nil); err != nil {
				return err
			}
		}
		return nil
	}, nil)
}

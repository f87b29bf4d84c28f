package store

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// An authority on an authority network must persist its consensus state
// before the messages of the same step leave it (docs/BFT.md section 10):
// after a crash it resumes from that state and signs nothing that
// contradicts what it signed before. The store keeps the state as one meta
// record, written durably like every commit, and the evidence of
// equivocating authorities the node saw.

// maxEvidenceRecords bounds the evidence kept: at most two per authority
// and step is ever reported, so this is far more than an honest network
// produces; past it new evidence is not stored (it is still reported).
const maxEvidenceRecords = 4096

// SaveConsensus durably records the node's consensus state (the encoding
// of a bft.State), replacing the one before, and in the same write the
// blocks it needs after a restart (docs/BFT.md section 10: the locked and
// valid blocks, the node's own proposals), each under its hash. A node
// locked on a block it no longer holds after a restart could never judge
// that block again, and prevotes nil for every other: enough such nodes
// halt the network for good. newHeight: the state is of another height
// than the one before, whose blocks are dropped first; otherwise the
// blocks are added to those kept.
func (s *Store) SaveConsensus(state []byte, blocks []*chain.Block, newHeight bool) error {
	return s.write(func(b *pebble.Batch) error {
		if newHeight {
			lower, upper := prefixBounds(prefixConsBlk)
			if err := b.DeleteRange(lower, upper, nil); err != nil {
				return s.writeErr(err)
			}
		}
		for _, blk := range blocks {
			data, err := blk.MarshalBinary()
			if err != nil {
				return err
			}
			if err := b.Set(hashKey(prefixConsBlk, blk.Hash()), data, nil); err != nil {
				return s.writeErr(err)
			}
		}
		if err := b.Set(keyBFT, state, nil); err != nil {
			return s.writeErr(err)
		}
		return nil
	}, nil)
}

// ConsensusBlocks returns the blocks SaveConsensus kept for the height of
// the state it recorded last.
func (s *Store) ConsensusBlocks() (out []*chain.Block, err error) {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.db == nil {
		return nil, ErrClosed
	}
	defer s.recoverPanic(&err)
	err = s.scan(s.db, prefixConsBlk, nil, func(k, v []byte) error {
		blk, err := chain.DecodeBlock(v, s.params.MaxReadings)
		if err != nil || blk.Hash() != chain.Hash(k) {
			return &CorruptError{Path: s.path, Err: fmt.Errorf("consensus block %x does not decode to itself: %v", k, err)}
		}
		out = append(out, blk)
		return nil
	})
	return out, err
}

// Consensus returns the consensus state SaveConsensus recorded last, or nil.
func (s *Store) Consensus() (state []byte, err error) {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.db == nil {
		return nil, ErrClosed
	}
	defer s.recoverPanic(&err)
	v, err := s.get(s.db, keyBFT)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return v, err
}

// SaveApprovals durably records the membership changes an authority's
// operator approved that no block carries yet (their encoding, as a block
// carries changes), replacing the record before.
func (s *Store) SaveApprovals(changes []byte) error {
	return s.write(func(b *pebble.Batch) error {
		if err := b.Set(keyApproved, changes, nil); err != nil {
			return s.writeErr(err)
		}
		return nil
	}, nil)
}

// Approvals returns what SaveApprovals recorded last, or nil.
func (s *Store) Approvals() (changes []byte, err error) {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.db == nil {
		return nil, ErrClosed
	}
	defer s.recoverPanic(&err)
	v, err := s.get(s.db, keyApproved)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return v, err
}

// AddEvidence durably records evidence of an equivocation (its encoding).
// Recording the same evidence twice keeps one copy.
func (s *Store) AddEvidence(ev []byte) error {
	old, err := s.Evidence()
	if err != nil {
		return err
	}
	if len(old) >= maxEvidenceRecords {
		return nil
	}
	key := hashKey(prefixEvidence, chain.Hash(sha256.Sum256(ev)))
	return s.write(func(b *pebble.Batch) error {
		if err := b.Set(key, ev, nil); err != nil {
			return s.writeErr(err)
		}
		return nil
	}, nil)
}

// Evidence returns the evidence AddEvidence recorded.
func (s *Store) Evidence() (out [][]byte, err error) {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.db == nil {
		return nil, ErrClosed
	}
	defer s.recoverPanic(&err)
	err = s.scan(s.db, prefixEvidence, nil, func(_, v []byte) error {
		out = append(out, append([]byte(nil), v...))
		return nil
	})
	return out, err
}

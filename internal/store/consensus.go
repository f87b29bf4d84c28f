package store

import (
	"crypto/sha256"
	"errors"

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
// of a bft.State), replacing the one before.
func (s *Store) SaveConsensus(state []byte) error {
	return s.write(func(b *pebble.Batch) error {
		if err := b.Set(keyBFT, state, nil); err != nil {
			return s.writeErr(err)
		}
		return nil
	}, nil)
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

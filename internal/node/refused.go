package node

import (
	"fmt"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// maxRefusedBlocks bounds the memo of refused blocks; the oldest leaves
// first.
const maxRefusedBlocks = 4096

// refusedBlocks remembers blocks refused on a rule that their hash alone
// decides, so that the same block sent again (by a new peer ID, after
// GossipSub forgot it, or in another sync batch) is refused on one map
// lookup, as rule 2 recognises a known block, instead of costing its
// signatures again. It is guarded by the node's mutex.
//
// A hash decides a rule when no other bytes with that hash could pass it:
// the header rules (3, and 5a and 5b, which compare with the parent the
// header names), and the body rules once the body is known to be the one
// the header's readings root commits to (rule 7, the readings already in
// the block's ancestry, and rule 8, a signature). A block refused on a
// rule of its body before the root is checked (rule 6: count, a reading
// twice, the root itself) is not remembered: an attacker can pair an
// honest header with a tampered body, and remembering its hash would make
// the node refuse the honest block. Nor are blocks refused for the
// moment (a parent not known yet, a time too new, a fork too deep, the
// side-branch caps), nor a seal (not covered by the hash).
type refusedBlocks struct {
	errs  map[chain.Hash]error
	order []chain.Hash // ring of maxRefusedBlocks, next at n % len
	n     int
}

func newRefusedBlocks() *refusedBlocks {
	return &refusedBlocks{errs: map[chain.Hash]error{}}
}

// get returns the error a block with this hash was refused with, or nil.
func (r *refusedBlocks) get(h chain.Hash) error { return r.errs[h] }

// note remembers b (whose hash is h) if err refuses it on a rule its hash
// decides.
func (r *refusedBlocks) note(b *chain.Block, h chain.Hash, err error, p chain.Params) {
	if !hashDecides(b, err, p) {
		return
	}
	if _, ok := r.errs[h]; ok {
		return
	}
	if len(r.order) < maxRefusedBlocks {
		r.order = append(r.order, h)
	} else {
		delete(r.errs, r.order[r.n%maxRefusedBlocks])
		r.order[r.n%maxRefusedBlocks] = h
	}
	r.n++
	r.errs[h] = &refusedError{hash: h, err: err}
}

// hashDecides reports whether err refuses b on a rule that no other block
// with b's hash could pass (refusedBlocks).
func hashDecides(b *chain.Block, err error, p chain.Params) bool {
	if !chain.IsPeerFault(err) {
		return false
	}
	switch chain.CodeOf(err) {
	case chain.ErrBadGenesis, chain.ErrBadVersion, chain.ErrBadDifficulty, chain.ErrTooManyReadings,
		chain.ErrBadPoW, chain.ErrBadHeight, chain.ErrTimeBeforeParent:
		return true
	case chain.ErrDuplicateReading, chain.ErrBadSignature:
		// Rule 7 or 8, if the body is the one the header commits to (a
		// reading twice within the block is rule 6, and fails CheckBody).
		_, berr := chain.CheckBody(b, p)
		return berr == nil
	}
	return false
}

// refusedError is the error of a block refused again: the rule error it
// was refused with first (errors.Is and chain.CodeOf see it), so the
// sender is blamed as the first sender was.
type refusedError struct {
	hash chain.Hash
	err  error
}

func (e *refusedError) Error() string {
	return fmt.Sprintf("block %s was refused before: %v", e.hash.Short(), e.err)
}

func (e *refusedError) Unwrap() error { return e.err }

package bft

import (
	"fmt"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// DecodeChanges decodes a block's membership changes (chain.Block.Changes):
// whole ChangeSize-byte changes, each with a known op.
func DecodeChanges(b []byte) ([]Change, error) {
	if len(b)%ChangeSize != 0 {
		return nil, ruleErr(ErrMalformed, "%d bytes of changes is not a whole number of %d-byte changes", len(b), ChangeSize)
	}
	out := make([]Change, len(b)/ChangeSize)
	for i := range out {
		if err := out[i].UnmarshalBinary(b[i*ChangeSize : (i+1)*ChangeSize]); err != nil {
			return nil, fmt.Errorf("change %d: %w", i, err)
		}
	}
	return out, nil
}

// EncodeChanges returns the encoding a block carries of changes.
func EncodeChanges(changes []Change) []byte {
	var b []byte
	for _, c := range changes {
		b = c.AppendBinary(b)
	}
	return b
}

// CheckSeal checks a block of an authority network against sched, the
// schedule as of its parent, cheap checks first: its changes decode and
// the schedule would accept them, then its seal decodes as a commit for
// the block at its height that passes VerifyCommit under the set of that
// height. It changes nothing; the owner applies the changes
// (sched.Apply) once the block joins its chain.
func CheckSeal(network chain.Hash, sched *Schedule, b *chain.Block) (*Commit, []Change, error) {
	changes, err := DecodeChanges(b.Changes)
	if err != nil {
		return nil, nil, err
	}
	h := b.Header.Height
	if err := sched.Check(h, changes...); err != nil {
		return nil, nil, err
	}
	if len(b.Seal) == 0 {
		return nil, nil, ruleErr(ErrTooFewSignatures, "block %s at height %d has no seal", b.Hash().Short(), h)
	}
	var c Commit
	if err := c.UnmarshalBinary(b.Seal); err != nil {
		return nil, nil, err
	}
	if err := VerifyCommit(network, sched.SetAt(h), h, b.Hash(), &c); err != nil {
		return nil, nil, err
	}
	return &c, changes, nil
}

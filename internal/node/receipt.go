package node

import (
	"errors"
	"fmt"

	"github.com/p2pchain/p2pchain/internal/bft"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/receipt"
	"github.com/p2pchain/p2pchain/internal/store"
)

// Errors of Receipt.
var (
	// ErrReadingPending: the reading is known but waits for a block; its
	// receipt exists once a block holds it (the API answers 409).
	ErrReadingPending = errors.New("reading not yet in a block")
	// ErrReadingNotFound: the reading is neither on the main chain nor
	// pending (the API answers 404).
	ErrReadingNotFound = errors.New("reading not found")
)

// receiptChunk is how many headers Receipt reads per hold of the node's
// mutex: headers of final blocks whose entries the chain let go of are read
// back from the store, and the miner and the network must not wait long.
const receiptChunk = 64

// receiptTries is how often Receipt starts again when a reorganisation
// changes the main chain under it.
const receiptTries = 3

// Receipt returns the receipt of a main-chain reading (package receipt): the
// reading, its Merkle proof, the headers from its block up to the tip (at
// most receipt.MaxHeaders) and, on an authority network, its block's seal
// with the authority set of its height. It reads the headers in chunks,
// taking the node's mutex once per chunk, and starts again if a
// reorganisation changed the main chain meanwhile.
func (n *Node) Receipt(id chain.Hash) (*receipt.Receipt, error) {
	var err error
	for try := 0; try < receiptTries; try++ {
		var r *receipt.Receipt
		if r, err = n.receipt(id); !errors.Is(err, errReorganised) {
			return r, err
		}
	}
	return nil, err
}

var errReorganised = errors.New("the main chain changed while the receipt was read; try again")

// reorganisedIfGone is errReorganised for a block read after the lock that
// is no longer stored (a reorganisation pruned it meanwhile: chain.Ref),
// err itself for a read that failed (damage, a closed store).
func reorganisedIfGone(err error) error {
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, chain.ErrNotKnown) {
		return errReorganised
	}
	return err
}

func (n *Node) receipt(id chain.Hash) (*receipt.Receipt, error) {
	n.mu.Lock()
	ref, ok := n.chain.ReadingRef(id)
	if !ok {
		pending := n.pool.Has(id)
		n.mu.Unlock()
		if pending {
			return nil, fmt.Errorf("reading %s: %w", id.Short(), ErrReadingPending)
		}
		if err := n.readFailed(nil); err != nil { // the lookup could not read
			return nil, fmt.Errorf("reading %s: %w", id.Short(), err)
		}
		return nil, fmt.Errorf("reading %s: %w", id.Short(), ErrReadingNotFound)
	}
	tip := n.chain.Height()
	var auth *receipt.Authority
	if n.cons != nil {
		auth = &receipt.Authority{Network: n.cons.net, Keys: n.cons.sched.SetAt(ref.Height).Keys()}
	}
	n.mu.Unlock()
	b, err := ref.Load(n.arch)
	if err != nil {
		return nil, reorganisedIfGone(fmt.Errorf("reading %s: its block %s: %w", id.Short(), ref.Hash.Short(), err))
	}
	index, ok := chain.ReadingIndex(b, id)
	if !ok {
		return nil, fmt.Errorf("reading %s: not in its block %s", id.Short(), ref.Hash.Short())
	}

	if auth != nil {
		var c bft.Commit
		if err := c.UnmarshalBinary(b.Seal); err != nil {
			return nil, fmt.Errorf("block %s at height %d: its seal: %w", b.Hash().Short(), b.Header.Height, err)
		}
		auth.Commit = &c
	}
	above, err := n.headersAbove(b, min(tip, b.Header.Height+receipt.MaxHeaders-1))
	if err != nil {
		return nil, err
	}
	return receipt.Build(b, index, above, auth)
}

// headersAbove returns the main-chain headers above block b up to height
// top, in order, checking that each links to the one before. Each chunk's
// blocks are taken from the chain under the lock, with a check that b is
// still on the main chain, and their headers read after it (chain.Ref).
func (n *Node) headersAbove(b *chain.Block, top uint64) ([]chain.Header, error) {
	out := make([]chain.Header, 0, top-b.Header.Height)
	prev := b.Hash()
	for h := b.Header.Height + 1; h <= top; {
		end := min(top, h+receiptChunk-1)
		n.mu.Lock()
		got, ok := n.chain.HashAt(b.Header.Height)
		refs := n.chain.MainRefs(end, int(end-h+1))
		n.mu.Unlock()
		if !ok || got != b.Hash() || len(refs) != int(end-h+1) || refs[0].Height != end {
			return nil, errReorganised
		}
		for i := len(refs) - 1; i >= 0; i-- {
			hdr, err := refs[i].LoadHeader(n.arch)
			if err != nil {
				return nil, reorganisedIfGone(fmt.Errorf("header of block %s at height %d: %w", refs[i].Hash.Short(), refs[i].Height, err))
			}
			if hdr.Parent != prev {
				return nil, errReorganised
			}
			out = append(out, hdr)
			prev = refs[i].Hash
		}
		h = end + 1
	}
	return out, nil
}

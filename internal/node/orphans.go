package node

import (
	"github.com/p2pchain/p2pchain/internal/chain"
)

// Limits of the orphan pool: blocks that arrived before their parent.
const (
	maxOrphans     = 64
	maxOrphanBytes = 8 << 20
)

// orphanPool keeps a few blocks whose parent is not known yet, so that a
// block gossiped ahead of its parent connects when the parent arrives
// instead of waiting for the next sync. Only blocks whose header and body
// check out (proof of work, readings root; no signature) are kept, at most
// maxOrphans blocks and maxOrphanBytes, the oldest leaving first. It is
// guarded by the node's mutex.
type orphanPool struct {
	blocks   map[chain.Hash]orphan
	byParent map[chain.Hash][]chain.Hash
	order    []chain.Hash // arrival order
	bytes    int
}

// orphan is a block kept in the pool and the peer that relayed it (empty
// if not known), who is blamed if the block proves invalid once its parent
// arrives.
type orphan struct {
	block *chain.Block
	from  string
}

func newOrphanPool() *orphanPool {
	return &orphanPool{blocks: map[chain.Hash]orphan{}, byParent: map[chain.Hash][]chain.Hash{}}
}

// worthKeeping reports whether b, whose parent is unknown, passes the
// checks that need no chain and no signature, and so may wait in the pool.
// It reads nothing of the node: the caller runs it without the node's
// mutex (hashing a large body takes a while; on an authority network, with
// no proof of work in front of it, a stranger can send such blocks
// cheaply).
func worthKeeping(b *chain.Block, p chain.Params) bool {
	if b.EncodedSize() > maxOrphanBytes || chain.CheckHeader(&b.Header, p) != nil {
		return false
	}
	_, err := chain.CheckBody(b, p)
	return err == nil
}

// add keeps b, whose parent is unknown and which from relayed; the caller
// checked it (worthKeeping).
func (o *orphanPool) add(b *chain.Block, hash chain.Hash, from string) {
	if _, ok := o.blocks[hash]; ok {
		return
	}
	size := b.EncodedSize()
	for len(o.order) >= maxOrphans || o.bytes+size > maxOrphanBytes {
		o.remove(o.order[0])
	}
	o.blocks[hash] = orphan{block: b, from: from}
	o.byParent[b.Header.Parent] = append(o.byParent[b.Header.Parent], hash)
	o.order = append(o.order, hash)
	o.bytes += size
}

// remove drops one orphan.
func (o *orphanPool) remove(hash chain.Hash) {
	ob, ok := o.blocks[hash]
	if !ok {
		return
	}
	b := ob.block
	delete(o.blocks, hash)
	o.bytes -= b.EncodedSize()
	for i, h := range o.order {
		if h == hash {
			o.order = append(o.order[:i], o.order[i+1:]...)
			break
		}
	}
	kids := o.byParent[b.Header.Parent]
	for i, h := range kids {
		if h == hash {
			kids = append(kids[:i], kids[i+1:]...)
			break
		}
	}
	if len(kids) == 0 {
		delete(o.byParent, b.Header.Parent)
	} else {
		o.byParent[b.Header.Parent] = kids
	}
}

// children takes out and returns the orphans whose parent is parent.
func (o *orphanPool) children(parent chain.Hash) []orphan {
	var out []orphan
	for _, h := range append([]chain.Hash(nil), o.byParent[parent]...) {
		out = append(out, o.blocks[h])
		o.remove(h)
	}
	return out
}

// len returns the number of orphans kept.
func (o *orphanPool) len() int { return len(o.blocks) }

// has reports whether the pool holds the block hash.
func (o *orphanPool) has(hash chain.Hash) bool { _, ok := o.blocks[hash]; return ok }

package chain

import "sync"

// SigCache remembers reading signatures that verified, so that a reading
// seen before (submitted, then mined; in a block, then in a sibling block;
// checked on all cores before the chain's owner takes its lock) is verified
// once. It holds at most its capacity of entries and forgets the oldest
// first. A key is the reading id with the signature: the id covers the
// content and the author key, so a hit means the exact bytes verified.
// Unlike Chain, a SigCache is safe for concurrent use; a nil *SigCache
// remembers nothing.
type SigCache struct {
	mu   sync.Mutex
	max  int
	set  map[sigKey]struct{}
	ring []sigKey // insertion order, for eviction
	next int
	adds uint64 // signatures added since the cache was made
}

type sigKey struct {
	id  Hash
	sig [64]byte
}

// NewSigCache returns a cache of at most max entries (96 bytes each, plus
// the map's overhead).
func NewSigCache(max int) *SigCache {
	return &SigCache{max: max, set: make(map[sigKey]struct{}, min(max, 1024))}
}

// Has reports whether the signature sig of the reading with id verified.
func (c *SigCache) Has(id Hash, sig *[64]byte) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.set[sigKey{id, *sig}]
	return ok
}

// Add records a signature that verified.
func (c *SigCache) Add(id Hash, sig *[64]byte) {
	if c == nil || c.max <= 0 {
		return
	}
	k := sigKey{id, *sig}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.set[k]; ok {
		return
	}
	if len(c.ring) < c.max {
		c.ring = append(c.ring, k)
	} else {
		delete(c.set, c.ring[c.next])
		c.ring[c.next] = k
		c.next = (c.next + 1) % c.max
	}
	c.set[k] = struct{}{}
	c.adds++
}

// Added returns how many signatures were added since the cache was made:
// how many the holder verified, as each is verified once.
func (c *SigCache) Added() uint64 {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.adds
}

// Len returns the number of signatures remembered.
func (c *SigCache) Len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.set)
}

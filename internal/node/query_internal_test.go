package node

import (
	"testing"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// TestMatchesCapped: past MaxMatches a lookup says "more", keeps the count
// at MaxMatches, and still lists the first few in order.
func TestMatchesCapped(t *testing.T) {
	var found []chain.Hash
	for i := MaxMatches + 1; i > 0; i-- {
		found = append(found, chain.Hash{0xab, byte(i)}, chain.Hash{0xab, byte(i)}) // unsorted, repeated
	}
	m := matches(found, 3)
	if !m.More || m.Count != MaxMatches || len(m.Hashes) != 3 || m.Hashes[0] != (chain.Hash{0xab, 1}) || m.Hashes[2] != (chain.Hash{0xab, 3}) {
		t.Errorf("matches of %d hashes: %+v", MaxMatches+1, m)
	}
	two := []chain.Hash{{0xab, 2}, {0xab, 1}, {0xab, 2}}
	if m := matches(two, 10); m.More || m.Count != 2 || len(m.Hashes) != 2 {
		t.Errorf("matches of 2 hashes: %+v", m)
	}
}

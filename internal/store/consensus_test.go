package store

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// TestConsensusBlocksKept: the blocks stored with a consensus state are
// there after a reopen, those of later states of the same height are
// added, and a state of a new height drops those of the height before.
func TestConsensusBlocksKept(t *testing.T) {
	f := smallFixture(t)
	path := filepath.Join(t.TempDir(), "chain")
	s := mustOpen(t, path)
	a, b, c := f.main[1], f.main[2], f.main[3]
	hashes := func(bs []*chain.Block) []chain.Hash {
		var out []chain.Hash
		for _, x := range bs {
			out = append(out, x.Hash())
		}
		slices.SortFunc(out, func(x, y chain.Hash) int { return slices.Compare(x[:], y[:]) })
		return out
	}
	want := func(s *Store, state string, bs ...*chain.Block) {
		t.Helper()
		raw, err := s.Consensus()
		if err != nil || string(raw) != state {
			t.Fatalf("Consensus() = %q, %v; want %q", raw, err, state)
		}
		got, err := s.ConsensusBlocks()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(hashes(got), hashes(bs)) {
			t.Fatalf("ConsensusBlocks() = %d blocks %v, want %v", len(got), hashes(got), hashes(bs))
		}
	}
	if err := s.SaveConsensus([]byte("h5 r0"), []*chain.Block{a}, true); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveConsensus([]byte("h5 r1"), []*chain.Block{b}, false); err != nil {
		t.Fatal(err)
	}
	want(s, "h5 r1", a, b)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, path)
	defer s.Close()
	want(s, "h5 r1", a, b)
	if err := s.SaveConsensus([]byte("h6 r0"), []*chain.Block{c}, true); err != nil {
		t.Fatal(err)
	}
	want(s, "h6 r0", c)
	if err := s.SaveConsensus([]byte("h7 r0"), nil, true); err != nil {
		t.Fatal(err)
	}
	want(s, "h7 r0")
}

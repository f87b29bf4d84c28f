package chain_test

import (
	"bytes"
	"testing"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/chain/chaintest"
)

// TestBlockVectors runs the block vectors of package chaintest through the
// chain's one entry point, Process, with a small orphan pool beside it as
// the node keeps one: every step must end as the vectors say, with the tip
// they say.
func TestBlockVectors(t *testing.T) {
	v, err := chaintest.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if n, r, codes := len(v.Steps), v.Count(chaintest.Rejected), len(v.Codes()); n < 50 || r < 30 || codes < 10 {
		t.Fatalf("%d steps, %d rejections over %d codes: want at least 50, 30 and 10", n, r, codes)
	}
	c := mustChain(t, v.Params)
	if err := c.SetCheckpoint(v.Checkpoint); err != nil {
		t.Fatal(err)
	}
	orphans := map[chain.Hash][]*chain.Block{} // by parent
	for i, s := range v.Steps {
		hash := s.Block.Hash()
		known := c.HasBlock(hash)
		u, err := c.Process(s.Block, s.Now, 0)
		where := func() string { return s.Name }
		switch s.Outcome {
		case chaintest.Main, chaintest.Side:
			if err != nil {
				t.Fatalf("step %d %q: refused: %v", i, where(), err)
			}
			if main := s.Outcome == chaintest.Main; u.TipChanged != main || c.IsMain(hash) != main {
				t.Fatalf("step %d %q: tip changed %v, on the main chain %v; want %v", i, where(), u.TipChanged, c.IsMain(hash), s.Outcome)
			}
			// Orphans whose parent is now known, as the node's pool does.
			for queue := []chain.Hash{hash}; len(queue) > 0; queue = queue[1:] {
				for _, o := range orphans[queue[0]] {
					if _, err := c.Process(o, s.Now, 0); err == nil {
						queue = append(queue, o.Hash())
					}
				}
				delete(orphans, queue[0])
			}
		case chaintest.Orphan, chaintest.Rejected:
			checkCode(t, err, s.Code)
			if c.HasBlock(hash) != known {
				t.Fatalf("step %d %q: refused, yet the block tree changed", i, where())
			}
			if s.Outcome == chaintest.Orphan {
				if chain.CheckHeader(&s.Block.Header, v.Params) == nil {
					if _, err := chain.CheckBody(s.Block, v.Params); err == nil {
						orphans[s.Block.Header.Parent] = append(orphans[s.Block.Header.Parent], s.Block)
					}
				}
			}
		default:
			t.Fatalf("step %d %q: outcome %v", i, where(), s.Outcome)
		}
		if c.TipHash() != s.Tip || c.Height() != s.Height {
			t.Fatalf("step %d %q: tip %s at %d, want %s at %d", i, where(), c.TipHash().Short(), c.Height(), s.Tip.Short(), s.Height)
		}
	}
	t.Logf("%d steps: %d main, %d side, %d orphans, %d rejected over %d codes %v", len(v.Steps),
		v.Count(chaintest.Main), v.Count(chaintest.Side), v.Count(chaintest.Orphan), v.Count(chaintest.Rejected), len(v.Codes()), v.Codes())
}

// TestBlockVectorsDeterministic: two generations give the same blocks, so
// the vectors can be compared across runs and implementations.
func TestBlockVectorsDeterministic(t *testing.T) {
	a, err := chaintest.Generate()
	if err != nil {
		t.Fatal(err)
	}
	b, err := chaintest.Generate()
	if err != nil {
		t.Fatal(err)
	}
	for i := range a.Steps {
		x, errx := a.Steps[i].Block.MarshalBinary()
		y, erry := b.Steps[i].Block.MarshalBinary()
		if errx != nil || erry != nil || !bytes.Equal(x, y) || a.Steps[i].Now != b.Steps[i].Now {
			t.Fatalf("step %d %q differs between two generations", i, a.Steps[i].Name)
		}
	}
}

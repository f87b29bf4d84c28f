package bft_test

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/p2pchain/p2pchain/internal/bft"
)

func testSet(t testing.TB, n int) *bft.Set {
	t.Helper()
	set, err := bft.NewSet(simKeys(n))
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// TestQuorum: quorum = floor(2n/3)+1 and f = floor((n-1)/3), and for every
// size two quorums share at least f+1 authorities (so one correct one,
// the heart of safety) and the n-f correct authorities alone make a
// quorum (liveness).
func TestQuorum(t *testing.T) {
	for _, c := range []struct{ n, q, f int }{
		{1, 1, 0}, {2, 2, 0}, {3, 3, 0}, {4, 3, 1}, {5, 4, 1}, {6, 5, 1}, {7, 5, 2}, {10, 7, 3}, {100, 67, 33}, {256, 171, 85},
	} {
		set := testSet(t, c.n)
		if set.Quorum() != c.q || set.MaxFaulty() != c.f {
			t.Errorf("n=%d: quorum %d, f %d; want %d, %d", c.n, set.Quorum(), set.MaxFaulty(), c.q, c.f)
		}
	}
	keys := simKeys(bft.MaxAuthorities)
	for n := 1; n <= bft.MaxAuthorities; n++ {
		set, err := bft.NewSet(keys[:n])
		if err != nil {
			t.Fatal(err)
		}
		q, f := set.Quorum(), set.MaxFaulty()
		if 2*q-n < f+1 || n-f < q || 3*q <= 2*n {
			t.Errorf("n=%d: quorum %d, f %d break intersection or liveness", n, q, f)
		}
	}
}

// TestProposerRotation: round 0 of n consecutive heights gives every
// authority one turn; each new round passes the turn on; no overflow.
func TestProposerRotation(t *testing.T) {
	set := testSet(t, 7)
	for start := uint64(0); start < 20; start++ {
		seen := map[int]bool{}
		for h := start; h < start+7; h++ {
			seen[set.Proposer(h, 0)] = true
			for r := int32(0); r < 10; r++ {
				if set.Proposer(h, r+1) != (set.Proposer(h, r)+1)%7 {
					t.Fatalf("height %d round %d: turn not passed to the next", h, r+1)
				}
			}
		}
		if len(seen) != 7 {
			t.Fatalf("heights %d..%d: %d proposers, want 7", start, start+6, len(seen))
		}
	}
	if p := set.Proposer(math.MaxUint64, math.MaxInt32); p < 0 || p >= 7 {
		t.Fatalf("proposer %d at the largest height and round", p)
	}
}

func TestNewSetRefuses(t *testing.T) {
	keys := simKeys(bft.MaxAuthorities + 1)
	var identity bft.Key
	identity[0] = 1 // the identity point: small order
	var noncanonical bft.Key
	for i := range noncanonical {
		noncanonical[i] = 0xff
	}
	noncanonical[31] = 0x7f
	for _, c := range []struct {
		name string
		keys []bft.Key
		code bft.ErrorCode
	}{
		{"empty", nil, bft.ErrBadSet},
		{"too many", keys, bft.ErrBadSet},
		{"twice", []bft.Key{keys[0], keys[1], keys[0]}, bft.ErrBadSet},
		{"small order", []bft.Key{keys[0], identity}, bft.ErrBadKey},
		{"not canonical", []bft.Key{noncanonical}, bft.ErrBadKey},
	} {
		if _, err := bft.NewSet(c.keys); !errors.Is(err, c.code) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.code)
		}
	}
	if _, err := bft.NewSet(keys[:bft.MaxAuthorities]); err != nil {
		t.Errorf("MaxAuthorities keys refused: %v", err)
	}
}

// TestSchedule: the rules of Schedule.Apply, one refusal each, and that a
// refused block changes nothing.
func TestSchedule(t *testing.T) {
	keys := simKeys(6)
	add := func(h uint64, k int) bft.Change { return bft.Change{Op: bft.OpAdd, Height: h, Key: keys[k]} }
	rm := func(h uint64, k int) bft.Change { return bft.Change{Op: bft.OpRemove, Height: h, Key: keys[k]} }
	s := bft.NewSchedule(testSet(t, 4))
	if err := s.Apply(3, add(5, 4)); err != nil {
		t.Fatal(err)
	}
	// Two changes at one height: they apply in order to one set.
	if err := s.Apply(4, add(8, 5), rm(8, 0)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		h    uint64
		want []int
	}{{0, []int{0, 1, 2, 3}}, {1, []int{0, 1, 2, 3}}, {4, []int{0, 1, 2, 3}}, {5, []int{0, 1, 2, 3, 4}}, {7, []int{0, 1, 2, 3, 4}}, {8, []int{1, 2, 3, 4, 5}}, {1000, []int{1, 2, 3, 4, 5}}} {
		got := s.SetAt(c.h)
		if got.Len() != len(c.want) {
			t.Fatalf("height %d: %d keys, want %d", c.h, got.Len(), len(c.want))
		}
		for i, k := range c.want {
			if got.Key(i) != keys[k] {
				t.Fatalf("height %d: key %d is not authority %d", c.h, i, k)
			}
		}
	}
	before := fmt.Sprint(s.SetAt(100).Hash(), s.SetAt(9).Hash())
	for _, c := range []struct {
		name    string
		at      uint64
		changes []bft.Change
		code    bft.ErrorCode
	}{
		{"takes effect at its own block", 9, []bft.Change{add(9, 0)}, bft.ErrBadChange},
		{"takes effect before its block", 9, []bft.Change{add(3, 0)}, bft.ErrBadChange},
		{"before a pending change", 5, []bft.Change{add(7, 0)}, bft.ErrBadChange},
		{"adds an authority", 9, []bft.Change{add(10, 1)}, bft.ErrBadChange},
		{"removes a stranger", 9, []bft.Change{rm(10, 0)}, bft.ErrBadChange},
		{"unknown op", 9, []bft.Change{{Op: 7, Height: 10, Key: keys[0]}}, bft.ErrBadChange},
		{"bad key", 9, []bft.Change{{Op: bft.OpAdd, Height: 10}}, bft.ErrBadKey},
		{"second change fails", 9, []bft.Change{add(10, 0), add(10, 0)}, bft.ErrBadChange},
	} {
		if err := s.Check(c.at, c.changes...); !errors.Is(err, c.code) {
			t.Errorf("%s: Check err = %v, want %v", c.name, err, c.code)
		}
		if err := s.Apply(c.at, c.changes...); !errors.Is(err, c.code) {
			t.Errorf("%s: Apply err = %v, want %v", c.name, err, c.code)
		}
	}
	if after := fmt.Sprint(s.SetAt(100).Hash(), s.SetAt(9).Hash()); after != before {
		t.Fatal("a refused change altered the schedule")
	}
	// Removing down to one authority is allowed, removing the last is not.
	one := bft.NewSchedule(testSet(t, 2))
	if err := one.Apply(1, rm(2, 0)); err != nil {
		t.Fatal(err)
	}
	if err := one.Apply(2, rm(3, 1)); !errors.Is(err, bft.ErrBadChange) {
		t.Fatalf("emptying the set: %v", err)
	}
	if set, from := one.Latest(); set.Len() != 1 || from != 2 {
		t.Fatalf("latest set of %d from %d", set.Len(), from)
	}
}

package bft_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/bft"
)

// TestFinality: with every authority up and messages within the timeouts,
// every height is decided in round 0 by every node, and every commit
// verifies (checked by the simulator on each decision).
func TestFinality(t *testing.T) {
	for _, n := range []int{4, 7, 10} {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			const heights = 8
			s := newSim(t, 1, n, n)
			s.start()
			if !s.run(time.Minute, s.allDecided(heights)) {
				t.Fatalf("not every node decided %d heights: highest %d", heights, s.highest())
			}
			for i := range s.nodes {
				for h, r := range s.rounds(i, heights) {
					if r != 0 {
						t.Errorf("node %d decided height %d in round %d, want 0", i, h+1, r)
					}
				}
			}
			t.Logf("n=%d: %d heights in %v virtual, %d events", n, heights, s.now.Sub(simEpoch), s.events)
		})
	}
}

// TestOneOfFourDown: authority 3 never runs. Heights whose round-0
// proposer it is ((h+0) mod 4 = 3) take one more round, after the propose
// timeout; every other height is decided in round 0.
func TestOneOfFourDown(t *testing.T) {
	const heights = 12
	s := newSim(t, 2, 4, 4)
	s.nodes[3].up = false
	s.start()
	if !s.run(time.Minute, s.allDecided(heights)) {
		t.Fatalf("three of four did not decide %d heights: highest %d", heights, s.highest())
	}
	extra := 0
	for h, r := range s.rounds(0, heights) {
		height := uint64(h + 1)
		want := int32(0)
		if height%4 == 3 {
			want = 1
		}
		if r != want {
			t.Errorf("height %d decided in round %d, want %d", height, r, want)
		}
		extra += int(r)
	}
	t.Logf("%d heights, %d extra rounds, %v virtual", heights, extra, s.now.Sub(simEpoch))
}

// TestTwoOfFourDown: with two of four stopped no quorum exists: nothing is
// decided for a long while and nothing conflicting either; when one comes
// back, the heights are decided again.
func TestTwoOfFourDown(t *testing.T) {
	s := newSim(t, 3, 4, 4)
	s.start()
	if !s.run(time.Minute, s.allDecided(3)) {
		t.Fatal("no progress with all four up")
	}
	s.nodes[2].up, s.nodes[3].up = false, false
	s.run(100*time.Millisecond, nil) // let the height in flight settle
	stuck := s.highest()
	s.run(2*time.Minute, nil)
	if h := s.highest(); h != stuck {
		t.Fatalf("decided height %d with two of four down (was %d)", h, stuck)
	}
	s.nodes[2].up = true
	s.soon(func() { s.handle(s.nodes[2], s.nodes[2].m.Tick(s.now)) })
	if !s.run(5*time.Minute, s.allDecided(stuck+3)) {
		t.Fatalf("no progress after one came back: highest %d", s.highest())
	}
	t.Logf("stuck at %d for 2 minutes, then %d within %v", stuck, s.highest(), s.now.Sub(simEpoch))
}

// TestEquivocation: authority 0 signs a twin of each of its proposals and
// votes, with a conflicting block, and sends the twins to half of the
// nodes. Honest nodes detect it, the evidence verifies on its own and
// names authority 0, and the honest three keep deciding without a fork.
func TestEquivocation(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		s := newSim(t, seed, 4, 4)
		s.nodes[0].equivocate = true
		s.start()
		const heights = 8
		if !s.run(5*time.Minute, s.allDecided(heights)) {
			t.Fatalf("seed %d: highest decided %d, want %d\n%s", seed, s.highest(), heights, s.dump())
		}
		found := 0
		for _, n := range s.nodes[1:] {
			for _, e := range n.evidence {
				set := n.sched.SetAt(e.Height())
				if err := e.Verify(s.network, set); err != nil {
					t.Fatalf("seed %d: node %d keeps evidence that does not verify: %v", seed, n.id, err)
				}
				if o := e.Offender(set); o != 0 {
					t.Fatalf("seed %d: evidence names authority %d, an honest one", seed, o)
				}
				// The evidence survives its encoding.
				var d bft.Evidence
				if err := d.UnmarshalBinary(e.AppendBinary(nil)); err != nil || d.Verify(s.network, set) != nil {
					t.Fatalf("seed %d: evidence round trip: %v", seed, err)
				}
				found++
			}
		}
		if found == 0 {
			t.Fatalf("seed %d: no honest node detected the equivocation", seed)
		}
	}
}

// TestPartitionHeals: random partitions between authorities, lost
// messages and varying delays, over many seeds; with 7 authorities one of
// them also equivocates. The simulator checks agreement at every decision
// of every node (two blocks at one height fail at once); after the network
// heals every node reaches the same height.
func TestPartitionHeals(t *testing.T) {
	seeds := 20
	if testing.Short() {
		seeds = 5
	}
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		n := 4 + int(seed%2)*3 // 4 or 7 authorities
		s := newSim(t, seed, n, n)
		s.drop = 0.1
		s.maxDelay = 200 * time.Millisecond
		s.interval = 2 * time.Second // fewer heights, the same partitions
		if n == 7 {
			s.nodes[0].equivocate = true // and one of them faulty
		}
		s.start()
		for range 4 {
			// Split the authorities in two random groups for a random while.
			side := make([]bool, n)
			for i := range side {
				side[i] = s.rng.IntN(2) == 0
			}
			s.cut = func(a, b int) bool { return side[a] != side[b] }
			s.run(time.Duration(1+s.rng.IntN(15))*time.Second, nil)
			s.cut = nil
			s.run(time.Duration(s.rng.IntN(5))*time.Second, nil)
		}
		s.drop = 0
		target := s.highest() + 2
		if !s.run(10*time.Minute, s.allDecided(target)) {
			t.Fatalf("seed %d (n=%d): after healing, highest %d, want %d on every node", seed, n, s.highest(), target)
		}
	}
}

// TestInvalidBlockNotDecided: authority 1 proposes blocks its peers find
// invalid; they prevote nil, its turns pass to the next proposer, and no
// invalid block is ever decided (the simulator checks each decision).
func TestInvalidBlockNotDecided(t *testing.T) {
	s := newSim(t, 4, 4, 4)
	s.nodes[1].proposeInvalid = true
	s.start()
	if !s.run(time.Minute, s.allDecided(8)) {
		t.Fatalf("highest %d", s.highest())
	}
	for h, r := range s.rounds(0, 8) {
		if height := uint64(h + 1); height%4 == 1 && r == 0 {
			t.Errorf("height %d, proposed first by the faulty authority, decided in round 0", height)
		}
	}
}

// TestMembershipChange: the block at height 2 adds node 4 (a follower
// until then) from height 5, the block at height 6 removes authority 0
// from height 8, which then stops. Every node follows the changes; node 4
// signs commits from height 5; commits from height 8 have no signature of
// the old key and verify only under the new set. A follower started late
// (node 5) syncs from genesis, checking every commit against the set of
// its height.
func TestMembershipChange(t *testing.T) {
	keys := simKeys(6)
	s := newSim(t, 5, 6, 4)
	s.plan[2] = []bft.Change{{Op: bft.OpAdd, Height: 5, Key: keys[4]}}
	s.plan[6] = []bft.Change{{Op: bft.OpRemove, Height: 8, Key: keys[0]}}
	s.nodes[5].up = false
	s.start()
	if !s.run(time.Minute, s.allDecided(7)) {
		t.Fatalf("highest %d", s.highest())
	}
	s.nodes[0].up = false // removed from height 8 on
	if !s.run(time.Minute, s.allDecided(12)) {
		t.Fatalf("no progress after the removal: highest %d", s.highest())
	}
	for h := uint64(1); h <= 12; h++ {
		set := s.nodes[1].sched.SetAt(h)
		want := 4
		if h >= 5 && h < 8 {
			want = 5
		}
		if set.Len() != want {
			t.Errorf("height %d: set of %d, want %d", h, set.Len(), want)
		}
		c := s.nodes[1].commits[h]
		signers := map[bft.Key]bool{}
		for _, sig := range c.Sigs {
			signers[set.Key(int(sig.Index))] = true
		}
		if h >= 8 && signers[keys[0]] {
			t.Errorf("height %d signed by the removed key", h)
		}
		if h >= 8 {
			old := s.nodes[1].sched.SetAt(4)
			if bft.VerifyCommit(s.network, old, h, c.Hash, c) == nil {
				// Indexes shift after a removal: under the old set the
				// signatures are checked against other keys.
				t.Errorf("height %d: commit verifies under the genesis set", h)
			}
		}
	}
	if s.nodes[4].commits[6] == nil {
		t.Error("the added authority did not decide")
	}
	signed := false
	for h := uint64(5); h <= 12; h++ {
		c := s.nodes[1].commits[h]
		set := s.nodes[1].sched.SetAt(h)
		for _, sig := range c.Sigs {
			signed = signed || set.Key(int(sig.Index)) == keys[4]
		}
	}
	if !signed {
		t.Error("the added authority signed no commit")
	}
	// A follower that starts now syncs the whole chain.
	late := s.nodes[5]
	late.up = true
	s.startNode(late)
	if !s.run(5*time.Minute, func() bool { return late.commits[12] != nil }) {
		t.Fatalf("late follower at height %d", late.m.Height())
	}
	for h := uint64(1); h <= 12; h++ {
		if late.commits[h].Hash != s.nodes[1].commits[h].Hash {
			t.Fatalf("late follower decided another block at %d", h)
		}
	}
	if got := late.sched.SetAt(12).Hash(); got != s.nodes[1].sched.SetAt(12).Hash() {
		t.Fatal("late follower ends with another authority set")
	}
}

// TestCrashResume: an authority crashes in the middle of heights and comes
// back from the State it persisted, with a new machine. It signs nothing
// that contradicts what it signed before (no node ever holds evidence) and
// the network keeps deciding.
func TestCrashResume(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		s := newSim(t, seed, 4, 4)
		s.start()
		for crash := range 6 {
			s.run(time.Duration(50+s.rng.IntN(400))*time.Millisecond, nil)
			n := s.nodes[crash%4]
			n.up = false
			n.m = bft.NewMachine(bft.Config{Network: s.network, Key: n.key})
			s.run(time.Duration(s.rng.IntN(3000))*time.Millisecond, nil)
			n.up = true
			if n.state == nil {
				s.startNode(n)
				continue
			}
			var st bft.State
			if err := st.UnmarshalBinary(n.state); err != nil {
				t.Fatalf("persisted state: %v", err)
			}
			var top uint64 // the highest height it decided and applied
			for h := range n.commits {
				top = max(top, h)
			}
			if top >= st.Height { // nothing signed above its chain: start after it
				s.soon(func() { s.handle(n, n.m.Start(top+1, n.sched.SetAt(top+1), s.now)) })
				continue
			}
			s.soon(func() { s.handle(n, n.m.Resume(st, n.sched.SetAt(st.Height), s.now)) })
		}
		target := s.highest() + 3
		if !s.run(5*time.Minute, s.allDecided(target)) {
			t.Fatalf("seed %d: highest %d, want %d\n%s", seed, s.highest(), target, s.dump())
		}
		for _, n := range s.nodes {
			if len(n.evidence) > 0 {
				t.Fatalf("seed %d: node %d holds evidence against an honest authority that crashed", seed, n.id)
			}
		}
	}
}

package testnet

import (
	"maps"
	"slices"
	"testing"
	"time"
)

// TestWatchFollowsReorganisations: a reading whose block a reorganisation
// took out of a node's main chain is not counted as confirmed there until a
// block of the new main chain holds it, and its time is then that block's.
// (The harness once counted every reading it had seen in any block, so a
// run that ended just after a reorganisation reported readings as lost that
// the node had returned to its pending set and mined again.)
func TestWatchFollowsReorganisations(t *testing.T) {
	w := &nodeWatch{seen: map[string]time.Time{}, mainAt: map[uint64]string{},
		blocks: map[string]watchBlock{"base": {}}}
	t0 := time.Unix(1000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	add := func(hash, parent string, height uint64, ids ...string) {
		w.blocks[hash] = watchBlock{height: height, parent: parent, ids: ids}
	}
	seen := func() []string { return slices.Sorted(maps.Keys(w.seen)) }

	add("a1", "base", 6, "r1", "r2")
	add("a2", "a1", 7, "r3")
	w.setTip("a1", at(1))
	w.setTip("a2", at(2))
	if got := seen(); !slices.Equal(got, []string{"r1", "r2", "r3"}) || w.count.Load() != 3 {
		t.Fatalf("after a1, a2: seen %v, count %d", got, w.count.Load())
	}

	// A heavier branch from a1 that holds r4 and r5, not r3: r3
	// leaves the main chain.
	add("b2", "a1", 7, "r4")
	add("b3", "b2", 8, "r5")
	w.setTip("b3", at(3))
	if got := seen(); !slices.Equal(got, []string{"r1", "r2", "r4", "r5"}) || w.count.Load() != 4 {
		t.Fatalf("after the reorganisation: seen %v, count %d", got, w.count.Load())
	}
	if !w.seen["r1"].Equal(at(1)) || !w.seen["r4"].Equal(at(3)) {
		t.Fatalf("times: r1 %v (want %v), r4 %v (want %v)", w.seen["r1"], at(1), w.seen["r4"], at(3))
	}

	// r3 mined again on the new main chain: seen again, at its new time.
	add("b4", "b3", 9, "r3")
	w.setTip("b4", at(4))
	if !w.seen["r3"].Equal(at(4)) || w.count.Load() != 5 {
		t.Fatalf("r3 again: time %v (want %v), count %d", w.seen["r3"], at(4), w.count.Load())
	}

	// A tip of equal height on another branch replaces the old one from
	// the fork, across several heights.
	add("c3", "b2", 8, "r5", "r6")
	add("c4", "c3", 9)
	w.setTip("c4", at(5))
	if got := seen(); !slices.Equal(got, []string{"r1", "r2", "r4", "r5", "r6"}) {
		t.Fatalf("after the second reorganisation: seen %v", got)
	}
	if !w.seen["r5"].Equal(at(5)) {
		t.Fatalf("r5 left with b3 and came back with c3: time %v, want %v", w.seen["r5"], at(5))
	}
	if w.mainAt[8] != "c3" || w.mainAt[9] != "c4" || w.mainAt[7] != "b2" {
		t.Fatalf("main chain %v", w.mainAt)
	}
}

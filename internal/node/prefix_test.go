package node_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/store"
)

// TestPrefixLookups: blocks (main chain and side branch) and readings (mined
// and pending) are found by the start of their hash, on a node with a store
// (which seeks in the store's indexes) and on one without (which scans its
// chain), alike: unique prefixes name one, shared prefixes are counted and
// listed in order, others match nothing.
func TestPrefixLookups(t *testing.T) {
	params := chain.TestParams("prefix")
	params.Difficulty = 16 // every block hash starts with 0000
	b := newBuilder(t, params)
	var blocks []*chain.Block
	for i := range 4 {
		blocks = append(blocks, b.block(chain.Hash{}, fmt.Sprintf("m%d", i), fmt.Sprintf("n%d", i)))
	}
	side := b.block(params.Genesis().Hash(), "side")
	at := time.UnixMilli(params.GenesisTime).Add(time.Hour)
	var pending []chain.Reading
	for i := range 600 { // enough ids for some to share their first 4 digits
		r, err := chain.NewReading(key(2), fmt.Sprintf("p%d", i), 70, at)
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, r)
	}

	allBlocks := []chain.Hash{params.Genesis().Hash(), side.Hash()}
	var allReadings []chain.Hash
	for _, blk := range blocks {
		allBlocks = append(allBlocks, blk.Hash())
		allReadings = append(allReadings, blk.ReadingIDs()...)
	}
	allReadings = append(allReadings, side.ReadingIDs()[0]) // on a side branch: not found
	for _, r := range pending {
		allReadings = append(allReadings, r.ID())
	}
	sideReading := side.ReadingIDs()[0]

	// Prefixes to look up: each hash's first 4, 5 and 8 digits and all 64.
	prefixes := map[string]bool{"ffffffff": true}
	for _, h := range append(slices.Clone(allBlocks), allReadings...) {
		for _, d := range []int{4, 5, 8, 64} {
			prefixes[h.String()[:d]] = true
		}
	}
	// want is what a lookup must find among all, up to limit.
	want := func(p chain.HashPrefix, all []chain.Hash, limit int) node.Matches {
		var found []chain.Hash
		for _, h := range all {
			if p.Matches(h) && h != sideReading {
				found = append(found, h)
			}
		}
		slices.SortFunc(found, func(a, b chain.Hash) int { return bytes.Compare(a[:], b[:]) })
		return node.Matches{Hashes: found[:min(limit, len(found))], Count: len(found)}
	}

	for _, stored := range []bool{false, true} {
		t.Run(fmt.Sprintf("store=%v", stored), func(t *testing.T) {
			var opts []node.Option
			if stored {
				st, err := store.Open(filepath.Join(t.TempDir(), "chain"), params)
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				state, err := st.Load()
				if err != nil {
					t.Fatal(err)
				}
				opts = append(opts, node.WithStore(st, node.State{Main: state.Main, Side: state.Side, Pending: state.Pending}))
			}
			n, err := node.New(params, key(9), append(opts, node.WithClock(func() time.Time { return at.Add(time.Minute) }))...)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := n.AddBlocks(context.Background(), append(slices.Clone(blocks), side)); err != nil {
				t.Fatal(err)
			}
			for _, r := range pending {
				if err := n.SubmitReading(r); err != nil {
					t.Fatal(err)
				}
			}
			shared := map[string]int{} // prefixes that name more than one hash
			for s := range prefixes {
				p, err := chain.ParseHashPrefix(s)
				if err != nil {
					t.Fatal(err)
				}
				for _, limit := range []int{1, 3} {
					got, err := n.BlocksWithPrefix(p, limit)
					if w := want(p, allBlocks, limit); err != nil || !equal(got, w) {
						t.Fatalf("blocks %s, limit %d: %+v, %v; want %+v", s, limit, got, err, w)
					}
					if got.Count > 1 {
						shared["block "+s] = got.Count
					}
					got, err = n.ReadingsWithPrefix(p, limit)
					if w := want(p, allReadings, limit); err != nil || !equal(got, w) {
						t.Fatalf("readings %s, limit %d: %+v, %v; want %+v", s, limit, got, err, w)
					}
					if got.Count > 1 {
						shared["reading "+s] = got.Count
					}
				}
			}
			if shared["block 0000"] != 5 || len(shared) < 3 {
				t.Errorf("shared prefixes %v: want 0000 for the 5 mined blocks, and some of the readings'", shared)
			}
		})
	}
}

func equal(a, b node.Matches) bool {
	return slices.Equal(a.Hashes, b.Hashes) && a.Count == b.Count && a.More == b.More
}

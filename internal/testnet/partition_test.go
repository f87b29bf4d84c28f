package testnet

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
)

// TestPartitionHealRounds cuts a network of real nodes (durable stores,
// libp2p on loopback, random:3) into its two halves (Network.Partition:
// every node blocks the other half), submits readings to random nodes of
// both halves, waits until each is mined where it was submitted and has
// not crossed the cut, heals, and waits
// until every node holds every reading of every round in its main chain
// exactly once, nothing pending, on one tip. Quick mode: 10 nodes, 1
// round; long mode (P2PCHAIN_LONG): 50 nodes, 5 rounds. The time from each
// heal to convergence is logged (docs/RELIABILITY.md).
func TestPartitionHealRounds(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a network of nodes")
	}
	nodes, rounds := 10, 1
	if os.Getenv("P2PCHAIN_LONG") != "" {
		nodes, rounds = 50, 5
	}
	ctx := testCtx(t, time.Duration(rounds)*time.Minute+time.Minute)
	params := chain.TestParams("partitionrounds")
	params.Difficulty = 0
	net, err := StartNetwork(ctx, NetworkConfig{Nodes: nodes, Topology: Topology{Kind: "random", K: 3}, Params: params,
		Dir: t.TempDir(), Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { net.Close() })
	west, east := Halves(nodes)
	rng := rand.New(rand.NewPCG(7, 7))
	perSide := 5

	// count returns how many readings of subject node i has in its main
	// chain and how many pending.
	count := func(i int, subject string) (int, int) {
		n := net.Peers[i].Node
		page, err := n.SubjectReadings(subject, node.StartAt(n.Status().Height), 1000)
		if err != nil {
			t.Fatal(err)
		}
		return len(page.Readings), len(n.PendingOf(subject, 1000))
	}
	var subjects []string
	var times []time.Duration
	for r := 0; r < rounds; r++ {
		if _, err := net.Partition(); err != nil {
			t.Fatal(err)
		}
		// A half need not be connected within itself (random:3 draws links
		// across the cut), so each reading is waited for where it was
		// submitted: mined there, and on no node of the other half.
		submitted := map[int]map[string]int{} // node -> subject -> readings submitted there
		for s, side := range [][]int{west, east} {
			name := fmt.Sprintf("%s%d", []string{"west", "east"}[s], r)
			subjects = append(subjects, name)
			for k := 0; k < perSide; k++ {
				i := side[rng.IntN(len(side))]
				if _, err := net.Peers[i].Node.Submit(name, 60+k); err != nil {
					t.Fatalf("round %d: submit at node %d: %v", r, i, err)
				}
				if submitted[i] == nil {
					submitted[i] = map[string]int{}
				}
				submitted[i][name]++
			}
		}
		err := WaitFor(ctx, func() bool {
			for i, subs := range submitted {
				for name, k := range subs {
					if m, _ := count(i, name); m < k {
						return false
					}
				}
			}
			return true
		})
		if err != nil {
			t.Fatalf("round %d: readings were not mined where they were submitted: %v", r, err)
		}
		for s, side := range [][]int{west, east} {
			other := subjects[len(subjects)-1-s]
			for _, i := range side {
				if m, p := count(i, other); m != 0 || p != 0 {
					t.Fatalf("round %d: node %d has %s readings across the partition (%d in its chain, %d pending)", r, i, other, m, p)
				}
			}
		}
		healed := time.Now()
		if _, err := net.Heal(ctx); err != nil {
			t.Fatal(err)
		}
		err = WaitFor(ctx, func() bool {
			tip := net.Peers[0].Node.Status().Tip
			for i, p := range net.Peers {
				if p.Node.Status().Tip != tip {
					return false
				}
				for _, s := range subjects {
					if m, pend := count(i, s); m != perSide || pend != 0 {
						return false
					}
				}
			}
			return true
		})
		if err != nil {
			for i := range net.Peers {
				st := net.Peers[i].Node.Status()
				t.Logf("node %d: height %d tip %s pending %d", i, st.Height, st.Tip.Short(), net.Peers[i].Node.Pending())
			}
			t.Fatalf("round %d: the network did not converge after the heal: %v", r, err)
		}
		times = append(times, time.Since(healed))
		t.Logf("round %d: converged %.2f s after the heal", r+1, times[r].Seconds())
	}
	slices.Sort(times)
	t.Logf("%d nodes, %d rounds, %d readings: convergence after the heal median %.2f s, max %.2f s",
		nodes, rounds, rounds*2*perSide, times[len(times)/2].Seconds(), times[len(times)-1].Seconds())
}

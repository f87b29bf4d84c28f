package sim_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pchain/p2pchain/internal/sim"
)

// TestPropagation runs a small network in virtual time: every node gets
// every block, none forks, and the slowest are well under the bound.
func TestPropagation(t *testing.T) {
	if testing.Short() {
		t.Skip("a few seconds of CPU")
	}
	synctest.Test(t, func(t *testing.T) {
		r, err := sim.Run(context.Background(), sim.Config{Nodes: 50, Blocks: 5})
		if err != nil {
			t.Fatal(err)
		}
		t.Log(r)
		if r.Missing > 0 || r.Forks > 0 || r.ShortMesh > 0 || len(r.Latencies) != 49*5 {
			t.Fatalf("missing %d, forks %d, %d latencies, short meshes %d", r.Missing, r.Forks, len(r.Latencies), r.ShortMesh)
		}
		if r.P99 > 2*time.Second {
			t.Fatalf("p99 %v, want under 2 s", r.P99)
		}
	})
}

// TestPropagationLarge is the big run: P2PCHAIN_SIM_NODES=1000 go test
// -run Large -v -timeout 2h ./internal/sim (P2PCHAIN_SIM_BLOCKS: blocks,
// default 10; P2PCHAIN_SIM_SETTLE: the longest wait for the meshes,
// default 60s).
func TestPropagationLarge(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("P2PCHAIN_SIM_NODES"))
	if n == 0 {
		t.Skip("set P2PCHAIN_SIM_NODES")
	}
	blocks, _ := strconv.Atoi(os.Getenv("P2PCHAIN_SIM_BLOCKS"))
	settle, _ := time.ParseDuration(os.Getenv("P2PCHAIN_SIM_SETTLE"))
	start := time.Now()
	synctest.Test(t, func(t *testing.T) {
		r, err := sim.Run(context.Background(), sim.Config{Nodes: n, Blocks: blocks, Settle: settle})
		if err != nil {
			t.Fatal(err)
		}
		t.Log(r)
	})
	t.Logf("wall time %v", time.Since(start).Round(time.Second))
}

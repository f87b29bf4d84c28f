package testnet

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// The naive baseline carries a block over a line of nodes: the first hop
// at once, the others at the senders' ticks.
func TestNaivePropagates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	links := Topology{Kind: "line"}.Links(4, nil)
	nn, err := StartNaive(ctx, NaiveConfig{Nodes: 4, Links: links, Interval: 50 * time.Millisecond, Difficulty: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer nn.Close()
	for b, from := range []int{0, 3, 1} {
		d, err := nn.Propagate(ctx, from, "bench", 60+b)
		if err != nil {
			t.Fatal(err)
		}
		if d <= 0 || d > 5*time.Second {
			t.Errorf("block %d from node %d: %v", b, from, d)
		}
	}
	for i, n := range nn.nodes {
		n.mu.Lock()
		if len(n.chain) != 4 || leadingZeros(n.chain[3].hash()) < 4 {
			t.Errorf("node %d: %d blocks, want genesis and 3 mined at 4 bits", i, len(n.chain))
		}
		n.mu.Unlock()
	}
	if nn.BytesIn() == 0 {
		t.Error("no bytes counted")
	}
}

// buildNode builds the p2pchain command into a temporary directory for
// the tests that run node processes, and returns its path.
func buildNode(t *testing.T, ctx context.Context) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "p2pchain")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "../../cmd/p2pchain").CombinedOutput(); err != nil {
		t.Fatalf("build p2pchain: %v\n%s", err, out)
	}
	return bin
}

// StartProcs runs node processes that connect by the topology; a node
// killed and restarted comes back with its identity and links, and
// MeasurePropagation times a block over all of them.
func TestProcNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("builds p2pchain and starts node processes")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := buildNode(t, ctx)
	params := chain.DefaultParams()
	params.Difficulty = 0
	pn, err := StartProcs(ctx, ProcConfig{Binary: bin, Nodes: 3, Topology: Topology{Kind: "line"}, Dir: t.TempDir(), Params: params, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer pn.Close()
	if err := pn.WaitPeers(ctx); err != nil {
		t.Fatal(err)
	}
	id, pid, addr, api := pn.Nodes[2].ID, pn.Nodes[2].PID(), pn.Nodes[2].Addr, pn.Nodes[2].API
	pn.Kill(2)
	if err := pn.Restart(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if pn.Nodes[2].ID != id || pn.Nodes[2].PID() == pid || pn.Nodes[2].Addr != addr || pn.Nodes[2].API != api {
		t.Errorf("restarted node 2: ID %s, PID %d, address %s, API %s; was %s, %d, %s, %s (the same but for the PID)",
			pn.Nodes[2].ID, pn.Nodes[2].PID(), pn.Nodes[2].Addr, pn.Nodes[2].API, id, pid, addr, api)
	}
	if err := pn.WaitPeers(ctx); err != nil {
		t.Fatal(err)
	}
	// Its API port taken meanwhile: it starts on new ports.
	pn.Stop(2)
	taken, err := net.Listen("tcp", strings.TrimPrefix(api, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	if err := pn.Restart(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if pn.Nodes[2].API == api || pn.Nodes[2].ID != id {
		t.Errorf("restarted with its API port taken: API %s (was %s), ID %s", pn.Nodes[2].API, api, pn.Nodes[2].ID)
	}
	if err := pn.WaitPeers(ctx); err != nil {
		t.Fatal(err)
	}
	ports, err := pn.TCPPorts()
	if err != nil {
		t.Fatal(err)
	}
	res, err := MeasurePropagation(ctx, pn.APIs(), 2, rand.New(rand.NewPCG(1, 2)), Meters{CPU: ProcessCPU(pn.APIs()), Wire: WireMeter(ports)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Latencies) != 2 || res.BytesIn == 0 || res.CPUSeconds < 0 {
		t.Errorf("result %+v", res)
	}
	// On the wire each block travels encrypted and framed, with GossipSub's
	// message envelope and control messages: more than its payload, unless
	// a connection closed meanwhile (its bytes then drop out) or a link
	// went over QUIC after the restarts (not seen on TCP).
	if res.WireMeasured && res.WireGone == 0 && res.WireEnds >= 2*len(pn.Links) && res.WireIn <= res.BytesIn {
		t.Errorf("%d bytes on the wire for %d bytes of blocks", res.WireIn, res.BytesIn)
	}
	if res.WireMeasured && res.WireIn == 0 {
		t.Error("no bytes on the wire")
	}
	if !res.WireMeasured && os.Getenv("CI") != "" {
		t.Error("bytes on the wire not measured in CI: .ci/run installs iproute2 (ss)")
	}
	st, err := pn.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range st {
		if s.Height != 2 {
			t.Errorf("node %d at height %d, want 2", i, s.Height)
		}
	}
}

// A node restarted while a node it links to is down comes back: the link
// to the node that is down is dialled when that one restarts. (Restart
// dialled it at once, through the API of the node that was down, and
// answered "node 2 dialing node 1: connection refused" for a node that had
// started.)
func TestProcRestartBesideADownNode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds p2pchain and starts node processes")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := buildNode(t, ctx)
	params := chain.DefaultParams()
	params.Difficulty = 0
	pn, err := StartProcs(ctx, ProcConfig{Binary: bin, Nodes: 3, Topology: Topology{Kind: "line"}, Dir: t.TempDir(), Params: params, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer pn.Close()
	if err := pn.WaitPeers(ctx); err != nil {
		t.Fatal(err)
	}
	pn.Stop(2)
	pn.Kill(1)
	if err := pn.Restart(ctx, 1); err != nil {
		t.Fatalf("restart node 1 while node 2 is down: %v", err)
	}
	if !pn.Running(1) {
		t.Fatal("node 1 is not running after its restart")
	}
	if err := pn.Restart(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := pn.WaitPeers(ctx); err != nil {
		t.Fatal(err)
	}
}

// parallel with all runs every call whatever the others return (a partition of
// many nodes with one down must still reach the rest), and its error names
// the first three failures and counts the others.
func TestParallelAllRunsEvery(t *testing.T) {
	var ran [20]bool
	err := parallel(context.Background(), 20, 2, true, func(i int) error {
		ran[i] = true
		if i%4 == 0 {
			return fmt.Errorf("node %d: down", i)
		}
		return nil
	})
	for i, r := range ran {
		if !r {
			t.Errorf("call %d did not run", i)
		}
	}
	if err == nil || err.Error() != "node 0: down\nnode 4: down\nnode 8: down\nand 2 more failed" {
		t.Errorf("error %q, want the first three failures and 2 more", err)
	}
	// Without all, it starts no more once one failed, and says the first.
	var started atomic.Int32
	err = parallel(context.Background(), 20, 1, false, func(i int) error {
		started.Add(1)
		if i == 2 {
			return fmt.Errorf("node %d: down", i)
		}
		return nil
	})
	if err == nil || err.Error() != "node 2: down" || started.Load() > 4 {
		t.Errorf("without all: error %v after %d calls, want node 2's and no more than a call past it", err, started.Load())
	}
}

func TestPercentile(t *testing.T) {
	ds := []time.Duration{5 * time.Millisecond, 1 * time.Millisecond, 3 * time.Millisecond, 2 * time.Millisecond}
	for _, c := range []struct{ q, want float64 }{{0.5, 2}, {0.95, 5}, {1, 5}, {0, 1}} {
		if got := Percentile(ds, c.q); got != c.want {
			t.Errorf("Percentile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
}

package testnet

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/datadir"
)

func TestParseTopology(t *testing.T) {
	for _, s := range []string{"line", "ring", "full", "random:1", "random:3"} {
		top, err := ParseTopology(s)
		if err != nil || top.String() != s {
			t.Errorf("ParseTopology(%q) = %v, %v", s, top, err)
		}
	}
	for _, s := range []string{"", "star", "random", "random:0", "random:x", "line:2"} {
		if _, err := ParseTopology(s); err == nil {
			t.Errorf("ParseTopology(%q) accepted", s)
		}
	}
}

func TestTopologyLinks(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, tt := range []struct {
		top  Topology
		n    int
		want [][2]int
	}{
		{Topology{Kind: "line"}, 4, [][2]int{{1, 0}, {2, 1}, {3, 2}}},
		{Topology{Kind: "ring"}, 4, [][2]int{{1, 0}, {2, 1}, {3, 2}, {3, 0}}},
		{Topology{Kind: "ring"}, 2, [][2]int{{1, 0}}}, // no second link between the same two
		{Topology{Kind: "full"}, 3, [][2]int{{1, 0}, {2, 0}, {2, 1}}},
		{Topology{Kind: "line"}, 1, nil},
	} {
		if got := tt.top.Links(tt.n, rng); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s of %d: links %v, want %v", tt.top, tt.n, got, tt.want)
		}
	}
	// random:K: K distinct earlier nodes each, all of them when fewer.
	links := Topology{Kind: "random", K: 2}.Links(10, rng)
	per := map[int]map[int]bool{}
	for _, l := range links {
		if l[1] >= l[0] {
			t.Fatalf("link %v dials a later node", l)
		}
		if per[l[0]] == nil {
			per[l[0]] = map[int]bool{}
		}
		per[l[0]][l[1]] = true
	}
	for i := 1; i < 10; i++ {
		if want := min(2, i); len(per[i]) != want {
			t.Errorf("random:2: node %d dials %d distinct nodes, want %d", i, len(per[i]), want)
		}
	}
}

// TestNetworkLine: five durable nodes in a line converge on the readings
// submitted at every node, under a steady load, and keep their chains and
// identities in their own data directories.
func TestNetworkLine(t *testing.T) {
	if testing.Short() {
		t.Skip("starts five nodes")
	}
	ctx := testCtx(t, 90*time.Second)
	params := chain.TestParams("network")
	params.Difficulty = 4
	dir := t.TempDir()
	top, _ := ParseTopology("line")
	net, err := StartNetwork(ctx, NetworkConfig{Nodes: 5, Topology: top, Params: params, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { net.Close() })
	if err := net.WaitPeers(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := net.Degrees(), []int{1, 2, 2, 2, 1}; !reflect.DeepEqual(got, want) {
		t.Fatalf("degrees %v, want %v", got, want)
	}
	if got := len(net.Peers[0].Host.Peers()); got != 1 {
		t.Fatalf("node 0 of a line has %d peers, want 1", got)
	}
	if err := WaitMesh(ctx, net.Peers, 1); err != nil {
		t.Fatal(err)
	}

	var ids []chain.Hash
	for i, p := range net.Peers {
		r, err := p.Node.Submit("alice", 60+i)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID())
	}
	lctx, stopLoad := context.WithCancel(ctx)
	load := net.StartLoad(lctx, 50)
	time.Sleep(time.Second)
	stopLoad()
	load.Wait()
	if err := WaitConverged(ctx, net.Peers); err != nil {
		t.Fatal(err)
	}
	var s LoadStats
	if err := WaitFor(ctx, func() bool { s = load.Stats(); return s.Confirmed == s.Submitted }); err != nil {
		t.Fatalf("load: %+v: %v", s, err)
	}
	if s.Submitted < 30 || s.Failed != 0 {
		t.Errorf("load of 50/s for 1 s: %+v", s)
	}
	for i, p := range net.Peers {
		for j, id := range ids {
			if info, ok, _ := p.Node.LocateReading(id); !ok || info.Pending {
				t.Errorf("node %d: the reading submitted at node %d is not in a block", i, j)
			}
		}
	}

	// Each node's chain is in its own store: closed and opened again, node
	// 3 has the same identity and the whole chain.
	id3, height := net.Peers[3].Host.ID(), net.Peers[3].Node.Status().Height
	if err := net.Close(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("node-%d", i), datadir.StoreDir)); err != nil {
			t.Errorf("node %d: %v", i, err)
		}
	}
	net2, err := StartNetwork(ctx, NetworkConfig{Nodes: 4, Topology: top, Params: params, Dir: dir, NoMiner: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { net2.Close() })
	if got := net2.Peers[3]; got.Host.ID() != id3 || got.Node.Status().Height != height {
		t.Errorf("node 3 reopened as %s at height %d, want %s at %d", got.Host.ID(), got.Node.Status().Height, id3, height)
	}
}

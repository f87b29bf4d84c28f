package testnet

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/store"
)

// BuildDataDir writes a chain, mined on every core, that a store loads
// and VerifyRate checks.
func TestBuildDataDir(t *testing.T) {
	params := chain.TestParams("build")
	params.Difficulty = 8
	dir := t.TempDir()
	var last int
	blocks, err := BuildDataDir(context.Background(), dir, params, 600, func(stage, unit string, done, total int) {
		if total != 600 || done < last {
			t.Errorf("progress %s: %d of %d %s after %d", stage, done, total, unit, last)
		}
		last = done
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 600 || last != 600 {
		t.Fatalf("%d blocks, progress at %d", len(blocks), last)
	}
	rate, err := VerifyRate(blocks, params)
	if err != nil || rate <= 0 {
		t.Fatalf("VerifyRate: %v, %v", rate, err)
	}
	s, err := store.Open(filepath.Join(dir, storeDir), params)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Height() != 600 || s.Tip() != blocks[599].Hash() {
		t.Errorf("store at height %d, tip %s; want 600, %s", s.Height(), s.Tip().Short(), blocks[599].Hash().Short())
	}
	if b := SignatureBound(3); b <= 0 {
		t.Errorf("SignatureBound(3) = %v", b)
	}
}

// BuildDataDir stops when its context ends, at difficulty 0 too: there no
// proof of work looked at the context, and bench sync built its whole
// chain (minutes for millions of blocks) after a Ctrl-C.
func TestBuildDataDirInterrupted(t *testing.T) {
	params := chain.TestParams("build")
	params.Difficulty = 0
	ctx, cancel := context.WithCancel(context.Background())
	var last int
	_, err := BuildDataDir(ctx, t.TempDir(), params, 100000, func(stage, unit string, done, total int) {
		last = done
		cancel() // Ctrl-C after the first commit
	})
	if !errors.Is(err, context.Canceled) || last != 512 {
		t.Fatalf("error %v, progress at %d; want context.Canceled after the first 512 blocks", err, last)
	}
}

// ProcessMemory reads this process's resident memory.
func TestProcessMemory(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc")
	}
	rss, peak, err := ProcessMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if rss < 1<<20 || peak < rss {
		t.Errorf("rss %d, peak %d", rss, peak)
	}
}

// MeasureSync, MeasureFootprint and MeasureThroughput run against node
// processes of a short chain (the figures themselves are checked by the
// tests of p2pchain bench).
func TestBenchHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("builds p2pchain and starts node processes")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := buildNode(t, ctx)
	params := chain.TestParams("harness")
	sr, err := MeasureSync(ctx, SyncConfig{Binary: bin, Dir: t.TempDir(), Params: params, Blocks: 100})
	if err != nil {
		t.Fatal(err)
	}
	if sr.Elapsed <= 0 || sr.VerifyBound <= 0 || sr.Started <= 0 || sr.Started > sr.Elapsed {
		t.Errorf("sync: %+v", sr)
	}
	fr, err := MeasureFootprint(ctx, FootprintConfig{Binary: bin, Dir: t.TempDir(), Params: params, Blocks: 100, Runs: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(fr.Restarts) != 2 || len(fr.RSS) != 2 || fr.RSS[0] == 0 || fr.StoreMB <= 0 {
		t.Errorf("footprint: %+v", fr)
	}
	pn, err := StartProcs(ctx, ProcConfig{Binary: bin, Nodes: 2, Topology: Topology{Kind: "line"}, Dir: t.TempDir(), Params: params})
	if err != nil {
		t.Fatal(err)
	}
	defer pn.Close()
	if err := pn.WaitPeers(ctx); err != nil {
		t.Fatal(err)
	}
	tr, err := MeasureThroughput(ctx, pn.APIs(), ThroughputConfig{Readings: 200, Clients: 8})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Acked != 200 || tr.Lost != 0 || len(tr.Latencies) != 200 || tr.Confirmed < tr.Accepted/2 || tr.Height == 0 {
		t.Errorf("throughput: acked %d, lost %d, %d latencies, accepted %v, confirmed %v, height %d (%v)",
			tr.Acked, tr.Lost, len(tr.Latencies), tr.Accepted, tr.Confirmed, tr.Height, tr.FirstErr)
	}
}

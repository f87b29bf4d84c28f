package testnet

// A fresh node's initial sync of a long chain, and the footprint of a node
// with a long chain (restart time, resident memory), measured as a user
// meets them: p2pchain node processes on durable data directories, timed
// from the process start through their HTTP APIs, as p2pchain bench sync
// and bench footprint run them.

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// SyncConfig says what MeasureSync measures.
type SyncConfig struct {
	Binary   string       // the p2pchain executable
	Dir      string       // data directories (node-0: the serving node, node-1: the fresh one) and logs
	Params   chain.Params // the network: name and difficulty
	Blocks   int          // length of the chain, one reading a block
	Progress Progress     // nil: none
	Timeout  time.Duration
	// ProfileDir, if set, gets both nodes' CPU profiles (ProcConfig).
	ProfileDir string
}

// SyncResult is what MeasureSync measured.
type SyncResult struct {
	Blocks  int
	Elapsed time.Duration // fresh node's process start to its API reporting the tip
	// Started is the fresh node's process start to its banner (API up).
	Started time.Duration
	// VerifyBound is the blocks per second this machine verifies on every
	// core: VerifyRate on the same chain, measured before the sync and
	// after it, the higher of the two (on a shared machine, the load of
	// others lowers either).
	VerifyBound float64
	Build       time.Duration // building the chain (not part of Elapsed)
}

// MeasureSync builds a chain of cfg.Blocks blocks in a data directory,
// measures the verification bound on it, starts a node process on it (the
// serving node), then starts a node process on an empty data directory,
// has it dial the serving node through its API (POST /api/v1/peers), and
// times it from its process start until its event stream (subscribed to
// before the dial) reports the serving node's height as its tip, which a
// node does once those blocks are durably stored. Then it stops both and
// measures the bound again.
func MeasureSync(ctx context.Context, cfg SyncConfig) (SyncResult, error) {
	res := SyncResult{Blocks: cfg.Blocks}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Hour
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	start := time.Now()
	blocks, err := BuildDataDir(ctx, filepath.Join(cfg.Dir, "node-0"), cfg.Params, cfg.Blocks, cfg.Progress)
	if err != nil {
		return res, err
	}
	res.Build = time.Since(start)
	cfg.Progress.report("measuring the verification bound", "blocks", 0, 0)
	if res.VerifyBound, err = VerifyRate(blocks, cfg.Params); err != nil {
		return res, err
	}

	cfg.Progress.report("starting the serving node", "blocks", 0, 0)
	pn, err := StartProcs(ctx, ProcConfig{Binary: cfg.Binary, Nodes: 1, Dir: cfg.Dir, Params: cfg.Params, ProfileDir: cfg.ProfileDir})
	if err != nil {
		return res, err
	}
	defer pn.Close()
	var st APIStatus
	if err := getJSON(ctx, pn.Nodes[0].API+"/api/v1/status", &st); err != nil {
		return res, err
	}
	if st.Height != uint64(cfg.Blocks) {
		return res, fmt.Errorf("the serving node is at height %d, not %d", st.Height, cfg.Blocks)
	}

	fresh := &ProcNode{Index: 1, Dir: filepath.Join(cfg.Dir, "node-1"), Log: filepath.Join(cfg.Dir, "node-1.log")}
	pn.mu.Lock()
	pn.Nodes = append(pn.Nodes, fresh)
	pn.mu.Unlock()
	start = time.Now()
	if err := pn.start(ctx, fresh, false); err != nil {
		return res, fmt.Errorf("the fresh node: %w", err)
	}
	res.Started = time.Since(start)
	// The clock stops at the fresh node's tip event for the last height:
	// a node sends it once the blocks are durably stored (its status
	// shows a height as soon as the blocks are in memory, before the
	// batch's commit).
	sctx, stopEvents := context.WithCancel(ctx)
	defer stopEvents()
	ready, reached := make(chan error, 1), make(chan time.Time, 1)
	go readTips(sctx, fresh.API, ready, func(_ bool, t tipData, at time.Time) bool {
		if t.Height >= uint64(cfg.Blocks) {
			reached <- at
			return false
		}
		return true
	})
	if err := waitReady(ctx, ready, 1); err != nil {
		return res, fmt.Errorf("the fresh node's event stream: %w", err)
	}
	if err := postPeer(ctx, fresh.API, pn.Nodes[0].Addr); err != nil {
		return res, fmt.Errorf("the fresh node dialling the serving one: %w", err)
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var shown time.Time // when status first showed the last height
	for res.Elapsed == 0 {
		select {
		case at := <-reached:
			res.Elapsed = at.Sub(start)
		case <-ctx.Done():
			return res, fmt.Errorf("the fresh node reached %d of %d blocks: %w", st.Height, cfg.Blocks, ctx.Err())
		case <-tick.C:
			if err := getJSON(ctx, fresh.API+"/api/v1/status", &st); err != nil {
				return res, fmt.Errorf("the fresh node: %w", err)
			}
			cfg.Progress.report("syncing", "blocks", int(st.Height), cfg.Blocks)
			if st.Height >= uint64(cfg.Blocks) && shown.IsZero() {
				shown = time.Now()
			}
			if !shown.IsZero() && time.Since(shown) > 10*time.Second {
				return res, fmt.Errorf("the fresh node shows height %d, but its event stream sent no tip event for it in 10 s", st.Height)
			}
		}
	}
	stopEvents()
	pn.Close() // the bound again, on idle nodes' cores
	cfg.Progress.report("measuring the verification bound again", "blocks", 0, 0)
	after, err := VerifyRate(blocks, cfg.Params)
	res.VerifyBound = max(res.VerifyBound, after)
	return res, err
}

// FootprintConfig says what MeasureFootprint measures.
type FootprintConfig struct {
	Binary   string       // the p2pchain executable
	Dir      string       // the node's data directory (node-0) and log
	Params   chain.Params // the network: name and difficulty
	Blocks   int          // length of the chain, one reading a block
	Runs     int          // starts of the node, each timed (0: 5)
	Settle   time.Duration
	Progress Progress
}

// FootprintResult is what MeasureFootprint measured.
type FootprintResult struct {
	Blocks   int
	Restarts []time.Duration // process start to the first answer of GET /api/v1/status, one per run
	RSS      []uint64        // the node's VmRSS after it served and settled, bytes, one per run
	PeakRSS  []uint64        // its VmHWM then
	StoreMB  float64         // size of the chain store on disk
	Build    time.Duration
}

// MeasureFootprint builds a chain of cfg.Blocks blocks in a data
// directory, then cfg.Runs times starts a node process on it and times it
// from just before the process starts until its API answers GET
// /api/v1/status (at the chain's height), waits cfg.Settle, reads the
// process's resident memory (VmRSS, and its peak VmHWM, from
// /proc/PID/status: Linux only) and stops it (SIGTERM).
func MeasureFootprint(ctx context.Context, cfg FootprintConfig) (FootprintResult, error) {
	res := FootprintResult{Blocks: cfg.Blocks}
	if cfg.Runs <= 0 {
		cfg.Runs = 5
	}
	start := time.Now()
	if _, err := BuildDataDir(ctx, filepath.Join(cfg.Dir, "node-0"), cfg.Params, cfg.Blocks, cfg.Progress); err != nil {
		return res, err
	}
	res.Build = time.Since(start)
	res.StoreMB = float64(dirSize(filepath.Join(cfg.Dir, "node-0", storeDir))) / 1e6
	var pn *ProcNetwork
	defer func() {
		if pn != nil {
			pn.Close()
		}
	}()
	for run := 0; run < cfg.Runs; run++ {
		cfg.Progress.report(fmt.Sprintf("starting the node, run %d of %d", run+1, cfg.Runs), "", 0, 0)
		start := time.Now()
		if pn == nil {
			var err error
			if pn, err = StartProcs(ctx, ProcConfig{Binary: cfg.Binary, Nodes: 1, Dir: cfg.Dir, Params: cfg.Params, Timeout: 5 * time.Minute}); err != nil {
				return res, err
			}
		} else if err := pn.start(ctx, pn.Nodes[0], false); err != nil {
			return res, err
		}
		n := pn.Nodes[0]
		var st APIStatus
		for {
			err := getJSON(ctx, n.API+"/api/v1/status", &st)
			if err == nil {
				break
			}
			if ctx.Err() != nil || !pn.Running(0) {
				return res, fmt.Errorf("run %d: %w", run, err)
			}
			time.Sleep(time.Millisecond)
		}
		res.Restarts = append(res.Restarts, time.Since(start))
		if st.Height != uint64(cfg.Blocks) {
			return res, fmt.Errorf("run %d: the node is at height %d, not %d", run, st.Height, cfg.Blocks)
		}
		select {
		case <-time.After(cfg.Settle):
		case <-ctx.Done():
			return res, ctx.Err()
		}
		rss, peak, err := ProcessMemory(n.PID())
		if err != nil {
			return res, err
		}
		res.RSS, res.PeakRSS = append(res.RSS, rss), append(res.PeakRSS, peak)
		pn.Stop(0)
	}
	return res, nil
}

// ProcessMemory returns the resident memory of process pid and its peak,
// in bytes (VmRSS and VmHWM of /proc/PID/status: Linux only).
func ProcessMemory(pid int) (rss, peak uint64, err error) {
	if runtime.GOOS != "linux" {
		return 0, 0, fmt.Errorf("resident memory is read from /proc/PID/status, which %s does not have", runtime.GOOS)
	}
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		name, value, _ := strings.Cut(s.Text(), ":")
		kb, perr := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		switch {
		case perr != nil:
		case name == "VmRSS":
			rss = kb * 1024
		case name == "VmHWM":
			peak = kb * 1024
		}
	}
	if rss == 0 {
		return 0, 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	return rss, peak, s.Err()
}

// ProcessCPUTime returns the CPU time (user and system) process pid has
// used so far, from /proc/PID/stat (Linux), in units of the kernel's clock
// tick (clockTicks, 10 ms).
func ProcessCPUTime(pid int) (time.Duration, error) {
	if runtime.GOOS != "linux" {
		return 0, fmt.Errorf("CPU time is read from /proc/PID/stat, which %s does not have", runtime.GOOS)
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: fields are counted after
	// its closing parenthesis.
	rest := string(data)
	if i := strings.LastIndexByte(rest, ')'); i >= 0 {
		rest = rest[i+1:]
	}
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseUint(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q, stime %q", pid, f[11], f[12])
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat's times:
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// dirSize returns the bytes of the files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

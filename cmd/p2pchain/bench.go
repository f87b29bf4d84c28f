package main

// p2pchain bench: measurements of real nodes from the outside, through
// their APIs (internal/testnet: MeasurePropagation, StartProcs, and the
// naive baseline StartNaive).

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/p2pchain/p2pchain/internal/api"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// benchMaxClientsPerNode is the most throughput clients one node takes:
// the places its API keeps for connections from this machine
// (api.DefaultMaxConnections), less room for the harness's own requests
// to it (status, metrics, event streams). One more would be refused
// too_many_connections in the middle of the run.
const benchMaxClientsPerNode = api.DefaultMaxConnections - 24

type benchFlags struct {
	kind       string
	nodes      int
	processes  bool
	difficulty int
	blocks     int
	topology   string
	interval   time.Duration
	sizes      string
	chart      string
	seed       uint64
	dir        string
	readings   int
	clients    int
	batch      int
	profile    string
	maxprocs   int
	runs       int
	asJSON     bool
	baseline   bool
	top        testnet.Topology
	sizeList   []int
}

var benchKinds = []string{"propagation", "scaling", "sync", "throughput", "footprint"}

func parseBenchFlags(args []string, stdout io.Writer) (benchFlags, error) {
	f := benchFlags{nodes: 10, difficulty: 0, blocks: 20, topology: "random:3", interval: 5 * time.Second,
		sizes: "10,25,50,100", chart: "propagation-scaling.svg"}
	fs := newCmdFlags("bench", help{
		usage: "propagation|scaling|sync|throughput|footprint [--nodes N] [--processes] [--difficulty D] [--blocks B] [--json] [flags]",
		about: []string{"Measures real nodes from the outside, through their HTTP APIs, on 127.0.0.1.",
			"",
			"propagation: starts N nodes (in this process, or N node processes with --processes),",
			"each with its data directory and durable store, connected by --topology; subscribes",
			"to every node's event stream, then B times submits a reading through the API of a",
			"random node and times it until every node reported the block holding it as its tip.",
			"Prints p50/p95/p99/max, the CPU time, the bytes on the wire (TCP between the nodes,",
			"read with Linux's ss) and the block bytes received per node per block,",
			"and the same figures for the naive baseline run in the same harness (the classic demo:",
			"every node sends its whole chain as one JSON line to each neighbour every",
			"--baseline-interval and when it adds a block; a receiver keeps a longer chain), on the",
			"same topology with the same number of blocks at the same difficulty.",
			"scaling: propagation at each of --sizes nodes (up to --nodes when given), as a table",
			"and an SVG chart (--chart).",
			"sync: writes a chain of B blocks (default 10000, one signed reading each) into a data",
			"directory, measures what every core of this machine verifies per second (the checks",
			"and Ed25519 signatures a sync runs on each block: the bound), starts a node process on",
			"it, then a fresh node process that dials it, and times the fresh node from its process",
			"start until its API reports the tip: blocks/s and the ratio to the bound.",
			"throughput: starts N nodes (default 3; in this process, or processes with --processes),",
			"then --clients concurrent clients post --readings readings through the nodes' APIs",
			"(keep-alive connections); a reading counts once it is in the main chain of every node",
			"(their event streams and blocks). Readings/s, latency percentiles from submission to",
			"confirmed on every node, lost (acknowledged, missing at the end) and the bound: what",
			"this machine's cores sign and verify per reading (one signing, one check per other node).",
			"footprint: writes a chain of B blocks (default 100000) into a data directory, then",
			"--runs times starts a node process on it: restart time (process start to its API",
			"answering /api/v1/status) and resident memory (VmRSS, after 2 s of serving).",
			"sync and footprint always run node processes. Long stages show their progress on stderr."},
		examples: []string{
			"bench propagation --nodes 10 --blocks 20",
			"bench propagation --nodes 50 --processes --difficulty 18 --json",
			"bench scaling --processes --chart scaling.svg",
			"bench scaling --sizes 3,5,10 --blocks 10",
			"bench sync --blocks 10000",
			"bench throughput --nodes 3 --processes --difficulty 18 --json",
			"bench footprint --blocks 100000 --json",
		},
	}, stdout)
	fs.IntVar(&f.nodes, "nodes", f.nodes, "number of nodes `N` (scaling: the largest size; throughput: default 3)")
	fs.BoolVar(&f.processes, "processes", false, "run each node as a process of its own (p2pchain node), instead of all in this process")
	fs.IntVar(&f.difficulty, "difficulty", f.difficulty, "proof-of-work difficulty in leading zero `BITS` (default 0, no proof of work; "+strconv.Itoa(chain.DefaultDifficulty)+" is the default network's)")
	fs.IntVar(&f.blocks, "blocks", f.blocks, "blocks `B` to time, one after the other (sync, footprint: the chain's length, default 10000, 100000)")
	fs.IntVar(&f.readings, "readings", 10000, "throughput: readings `R` to submit")
	fs.IntVar(&f.clients, "clients", 0, "throughput: concurrent clients `C`, spread over the nodes (0: 32 per node; at most 1,000 per node)")
	fs.IntVar(&f.maxprocs, "maxprocs", 0, "with node processes: each one's GOMAXPROCS `P` (0: 1 where the nodes outnumber the cores fourfold, else Go's default; -1: Go's default)")
	fs.StringVar(&f.profile, "cpuprofile", "", "with node processes: each writes a CPU profile into `DIR` (node-i.cpu.pprof, for go tool pprof; scaling: DIR/N-nodes/ for each size N)")
	fs.IntVar(&f.batch, "batch", 1, "throughput: readings `K` per request (above 1: POST /api/v1/readings/batch, as import-readings sends them)")
	fs.IntVar(&f.runs, "runs", 5, "footprint: starts `K` of the node, each timed")
	fs.StringVar(&f.topology, "topology", f.topology, "who dials whom, `TOPOLOGY`: line, ring, random:K or full")
	fs.DurationVar(&f.interval, "baseline-interval", f.interval, "the naive baseline's `INTERVAL` between whole-chain sends (the classic demo's 5s)")
	fs.BoolVar(&f.baseline, "baseline", true, "run the naive baseline too (--baseline=false: the real nodes only)")
	fs.StringVar(&f.sizes, "sizes", f.sizes, "scaling: the network `SIZES`, comma-separated")
	fs.StringVar(&f.chart, "chart", f.chart, "scaling: write the chart to `FILE` (SVG)")
	fs.Uint64Var(&f.seed, "seed", 0, "seed `S` of the topology and of the nodes drawn (0: a random one)")
	fs.StringVar(&f.dir, "dir", "", "keep the nodes' data in `DIR` (default: a temporary directory, removed at exit)")
	fs.jsonFlag(&f.asJSON, "each result, one object a line,")
	pos, err := fs.parse(args)
	if err != nil {
		return f, err
	}
	switch {
	case len(pos) == 0:
		return f, usagef("bench", "want one of %s", strings.Join(benchKinds, ", "))
	case len(pos) > 1 && slices.Contains(benchKinds, pos[0]):
		return f, usagef("bench", "%s: unexpected argument %q after it: bench takes one benchmark, and flags (--nodes N, ...)", pos[0], pos[1])
	case len(pos) > 1:
		return f, usagef("bench", "%q %q: want one benchmark, one of %s", pos[0], pos[1], strings.Join(benchKinds, ", "))
	}
	f.kind = pos[0]
	nodesSet, blocksSet := false, false
	var procFlags []string // flags for node processes that were given
	fs.Visit(func(fl *flag.Flag) {
		nodesSet = nodesSet || fl.Name == "nodes"
		blocksSet = blocksSet || fl.Name == "blocks"
		if fl.Name == "cpuprofile" || fl.Name == "maxprocs" {
			procFlags = append(procFlags, "--"+fl.Name)
		}
	})
	for _, name := range procFlags {
		switch {
		case !slices.Contains(benchKinds, f.kind):
			// the unknown benchmark is the error (below)
		case f.kind == "footprint":
			return f, usagef("bench", "%s: bench footprint does not take it (it times a node process's start and reads its memory)", name)
		case f.kind == "sync" && name == "--maxprocs":
			return f, usagef("bench", "--maxprocs: bench sync runs two node processes, each with Go's default")
		case f.kind != "sync" && !f.processes:
			return f, usagef("bench", "%s: only with --processes (it sets up node processes)", name)
		}
	}
	switch {
	case f.kind == "throughput" && !nodesSet:
		f.nodes = 3
	case f.kind == "sync" && !blocksSet:
		f.blocks = 10000
	case f.kind == "footprint" && !blocksSet:
		f.blocks = 100000
	}
	switch {
	case !slices.Contains(benchKinds, f.kind):
		return f, usagef("bench", "unknown benchmark %q: want one of %s", f.kind, strings.Join(benchKinds, ", "))
	case f.nodes < 1:
		return f, usagef("bench", "--nodes %d: want at least 1 node", f.nodes)
	case f.blocks < 1:
		return f, usagef("bench", "--blocks %d: want at least 1", f.blocks)
	case f.difficulty < 0 || f.difficulty > chain.MaxDifficulty:
		return f, usagef("bench", "--difficulty %d: want 0 to %d bits", f.difficulty, chain.MaxDifficulty)
	case f.interval <= 0:
		return f, usagef("bench", "--baseline-interval %v: want a positive duration", f.interval)
	case f.readings < 1:
		return f, usagef("bench", "--readings %d: want at least 1", f.readings)
	case f.clients < 0:
		return f, usagef("bench", "--clients %d: want 0 (32 per node) or more", f.clients)
	case f.kind == "throughput" && (f.clients+f.nodes-1)/f.nodes > benchMaxClientsPerNode:
		return f, usagef("bench", "--clients %d: at most %d per node, %d for %d nodes (a node's API takes %d connections from this machine, the harness needs a few); use more --nodes",
			f.clients, benchMaxClientsPerNode, benchMaxClientsPerNode*f.nodes, f.nodes, api.DefaultMaxConnections)
	case f.runs < 1:
		return f, usagef("bench", "--runs %d: want at least 1", f.runs)
	case f.batch < 1 || f.batch > node.MaxSubmitAll:
		return f, usagef("bench", "--batch %d: want 1 to %d readings a request", f.batch, node.MaxSubmitAll)
	}
	if f.top, err = testnet.ParseTopology(f.topology); err != nil {
		return f, &usageError{cmd: "bench", err: err}
	}
	for _, s := range strings.Split(f.sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return f, usagef("bench", "--sizes %q: want whole numbers of at least 1, comma-separated", f.sizes)
		}
		if !nodesSet || n <= f.nodes {
			f.sizeList = append(f.sizeList, n)
		}
	}
	if len(f.sizeList) == 0 {
		f.sizeList = []int{f.nodes}
	}
	if f.seed == 0 {
		f.seed = rand.Uint64()
	}
	return f, nil
}

// propagationRow is one propagation measurement, as printed.
type propagationRow struct {
	Bench      string  `json:"bench"`
	Nodes      int     `json:"nodes"`
	Blocks     int     `json:"blocks"`
	Topology   string  `json:"topology"`
	Difficulty int     `json:"difficulty"`
	Processes  bool    `json:"processes"`
	P50        float64 `json:"p50_ms"`
	P95        float64 `json:"p95_ms"`
	P99        float64 `json:"p99_ms"`
	Max        float64 `json:"max_ms"`
	CPU        float64 `json:"cpu_ms_per_node_per_block"`     // -1: unknown, under minCPUTicks of the meter's resolution
	Bytes      float64 `json:"wire_bytes_per_node_per_block"` // -1: not measured (no ss)
	BlockBytes float64 `json:"block_bytes_per_node_per_block"`
	BaseP50    float64 `json:"baseline_p50_ms"` // the baseline's figures and ratio_p50: -1 when not run (--baseline=false)
	BaseP95    float64 `json:"baseline_p95_ms"`
	BaseP99    float64 `json:"baseline_p99_ms"`
	BaseMax    float64 `json:"baseline_max_ms"`
	BaseBytes  float64 `json:"baseline_bytes_per_node_per_block"`
	BaseIntMS  int64   `json:"baseline_interval_ms"`
	RatioP50   float64 `json:"ratio_p50"`
	Seed       uint64  `json:"seed"`
	Includes   string  `json:"includes"`
}

func runBench(args []string, stdout, stderr io.Writer) error {
	f, err := parseBenchFlags(args, stdout)
	if err != nil {
		return err
	}
	if f.profile != "" {
		if f.profile, err = filepath.Abs(f.profile); err != nil {
			return err
		}
		if err := os.MkdirAll(f.profile, 0o755); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stopped atomic.Value // the name of the signal that stopped the run
	defer stopOnSignals(ctx, cancel,
		func(s os.Signal) {
			stopped.Store(signalName(s))
			fmt.Fprintf(stderr, "%s: stopping the benchmark (once more to force the exit)\n", s)
		},
		func(s os.Signal) {
			fmt.Fprintf(stderr, "%s again: exiting at once\n", s)
			os.Exit(1)
		})()
	// A run stopped by a signal is an error, as an interrupted export or
	// verify is (exit status 1), and prints no result for what it was
	// measuring: a figure of part of a run would read as one of the whole.
	interrupted := func(what string) error {
		name, _ := stopped.Load().(string)
		return fmt.Errorf("interrupted by %s %s: run it again to the end for a result (fewer --blocks or --readings for a shorter run)", name, what)
	}
	switch f.kind {
	case "sync", "throughput", "footprint":
		err := benchOther(ctx, f, stdout, stderr)
		if ctx.Err() != nil {
			return interrupted("before the measurement finished: no result printed")
		}
		return err
	}
	sizes := []int{f.nodes}
	if f.kind == "scaling" {
		sizes = f.sizeList
	}
	var rows []propagationRow
	profile := f.profile
	for _, n := range sizes {
		if profile != "" && f.kind == "scaling" {
			// Each size's node processes write node-i.cpu.pprof: a
			// directory each, or the next size replaces them.
			f.profile = filepath.Join(profile, fmt.Sprintf("%d-nodes", n))
			if err := os.MkdirAll(f.profile, 0o755); err != nil {
				return err
			}
		}
		row, err := benchPropagation(ctx, f, n, stderr)
		if ctx.Err() != nil {
			if len(rows) == 0 {
				return interrupted("before the measurement finished: no result printed")
			}
			if !f.asJSON {
				printPropagation(stdout, rows) // the sizes that finished
			}
			return interrupted(fmt.Sprintf("during the %d-node run: the results printed are of the sizes that finished, no chart written", n))
		}
		if err != nil {
			return fmt.Errorf("%d nodes: %w", n, err)
		}
		row.Bench = f.kind
		rows = append(rows, row)
		if f.asJSON {
			if err := json.NewEncoder(stdout).Encode(row); err != nil {
				return err
			}
		}
	}
	if !f.asJSON {
		printPropagation(stdout, rows)
	}
	if f.kind == "scaling" {
		if err := os.WriteFile(f.chart, scalingSVG(rows), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "chart written to %s\n", f.chart)
	}
	return nil
}

// benchNet is a running network the harness measures.
type benchNet struct {
	apis     []string
	links    [][2]int
	meters   testnet.Meters
	close    func()
	maxProcs int           // node processes' GOMAXPROCS (0: Go's default)
	cpuTick  time.Duration // resolution of meters.CPU: a clock tick of /proc or the /metrics step
	down     <-chan error  // node processes: one that exits (nil in this process)
}

// startBenchNet starts n nodes, in this process or as processes, each with
// its data directory (a durable store) and API, and waits until they are
// connected and their gossip mesh has formed.
func startBenchNet(ctx context.Context, f benchFlags, n int, dir string, stderr io.Writer) (_ *benchNet, err error) {
	params := chain.DefaultParams()
	params.Difficulty = uint32(f.difficulty)
	bn := &benchNet{close: func() {}}
	var degrees []int
	defer func() {
		if err != nil {
			bn.close()
		}
	}()
	if f.processes {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		pn, err := testnet.StartProcs(ctx, testnet.ProcConfig{Binary: exe, Nodes: n, Topology: f.top, Dir: dir,
			Params: params, Seed: f.seed, ProfileDir: f.profile, MaxProcs: f.maxprocs})
		if err != nil {
			return nil, err
		}
		// A node process that exits before the close stops the
		// measurement at once, named, with the end of its log.
		ectx, ecancel := context.WithCancel(ctx)
		bn.down = pn.Exits(ectx)
		bn.close = func() { ecancel(); pn.Close() }
		if err := pn.WaitPeers(ctx); err != nil {
			return nil, err
		}
		ports, err := pn.TCPPorts()
		if err != nil {
			return nil, err
		}
		bn.apis, bn.links, bn.maxProcs = pn.APIs(), pn.Links, pn.MaxProcs()
		bn.meters = testnet.Meters{CPU: pn.CPU(), Wire: testnet.WireMeter(ports)}
		bn.cpuTick = 10 * time.Millisecond // /proc/PID/stat's clock ticks, or process_cpu_seconds_total's step
		degrees = pn.Degrees()
	} else {
		log := slog.New(slog.DiscardHandler)
		net, err := testnet.StartNetwork(ctx, testnet.NetworkConfig{Nodes: n, Topology: f.top, Params: params, Dir: dir, Log: log, Seed: f.seed})
		if err != nil {
			return nil, err
		}
		actx, acancel := context.WithCancel(ctx)
		var dones []<-chan struct{}
		bn.close = func() {
			acancel()
			for _, d := range dones {
				<-d
			}
			net.Close()
		}
		for i, p := range net.Peers {
			url, _, _, done, err := startAPI(actx, net.Dirs[i], "127.0.0.1:0", p.Node, p.Host, log, acancel)
			if err != nil {
				return nil, err
			}
			dones = append(dones, done)
			bn.apis = append(bn.apis, url)
		}
		wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
		err = net.WaitPeers(wctx)
		wcancel()
		if err != nil {
			return nil, err
		}
		bn.links, degrees = net.Links, net.Degrees()
		ports, err := net.TCPPorts()
		if err != nil {
			return nil, err
		}
		// One process: its CPU time, from getrusage (microseconds; the
		// API's metric has a 10 ms step), else as any node's API reports it.
		api := bn.apis[0]
		bn.cpuTick = time.Microsecond
		if _, ok := testnet.SelfCPUTime(); !ok {
			bn.cpuTick = 10 * time.Millisecond
		}
		bn.meters = testnet.Meters{Wire: testnet.WireMeter(ports), CPU: func(ctx context.Context) (float64, error) {
			if d, ok := testnet.SelfCPUTime(); ok {
				return d.Seconds(), nil
			}
			m, err := testnet.ScrapeMetrics(ctx, api)
			return m.CPUSeconds, err
		}}
	}
	mctx, mcancel := context.WithTimeout(ctx, 10*time.Second)
	defer mcancel()
	if err := testnet.WaitMeshAPI(mctx, bn.apis, degrees); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		fmt.Fprintf(stderr, "warning: %v; measuring anyway\n", err)
	}
	return bn, nil
}

// benchPropagation measures the real nodes, then the naive baseline on the
// same links.
func benchPropagation(ctx context.Context, f benchFlags, n int, stderr io.Writer) (propagationRow, error) {
	row := propagationRow{Nodes: n, Blocks: f.blocks, Topology: f.top.String(), Difficulty: f.difficulty,
		Processes: f.processes, BaseIntMS: f.interval.Milliseconds(), Seed: f.seed}
	dir := f.dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "p2pchain-bench-")
		if err != nil {
			return row, err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else {
		dir = filepath.Join(dir, fmt.Sprintf("%d-nodes", n))
	}
	where := "in this process"
	if f.processes {
		where = "as processes"
	}
	fmt.Fprintf(stderr, "starting %d nodes %s (topology %s, difficulty %d)...\n", n, where, f.top, f.difficulty)
	bn, err := startBenchNet(ctx, f, n, dir, stderr)
	if err != nil {
		return row, err
	}
	prog, progDone := benchProgress(stderr)
	meters := bn.meters
	meters.Progress, meters.Down = prog, bn.down
	res, err := testnet.MeasurePropagation(ctx, bn.apis, f.blocks, rand.New(rand.NewPCG(f.seed, f.seed+1)), meters)
	progDone()
	links := bn.links
	bn.close() // before the baseline, which would share the CPUs
	if err != nil {
		return row, err
	}
	row.P50, row.P95 = testnet.Percentile(res.Latencies, 0.50), testnet.Percentile(res.Latencies, 0.95)
	row.P99, row.Max = testnet.Percentile(res.Latencies, 0.99), testnet.Percentile(res.Latencies, 1)
	cpuMeters := 1 // one process, one meter
	if f.processes {
		cpuMeters = n // each node process's CPU time is rounded to its own ticks
	}
	row.CPU = cpuPerNodePerBlock(res.CPUSeconds, bn.cpuTick, cpuMeters, n, f.blocks)
	row.BlockBytes = round3(float64(res.BytesIn) / float64(n) / float64(f.blocks))
	row.Bytes = -1
	wire := "wire bytes: not measured (" + res.WireWhyNot + ")"
	if res.WireMeasured {
		row.Bytes = round3(float64(res.WireIn) / float64(n) / float64(f.blocks))
		wire = "wire bytes: TCP payload received on the connections between the nodes over the run, from the kernel's TCP_INFO " +
			"(Noise and yamux framing, GossipSub with its control messages and heartbeats, identify, pings, status polls, sync; not TCP/IP headers)"
		if res.WireGone > 0 {
			wire += fmt.Sprintf(" (%d connection ends closed during the run: what they received after its start is not counted)", res.WireGone)
		}
		if seen := res.WireEnds / 2; seen < len(links) {
			wire += fmt.Sprintf(" (%d of the %d links were not over TCP at the end, QUIC after a redial: their bytes are not counted)", len(links)-seen, len(links))
		}
	}

	proc := "all nodes in one process (CPU: that process's, harness included, divided by the nodes)"
	if f.processes {
		procs := "Go's default GOMAXPROCS"
		if bn.maxProcs > 0 {
			procs = fmt.Sprintf("GOMAXPROCS=%d", bn.maxProcs)
		}
		proc = "one process per node, each with " + procs + " (CPU: the sum of the node processes' user and system time, in 10 ms clock ticks; -1 when under 5 ticks × √processes)"
	}
	row.Includes = fmt.Sprintf("latency: from POST /api/v1/readings at a random node to the last node's SSE tip event for the block, "+
		"so HTTP, durable writes, mining at difficulty %d, gossip, checks and the event stream; %s; %s; "+
		"block bytes: the blocks received by gossip and sync, payload only", f.difficulty, proc, wire)
	if !f.baseline {
		// -1, as for wire bytes not measured: a 0 would read as a
		// baseline that took no time.
		row.BaseIntMS = 0
		row.BaseP50, row.BaseP95, row.BaseP99, row.BaseMax, row.BaseBytes, row.RatioP50 = -1, -1, -1, -1, -1, -1
		return row, nil
	}
	row.Includes += "; baseline: same links and block count, in this process on loopback TCP, timed from the start of mining to the last node " +
		"adopting the chain, no HTTP, disk or checks, send phases drawn anew for each block; its bytes: the chain JSON lines received, periodic sends included"
	nn, err := testnet.StartNaive(ctx, testnet.NaiveConfig{Nodes: n, Links: links, Interval: f.interval, Difficulty: f.difficulty})
	if err != nil {
		return row, err
	}
	defer nn.Close()
	rng := rand.New(rand.NewPCG(f.seed, f.seed+1)) // the same nodes as above
	var base []time.Duration
	prog, progDone = benchProgress(stderr)
	for b := 0; b < f.blocks; b++ {
		d, err := nn.Propagate(ctx, rng.IntN(n), "bench", 60+b%100)
		if err != nil {
			progDone()
			return row, err
		}
		base = append(base, d)
		prog(fmt.Sprintf("timing blocks on the naive baseline (whole chain every %v)", f.interval), "blocks", b+1, f.blocks)
	}
	progDone()
	row.BaseP50, row.BaseP95 = testnet.Percentile(base, 0.50), testnet.Percentile(base, 0.95)
	row.BaseP99, row.BaseMax = testnet.Percentile(base, 0.99), testnet.Percentile(base, 1)
	row.BaseBytes = round3(float64(nn.BytesIn()) / float64(n) / float64(f.blocks))
	if row.P50 > 0 {
		row.RatioP50 = round3(row.BaseP50 / row.P50)
	}
	if row.RatioP50 >= 0 && (row.RatioP50 < 1 || n < 10) {
		fmt.Fprintf(stderr, "note: with %d nodes most blocks reach every node in one hop, where the naive design's direct send "+
			"(no HTTP, disk or checks) is quick and its 5 s period never shows; the comparison means something from 10 nodes up "+
			"(docs/PERFORMANCE.md, \"What the figures say\")\n", n)
	}
	return row, nil
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

// minCPUTicks is the least CPU time, in ticks of its meters' resolution,
// that cpu_ms_per_node_per_block reports for one meter: a reading of fewer
// is mostly rounding (a node process's CPU time moves in 10 ms ticks, user
// and system time apart, and a small run of a few blocks takes a few ms),
// and a 0 would read as a node that spent nothing.
const minCPUTicks = 5

// cpuPerNodePerBlock returns the CPU milliseconds per node per block of
// cpuSeconds measured over a run of nodes and blocks, the sum of meters
// meters whose resolution is tick (one per node process: each rounds on
// its own); -1 (unknown) when it measured under minCPUTicks × √meters
// ticks. The roundings of separate meters are independent, so the error
// of their sum grows as the square root of their number: 50 node
// processes need 354 ms (a 20-block run spends about 1.5 s), 2 need 71.
func cpuPerNodePerBlock(cpuSeconds float64, tick time.Duration, meters, nodes, blocks int) float64 {
	if cpuSeconds < minCPUTicks*math.Sqrt(float64(meters))*tick.Seconds() {
		return -1
	}
	return round3(cpuSeconds * 1000 / float64(nodes) / float64(blocks))
}

func printPropagation(w io.Writer, rows []propagationRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "NODES\tBLOCKS\tP50 ms\tP95 ms\tP99 ms\tMAX ms\tCPU ms/node/block\tWIRE BYTES/node/block\tBLOCK BYTES/node/block\tNAIVE P50 ms\tNAIVE P99 ms\tNAIVE BYTES/node/block\tNAIVE/OURS P50\t")
	for _, r := range rows {
		wire, cpu := "-", "-"
		if r.Bytes >= 0 {
			wire = fmt.Sprintf("%.0f", r.Bytes)
		}
		if r.CPU >= 0 {
			cpu = fmt.Sprintf("%.2f", r.CPU)
		}
		naive := []string{"-", "-", "-", "-"}
		if r.BaseP50 >= 0 {
			naive = []string{fmt.Sprintf("%.1f", r.BaseP50), fmt.Sprintf("%.1f", r.BaseP99), fmt.Sprintf("%.0f", r.BaseBytes), fmt.Sprintf("%.1f", r.RatioP50)}
		}
		fmt.Fprintf(tw, "%d\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%s\t%s\t%.0f\t%s\t\n", r.Nodes, r.Blocks, r.P50, r.P95, r.P99, r.Max,
			cpu, wire, r.BlockBytes, strings.Join(naive, "\t"))
	}
	tw.Flush()
	if len(rows) > 0 {
		r := rows[0]
		where := "all nodes in this process"
		if r.Processes {
			where = "one process per node"
		}
		naive := "no naive baseline"
		if r.BaseIntMS > 0 {
			naive = fmt.Sprintf("naive baseline: whole chain every %v and on each new block", time.Duration(r.BaseIntMS)*time.Millisecond)
		}
		fmt.Fprintf(w, "topology %s, difficulty %d, %s, durable stores, 127.0.0.1; %s\n", r.Topology, r.Difficulty, where, naive)
		fmt.Fprintln(w, "latency: API submission to the last node's tip event; --json says what each figure includes")
	}
}

// scalingSVG draws p50 and p99 latency against the number of nodes, ours
// and the baseline's, on a logarithmic time axis.
func scalingSVG(rows []propagationRow) []byte {
	const w, h, left, right, top, bottom = 720, 420, 70, 190, 40, 50
	pw, ph := float64(w-left-right), float64(h-top-bottom)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range rows {
		for _, v := range []float64{r.P50, r.P99, r.BaseP50, r.BaseP99} {
			if v > 0 {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if math.IsInf(lo, 1) {
		lo, hi = 1, 10
	}
	d0, d1 := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if d1 <= d0 {
		d1 = d0 + 1
	}
	y := func(v float64) float64 {
		v = math.Max(v, math.Pow(10, d0))
		return float64(top) + ph*(1-(math.Log10(v)-d0)/(d1-d0))
	}
	x := func(i int) float64 {
		if len(rows) == 1 {
			return float64(left) + pw/2
		}
		return float64(left) + pw*float64(i)/float64(len(rows)-1)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15">Block propagation: submission to the last node (ms, log scale)</text>`+"\n", left)
	for d := d0; d <= d1; d++ {
		yy := y(math.Pow(10, d))
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, w-right, yy, yy)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, yy+4, strconv.FormatFloat(math.Pow(10, d), 'f', -1, 64))
	}
	for i, r := range rows {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%d</text>`+"\n", x(i), h-bottom+18, r.Nodes)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">nodes</text>`+"\n", float64(left)+pw/2, h-12)
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="black"/>`+"\n", left, w-right, h-bottom, h-bottom)
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="black"/>`+"\n", left, left, top, h-bottom)
	series := []struct {
		name, color, dash string
		v                 func(propagationRow) float64
	}{
		{"p2pchain p50", "#1f77b4", "", func(r propagationRow) float64 { return r.P50 }},
		{"p2pchain p99", "#1f77b4", "6,4", func(r propagationRow) float64 { return r.P99 }},
		{"naive p50", "#d62728", "", func(r propagationRow) float64 { return r.BaseP50 }},
		{"naive p99", "#d62728", "6,4", func(r propagationRow) float64 { return r.BaseP99 }},
	}
	k := 0
	for _, s := range series {
		drawn := false
		for _, r := range rows {
			drawn = drawn || s.v(r) > 0
		}
		if !drawn { // --baseline=false
			continue
		}
		var pts []string
		for i, r := range rows {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), y(s.v(r))))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" stroke-dasharray="%s" points="%s"/>`+"\n", s.color, s.dash, strings.Join(pts, " "))
		for i, r := range rows {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s, %d nodes: %.1f ms</title></circle>`+"\n", x(i), y(s.v(r)), s.color, s.name, r.Nodes, s.v(r))
		}
		ly := top + 20 + 22*k
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2" stroke-dasharray="%s"/>`+"\n", w-right+15, w-right+45, ly, ly, s.color, s.dash)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", w-right+52, ly+4, s.name)
		k++
	}
	if len(rows) > 0 {
		r := rows[0]
		where := "in one process"
		if r.Processes {
			where = "one process per node"
		}
		notes := []string{fmt.Sprintf("%s, difficulty %d,", r.Topology, r.Difficulty), fmt.Sprintf("%d blocks, durable stores,", r.Blocks), where}
		if r.BaseIntMS > 0 {
			notes = append(notes, fmt.Sprintf("naive: whole chain every %v", time.Duration(r.BaseIntMS)*time.Millisecond))
		}
		for i, n := range notes {
			fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11">%s</text>`+"\n", w-right+15, top+120+15*i, n)
		}
	}
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

// syncRow, throughputRow and footprintRow are the measurements of bench
// sync, throughput and footprint, as printed.
type syncRow struct {
	Bench       string  `json:"bench"`
	Blocks      int     `json:"blocks"`
	Difficulty  int     `json:"difficulty"`
	Seconds     float64 `json:"seconds"`
	BlocksPerS  float64 `json:"blocks_per_s"`
	BoundPerS   float64 `json:"verify_bound_per_s"`
	Ratio       float64 `json:"ratio_to_bound"`
	StartMS     float64 `json:"start_ms"`
	BuildS      float64 `json:"build_s"`
	Cores       int     `json:"cores"`
	Includes    string  `json:"includes"`
	BoundIncl   string  `json:"bound_includes"`
	Processes   bool    `json:"processes"`
	ReadingsPer int     `json:"readings_per_block"`
}

type throughputRow struct {
	Bench        string  `json:"bench"`
	Nodes        int     `json:"nodes"`
	Processes    bool    `json:"processes"`
	Difficulty   int     `json:"difficulty"`
	Readings     int     `json:"readings"`
	Clients      int     `json:"clients"`
	Batch        int     `json:"batch"`
	Acked        int     `json:"acked"`
	Failed       int     `json:"failed"`
	Seconds      float64 `json:"seconds"`
	PerS         float64 `json:"readings_per_s"`
	AcceptedPerS float64 `json:"accepted_per_s"`
	BoundPerS    float64 `json:"bound_per_s"`
	Ratio        float64 `json:"ratio_to_bound"`
	Lost         int     `json:"lost"`
	P50          float64 `json:"p50_ms"`
	P95          float64 `json:"p95_ms"`
	P99          float64 `json:"p99_ms"`
	Max          float64 `json:"max_ms"`
	Height       uint64  `json:"height"`
	PerBlock     float64 `json:"readings_per_block"`
	Cores        int     `json:"cores"`
	Includes     string  `json:"includes"`
	BoundIncl    string  `json:"bound_includes"`
}

type footprintRow struct {
	Bench      string  `json:"bench"`
	Blocks     int     `json:"blocks"`
	Difficulty int     `json:"difficulty"`
	Runs       int     `json:"runs"`
	RestartMS  float64 `json:"restart_ms"` // p50
	P95        float64 `json:"restart_p95_ms"`
	P99        float64 `json:"restart_p99_ms"`
	Max        float64 `json:"restart_max_ms"`
	RSS        float64 `json:"rss_mb"` // p50 of the runs
	RSSMax     float64 `json:"rss_max_mb"`
	Peak       float64 `json:"rss_peak_mb"`
	StoreMB    float64 `json:"store_mb"`
	BuildS     float64 `json:"build_s"`
	Includes   string  `json:"includes"`
	Processes  bool    `json:"processes"`
}

// benchProgress shows the stages of a long benchmark on stderr: done of
// the stage's total, the rate and the time left.
func benchProgress(stderr io.Writer) (testnet.Progress, func()) {
	var (
		bar   *progress
		stage string
		last  int
	)
	finish := func() {
		if bar != nil {
			bar.finish(uint64(last), uint64(last))
			bar = nil
		}
	}
	return func(s, unit string, done, total int) {
		if s != stage {
			finish()
			stage = s
			if total > 0 {
				bar = newProgress(stderr, fmt.Sprintf("%s (%d %s)", s, total, unit), uint64(total))
				bar.unit, bar.eta = unit, true
				if !bar.tty { // a bar on a terminal; elsewhere a line now, then one every few seconds
					fmt.Fprintf(stderr, "%s (%d %s)...\n", s, total, unit)
				}
			} else {
				fmt.Fprintf(stderr, "%s...\n", s)
			}
		}
		if bar != nil {
			last = done
			bar.update(uint64(done), uint64(done))
		}
	}, finish
}

// benchOther runs bench sync, throughput or footprint and prints its row.
func benchOther(ctx context.Context, f benchFlags, stdout, stderr io.Writer) error {
	dir := f.dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "p2pchain-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else {
		dir = filepath.Join(dir, f.kind)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	params := chain.DefaultParams()
	params.Name, params.Difficulty = "bench-"+f.kind, uint32(f.difficulty)
	prog, done := benchProgress(stderr)
	defer done()
	var row any
	var after error
	switch f.kind {
	case "sync":
		res, err := testnet.MeasureSync(ctx, testnet.SyncConfig{Binary: exe, Dir: dir, Params: params, Blocks: f.blocks, Progress: prog,
			ProfileDir: f.profile})
		done()
		if err != nil {
			return err
		}
		r := syncRow{Bench: f.kind, Blocks: res.Blocks, Difficulty: f.difficulty, Seconds: round3(res.Elapsed.Seconds()),
			BlocksPerS: math.Round(float64(res.Blocks) / res.Elapsed.Seconds()), BoundPerS: math.Round(res.VerifyBound),
			StartMS: round3(float64(res.Started.Microseconds()) / 1000), BuildS: round3(res.Build.Seconds()),
			Cores: runtime.GOMAXPROCS(0), Processes: true, ReadingsPer: 1,
			Includes: "from the fresh node's process start (exec) until its event stream reports the tip (sent once the blocks are durably stored): " +
				"process start, data directory and empty store, libp2p host and API, the dial through POST /api/v1/peers, " +
				"the sync protocol over loopback TCP from a serving node process, every block's checks (proof of work, readings root, " +
				"Ed25519 signatures) and durable commits; both node processes share this machine's cores",
			BoundIncl: "blocks all the cores check per second, with no cache: header (proof of work), body (readings root, ranges) " +
				"and Ed25519 signatures, on the same chain, in this process on every core, timed by its CPU time over the cores (others' load " +
				"on a shared machine does not count), before the sync and after it, the higher; no decoding, no disk, no network"}
		if res.VerifyBound > 0 {
			r.Ratio = round3(r.BlocksPerS / res.VerifyBound)
		}
		row = r
	case "throughput":
		r, err := benchThroughput(ctx, f, dir, prog, stderr)
		done()
		if err != nil {
			return err
		}
		if r.Lost > 0 {
			after = fmt.Errorf("%d acknowledged readings are missing from the main chain of some node", r.Lost)
		}
		row = r
	case "footprint":
		res, err := testnet.MeasureFootprint(ctx, testnet.FootprintConfig{Binary: exe, Dir: dir, Params: params, Blocks: f.blocks,
			Runs: f.runs, Settle: 2 * time.Second, Progress: prog})
		done()
		if err != nil {
			return err
		}
		mb := func(b uint64) float64 { return round3(float64(b) / (1 << 20)) }
		rss := slices.Sorted(slices.Values(res.RSS))
		peak := slices.Max(res.PeakRSS)
		row = footprintRow{Bench: f.kind, Blocks: res.Blocks, Difficulty: f.difficulty, Runs: len(res.Restarts),
			RestartMS: testnet.Percentile(res.Restarts, 0.5), P95: testnet.Percentile(res.Restarts, 0.95),
			P99: testnet.Percentile(res.Restarts, 0.99), Max: testnet.Percentile(res.Restarts, 1),
			RSS: mb(rss[(len(rss)-1)/2]), RSSMax: mb(rss[len(rss)-1]), Peak: mb(peak),
			StoreMB: round3(res.StoreMB), BuildS: round3(res.Build.Seconds()), Processes: true,
			Includes: "restart: from just before exec of p2pchain node on the data directory until its API first answers GET /api/v1/status " +
				"(at the chain's height): process start, opening and loading the store, rebuilding the chain in memory, libp2p host, API; " +
				"warm page cache (the store was just written, or read by the run before); rss: the process's VmRSS (MiB) 2 s after that, " +
				"p50 and max of the runs, rss_peak: its VmHWM, the most of the runs; store: the chain store's files on disk (MB)"}
	}
	if ctx.Err() != nil {
		return ctx.Err() // a result of part of the run: not printed
	}
	if f.asJSON {
		if err := json.NewEncoder(stdout).Encode(row); err != nil {
			return err
		}
	} else {
		printOther(stdout, row)
	}
	return after
}

// signalName is a signal's usual name: SIGINT, SIGTERM.
func signalName(s os.Signal) string {
	switch s {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}

// benchThroughput starts the network and measures it.
func benchThroughput(ctx context.Context, f benchFlags, dir string, prog testnet.Progress, stderr io.Writer) (throughputRow, error) {
	row := throughputRow{Bench: f.kind, Nodes: f.nodes, Processes: f.processes, Difficulty: f.difficulty, Readings: f.readings,
		Clients: f.clients, Batch: f.batch, Cores: runtime.GOMAXPROCS(0)}
	if row.Clients == 0 {
		row.Clients = 32 * f.nodes
	}
	prog("measuring the signature bound", "", 0, 0)
	bound := testnet.SignatureBound(f.nodes)
	where := "in this process"
	if f.processes {
		where = "as processes"
	}
	prog(fmt.Sprintf("starting %d nodes %s (topology %s, difficulty %d)", f.nodes, where, f.top, f.difficulty), "", 0, 0)
	bn, err := startBenchNet(ctx, f, f.nodes, dir, stderr)
	if err != nil {
		return row, err
	}
	var closeOnce sync.Once
	defer closeOnce.Do(bn.close)
	res, err := testnet.MeasureThroughput(ctx, bn.apis, testnet.ThroughputConfig{Readings: f.readings, Clients: row.Clients,
		Batch: f.batch, Progress: prog, Down: bn.down})
	if err != nil {
		return row, err
	}
	closeOnce.Do(bn.close)
	prog("measuring the signature bound again", "", 0, 0)
	bound = max(bound, testnet.SignatureBound(f.nodes))
	if res.Failed > 0 {
		fmt.Fprintf(stderr, "%d submissions refused, the first: %v\n", res.Failed, res.FirstErr)
	}
	row.Acked, row.Failed, row.Lost, row.Height = res.Acked, res.Failed, res.Lost, res.Height
	row.Seconds = round3(res.Confirmed.Seconds())
	row.PerS = math.Round(float64(res.Acked) / res.Confirmed.Seconds())
	row.AcceptedPerS = math.Round(float64(res.Acked) / res.Accepted.Seconds())
	row.BoundPerS = math.Round(bound)
	if bound > 0 {
		row.Ratio = round3(row.PerS / bound)
	}
	row.P50, row.P95 = testnet.Percentile(res.Latencies, 0.50), testnet.Percentile(res.Latencies, 0.95)
	row.P99, row.Max = testnet.Percentile(res.Latencies, 0.99), testnet.Percentile(res.Latencies, 1)
	if res.Height > 0 {
		row.PerBlock = round3(float64(res.Acked) / float64(res.Height))
	}
	proc := "all nodes and the harness in one process"
	if f.processes {
		proc = "one process per node, the harness in this one"
	}
	post := "POST /api/v1/readings, one reading a request"
	if row.Batch > 1 {
		post = fmt.Sprintf("POST /api/v1/readings/batch, %d readings a request", row.Batch)
	}
	row.Includes = fmt.Sprintf("readings/s: acknowledged readings over the time from the first request until every one is in the main chain "+
		"of every node; %s; %d clients on keep-alive connections, each posting its next request when the last is answered; "+
		"each includes HTTP, the node signing and durably storing the reading, mining at difficulty %d, durable block commits, gossip, "+
		"every node's checks, and the harness following each node's event stream and fetching its new blocks (GET /api/v1/blocks/HASH) "+
		"on the same cores; latency: from just before a reading's POST to the arrival of the tip event of the last node to connect a block holding it; "+
		"accepted/s: acknowledged over the time to the last acknowledgement; lost: acknowledged readings missing from some node's main chain at the end; "+
		"%s; durable stores", post, row.Clients, f.difficulty, proc)
	row.BoundIncl = fmt.Sprintf("readings per second this machine's %d cores could carry if signatures were all they did: per reading one Ed25519 signing "+
		"and %d verifications (one per node but the one it was submitted to, which made the signature and caches it unverified), "+
		"in this process on every core, timed by its CPU time over the cores (others' load does not count), "+
		"before the run and after it, the higher", row.Cores, max(f.nodes-1, 0))
	return row, nil
}

// printOther prints a row of bench sync, throughput or footprint for people.
func printOther(w io.Writer, row any) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	switch r := row.(type) {
	case syncRow:
		fmt.Fprintln(tw, "BLOCKS\tSECONDS\tBLOCKS/s\tVERIFY BOUND/s\tRATIO\tNODE START ms\t")
		fmt.Fprintf(tw, "%d\t%.2f\t%.0f\t%.0f\t%.2f\t%.0f\t\n", r.Blocks, r.Seconds, r.BlocksPerS, r.BoundPerS, r.Ratio, r.StartMS)
		tw.Flush()
		fmt.Fprintf(w, "difficulty %d, one reading a block, two node processes on %d cores, durable stores, 127.0.0.1\n", r.Difficulty, r.Cores)
		fmt.Fprintln(w, "sync: the fresh node's process start to its API reporting the tip; bound: what every core verifies per second; --json says what each figure includes")
	case throughputRow:
		fmt.Fprintln(tw, "NODES\tREADINGS\tREADINGS/s\tACCEPTED/s\tBOUND/s\tRATIO\tP50 ms\tP95 ms\tP99 ms\tMAX ms\tPER BLOCK\tLOST\t")
		fmt.Fprintf(tw, "%d\t%d\t%.0f\t%.0f\t%.0f\t%.2f\t%.0f\t%.0f\t%.0f\t%.0f\t%.1f\t%d\t\n", r.Nodes, r.Acked, r.PerS, r.AcceptedPerS, r.BoundPerS,
			r.Ratio, r.P50, r.P95, r.P99, r.Max, r.PerBlock, r.Lost)
		tw.Flush()
		where := "all nodes in this process"
		if r.Processes {
			where = "one process per node"
		}
		fmt.Fprintf(w, "difficulty %d, %s, %d clients, durable stores, %d cores, 127.0.0.1\n", r.Difficulty, where, r.Clients, r.Cores)
		fmt.Fprintln(w, "readings/s and latency: submission to in the main chain of every node; --json says what each figure includes")
	case footprintRow:
		fmt.Fprintln(tw, "BLOCKS\tRUNS\tRESTART P50 ms\tP95 ms\tP99 ms\tMAX ms\tRSS MiB\tPEAK RSS MiB\tSTORE MB\t")
		fmt.Fprintf(tw, "%d\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.1f\t%.1f\t%.1f\t\n", r.Blocks, r.Runs, r.RestartMS, r.P95, r.P99, r.Max, r.RSS, r.Peak, r.StoreMB)
		tw.Flush()
		fmt.Fprintf(w, "difficulty %d, one reading a block, one node process on a durable store\n", r.Difficulty)
		fmt.Fprintln(w, "restart: process start to its API answering; rss: resident memory 2 s later; --json says what each figure includes")
	}
}

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
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

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
			"Prints p50/p95/p99/max, the CPU time and the block bytes received per node per block,",
			"and the same figures for the naive baseline run in the same harness (the classic demo:",
			"every node sends its whole chain as one JSON line to each neighbour every",
			"--baseline-interval and when it adds a block; a receiver keeps a longer chain), on the",
			"same topology with the same number of blocks at the same difficulty.",
			"scaling: propagation at each of --sizes nodes (up to --nodes when given), as a table",
			"and an SVG chart (--chart).",
			"sync, throughput, footprint: not in this command yet; it names the go test benchmark."},
		examples: []string{
			"bench propagation --nodes 10 --blocks 20",
			"bench propagation --nodes 50 --processes --difficulty 18 --json",
			"bench scaling --processes --chart scaling.svg",
			"bench scaling --sizes 3,5,10 --blocks 10",
		},
	}, stdout)
	fs.IntVar(&f.nodes, "nodes", f.nodes, "number of nodes `N` (scaling: the largest size)")
	fs.BoolVar(&f.processes, "processes", false, "run each node as a process of its own (p2pchain node), instead of all in this process")
	fs.IntVar(&f.difficulty, "difficulty", f.difficulty, "proof-of-work difficulty in leading zero `BITS` ("+strconv.Itoa(chain.DefaultDifficulty)+" is the default network's)")
	fs.IntVar(&f.blocks, "blocks", f.blocks, "blocks `B` to time, one after the other")
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
	if len(pos) != 1 {
		return f, usagef("bench", "want one of %s", strings.Join(benchKinds, ", "))
	}
	f.kind = pos[0]
	nodesSet := false
	fs.Visit(func(fl *flag.Flag) {
		if fl.Name == "nodes" {
			nodesSet = true
		}
	})
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
	CPU        float64 `json:"cpu_ms_per_node_per_block"`
	Bytes      float64 `json:"wire_bytes_per_node_per_block"`
	BaseP50    float64 `json:"baseline_p50_ms"`
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
	switch f.kind {
	case "sync":
		return fmt.Errorf("not yet in this command: run  go test -run '^$' -bench InitialSync -benchtime 5x ./internal/testnet  (a new node's initial sync of a long chain)")
	case "throughput":
		return fmt.Errorf("not yet in this command: run  go test -run '^$' -bench 'Store|Engine' ./internal/store  (durable writes, group commit)")
	case "footprint":
		return fmt.Errorf("not yet in this command: run  go test -run '^$' -bench Restart ./internal/testnet  (restart time of a node with a long chain); memory per node: p2pchain testnet --processes and the nodes' process_resident_memory_bytes in /metrics")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer stopOnSignals(ctx, cancel,
		func(s os.Signal) {
			fmt.Fprintf(stderr, "%s: stopping the benchmark (once more to force the exit)\n", s)
		},
		func(s os.Signal) {
			fmt.Fprintf(stderr, "%s again: exiting at once\n", s)
			os.Exit(1)
		})()
	sizes := []int{f.nodes}
	if f.kind == "scaling" {
		sizes = f.sizeList
	}
	var rows []propagationRow
	for _, n := range sizes {
		row, err := benchPropagation(ctx, f, n, stderr)
		if ctx.Err() != nil {
			return nil
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
	apis  []string
	links [][2]int
	cpu   func(context.Context) (float64, error)
	close func()
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
			Params: params, Seed: f.seed})
		if err != nil {
			return nil, err
		}
		bn.close = func() { pn.Close() }
		if err := pn.WaitPeers(ctx); err != nil {
			return nil, err
		}
		bn.apis, bn.links, bn.cpu = pn.APIs(), pn.Links, testnet.ProcessCPU(pn.APIs())
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
			url, _, done, err := startAPI(actx, net.Dirs[i], "127.0.0.1:0", p.Node, p.Host, log, acancel)
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
		// One process: its CPU time, as any node's API reports it.
		api := bn.apis[0]
		bn.cpu = func(ctx context.Context) (float64, error) {
			m, err := testnet.ScrapeMetrics(ctx, api)
			return m.CPUSeconds, err
		}
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
	fmt.Fprintf(stderr, "timing %d blocks on %d nodes...\n", f.blocks, n)
	res, err := testnet.MeasurePropagation(ctx, bn.apis, f.blocks, rand.New(rand.NewPCG(f.seed, f.seed+1)), bn.cpu)
	links := bn.links
	bn.close() // before the baseline, which would share the CPUs
	if err != nil {
		return row, err
	}
	row.P50, row.P95 = testnet.Percentile(res.Latencies, 0.50), testnet.Percentile(res.Latencies, 0.95)
	row.P99, row.Max = testnet.Percentile(res.Latencies, 0.99), testnet.Percentile(res.Latencies, 1)
	row.CPU = round3(res.CPUSeconds * 1000 / float64(n) / float64(f.blocks))
	row.Bytes = round3(float64(res.BytesIn) / float64(n) / float64(f.blocks))

	proc := "all nodes in one process (CPU: that process's, harness included, divided by the nodes)"
	if f.processes {
		proc = "one process per node (CPU: the sum of the nodes' process_cpu_seconds_total)"
	}
	row.Includes = fmt.Sprintf("latency: from POST /api/v1/readings at a random node to the last node's SSE tip event for the block, "+
		"so HTTP, durable writes, mining at difficulty %d, gossip, checks and the event stream; %s; "+
		"bytes: block bytes received by gossip and sync, without libp2p framing and control messages", f.difficulty, proc)
	if !f.baseline {
		row.BaseIntMS = 0
		return row, nil
	}
	row.Includes += "; baseline: same links and block count, in this process on loopback TCP, timed from the start of mining to the last node " +
		"adopting the chain, no HTTP, disk or checks, send phases drawn anew for each block; its bytes: the chain JSON lines received, periodic sends included"
	fmt.Fprintf(stderr, "timing %d blocks on the naive baseline (whole chain every %v)...\n", f.blocks, f.interval)
	nn, err := testnet.StartNaive(ctx, testnet.NaiveConfig{Nodes: n, Links: links, Interval: f.interval, Difficulty: f.difficulty})
	if err != nil {
		return row, err
	}
	defer nn.Close()
	rng := rand.New(rand.NewPCG(f.seed, f.seed+1)) // the same nodes as above
	var base []time.Duration
	for b := 0; b < f.blocks; b++ {
		d, err := nn.Propagate(ctx, rng.IntN(n), "bench", 60+b%100)
		if err != nil {
			return row, err
		}
		base = append(base, d)
	}
	row.BaseP50, row.BaseP95 = testnet.Percentile(base, 0.50), testnet.Percentile(base, 0.95)
	row.BaseP99, row.BaseMax = testnet.Percentile(base, 0.99), testnet.Percentile(base, 1)
	row.BaseBytes = round3(float64(nn.BytesIn()) / float64(n) / float64(f.blocks))
	if row.P50 > 0 {
		row.RatioP50 = round3(row.BaseP50 / row.P50)
	}
	return row, nil
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

func printPropagation(w io.Writer, rows []propagationRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "NODES\tBLOCKS\tP50 ms\tP95 ms\tP99 ms\tMAX ms\tCPU ms/node/block\tBYTES/node/block\tNAIVE P50 ms\tNAIVE P99 ms\tNAIVE BYTES/node/block\tNAIVE/OURS P50\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.2f\t%.0f\t%.1f\t%.1f\t%.0f\t%.1f\t\n", r.Nodes, r.Blocks, r.P50, r.P95, r.P99, r.Max,
			r.CPU, r.Bytes, r.BaseP50, r.BaseP99, r.BaseBytes, r.RatioP50)
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

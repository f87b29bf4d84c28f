package main

// p2pchain testnet: many nodes in this process (internal/testnet does the
// work), each with its API and explorer.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/netfile"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

type testnetFlags struct {
	nodes      int
	topology   string
	difficulty int
	auth       int
	netFile    string
	nw         *netfile.Network // loaded from netFile
	dir        string
	keep       bool
	load       float64
	logLevel   string
	asJSON     bool
	processes  bool
	top        testnet.Topology // parsed topology

	partitionAfter, healAfter time.Duration
}

func parseTestnetFlags(args []string, stdout io.Writer) (testnetFlags, error) {
	f := testnetFlags{nodes: 5, topology: "line", difficulty: chain.DefaultDifficulty, logLevel: "warn"}
	fs := newCmdFlags("testnet", help{
		usage: "--nodes N [--topology line|ring|random:K|full] [--processes] [--difficulty D | --authorities K] [--dir DIR] [--load R] [--partition-after D [--heal-after D]] [flags]",
		about: []string{"Starts N nodes in this process on 127.0.0.1, each with its own data directory, random",
			"TCP and QUIC ports, HTTP API and explorer, and its miner running; connects them by the",
			"topology (random:K: each node dials K random earlier nodes), waits until every node has",
			"its peers and prints a table of them. --load R submits R readings a second to the nodes",
			"in turn and reports the heights and readings confirmed every few seconds.",
			"--authorities K runs an authority network instead of proof of work: the first K nodes",
			"are its authorities, the others follow. --network-file FILE runs the network of a file",
			"instead: its authorities are the nodes of --dir whose identities it lists (run once with",
			"--dir to make them, list their peer IDs with p2pchain network new, run again).",
			"Lines typed on its standard input control the network: partition cuts it in two,",
			"nodes 0 to N/2-1 and N/2 to N-1 (every node blocks every node of the other half, as",
			"POST /api/v1/peers/block does, and so loses its links across the cut); heal unblocks",
			"them and dials the links across the cut again. --partition-after D does a partition",
			"D after the table is printed, and --heal-after D a heal D after that partition.",
			"--processes runs each node as a process of its own (this program's node command, its",
			"output in DIR/node-i.log), connected through the nodes' APIs; the table then shows",
			"their process IDs. Further lines control them: kill I (SIGKILL, as a crash), stop I",
			"(SIGTERM), restart I (start node I again on its data directory and dial its links",
			"again, within its half while partitioned; on its old ports if they are free). A partition",
			"or heal skips the nodes that are not running and says so; restarted, such a node takes",
			"the state of then (blocks the other half while partitioned). Ctrl-C or SIGTERM stops",
			"them all (SIGTERM, SIGKILL after 10 s); on Linux a testnet that is killed takes its",
			"node processes with it.",
			"Ctrl-C or SIGTERM stops every node and removes the data (unless --dir or --keep)."},
		examples: []string{
			"testnet --nodes 5",
			"testnet --nodes 10 --topology random:2 --difficulty 8 --load 20",
			"testnet --nodes 3 --topology ring --json",
			"testnet --nodes 5 --topology full --authorities 4 --load 50",
			"testnet --nodes 400 --topology random:3 --processes --difficulty 0",
			"testnet --nodes 6 --topology full --difficulty 0 --load 5 --partition-after 10s --heal-after 20s",
		},
	}, stdout)
	fs.IntVar(&f.nodes, "nodes", f.nodes, "number of nodes `N`")
	fs.StringVar(&f.topology, "topology", f.topology, "who dials whom, `TOPOLOGY`: line, ring, random:K (each node dials K random earlier nodes) or full")
	fs.IntVar(&f.difficulty, "difficulty", f.difficulty, "proof-of-work difficulty in leading zero `BITS`")
	fs.StringVar(&f.netFile, "network-file", "", "run the authority network of network `FILE` (its authorities are the nodes of --dir whose identities it lists)")
	fs.IntVar(&f.auth, "authorities", 0, "make the first `K` nodes the authorities of an authority network (0: proof of work)")
	fs.StringVar(&f.dir, "dir", "", "keep node i's data in `DIR`/node-i, kept at exit (default: a new temporary directory, removed at exit)")
	fs.BoolVar(&f.keep, "keep", false, "keep the temporary data directory at exit")
	fs.BoolVar(&f.processes, "processes", false, "run each node as a process of its own (p2pchain node), instead of all in this process")
	fs.Float64Var(&f.load, "load", 0, "submit `R` readings a second, to the nodes in turn (0: none)")
	fs.DurationVar(&f.partitionAfter, "partition-after", 0, "cut the network in two halves `D` after it is up, as a typed partition does (0: never)")
	fs.DurationVar(&f.healAfter, "heal-after", 0, "heal the partition `D` after --partition-after's, as a typed heal does (0: never)")
	fs.StringVar(&f.logLevel, "log-level", f.logLevel, "log `LEVEL` of the nodes, on standard error: debug, info, warn or error")
	fs.jsonFlag(&f.asJSON, "the table (and the load's reports), one object a line,")
	if err := fs.noArgs(args); err != nil {
		return f, err
	}
	var err error
	switch {
	case f.nodes < 1:
		return f, usagef("testnet", "--nodes %d: want at least 1 node", f.nodes)
	case f.difficulty < 0 || f.difficulty > chain.MaxDifficulty:
		return f, usagef("testnet", "--difficulty %d: want 0 to %d bits", f.difficulty, chain.MaxDifficulty)
	case f.auth < 0 || f.auth > f.nodes:
		return f, usagef("testnet", "--authorities %d: want 0 to %d (the number of nodes)", f.auth, f.nodes)
	case f.auth > 0 && f.difficulty != chain.DefaultDifficulty:
		return f, usagef("testnet", "--authorities and --difficulty: an authority network has no proof of work")
	case f.netFile != "" && (f.auth > 0 || f.difficulty != chain.DefaultDifficulty):
		return f, usagef("testnet", "--network-file with --authorities or --difficulty: the file says what the network is")
	case f.load < 0:
		return f, usagef("testnet", "--load %v: want 0 or more readings a second", f.load)
	case f.partitionAfter < 0 || f.healAfter < 0:
		return f, usagef("testnet", "--partition-after and --heal-after: want durations of 0 or more")
	case f.healAfter > 0 && f.partitionAfter == 0:
		return f, usagef("testnet", "--heal-after needs --partition-after: it counts from the partition")
	case f.partitionAfter > 0 && f.nodes < 2:
		return f, usagef("testnet", "--partition-after: a partition needs at least 2 nodes")
	}
	if f.top, err = testnet.ParseTopology(f.topology); err != nil {
		return f, &usageError{cmd: "testnet", err: err}
	}
	if f.netFile != "" {
		abs, err := filepath.Abs(f.netFile)
		if err == nil {
			f.netFile = abs
			f.nw, err = netfile.Load(abs)
		}
		if err != nil {
			return f, err
		}
	}
	if _, err := parseLevel(f.logLevel); err != nil {
		return f, usagef("testnet", "--log-level: %v", err)
	}
	return f, nil
}

// testnetNode is a line of the table.
type testnetNode struct {
	Node int    `json:"node"`
	ID   string `json:"id"`
	Addr string `json:"addr"`
	API  string `json:"api"`
	Data string `json:"data"`
	PID  int    `json:"pid,omitempty"` // --processes
}

func runTestnet(args []string, stdout, stderr io.Writer) error {
	f, err := parseTestnetFlags(args, stdout)
	if err != nil {
		return err
	}
	params := chain.DefaultParams()
	params.Difficulty = uint32(f.difficulty)
	if f.nw != nil {
		params = f.nw.Params
	}
	if f.auth > 0 {
		params.Difficulty = 0 // the network file's parameters replace these
	}
	if err := params.Validate(); err != nil {
		return err
	}
	level, _ := parseLevel(f.logLevel)
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	dir, temp := f.dir, f.dir == ""
	if temp {
		if dir, err = os.MkdirTemp("", "p2pchain-testnet-"); err != nil {
			return err
		}
		if !f.keep {
			defer os.RemoveAll(dir)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer stopOnSignals(ctx, cancel,
		func(s os.Signal) { fmt.Fprintf(stderr, "%s: stopping the testnet (once more to force the exit)\n", s) },
		func(s os.Signal) {
			fmt.Fprintf(stderr, "%s again: exiting at once\n", s)
			if temp && !f.keep {
				// The nodes' keys and readings: not left behind in
				// the temporary directory (nor by a clean stop).
				_ = os.RemoveAll(dir)
			}
			os.Exit(1)
		})()

	if f.processes {
		return runTestnetProcs(ctx, f, params, dir, temp, stdout, stderr)
	}
	net, err := testnet.StartNetwork(ctx, testnet.NetworkConfig{Nodes: f.nodes, Topology: f.top, Params: params, Dir: dir, Log: log, Authorities: f.auth, Network: f.nw})
	if ctx.Err() != nil {
		return nil // stopped while starting
	}
	if err != nil {
		return err
	}
	defer net.Close()
	var nodes []testnetNode
	for i, p := range net.Peers {
		url, _, _, done, err := startAPI(ctx, net.Dirs[i], "127.0.0.1:0", p.Node, p.Host, log.With("node", i), cancel)
		if err != nil {
			return err
		}
		defer func() { cancel(); <-done }()
		nodes = append(nodes, testnetNode{Node: i, ID: p.Host.ID().String(), Addr: p.Host.TCPAddr().String(), API: url, Data: net.Dirs[i].Path()})
	}
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	err = net.WaitPeers(wctx)
	wcancel()
	if ctx.Err() != nil {
		return nil // stopped while connecting
	}
	if err != nil {
		return err
	}
	announceTestnet(stdout, stderr, f, nodes, dir, temp, "type partition or heal to split the network in two or join it again")

	if f.load > 0 {
		load := net.StartLoad(ctx, f.load)
		reported := make(chan struct{})
		go func() {
			defer close(reported)
			reportLoad(ctx, stdout, f.asJSON, net, load, f.load, 5*time.Second)
		}()
		defer func() { load.Wait(); <-reported }() // before net.Close
	}
	split := splitter{nodes: f.nodes,
		partition: func(context.Context) ([][2]int, []int, error) {
			links, err := net.Partition()
			return links, nil, err
		},
		heal: func(ctx context.Context) ([][2]int, []int, error) {
			links, err := net.Heal(ctx)
			return links, nil, err
		}}
	prompt(ctx, f, stdout, split, nil, "type partition or heal")
	return nil
}

// announceTestnet prints the nodes of a started testnet on stdout and, on
// stderr, what runs where and how to stop or control it (hint).
func announceTestnet(stdout, stderr io.Writer, f testnetFlags, nodes []testnetNode, dir string, temp bool, hint string) {
	printTestnet(stdout, f.asJSON, nodes)
	what := "removed at exit"
	if !temp || f.keep {
		what = "kept at exit"
	}
	as, data := "", "data"
	if f.processes {
		as, data = " as processes", "data and logs (node-i.log)"
	}
	fmt.Fprintf(stderr, "%d nodes%s, topology %s, %s, %s in %s (%s)\n", f.nodes, as, f.top, f.kind(), data, dir, what)
	fmt.Fprintln(stderr, "press Ctrl-C (or send SIGINT or SIGTERM) to stop every node; "+hint)
}

// splitter cuts a testnet in two and heals it: in process or through the
// nodes' APIs. Each returns the links it cut or dialled again and the
// nodes it skipped because they were not running.
type splitter struct {
	nodes           int
	partition, heal func(context.Context) (links [][2]int, skipped []int, err error)
}

// run does op ("partition" or "heal"), prints what it did and returns
// its error.
func (s splitter) run(ctx context.Context, w io.Writer, asJSON bool, op string) error {
	do := s.partition
	if op == "heal" {
		do = s.heal
	}
	start := time.Now()
	links, skipped, err := do(ctx)
	took := time.Since(start)
	a, b := testnet.Halves(s.nodes)
	if asJSON {
		v := map[string]any{"event": op, "halves": [][]int{a, b}, "links": len(links), "ms": took.Milliseconds()}
		if len(skipped) > 0 {
			v["skipped"] = skipped
		}
		if err != nil {
			v["error"] = err.Error()
		}
		_ = json.NewEncoder(w).Encode(v)
		return err
	}
	// A node that is not running is left out; restarted, it takes the
	// network's state as it is then (controlProc's restart).
	note := ""
	if len(skipped) > 0 {
		then := "blocks the other half"
		if op == "heal" {
			then = "dials all its links"
		}
		note = fmt.Sprintf("; skipped %s (not running: restarted, it %s)", nodeList(skipped), then)
	}
	if err != nil {
		fmt.Fprintf(w, "%s: %v%s\n", op, err, note)
		return err
	}
	halves := nodeRange(a) + " | " + nodeRange(b)
	if op == "heal" {
		fmt.Fprintf(w, "heal: %s unblocked each other; %d links across the cut dialled again (%v)%s\n", halves, len(links), took.Round(time.Millisecond), note)
		return nil
	}
	fmt.Fprintf(w, "partition: %s, every node blocking the other half; %d links cut (%v)%s\n", halves, len(links), took.Round(time.Millisecond), note)
	return nil
}

// nodeList names some nodes: "node 1", "nodes 1, 4".
func nodeList(nodes []int) string {
	s := make([]string, len(nodes))
	for i, n := range nodes {
		s[i] = strconv.Itoa(n)
	}
	if len(nodes) == 1 {
		return "node " + s[0]
	}
	return "nodes " + strings.Join(s, ", ")
}

// refuse says why op was not done.
func (s splitter) refuse(w io.Writer, asJSON bool, op, why string) {
	if asJSON {
		_ = json.NewEncoder(w).Encode(map[string]any{"event": op, "error": why})
		return
	}
	fmt.Fprintf(w, "%s: %s\n", op, why)
}

// nodeRange names a half: "node 0", "nodes 2-3".
func nodeRange(half []int) string {
	switch len(half) {
	case 0:
		return "no node"
	case 1:
		return fmt.Sprintf("node %d", half[0])
	}
	return fmt.Sprintf("nodes %d-%d", half[0], half[len(half)-1])
}

// prompt runs the lines typed on standard input, and the partition and
// heal of --partition-after and --heal-after, until ctx ends. other, if not
// nil, runs the lines other than partition and heal, reporting false for a
// line it does not know; usage is printed for those.
func prompt(ctx context.Context, f testnetFlags, w io.Writer, split splitter, other func(line string) bool, usage string) {
	lines := make(chan string)
	go func() { // left blocked in Read at exit: the process is ending
		s := bufio.NewScanner(os.Stdin)
		for s.Scan() {
			select {
			case lines <- s.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	cut := false // between a partition and its heal
	do := func(op string) {
		switch {
		case op == "heal" && !cut:
			split.refuse(w, f.asJSON, op, "the network is not partitioned")
		case op == "partition" && cut:
			split.refuse(w, f.asJSON, op, "the network is partitioned already: heal it first")
		case op == "partition":
			_ = split.run(ctx, w, f.asJSON, op)
			cut = true // even a partition that failed midway is healed next
		default:
			cut = split.run(ctx, w, f.asJSON, op) != nil // a failed heal can be retried
		}
	}
	var partitionAt, healAt <-chan time.Time
	if f.partitionAfter > 0 {
		t := time.NewTimer(f.partitionAfter)
		defer t.Stop()
		partitionAt = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-partitionAt:
			partitionAt = nil
			do("partition")
			if f.healAfter > 0 {
				t := time.NewTimer(f.healAfter)
				defer t.Stop()
				healAt = t.C
			}
		case <-healAt:
			healAt = nil
			do("heal")
		case line := <-lines:
			switch cmd := strings.TrimSpace(line); cmd {
			case "":
			case "partition", "heal":
				do(cmd)
			case "help", "?":
				fmt.Fprintln(w, testnetHelp(other != nil, f.nodes))
			default:
				switch {
				case other != nil && other(line):
				case other == nil && isProcCommand(cmd):
					// In one process a node cannot be killed or restarted
					// on its own: say what runs them as processes.
					fmt.Fprintf(w, "%s: kill, stop and restart need the nodes as processes: start the testnet with --processes; here %s\n",
						strings.Fields(cmd)[0], strings.TrimPrefix(usage, "type "))
				default:
					fmt.Fprintln(w, usage+" (help lists the commands)")
				}
			}
		}
	}
}

// isProcCommand reports whether line is a command of testnet --processes.
func isProcCommand(line string) bool {
	f := strings.Fields(line)
	return len(f) > 0 && (f[0] == "kill" || f[0] == "stop" || f[0] == "restart")
}

// testnetHelp lists the commands a testnet's prompt takes.
func testnetHelp(processes bool, nodes int) string {
	var b strings.Builder
	b.WriteString("commands:\n")
	if processes {
		fmt.Fprintf(&b, "  kill I      kill node I with SIGKILL, as a crash (I from 0 to %d)\n", nodes-1)
		b.WriteString("  stop I      stop node I with SIGTERM\n")
		b.WriteString("  restart I   start node I again on its data directory\n")
	}
	b.WriteString("  partition   split the network in two\n")
	b.WriteString("  heal        join the two halves again\n")
	b.WriteString("  help        this text\n")
	if !processes {
		b.WriteString("kill I, stop I and restart I need the nodes as processes: start the testnet with --processes\n")
	}
	b.WriteString("Ctrl-C stops the testnet")
	return b.String()
}

func printTestnet(w io.Writer, asJSON bool, nodes []testnetNode) {
	if asJSON {
		enc := json.NewEncoder(w) // one object a line
		for _, n := range nodes {
			_ = enc.Encode(n)
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	procs := len(nodes) > 0 && nodes[0].PID != 0
	if procs {
		fmt.Fprintln(tw, "NODE\tPEER ID\tLISTEN\tAPI\tPID")
	} else {
		fmt.Fprintln(tw, "NODE\tPEER ID\tLISTEN\tAPI")
	}
	for _, n := range nodes {
		if procs {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\n", n.Node, n.ID, n.Addr, n.API, n.PID)
		} else {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", n.Node, n.ID, n.Addr, n.API)
		}
	}
	tw.Flush()
}

// loadRate returns a function that, given the readings the nodes took so
// far at each report (one every interval; refused ones do not count) and
// those that reached no node (a node process down), says when they took
// fewer in the last interval than the load asks: "" while they keep up. A
// load the nodes cannot take at the rate asked falls behind without an
// error otherwise; one sent to a node that is down is not slowness.
func loadRate(asked float64, interval time.Duration) func(taken, unreachable int) string {
	prev, prevLost := 0, 0
	return func(taken, unreachable int) string {
		got := float64(taken-prev) / interval.Seconds()
		lost := unreachable - prevLost
		prev, prevLost = taken, unreachable
		switch {
		case got >= 0.9*asked:
			return ""
		case lost > 0:
			return fmt.Sprintf(" (%.1f/s of the %g/s asked: %d readings of the last %v reached no node, one is down or not answering)", got, asked, lost, interval)
		}
		return fmt.Sprintf(" (%.1f/s of the %g/s asked: the nodes take readings more slowly than that)", got, asked)
	}
}

// reportLoad prints the nodes' heights and the load's readings every
// interval until ctx ends.
func reportLoad(ctx context.Context, w io.Writer, asJSON bool, net *testnet.Network, load *testnet.Load, asked float64, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	rate := loadRate(asked, interval)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s, heights := load.Stats(), net.Heights()
		if asJSON {
			_ = json.NewEncoder(w).Encode(map[string]any{"heights": heights, "submitted": s.Submitted, "confirmed": s.Confirmed, "failed": s.Failed})
			continue
		}
		hs := make([]string, len(heights))
		for i, h := range heights {
			hs[i] = fmt.Sprint(h)
		}
		line := fmt.Sprintf("heights %s; readings submitted %d, confirmed %d", strings.Join(hs, " "), s.Submitted, s.Confirmed)
		if s.Failed > 0 {
			line += fmt.Sprintf(", refused %d (last: %v)", s.Failed, s.LastErr)
		}
		fmt.Fprintln(w, line+rate(s.Submitted, 0))
	}
}

// runTestnetProcs is testnet --processes: the nodes are child processes
// (internal/testnet StartProcs), stopped when ctx ends.
func runTestnetProcs(ctx context.Context, f testnetFlags, params chain.Params, dir string, temp bool, stdout, stderr io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	pn, err := testnet.StartProcs(ctx, testnet.ProcConfig{Binary: exe, Nodes: f.nodes, Topology: f.top, Dir: dir,
		Params: params, Authorities: f.auth, NetworkFile: f.netFile, LogLevel: f.logLevel})
	if ctx.Err() != nil {
		return nil // stopped while starting (StartProcs stopped what it started)
	}
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintf(stderr, "stopping %d node processes\n", len(pn.Nodes))
		pn.Close()
	}()
	err = pn.WaitPeers(ctx)
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return err
	}
	var nodes []testnetNode
	for _, n := range pn.Nodes {
		nodes = append(nodes, testnetNode{Node: n.Index, ID: n.ID, Addr: n.Addr, API: n.API, Data: n.Dir, PID: n.PID()})
	}
	announceTestnet(stdout, stderr, f, nodes, dir, temp, "type kill I, stop I or restart I to control node I, partition or heal to split the network in two or join it again")
	if f.load > 0 {
		load := testnet.StartHTTPLoad(ctx, pn.APIs, f.load)
		reported := make(chan struct{})
		go func() {
			defer close(reported)
			reportProcLoad(ctx, stdout, f.asJSON, pn, load, f.load, 5*time.Second)
		}()
		defer func() { load.Wait(); <-reported }() // before the nodes stop
	}
	split := splitter{nodes: f.nodes, partition: pn.Partition, heal: pn.Heal}
	usage := fmt.Sprintf("type kill I, stop I or restart I, with I from 0 to %d, partition or heal", len(pn.Nodes)-1)
	prompt(ctx, f, stdout, split, func(line string) bool { return controlProc(ctx, stdout, f.asJSON, pn, line) }, usage)
	return nil
}

// controlProc runs a line typed at testnet --processes: kill I, stop I or
// restart I. It reports false for a line that is none of these.
func controlProc(ctx context.Context, w io.Writer, asJSON bool, pn *testnet.ProcNetwork, line string) bool {
	f := strings.Fields(line)
	if len(f) == 0 || (f[0] != "kill" && f[0] != "stop" && f[0] != "restart") {
		return false
	}
	last := len(pn.Nodes) - 1
	if len(f) != 2 {
		fmt.Fprintf(w, "%s: want %s I, with I a node from 0 to %d\n", f[0], f[0], last)
		return true
	}
	i, err := strconv.Atoi(f[1])
	switch {
	case err != nil:
		fmt.Fprintf(w, "%s: %q is not a node number: want 0 to %d\n", f[0], f[1], last)
		return true
	case i < 0 || i > last:
		fmt.Fprintf(w, "%s: no node %d: the nodes are 0 to %d\n", f[0], i, last)
		return true
	case f[0] != "restart" && !pn.Running(i):
		fmt.Fprintf(w, "%s: node %d is not running (restart %d starts it again)\n", f[0], i, i)
		return true
	}
	switch f[0] {
	case "kill":
		pn.Kill(i)
		fmt.Fprintf(w, "node %d killed\n", i)
	case "stop":
		pn.Stop(i)
		fmt.Fprintf(w, "node %d stopped\n", i)
	case "restart":
		if err := pn.Restart(ctx, i); err != nil {
			fmt.Fprintf(w, "restart node %d: %v\n", i, err)
			return true
		}
		n := pn.Nodes[i]
		printTestnet(w, asJSON, []testnetNode{{Node: i, ID: n.ID, Addr: n.Addr, API: n.API, Data: n.Dir, PID: n.PID()}})
	}
	return true
}

// reportProcLoad prints the node processes' heights and the load's
// readings every interval until ctx ends.
func reportProcLoad(ctx context.Context, w io.Writer, asJSON bool, pn *testnet.ProcNetwork, load *testnet.HTTPLoad, asked float64, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	rate := loadRate(asked, interval)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, err := pn.Status(ctx)
		if ctx.Err() != nil {
			return
		}
		// A node that did not answer (down, restarting) has no height:
		// null in JSON, "-" in the text (it showed 0).
		heights := make([]any, len(st))
		hs := make([]string, len(st))
		for i, s := range st {
			heights[i], hs[i] = nil, "-"
			if s.PeerID != "" {
				heights[i], hs[i] = s.Height, fmt.Sprint(s.Height)
			}
		}
		s := load.Stats()
		if asJSON {
			_ = json.NewEncoder(w).Encode(map[string]any{"heights": heights, "submitted": s.Submitted, "failed": s.Failed, "unreachable": s.Unreachable})
			continue
		}
		line := fmt.Sprintf("heights %s; readings submitted %d", strings.Join(hs, " "), s.Submitted)
		if s.Failed > 0 {
			line += fmt.Sprintf(", refused %d (last: %v)", s.Failed, s.LastErr)
		}
		if s.Unreachable > 0 {
			line += fmt.Sprintf(", sent to no node that answered %d (last: %v)", s.Unreachable, s.LastUnreachable)
		}
		if err != nil {
			line += fmt.Sprintf(" (status: %v)", err)
		}
		fmt.Fprintln(w, line+rate(s.Submitted, s.Unreachable))
	}
}

// kind says what network the testnet runs.
func (f testnetFlags) kind() string {
	switch {
	case f.nw != nil:
		return fmt.Sprintf("consensus authority, %s of network file %s", countAuthorities(f.nw.Set.Len()), f.netFile)
	case f.auth > 0:
		return fmt.Sprintf("consensus authority, %d authorities", f.auth)
	}
	return fmt.Sprintf("difficulty %d", f.difficulty)
}

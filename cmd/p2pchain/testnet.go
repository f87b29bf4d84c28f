package main

// p2pchain testnet: many nodes in this process (internal/testnet does the
// work), each with its API and explorer.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

type testnetFlags struct {
	nodes      int
	topology   string
	difficulty int
	auth       int
	dir        string
	keep       bool
	load       float64
	logLevel   string
	asJSON     bool
	top        testnet.Topology // parsed topology
}

func parseTestnetFlags(args []string, stdout io.Writer) (testnetFlags, error) {
	f := testnetFlags{nodes: 5, topology: "line", difficulty: chain.DefaultDifficulty, logLevel: "warn"}
	fs := newCmdFlags("testnet", help{
		usage: "--nodes N [--topology line|ring|random:K|full] [--difficulty D | --authorities K] [--dir DIR] [--load R] [flags]",
		about: []string{"Starts N nodes in this process on 127.0.0.1, each with its own data directory, random",
			"TCP and QUIC ports, HTTP API and explorer, and its miner running; connects them by the",
			"topology (random:K: each node dials K random earlier nodes), waits until every node has",
			"its peers and prints a table of them. --load R submits R readings a second to the nodes",
			"in turn and reports the heights and readings confirmed every few seconds.",
			"--authorities K runs an authority network instead of proof of work: the first K nodes",
			"are its authorities, the others follow.",
			"Ctrl-C or SIGTERM stops every node and removes the data (unless --dir or --keep)."},
		examples: []string{
			"testnet --nodes 5",
			"testnet --nodes 10 --topology random:2 --difficulty 8 --load 20",
			"testnet --nodes 3 --topology ring --json",
			"testnet --nodes 5 --topology full --authorities 4 --load 50",
		},
	}, stdout)
	fs.IntVar(&f.nodes, "nodes", f.nodes, "number of nodes `N`")
	fs.StringVar(&f.topology, "topology", f.topology, "who dials whom, `TOPOLOGY`: line, ring, random:K (each node dials K random earlier nodes) or full")
	fs.IntVar(&f.difficulty, "difficulty", f.difficulty, "proof-of-work difficulty in leading zero `BITS`")
	fs.IntVar(&f.auth, "authorities", 0, "make the first `K` nodes the authorities of an authority network (0: proof of work)")
	fs.StringVar(&f.dir, "dir", "", "keep node i's data in `DIR`/node-i, kept at exit (default: a new temporary directory, removed at exit)")
	fs.BoolVar(&f.keep, "keep", false, "keep the temporary data directory at exit")
	fs.Float64Var(&f.load, "load", 0, "submit `R` readings a second, to the nodes in turn (0: none)")
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
	case f.load < 0:
		return f, usagef("testnet", "--load %v: want 0 or more readings a second", f.load)
	}
	if f.top, err = testnet.ParseTopology(f.topology); err != nil {
		return f, &usageError{cmd: "testnet", err: err}
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
}

func runTestnet(args []string, stdout, stderr io.Writer) error {
	f, err := parseTestnetFlags(args, stdout)
	if err != nil {
		return err
	}
	params := chain.DefaultParams()
	params.Difficulty = uint32(f.difficulty)
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
			os.Exit(1)
		})()

	net, err := testnet.StartNetwork(ctx, testnet.NetworkConfig{Nodes: f.nodes, Topology: f.top, Params: params, Dir: dir, Log: log, Authorities: f.auth})
	if ctx.Err() != nil {
		return nil // stopped while starting
	}
	if err != nil {
		return err
	}
	defer net.Close()
	var nodes []testnetNode
	for i, p := range net.Peers {
		url, _, done, err := startAPI(ctx, net.Dirs[i], "127.0.0.1:0", p.Node, p.Host, log.With("node", i), cancel)
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
	printTestnet(stdout, f.asJSON, nodes)
	what := "removed at exit"
	if !temp || f.keep {
		what = "kept at exit"
	}
	kind := fmt.Sprintf("difficulty %d", f.difficulty)
	if f.auth > 0 {
		kind = fmt.Sprintf("consensus authority, %d authorities", f.auth)
	}
	fmt.Fprintf(stderr, "%d nodes, topology %s, %s, data in %s (%s)\n", f.nodes, f.top, kind, dir, what)
	fmt.Fprintln(stderr, "press Ctrl-C (or send SIGINT or SIGTERM) to stop every node")

	if f.load > 0 {
		load := net.StartLoad(ctx, f.load)
		reported := make(chan struct{})
		go func() {
			defer close(reported)
			reportLoad(ctx, stdout, f.asJSON, net, load, 5*time.Second)
		}()
		defer func() { load.Wait(); <-reported }() // before net.Close
	}
	<-ctx.Done()
	return nil
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
	fmt.Fprintln(tw, "NODE\tPEER ID\tLISTEN\tAPI")
	for _, n := range nodes {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", n.Node, n.ID, n.Addr, n.API)
	}
	tw.Flush()
}

// reportLoad prints the nodes' heights and the load's readings every
// interval until ctx ends.
func reportLoad(ctx context.Context, w io.Writer, asJSON bool, net *testnet.Network, load *testnet.Load, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
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
		fmt.Fprintln(w, line)
	}
}

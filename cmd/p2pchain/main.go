// Command p2pchain runs a p2pchain node and talks to it.
//
//	p2pchain node -l 10000                   start a node (the first of the demo)
//	p2pchain node -l 10001 -d MULTIADDR      start a node that dials another
//	p2pchain add 72 --subject alice          add a reading through the running node
//	p2pchain status | peers | blocks         ask the running node
//	p2pchain verify --data DIR               check a stopped node's chain offline
//
// Client commands find the running node's API through the api file in its
// data directory; --api or --data choose when several nodes run.
//
// Flags take one dash or two (-seed 1 and --seed 1 are the same). Flags
// given without a subcommand start a node, as in the classic demo.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

type command struct {
	name, summary string
	run           func(args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"node", "run a node (the daemon), with a prompt when started in a terminal", runNode},
		{"init", "create a data directory, identity and config file; print the peer ID", runInit},
		{"id", "print a data directory's peer ID", runID},
		{"add", "add a reading through the running node: add BPM [--subject S]", runAdd},
		{"status", "show the running node's chain, peers and sync state", runStatus},
		{"peers", "list the running node's peers", runPeers},
		{"blocks", "list blocks, newest first: blocks [--from H] [--limit N]", runBlocks},
		{"block", "show one block and its readings: block HASH|HEIGHT", runBlock},
		{"readings", "list a subject's readings: readings --subject S", runReadings},
		{"connect", "make the running node connect to a peer: connect MULTIADDR", runConnect},
		{"verify", "re-check a data directory's whole chain offline (node stopped)", runVerify},
		{"export", "write the chain as JSON lines, one block per line", runExport},
		{"import", "load and check a chain exported as JSON lines into a new data directory", runImport},
		{"version", "print the version", func(_ []string, stdout, _ io.Writer) error {
			_, err := fmt.Fprintf(stdout, "p2pchain %s\n", version)
			return err
		}},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches to a subcommand and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return 0
	}
	name := args[0]
	if strings.HasPrefix(name, "-") {
		name, args = "node", append([]string{"node"}, args...) // classic demo: flags only
	}
	for _, c := range commands() {
		if c.name == name {
			err := c.run(args[1:], stdout, stderr)
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			if err != nil {
				fmt.Fprintf(stderr, "p2pchain %s: %v\n", name, err)
				return 1
			}
			return 0
		}
	}
	fmt.Fprintf(stderr, "p2pchain: unknown command %q\n\n", name)
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "p2pchain: a peer-to-peer ledger of heart-rate readings")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: p2pchain COMMAND [flags]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'p2pchain COMMAND -h' for a command's flags.")
}

// Command p2pchain runs a p2pchain node and talks to it.
//
//	p2pchain node -l 10000                   start a node (the first of the demo)
//	p2pchain node -l 10001 -d MULTIADDR      start a node that dials another
//	p2pchain add 72 --subject alice          add a reading through the running node
//	p2pchain status | peers | blocks         ask the running node
//	p2pchain verify --data DIR               check a stopped node's chain offline
//	p2pchain testnet --nodes 5               run five connected nodes in one process
//	p2pchain bench propagation --nodes 10    time blocks reaching every node, and the naive baseline
//	p2pchain network new NAME --authority ID write an authority network's file
//
// Every command chooses its node the same way (target.go): --data DIR, else
// $P2PCHAIN_DATA, else -l PORT's default directory; client commands also
// take --api URL. Without any of them they use the only node running or the
// only data directory there is.
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
	"runtime"
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
		{"id", "print the peer ID of a node or data directory", runID},
		{"add", "add a reading through the running node: add [SUBJECT] BPM", runAdd},
		{"status", "show the running node's chain, peers and sync state", runStatus},
		{"peers", "list the running node's peers", runPeers},
		{"blocks", "list blocks, newest first: blocks [--from H] [--limit N]", runBlocks},
		{"block", "show one block and its readings: block HEIGHT|HASH", runBlock},
		{"readings", "list a subject's readings: readings SUBJECT", runReadings},
		{"receipt", "fetch a reading's receipt, checkable offline: receipt ID [-o FILE]", runReceipt},
		{"check-receipt", "check a receipt offline: check-receipt FILE [--trust BLOCKHASH]", runCheckReceipt},
		{"connect", "make the running node connect to a peer: connect MULTIADDR", runConnect},
		{"authority", "approve adding or removing an authority: authority add|remove PEERID [--height H]", runAuthority},
		{"stop", "stop the running node and wait until it has stopped", runStop},
		{"verify", "re-check a data directory's whole chain offline (node stopped)", runVerify},
		{"testnet", "run N connected nodes in this process, each with its API: testnet --nodes N", runTestnet},
		{"bench", "measure real nodes through their APIs: bench propagation|scaling|sync|throughput|footprint", runBench},
		{"export", "write the chain as JSON lines, one block per line (or its readings as FHIR: --format fhir)", runExport},
		{"import", "load and check a chain exported as JSON lines into a new data directory", runImport},
		{"import-readings", "submit the readings of a CSV file or FHIR Bundle through the running node", runImportReadings},
		{"network", "write or show the network file of an authority network: network new|show", runNetwork},
		{"version", "print the version", runVersion},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches to a subcommand and returns the process exit code: 0 on
// success, 1 when the command failed, 2 for a mistake on the command line.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stdout)
		return 0
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 { // p2pchain help add
			return run([]string{args[1], "-h"}, stdout, stderr)
		}
		usage(stdout)
		return 0
	case "-v", "-version", "--version":
		name, args = "version", append([]string{"version"}, args[1:]...)
	}
	if strings.HasPrefix(name, "-") {
		name, args = "node", append([]string{"node"}, args...) // classic demo: flags only
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		err := c.run(args[1:], stdout, stderr)
		var ue *usageError
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "p2pchain %s: %v\n", name, err)
			fmt.Fprintf(stderr, "Run '%s %s -h' for its usage and examples.\n", invocation(), name)
			return 2
		}
		fmt.Fprintf(stderr, "p2pchain %s: %v\n", name, err)
		return 1
	}
	fmt.Fprintf(stderr, "p2pchain: unknown command %q\n", name)
	fmt.Fprintf(stderr, "Run '%s help' for the list of commands.\n", invocation())
	return 2
}

func usage(w io.Writer) {
	self := invocation()
	fmt.Fprintln(w, "p2pchain: a peer-to-peer ledger of heart-rate readings")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Usage: %s COMMAND [flags]\n", self)
	fmt.Fprintln(w)
	width := 0
	for _, c := range commands() {
		width = max(width, len(c.name))
	}
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-*s %s\n", width, c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Run '%s COMMAND -h' for a command's flags and examples.\n", self)
	fmt.Fprintf(w, "Flags without a command start a node, as in the classic demo: %s -l 10000\n", self)
}

func runVersion(args []string, stdout, _ io.Writer) error {
	var asJSON bool
	fs := newCmdFlags("version", help{
		usage:    "[--json]",
		about:    []string{"Prints the version of this program and of Go it was built with."},
		examples: []string{"version", "--version", "version --json"},
	}, stdout)
	fs.jsonFlag(&asJSON, "the version")
	if err := fs.noArgs(args); err != nil {
		return err
	}
	if asJSON {
		return writeJSON(stdout, map[string]string{"version": version, "go": runtime.Version()})
	}
	_, err := fmt.Fprintf(stdout, "p2pchain %s (%s)\n", version, runtime.Version())
	return err
}

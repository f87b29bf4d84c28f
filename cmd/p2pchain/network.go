package main

// p2pchain network new and show: the network file of an authority network
// (package netfile). This file also holds how the other commands get their
// network from --network-file or the config key network_file.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/datadir"
	"github.com/p2pchain/p2pchain/internal/netfile"
	"github.com/p2pchain/p2pchain/internal/p2p"
)

// examplePeerID is the peer ID of node -seed 1, so that the examples of
// network -h run as printed.
func examplePeerID() string {
	id, err := p2p.PeerID(p2p.KeyFromSeed(1))
	if err != nil {
		return "12D3KooW..."
	}
	return id.String()
}

func runNetwork(args []string, stdout, stderr io.Writer) error {
	var (
		authorities listFlag
		interval    string
		out         string
		force       bool
		asJSON      bool
	)
	fs := newCmdFlags("network", help{
		usage: "new NAME --authority PEERID [--authority PEERID ...] [--block-interval D] [-o FILE [--force]] | show FILE [--json]",
		about: []string{"Makes and shows the network file of an authority network: a network of known members",
			"(the authorities, by peer ID) who propose blocks in turn and sign each, a block being",
			"final once more than two thirds have signed. new writes a documented file (to standard",
			"output without -o); show prints its name, genesis and authorities.",
			"",
			"Every member, authority or follower, must use the same file: its parameters form the",
			"genesis block. Set-up: run p2pchain init --data DIR -l PORT on each authority to learn its",
			"peer ID (a data directory of the network's own: a chain belongs to one network), write the",
			"file listing them, copy it to every member, then start each with",
			"p2pchain node --data DIR -l PORT --network-file FILE."},
		examples: []string{
			"network new demo --authority " + examplePeerID() + " -o demo.toml",
			"network show demo.toml",
			"network new clinic --authority " + examplePeerID() + " --block-interval 2s",
		},
	}, stdout)
	fs.Var(&authorities, "authority", "`PEERID` of an authority, as p2pchain init or id prints it (new; repeatable, in proposer order)")
	fs.StringVar(&interval, "block-interval", "", "longest wait `D` for a block while no reading is pending, e.g. 2s (new; default 5s)")
	fs.StringVar(&out, "o", "", "write the file to `FILE` (new; default standard output)")
	fs.BoolVar(&force, "force", false, "replace FILE if it exists (new)")
	fs.jsonFlag(&asJSON, "the network (show)")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("network", "give a subcommand: new NAME --authority PEERID, or show FILE")
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	onlyFor := func(sub string, flags ...string) error {
		for _, f := range flags {
			if set[f] {
				return usagef("network", "--%s is a flag of network %s", f, sub)
			}
		}
		return nil
	}
	switch pos[0] {
	case "new":
		if err := onlyFor("show", "json"); err != nil {
			return err
		}
		if len(pos) != 2 {
			return usagef("network", "network new takes one NAME, e.g. network new clinic --authority PEERID")
		}
		return networkNew(pos[1], authorities, interval, out, force, stdout)
	case "show":
		if err := onlyFor("new", "authority", "block-interval", "o", "force"); err != nil {
			return err
		}
		if len(pos) != 2 {
			return usagef("network", "network show takes one FILE")
		}
		return networkShow(pos[1], asJSON, stdout)
	}
	return usagef("network", "unknown subcommand %q: want new or show", pos[0])
}

func networkNew(name string, authorities []string, interval, out string, force bool, stdout io.Writer) error {
	if len(authorities) == 0 {
		return usagef("network", "give the authorities' peer IDs with --authority PEERID (p2pchain init -l PORT prints a node's)")
	}
	f, err := netfile.New(name, authorities)
	if err != nil {
		return usagef("network", "%v", err)
	}
	if interval != "" {
		f.BlockInterval = interval
	}
	data := f.Encode()
	nw, err := netfile.Parse(data)
	if err != nil {
		return usagef("network", "%v", flagOfKey(err))
	}
	if out == "" {
		_, err := stdout.Write(data)
		return err
	}
	if _, err := os.Stat(out); err == nil && !force {
		return fmt.Errorf("%s exists: give --force to replace it (only before the network starts: every member must use the same file)", out)
	}
	if err := datadir.WriteFileAtomic(out, data, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: network %q, %s, genesis %s\n", out, nw.Params.Name, countAuthorities(nw.Set.Len()), nw.Params.Genesis().Hash().Short())
	// --data: the default directory of -l PORT may hold a chain of another
	// network (the demo's), which the node would refuse.
	fmt.Fprintf(stdout, "copy it to every member and start each with: %s node --data DIR -l PORT --network-file %s\n"+
		"  (DIR: the member's data directory for this network, as given to init)\n", invocation(), out)
	return nil
}

// flagOfKey words a file error of network new in terms of its flags.
func flagOfKey(err error) error {
	return fmt.Errorf("%w (the file's authorities come from --authority, block_interval from --block-interval)", err)
}

func networkShow(path string, asJSON bool, stdout io.Writer) error {
	nw, err := netfile.Load(path)
	if err != nil {
		return err
	}
	p := nw.Params
	genesis := p.Genesis().Hash()
	if asJSON {
		return writeJSON(stdout, map[string]any{"name": p.Name, "consensus": p.Consensus.String(), "genesis": genesis.String(),
			"genesis_time": nw.File.GenesisTime, "block_interval": nw.Interval.String(), "max_readings": p.MaxReadings,
			"authorities": nw.File.Authorities, "quorum": nw.Set.Quorum(), "max_faulty": nw.Set.MaxFaulty()})
	}
	fmt.Fprintf(stdout, "network         %q\n", p.Name)
	fmt.Fprintf(stdout, "consensus       %s\n", p.Consensus)
	fmt.Fprintf(stdout, "genesis         %s (%s)\n", genesis, nw.File.GenesisTime)
	fmt.Fprintf(stdout, "block interval  %s\n", nw.Interval)
	fmt.Fprintf(stdout, "authorities     %d: a block is final with the signatures of %d; %d may fail\n", nw.Set.Len(), nw.Set.Quorum(), nw.Set.MaxFaulty())
	for i, a := range nw.File.Authorities {
		fmt.Fprintf(stdout, "  #%-3d %s\n", i, a)
	}
	return nil
}

// resolveNetworkFile makes the network file's path absolute: relative to
// the data directory dir when it comes from config.toml, to the working
// directory when from a flag or the environment.
func (s *nodeSettings) resolveNetworkFile(dir string) error {
	p := s.cfg.NetworkFile
	if p == "" || filepath.IsAbs(p) {
		return nil
	}
	st := settingOf("network_file")
	if s.flags.set[st.flag] || os.Getenv(st.env) != "" {
		abs, err := filepath.Abs(p)
		s.cfg.NetworkFile = abs
		return err
	}
	s.cfg.NetworkFile = filepath.Join(dir, p)
	return nil
}

// network returns the settings' network: that of the network file when one
// is set (nw is then its network), else the proof-of-work network of
// network and difficulty. A network file given with network or difficulty
// set by a flag or variable is refused: one of them is a mistake.
func (s nodeSettings) network() (params chain.Params, nw *netfile.Network, err error) {
	if s.cfg.NetworkFile == "" {
		params, err = s.cfg.params()
		return params, nil, err
	}
	for _, key := range []string{"network", "difficulty"} {
		st := settingOf(key)
		if s.flags.set[st.flag] || os.Getenv(st.env) != "" {
			return params, nil, fmt.Errorf("the network file %s (from %s) and the %s (from %s) conflict: "+
				"an authority network's name and parameters all come from its network file, and it has no proof of work; drop one of them",
				s.cfg.NetworkFile, s.from("network_file"), key, s.from(key))
		}
	}
	nw, err = netfile.Load(s.cfg.NetworkFile)
	if err != nil {
		return params, nil, fmt.Errorf("%w (the network file comes from %s)", err, s.from("network_file"))
	}
	return nw.Params, nw, nil
}

// conflictingFlags refuses --network-file given with --network or
// --difficulty on one command line.
func conflictingFlags(cmd string, set map[string]bool) error {
	if !set["network-file"] {
		return nil
	}
	for _, f := range []string{"network", "difficulty"} {
		if set[f] {
			return usagef(cmd, "--network-file and -%s conflict: an authority network's name and parameters all come from its network file, and it has no proof of work; drop -%s", f, f)
		}
	}
	return nil
}

// rulesText describes the consensus of a network in a line: "difficulty
// 18", or "consensus authority, 4 authorities, this node is authority #1"
// (self is the node's peer ID; "" leaves that part out).
func rulesText(params chain.Params, nw *netfile.Network, self string) string {
	if nw == nil {
		return fmt.Sprintf("difficulty %d", params.Difficulty)
	}
	s := "consensus authority, " + countAuthorities(nw.Set.Len())
	if self == "" {
		return s
	}
	if i, ok := nw.Index(self); ok {
		return fmt.Sprintf("%s, this node is authority #%d", s, i)
	}
	return s + ", this node is a follower"
}

// errNoNetworkFile is returned by loadNetworkFlag for an empty path.
var errNoNetworkFile = errors.New("--network-file: give the path of a network file (p2pchain network new writes one)")

// loadNetworkFlag loads the network file a command line names, as an
// absolute path.
func loadNetworkFlag(path string) (string, *netfile.Network, error) {
	if path == "" {
		return "", nil, errNoNetworkFile
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", nil, err
	}
	nw, err := netfile.Load(abs)
	return abs, nw, err
}

// countAuthorities says "1 authority" or "N authorities".
func countAuthorities(n int) string {
	if n == 1 {
		return "1 authority"
	}
	return fmt.Sprintf("%d authorities", n)
}

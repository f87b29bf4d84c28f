package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/p2pchain/p2pchain/internal/datadir"
	"github.com/p2pchain/p2pchain/internal/netfile"
	"github.com/p2pchain/p2pchain/internal/p2p"
)

func runInit(args []string, stdout, stderr io.Writer) error {
	var (
		t       target
		asJSON  bool
		network string
		diff    int
		netFile string
	)
	def := defaultNodeConfig()
	fs := newCmdFlags("init", help{
		usage: "[--data DIR | -l PORT] [--network NAME] [--difficulty BITS | --network-file FILE] [--json]",
		about: []string{"Creates a data directory: the identity key (the peer ID), and config.toml with every",
			"setting documented, network and difficulty (or the network file of an authority",
			"network) from the flags. Prints the peer ID: list it in a network file (p2pchain",
			"network new) to make the node an authority. On a directory made already it changes",
			"nothing and prints the same. A node started later with the same --data or -l uses it."},
		examples: []string{"init -l 10000", "init --data /srv/p2pchain --network clinic --difficulty 16", "init -l 10000 --json"},
	}, stdout)
	t.registerDir(fs)
	fs.StringVar(&network, "network", def.Network, "network `NAME` (nodes of different networks refuse each other)")
	fs.IntVar(&diff, "difficulty", def.Difficulty, "proof-of-work difficulty in leading zero `BITS`")
	fs.StringVar(&netFile, "network-file", "", "network `FILE` of an authority network (p2pchain network new), instead of --network and --difficulty")
	fs.jsonFlag(&asJSON, "the peer ID and paths")
	if err := fs.noArgs(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if err := conflictingFlags("init", set); err != nil {
		return err
	}
	cfg := def
	cfg.Network, cfg.Difficulty, cfg.Port = network, diff, t.port
	var nw *netfile.Network
	if set["network-file"] {
		var err error
		if cfg.NetworkFile, nw, err = loadNetworkFlag(netFile); err != nil {
			return err
		}
		cfg.Network, cfg.Difficulty = nw.Params.Name, 0
	}
	if err := cfg.check(); err != nil {
		return err
	}
	if _, err := cfg.params(); err != nil {
		return err
	}
	path, err := t.newDir()
	if err != nil {
		return err
	}
	dir, err := datadir.Open(path)
	if errors.Is(err, datadir.ErrLocked) {
		// "give this node its own directory" is advice for a node, not
		// for init on the directory of a node that runs.
		pid, _ := datadir.InUse(path)
		return fmt.Errorf("%s is in use by process %s (a running node, most likely), so it is initialised already: "+
			"%s id --data %s prints its peer ID", path, pid, invocation(), path)
	}
	if err != nil {
		return err
	}
	defer dir.Close()
	key, created, err := dir.Key()
	if err != nil {
		return err
	}
	had, err := loadConfig(dir, cfg)
	if err != nil {
		return err
	}
	id, err := p2p.PeerID(key)
	if err != nil {
		return err
	}
	// A directory made before keeps its config file: say when it names
	// another network file than the one given.
	var note string
	if nw != nil && had.NetworkFile != cfg.NetworkFile && filepath.Join(dir.Path(), had.NetworkFile) != cfg.NetworkFile {
		note = fmt.Sprintf("note: %s does not name %s: give --network-file %s to the node and the tools, or set network_file in it",
			dir.File(datadir.ConfigFile), cfg.NetworkFile, cfg.NetworkFile)
	}
	if asJSON {
		v := map[string]any{"peer_id": id.String(), "data": dir.Path(),
			"config": dir.File(datadir.ConfigFile), "created": created}
		if nw != nil {
			i, ok := nw.Index(id.String())
			if !ok {
				i = -1
			}
			v["network_file"], v["authority"] = cfg.NetworkFile, i
		}
		return writeJSON(stdout, v)
	}
	if created {
		fmt.Fprintf(stdout, "initialised %s\n", dir.Path())
	} else {
		fmt.Fprintf(stdout, "%s was already initialised; nothing changed\n", dir.Path())
	}
	fmt.Fprintf(stdout, "peer ID  %s\nconfig   %s\n", id, dir.File(datadir.ConfigFile))
	if nw != nil {
		fmt.Fprintf(stdout, "network  %q: %s\n", nw.Params.Name, rulesText(nw.Params, nw, id.String()))
		if note != "" {
			fmt.Fprintln(stdout, note)
		}
	}
	fmt.Fprintf(stdout, "start it with: %s\n", startCommand(t, dir.Path()))
	return nil
}

// startCommand is the command that starts a node on the data directory the
// target names: the same -l or --data the user gave.
func startCommand(t target, path string) string {
	if t.data == "" && t.portSet {
		return fmt.Sprintf("%s node -l %d", invocation(), t.port)
	}
	return fmt.Sprintf("%s node --data %s", invocation(), path)
}

func runID(args []string, stdout, stderr io.Writer) error {
	var (
		t      target
		seed   int64
		asJSON bool
	)
	fs := newCmdFlags("id", help{
		usage: "[--data DIR | -l PORT] [-seed N] [--json]",
		about: []string{"Prints the peer ID of a node: that of the node running on the data directory if one",
			"runs (it may run with -seed), else that of the directory's identity key. With -seed N,",
			"the identity the node gets from -seed N. Without --data or -l it uses the only data",
			"directory there is, or the only one whose node runs."},
		examples: []string{"id", "id -l 10000", "id -l 10000 -seed 1", "id --data /srv/p2pchain --json"},
	}, stdout)
	t.registerDir(fs)
	fs.Int64Var(&seed, "seed", 0, "print the identity that node -seed `N` uses (0: the data directory's)")
	fs.jsonFlag(&asJSON, "the peer ID and where it comes from")
	if err := fs.noArgs(args); err != nil {
		return err
	}
	id, path, source, err := peerIDFor(t, seed, stderr)
	if err != nil {
		return err
	}
	if asJSON {
		v := map[string]any{"peer_id": id, "source": source}
		if path != "" {
			v["data"] = path
		}
		return writeJSON(stdout, v)
	}
	_, err = fmt.Fprintln(stdout, id)
	return err
}

// peerIDFor finds the peer ID that id prints, the data directory it belongs
// to ("" for a seed) and where it came from: "seed", "running node" or
// "identity key".
func peerIDFor(t target, seed int64, stderr io.Writer) (id, path, source string, err error) {
	if seed != 0 {
		pid, err := p2p.PeerID(p2p.KeyFromSeed(seed))
		return pid.String(), "", "seed", err
	}
	path, err = t.existingDir(func(d string) bool { _, ok := liveAPI(d); return ok })
	if err != nil {
		return "", "", "", err
	}
	var fromKey string
	if key, kerr := datadir.ReadKey(path); kerr == nil {
		pid, err := p2p.PeerID(key)
		if err != nil {
			return "", "", "", err
		}
		fromKey = pid.String()
	} else {
		err = kerr
	}
	// A running node may use another identity (-seed): its own word wins.
	if url, ok := liveAPI(path); ok {
		c := &client{base: url, http: probeHTTP}
		var st struct {
			PeerID string `json:"peer_id"`
		}
		if c.get(context.Background(), "/api/v1/status", &st) == nil && st.PeerID != "" {
			if fromKey != "" && fromKey != st.PeerID {
				fmt.Fprintf(stderr, "note: the node running on %s uses peer ID %s (started with -seed); the directory's identity key is %s\n",
					path, st.PeerID, fromKey)
			}
			return st.PeerID, path, "running node", nil
		}
	}
	if fromKey == "" {
		return "", "", "", err
	}
	return fromKey, path, "identity key", nil
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

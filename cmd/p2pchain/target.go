package main

// How every command chooses its node or data directory, one resolver for all:
//
//   - --data DIR, else $P2PCHAIN_DATA, else -l PORT (its default directory
//     ~/.p2pchain/node-PORT, under $P2PCHAIN_HOME if set): the directory the
//     node started with the same flags uses;
//   - with none of these, the node, init and import use ~/.p2pchain/default
//     (the node's directory without -l); the commands that need an existing
//     directory (id, verify, export) use the only data directory there is,
//     and the client commands the only running node (--api URL names one
//     directly); when there are several they list them and ask.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/p2pchain/p2pchain/internal/datadir"
)

// envData names the environment variable that sets the data directory.
const envData = "P2PCHAIN_DATA"

// envToken names the environment variable that gives the client commands
// the node's API token (the contents of its api.token), for a node named
// by --api from a machine that does not hold its data directory.
const envToken = "P2PCHAIN_TOKEN"

// target is the node or data directory the command line names.
type target struct {
	data      string
	port      int
	portSet   bool
	api       string // client commands only
	tokenFile string // client commands only
}

// registerDir adds --data and -l.
func (t *target) registerDir(fs *cmdFlags) {
	fs.StringVar(&t.data, "data", "", "data directory `DIR` (default $"+envData+", or ~/.p2pchain/node-PORT with -l PORT)")
	fs.Func("l", "`PORT` the node listens on: use its default data directory ~/.p2pchain/node-PORT", func(s string) error {
		p, err := strconv.Atoi(s)
		if err != nil || p < 0 || p > 65535 {
			return errors.New("a port is 0 to 65535")
		}
		t.port, t.portSet = p, true
		return nil
	})
}

// registerClient adds the flags of the commands that talk to a running node:
// --data, -l and --api.
func (t *target) registerClient(fs *cmdFlags) {
	t.registerDir(fs)
	fs.StringVar(&t.api, "api", "", "`URL` of the node's API, e.g. http://127.0.0.1:5001 (default: found from the data directory)")
	fs.StringVar(&t.tokenFile, "token-file", "", "`FILE` holding the node's API token, a copy of its api.token (default: the data directory's api.token; with --api alone, $"+envToken+")")
}

// token returns the API token the flags or the environment give, if any:
// --token-file, else $P2PCHAIN_TOKEN where env is true.
func (t target) token(env bool) (string, bool, error) {
	if t.tokenFile != "" {
		b, err := os.ReadFile(t.tokenFile)
		if err != nil {
			return "", false, fmt.Errorf("--token-file: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", false, fmt.Errorf("--token-file %s is empty: copy the node's api.token there", t.tokenFile)
		}
		return tok, true, nil
	}
	if tok := strings.TrimSpace(os.Getenv(envToken)); env && tok != "" {
		return tok, true, nil
	}
	return "", false, nil
}

// explicit returns the directory the flags or the environment name, if any.
func (t target) explicit() (string, bool, error) {
	switch {
	case t.data != "":
		return t.data, true, nil
	case os.Getenv(envData) != "":
		return os.Getenv(envData), true, nil
	case t.portSet:
		p, err := datadir.Default(t.port)
		return p, true, err
	}
	return "", false, nil
}

// startCommand is the command that starts a node on dir, the directory
// the flags name (explicit): by -l PORT when that is how they name it (a
// node started with --data DIR alone would listen on another port), else
// by --data DIR.
func (t target) startCommand(dir string) string {
	if t.data == "" && os.Getenv(envData) == "" && t.portSet {
		return fmt.Sprintf("%s node -l %d", invocation(), t.port)
	}
	return fmt.Sprintf("%s node --data %s", invocation(), dir)
}

// newDir is the directory of the node, init and import: the one named, else
// the node's default.
func (t target) newDir() (string, error) {
	if p, ok, err := t.explicit(); ok || err != nil {
		return p, err
	}
	return datadir.Default(0)
}

// existingDir is the directory of a command that needs one made already: the
// one named, else the only one there is (preferring the only running node's
// when running is given and several exist).
func (t target) existingDir(running func(dir string) bool) (string, error) {
	if p, ok, err := t.explicit(); ok || err != nil {
		return p, err
	}
	root, err := datadir.Root()
	if err != nil {
		return "", err
	}
	dirs := listDataDirs(root)
	switch len(dirs) {
	case 0:
		return "", fmt.Errorf("no data directory under %s: start a node first (%s node -l PORT), or give --data DIR or -l PORT",
			root, invocation())
	case 1:
		return dirs[0], nil
	}
	if running != nil {
		var live []string
		for _, d := range dirs {
			if running(d) {
				live = append(live, d)
			}
		}
		if len(live) == 1 {
			return live[0], nil
		}
	}
	return "", fmt.Errorf("%d data directories under %s; choose one with --data DIR or -l PORT:\n%s",
		len(dirs), root, listChoices(dirs))
}

// listChoices formats data directories as the flags that choose them.
func listChoices(dirs []string) string {
	var sb strings.Builder
	for i, d := range dirs {
		if i > 0 {
			sb.WriteByte('\n')
		}
		fmt.Fprintf(&sb, "  --data %s", d)
		if port, ok := strings.CutPrefix(filepath.Base(d), "node-"); ok {
			fmt.Fprintf(&sb, "   (-l %s)", port)
		}
	}
	return sb.String()
}

// listDataDirs returns the data directories under root, sorted: those that
// hold an identity key, a config file or a chain.
func listDataDirs(root string) []string {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	var dirs []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		d := filepath.Join(root, e.Name())
		for _, f := range []string{datadir.KeyFile, datadir.ConfigFile, datadir.StoreDir} {
			if _, err := os.Stat(filepath.Join(d, f)); err == nil {
				dirs = append(dirs, d)
				break
			}
		}
	}
	sort.Strings(dirs)
	return dirs
}

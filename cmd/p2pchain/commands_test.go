package main

// The command line as a new user meets it (issue 8): short flag errors, -h
// with a description and examples everywhere, --version, the commands the
// docs print, one way to choose a node in every command, connect and stop
// telling the truth, config files that are wrong or gone.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/datadir"
	"github.com/p2pchain/p2pchain/internal/p2p"
)

// runCLI runs the binary as an installed p2pchain, with P2PCHAIN_HOME=home,
// in directory wd, and returns what it printed and its exit code.
func runCLI(t *testing.T, home, wd string, args ...string) toolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := installed(args...)
	cmd.Env = append(cmd.Env, nodeEnv(home)...)
	cmd.Dir = wd
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Start()
	if err == nil {
		go func() { <-ctx.Done(); _ = cmd.Process.Kill() }()
		err = cmd.Wait()
	}
	r := toolResult{stdout: out.String(), stderr: errOut.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("p2pchain %s still ran after 60 s:\n%s", strings.Join(args, " "), r)
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return r
}

// TestFlagErrorsAreShort: a mistake on the command line prints the error
// first and one line on where to look, and exits with status 2.
func TestFlagErrorsAreShort(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"node", "--bogus"}, "p2pchain node: flag provided but not defined: -bogus"},
		{[]string{"node", "-l", "70000"}, "p2pchain node: -l: port 70000: a port is 0 to 65535"},
		{[]string{"node", "stray"}, `p2pchain node: unexpected argument "stray"`},
		// A bad value says what a good one looks like.
		{[]string{"node", "-l", "abc"}, `p2pchain node: invalid value "abc" for flag -l: want a whole number (-l PORT: PORT to listen on`},
		{[]string{"node", "-mdns=maybe"}, `invalid boolean value "maybe" for -mdns: want true or false (-mdns: find peers`},
		{[]string{"node", "-d", "127.0.0.1:10000"}, `p2pchain node: -d: peer address "127.0.0.1:10000" is not a multiaddr`},
		{[]string{"node", "-d", "127.0.0.1:10000"}, `for 127.0.0.1:10000 that is /ip4/127.0.0.1/tcp/10000/p2p/<its peer ID>`},
		{[]string{"connect", "127.0.0.1:10001"}, `for 127.0.0.1:10001 that is /ip4/127.0.0.1/tcp/10001/p2p/<its peer ID>: the other node's banner and its p2pchain status list its addresses under "listening on"`},
		{[]string{"connect", "/ip4/127.0.0.1/tcp/1"}, `does not end in /p2p/<peer ID>`},
		{[]string{"node", "-peer", "/ip4/127.0.0.1/tcp/1"}, `p2pchain node: -peer: peer address "/ip4/127.0.0.1/tcp/1" does not end in /p2p/<peer ID>`},
		{[]string{"-bogus"}, "p2pchain node: flag provided but not defined: -bogus"},
		{[]string{"blocks", "--limit", "x"}, `p2pchain blocks: invalid value "x" for flag -limit`},
		{[]string{"blocks", "--limit", "0"}, "want a number of blocks from 1 to 100"},
		{[]string{"status", "extra"}, `p2pchain status: unexpected argument "extra"`},
		{[]string{"add"}, "p2pchain add: want a heart rate"},
		{[]string{"add", "72", "--subject", "bob", "alice"}, "two subjects"},
		{[]string{"add", "500"}, "p2pchain add: 500 bpm is not a plausible heart rate"},
		{[]string{"add", "alice"}, `p2pchain add: not a heart rate: "alice": want a whole number of beats per minute`},
		{[]string{"readings"}, "p2pchain readings: --subject is required"},
		{[]string{"verify", "-l", "x"}, `p2pchain verify: invalid value "x" for flag -l`},
		{[]string{"import"}, "p2pchain import: give the file to import"},
	} {
		r := runCLI(t, home, home, tt.args...)
		lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
		cmd := tt.args[0]
		if strings.HasPrefix(cmd, "-") {
			cmd = "node"
		}
		if r.code != 2 || len(lines) != 2 || !strings.Contains(lines[0], tt.want) ||
			lines[1] != fmt.Sprintf("Run 'p2pchain %s -h' for its usage and examples.", cmd) || r.stdout != "" {
			t.Errorf("p2pchain %s: want exit 2 and two lines, the first with %q:\n%s", strings.Join(tt.args, " "), tt.want, r)
		}
	}
	r := runCLI(t, home, home, "frobnicate")
	if r.code != 2 || !strings.HasPrefix(r.stderr, "p2pchain: unknown command \"frobnicate\"\nRun 'p2pchain help'") {
		t.Errorf("unknown command:\n%s", r)
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}, {"-v"}} {
		r := runCLI(t, home, home, args...)
		if r.code != 0 || !regexp.MustCompile(`^p2pchain \S+ \(go[\d.]+\S*\)\n$`).MatchString(r.stdout) {
			t.Errorf("p2pchain %s:\n%s", args[0], r)
		}
	}
	r := runCLI(t, home, home, "version", "--json")
	var v struct{ Version, Go string }
	if err := json.Unmarshal([]byte(r.stdout), &v); r.code != 0 || err != nil || v.Version == "" || v.Go == "" {
		t.Errorf("version --json: %v\n%s", err, r)
	}
}

// TestEveryCommandHelp: every command's -h has a description and examples,
// every command that prints data takes --json, and no flag's help says its
// default twice.
func TestEveryCommandHelp(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	noJSON := map[string]bool{"node": true, "export": true} // a node prints no data; export prints JSON lines
	for _, c := range commands() {
		r := runCLI(t, home, home, c.name, "-h")
		out := r.stdout
		if r.code != 0 || !strings.HasPrefix(out, "Usage: p2pchain "+c.name+" ") {
			t.Errorf("%s -h:\n%s", c.name, r)
			continue
		}
		parts := strings.SplitN(out, "\n\n", 3)
		if len(parts) < 3 || len(strings.TrimSpace(parts[1])) < 30 {
			t.Errorf("%s -h has no description:\n%s", c.name, out)
		}
		if !strings.Contains(out, "\nExamples:\n  p2pchain ") {
			t.Errorf("%s -h has no examples:\n%s", c.name, out)
		}
		if hasJSON := strings.Contains(out, "\n  -json\n"); hasJSON == noJSON[c.name] {
			t.Errorf("%s -h: --json offered %v, want %v", c.name, hasJSON, !noJSON[c.name])
		}
		if regexp.MustCompile(`\(default[^)]*\) \(default`).MatchString(out) {
			t.Errorf("%s -h says a default twice:\n%s", c.name, out)
		}
	}
	r := runCLI(t, home, home, "help", "add")
	if r.code != 0 || !strings.Contains(r.stdout, "Usage: p2pchain add") {
		t.Errorf("help add:\n%s", r)
	}
}

// docCommands returns the p2pchain command lines in the sh code blocks of
// a Markdown file: bare p2pchain and ./p2pchain, comments cut.
func docCommands(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, c := range commands() {
		known[c.name] = true
	}
	var cmds []string
	inSh := false
	for _, l := range strings.Split(string(b), "\n") {
		fence := strings.TrimSpace(l) // code blocks inside list items are indented
		switch {
		case strings.HasPrefix(fence, "```sh"):
			inSh = true
			continue
		case strings.HasPrefix(fence, "```"):
			inSh = false
			continue
		}
		if !inSh {
			continue
		}
		if i := strings.Index(l, " #"); i >= 0 {
			l = l[:i]
		}
		f := strings.Fields(l)
		if len(f) < 2 || (f[0] != "p2pchain" && f[0] != "./p2pchain") || !(known[f[1]] || strings.HasPrefix(f[1], "-")) {
			continue
		}
		cmds = append(cmds, strings.Join(f, " "))
	}
	return cmds
}

// TestDocCommandsRun: every p2pchain command README.md and OPERATIONS.md
// print runs as printed: a known command whose flags and arguments parse
// (run against an empty home, a command may fail for want of a node, never
// for its command line). The node's command lines are parsed only.
func TestDocCommandsRun(t *testing.T) {
	t.Parallel()
	id, err := p2p.PeerID(p2p.KeyFromSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	addr := "/ip4/127.0.0.1/tcp/10000/p2p/" + id.String()
	var all []string
	for _, doc := range []string{"../../README.md", "../../docs/OPERATIONS.md"} {
		cmds := docCommands(t, doc)
		if len(cmds) < 3 {
			t.Fatalf("%s: found only %q", doc, cmds)
		}
		all = append(all, cmds...)
	}
	for _, line := range all {
		home, wd := t.TempDir(), t.TempDir()
		line = strings.NewReplacer("12D3KooW...", id.String(), "<address of node 1>", addr, "<address of node 2>", addr,
			"~/.p2pchain", home, "/srv/p2pchain", filepath.Join(wd, "srv")).Replace(line)
		args := strings.Fields(line)[1:]
		if args[0] == "node" || strings.HasPrefix(args[0], "-") && args[0] != "--version" {
			if args[0] == "node" {
				args = args[1:]
			}
			if _, _, err := parseNodeFlags(args, io.Discard); err != nil {
				t.Errorf("%s: %v", line, err)
			}
			continue
		}
		if args[0] == "testnet" { // runs until stopped: parsed only
			if _, err := parseTestnetFlags(args[1:], io.Discard); err != nil {
				t.Errorf("%s: %v", line, err)
			}
			continue
		}
		if args[0] == "bench" { // starts networks for a minute or more: parsed only
			if _, err := parseBenchFlags(args[1:], io.Discard); err != nil {
				t.Errorf("%s: %v", line, err)
			}
			continue
		}
		r := runCLI(t, home, wd, args...)
		if r.code == 2 || strings.Contains(r.stderr, "flag provided but not defined") || strings.Contains(r.stderr, "unexpected argument") {
			t.Errorf("%s: the command line is refused:\n%s", line, r)
		}
	}
}

// nodeOn starts a node with a private home, and returns it and its banner's
// peer ID.
func nodeOn(t *testing.T, home, name string, args ...string) (*proc, string) {
	t.Helper()
	n := startEnv(t, name, nodeEnv(home), append([]string{"node"}, args...)...)
	return n, readBanner(t, n).id // the api file is written before the banner
}

// TestChooseNode: client commands take -l PORT, --data DIR and --api URL
// alike; id finds a running node's directory and honours -seed as the node
// does; offline tools use the only data directory there is; stop stops.
func TestChooseNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real node processes")
	}
	t.Parallel()
	home := t.TempDir()
	p1, p2 := freePort(t), freePort(t)
	for p2 == p1 {
		p2 = freePort(t)
	}
	l1, l2 := strconv.Itoa(p1), strconv.Itoa(p2)
	seedID, _ := p2p.PeerID(p2p.KeyFromSeed(1))

	n1, id1 := nodeOn(t, home, "node 1 (-seed 1)", "-l", l1, "-seed", "1", "-difficulty", "4")
	if id1 != seedID.String() {
		t.Fatalf("node -seed 1 has peer ID %s, want %s", id1, seedID)
	}
	// With one node running, plain id finds it.
	if r := runCLI(t, home, home, "id"); r.code != 0 || strings.TrimSpace(r.stdout) != id1 {
		t.Errorf("id with node 1 running, want %s:\n%s", id1, r)
	}
	n2, id2 := nodeOn(t, home, "node 2", "-l", l2, "-difficulty", "4", "-d", "/ip4/127.0.0.1/tcp/"+l1+"/p2p/"+id1)
	expectFrom(t, n2, 0, `^connected to /ip4/`)

	// The API's port: 5001, or the next free one, said so.
	for _, n := range []*proc{n1, n2} {
		port := expectFrom(t, n, 0, `^explorer and API: http://127\.0\.0\.1:(\d+)/$`)[1]
		if port != "5001" && n.count(`^API ports? 5001 (to \d+ )?in use, using `+port+`$`) != 1 {
			t.Errorf("%s: API on port %s without saying why it is not 5001", n.name, port)
		}
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"id", "-l", l1}, id1}, // the running node's identity (-seed), not the key file's
		{[]string{"id", "-l", l1, "-seed", "1"}, id1},
		{[]string{"id", "-l", l2}, id2},
		{[]string{"status", "-l", l1}, id1},
		{[]string{"status", "--data", filepath.Join(home, "node-"+l2)}, id2},
		{[]string{"add", "72", "alice", "-l", l1}, "alice 72 bpm, pending"},
		{[]string{"add", "bob", "73", "-l", l1}, "bob 73 bpm, pending"},
		{[]string{"peers", "-l", l2}, id1},
	} {
		if r := runCLI(t, home, home, tt.args...); r.code != 0 || !strings.Contains(r.stdout, tt.want) {
			t.Errorf("p2pchain %s: want %q:\n%s", strings.Join(tt.args, " "), tt.want, r)
		}
	}
	// Two nodes: the commands without a choice list both.
	for _, cmd := range []string{"id", "status"} {
		r := runCLI(t, home, home, cmd)
		if r.code == 0 || !strings.Contains(r.stderr, "-l "+l1) || !strings.Contains(r.stderr, "-l "+l2) {
			t.Errorf("%s with two nodes running: want a list of both:\n%s", cmd, r)
		}
	}
	// --limit above the page size is lowered, and said so.
	if r := runCLI(t, home, home, "blocks", "-l", l1, "--limit", "1000"); r.code != 0 || !strings.Contains(r.stderr, "--limit 1000 lowered to 100") {
		t.Errorf("blocks --limit 1000:\n%s", r)
	}
	// Subjects are case-sensitive.
	if r := runCLI(t, home, home, "readings", "Alice", "-l", l1); r.code != 0 || !strings.Contains(r.stdout, `no readings of subject "Alice" (subjects are case-sensitive)`) {
		t.Errorf("readings Alice:\n%s", r)
	}

	// connect tells the truth: nothing there fails, a peer connected already
	// is not dialled again, a new one is connected.
	other, _ := p2p.PeerID(p2p.KeyFromSeed(77))
	nowhere := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", freePort(t), other)
	if r := runCLI(t, home, home, "connect", "-l", l2, nowhere); r.code != 1 || !strings.Contains(r.stderr, "connection refused") || r.stdout != "" {
		t.Errorf("connect to nothing:\n%s", r)
	}
	wrongPort := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", freePort(t), id1)
	if r := runCLI(t, home, home, "connect", "-l", l2, wrongPort); r.code != 0 ||
		!strings.Contains(r.stdout, "already connected to "+id1+" through /ip4/127.0.0.1/tcp/"+l1) || !strings.Contains(r.stdout, "was not dialled") {
		t.Errorf("connect to a connected peer at another address:\n%s", r)
	}

	// stop: node 2 stops, and the command returns once it has.
	r := runCLI(t, home, home, "stop", "-l", l2)
	if r.code != 0 || !strings.Contains(r.stdout, "stopped node "+id2) {
		t.Errorf("stop -l %s:\n%s", l2, r)
	}
	select {
	case err := <-n2.exit:
		if err != nil {
			t.Errorf("node 2 exited with %v after stop", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("node 2 still runs after p2pchain stop returned")
	}
	if _, inUse := datadir.InUse(filepath.Join(home, "node-"+l2)); inUse {
		t.Error("node 2's data directory still in use")
	}
	// A crashed node's api file may point at another node now (the API port
	// is fixed): it counts only while a process holds the directory.
	url1, err := os.ReadFile(filepath.Join(home, "node-"+l1, datadir.APIFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "node-"+l2, datadir.APIFile), url1, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, home, home, "status", "-l", l2); r.code != 1 || !strings.Contains(r.stderr, "no node is running on") ||
		!strings.Contains(r.stderr, "without its -seed a node comes back with another peer ID") || !strings.Contains(r.stderr, "node -l "+l2+"'") {
		t.Errorf("status -l of a stopped node with a stale api file:\n%s", r)
	}
	// A port no node was started on (one started with --data elsewhere is
	// named by its --data): the error says so, not "start it".
	// It starts one by -l, as the user named it: --data DIR alone would
	// listen on another port.
	if r := runCLI(t, home, home, "status", "-l", "10999"); r.code != 1 || !strings.Contains(r.stderr, "none was ever started there") ||
		!strings.Contains(r.stderr, "name a node by the --data DIR it was started with") || !strings.Contains(r.stderr, "node -l 10999'") {
		t.Errorf("status -l of a port no node was started on:\n%s", r)
	}
	// One node runs of two directories: id uses the running one.
	if r := runCLI(t, home, home, "id"); r.code != 0 || strings.TrimSpace(r.stdout) != id1 {
		t.Errorf("id with node 1 running and node 2 stopped, want %s:\n%s", id1, r)
	}
	if r := runCLI(t, home, home, "stop", "-l", l1, "--json"); r.code != 0 || !strings.Contains(r.stdout, `"stopped": true`) {
		t.Errorf("stop --json:\n%s", r)
	}
	n1.expect(`^stopped$`)
	if r := runCLI(t, home, home, "stop", "-l", l1); r.code != 1 || !strings.Contains(r.stderr, "no node is running") {
		t.Errorf("stop with no node:\n%s", r)
	}
	// Offline: two directories, so the tools ask; -l chooses; the key file's
	// identity once no node runs there.
	if r := runCLI(t, home, home, "verify"); r.code != 1 || !strings.Contains(r.stderr, "2 data directories") {
		t.Errorf("verify with two directories:\n%s", r)
	}
	if r := runCLI(t, home, home, "verify", "-l", l1); r.code != 0 || !strings.Contains(r.stdout, "chain OK: ") {
		t.Errorf("verify -l:\n%s", r)
	}
	key, err := datadir.ReadKey(filepath.Join(home, "node-"+l1))
	if err != nil {
		t.Fatal(err)
	}
	keyID, _ := p2p.PeerID(key)
	if r := runCLI(t, home, home, "id", "-l", l1); r.code != 0 || strings.TrimSpace(r.stdout) != keyID.String() {
		t.Errorf("id -l of a stopped node: want its key's %s:\n%s", keyID, r)
	}
	// A home with one data directory: the tools need no flag.
	solo := t.TempDir()
	initOut := runCLI(t, solo, solo, "init", "-l", l1, "--difficulty", "4", "--json")
	var in struct {
		PeerID string `json:"peer_id"`
	}
	if err := json.Unmarshal([]byte(initOut.stdout), &in); err != nil || in.PeerID == "" {
		t.Fatalf("init --json: %v\n%s", err, initOut)
	}
	if r := runCLI(t, solo, solo, "id"); r.code != 0 || strings.TrimSpace(r.stdout) != in.PeerID {
		t.Errorf("id in a home with one directory, want %s:\n%s", in.PeerID, r)
	}
}

// TestConfigFileGone: a deleted config.toml is never silently replaced by
// one of another network; damaged and emptied files name the file and line.
func TestConfigFileGone(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real node processes")
	}
	t.Parallel()
	home := t.TempDir()
	data := filepath.Join(t.TempDir(), "node")
	env := nodeEnv(home)
	n, _ := nodeOn(t, home, "first run", "--data", data, "-l", "0", "-difficulty", "4", "-api", "off")
	n.type_("70")
	waitStatus(t, n, "the reading to be mined", func(s nodeStatus) bool { return s.height == 1 })
	n.stop()
	config := filepath.Join(data, datadir.ConfigFile)

	// Deleted, and the defaults are of another network: refused, saying why.
	if err := os.Remove(config); err != nil {
		t.Fatal(err)
	}
	out, err := runToExit(t, env, "node", "--data", data, "-l", "0", "-api", "off")
	for _, want := range []string{"store belongs to another network",
		"the chain was made with difficulty 4; this node runs difficulty 18 (from the default: there is no " + config + ")",
		"to run this chain, give --difficulty 4"} {
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("missing config, default difficulty: want %q:\n%s", want, out)
		}
	}
	// Another difficulty by flag: both values named, and one remedy.
	out, err = runToExit(t, env, "node", "--data", data, "-l", "0", "-api", "off", "-difficulty", "5")
	for _, want := range []string{"the chain was made with difficulty 4; this node runs difficulty 5 (from flag -difficulty)",
		"to run this chain, give --difficulty 4 (a new chain with these settings needs another --data)"} {
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("-difficulty 5: want %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "another data directory") + strings.Count(out, "another --data"); n != 1 {
		t.Errorf("-difficulty 5: %d remedies of another data directory, want 1:\n%s", n, out)
	}
	if _, err := os.Stat(config); !os.IsNotExist(err) {
		t.Error("a config file was written for the wrong network")
	}
	// Deleted, and the flags give the chain's network: written back, said so.
	n = startEnv(t, "config rewritten", env, "node", "--data", data, "-l", "0", "-difficulty", "4", "-api", "off")
	if b := readBanner(t, n); b.height != 1 {
		t.Errorf("restarted at height %d", b.height)
	}
	expectFrom(t, n, 0, `^note: `+regexp.QuoteMeta(config)+` was missing: wrote a default one with network "p2pchain" and difficulty 4`)
	n.stop()
	text, err := os.ReadFile(config)
	if err != nil || !strings.Contains(string(text), "\ndifficulty = 4\n") {
		t.Fatalf("rewritten config: %v\n%s", err, text)
	}
	// Emptied: the defaults, and the message says the file is empty.
	if err := os.WriteFile(config, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = runToExit(t, env, "node", "--data", data, "-l", "0", "-api", "off")
	if err == nil || !strings.Contains(out, "from the default: "+config+" is empty") {
		t.Errorf("emptied config:\n%s", out)
	}
	// Damaged, unknown key, wrong type: the file and the line.
	for text, want := range map[string]string{
		"difficulty = 4\n\x00\x01\x02\n": config + ", line 2, column 1: not valid TOML",
		"difficulty = 4\nprot = 5\n":     config + `, line 2: unknown key "prot" (did you mean "port"?)`,
		"difficulty = \"4\"\n":           config + `, line 1: difficulty = "4" is not a whole number`,
	} {
		if err := os.WriteFile(config, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err = runToExit(t, env, "node", "--data", data, "-l", "0", "-api", "off")
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("config %q: want %q:\n%s", text, want, out)
		}
	}
	// The offline tools read the file but never write it.
	if err := os.Remove(config); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, home, home, "verify", "--data", data, "--difficulty", "4"); r.code != 0 {
		t.Errorf("verify without a config file:\n%s", r)
	}
	if _, err := os.Stat(config); !os.IsNotExist(err) {
		t.Error("verify wrote a config file")
	}
}

package main

// Unit tests of the command line's shared parts: flag parsing, the name
// printed in commands, add's arguments, config file errors, the API port and
// the sync display (issue 8).

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/datadir"
	"github.com/p2pchain/p2pchain/internal/p2p"
)

func TestInvocation(t *testing.T) {
	repo := t.TempDir()
	if err := os.MkdirAll(filepath.Join(repo, "cmd", "p2pchain"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "cmd", "p2pchain", "main.go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		argv0, exe, wd, gocache, want string
	}{
		{"p2pchain", "/home/me/go/bin/p2pchain", "/tmp", "", "p2pchain"},         // found on $PATH
		{"./p2pchain", repo + "/p2pchain", repo, "", "./p2pchain"},               // go build -o p2pchain
		{"/opt/bin/p2pchain", "/opt/bin/p2pchain", "/", "", "/opt/bin/p2pchain"}, // by its path
		{"/opt/my tools/p2pchain", "/opt/my tools/p2pchain", "/", "", `'/opt/my tools/p2pchain'`},
		// go run: a go-build temporary directory, or the build cache.
		{"/tmp/go-build123/b001/exe/p2pchain", "/tmp/go-build123/b001/exe/p2pchain", repo, "", "go run ./cmd/p2pchain"},
		{"x", "/root/.cache/go-build/39/394a-d/p2pchain", repo, "", "go run ./cmd/p2pchain"},
		{"x", "/srv/cache/39/394a-d/p2pchain", repo, "/srv/cache", "go run ./cmd/p2pchain"},
		{"x", "/tmp/go-build1/b001/exe/p2pchain", filepath.Join(repo, "cmd", "p2pchain"), "", "go run ."},
		{"x", "/tmp/go-build1/b001/exe/p2pchain", "/elsewhere", "", "go run github.com/p2pchain/p2pchain/cmd/p2pchain"},
	} {
		if got := invocationOf(tt.argv0, tt.exe, tt.wd, tt.gocache); got != tt.want {
			t.Errorf("invocationOf(%q, %q, %q, %q) = %q, want %q", tt.argv0, tt.exe, tt.wd, tt.gocache, got, tt.want)
		}
	}
}

func TestCmdFlagsParse(t *testing.T) {
	var out bytes.Buffer
	fs := newCmdFlags("add", help{usage: "BPM", about: []string{"Adds."}, examples: []string{"add 72"}}, &out)
	subject := fs.String("subject", "", "the `SUBJECT`")
	pos, err := fs.parse([]string{"72", "--subject", "alice", "x", "--", "-y"})
	if err != nil || *subject != "alice" || strings.Join(pos, " ") != "72 x -y" {
		t.Fatalf("parse: %q subject %q err %v", pos, *subject, err)
	}
	pos, err = fs.parse([]string{"-5"}) // a negative number is an argument
	if err != nil || len(pos) != 1 || pos[0] != "-5" {
		t.Fatalf("parse -5: %q %v", pos, err)
	}
	_, err = fs.parse([]string{"--bogus"})
	var ue *usageError
	if !errors.As(err, &ue) || ue.cmd != "add" || !strings.Contains(err.Error(), "-bogus") {
		t.Fatalf("unknown flag: %v, want a usageError naming it", err)
	}
	if out.Len() != 0 {
		t.Fatalf("an error printed %q; run prints it, once", out.String())
	}
	if _, err := fs.parse([]string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	for _, want := range []string{"Usage: ", " add BPM", "Adds.", "Examples:", " add 72", "-subject SUBJECT"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
}

func TestAddArgs(t *testing.T) {
	for _, tt := range []struct {
		args        []string
		flagSubject string
		subject     string
		bpm         int
		err         string
	}{
		{args: []string{"72"}, subject: "demo", bpm: 72},
		{args: []string{"72"}, flagSubject: "alice", subject: "alice", bpm: 72},
		{args: []string{"alice", "72"}, subject: "alice", bpm: 72}, // as at the prompt
		{args: []string{"72", "alice"}, subject: "alice", bpm: 72},
		{args: []string{"72", "alice"}, flagSubject: "alice", subject: "alice", bpm: 72},
		{args: []string{"Alice", "72"}, subject: "Alice", bpm: 72}, // case is kept
		{args: []string{"72", "alice"}, flagSubject: "bob", err: "two subjects"},
		{args: nil, err: "want a heart rate"},
		{args: []string{"a", "b", "c"}, err: "at most one subject"},
		{args: []string{"500"}, err: "not a plausible heart rate"},
		{args: []string{"-5"}, err: "not a plausible heart rate"},
		{args: []string{"alice", "bob"}, err: "not a heart rate"},
	} {
		in, err := addArgs(tt.args, tt.flagSubject)
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("add %q (--subject %q): %+v, %v; want an error with %q", tt.args, tt.flagSubject, in, err, tt.err)
			}
		case err != nil || in.subject != tt.subject || in.bpm != tt.bpm:
			t.Errorf("add %q (--subject %q): %+v, %v; want %s %d", tt.args, tt.flagSubject, in, err, tt.subject, tt.bpm)
		}
	}
}

// writeConfigFile makes a data directory whose config.toml holds text.
func writeConfigFile(t *testing.T, text string) *datadir.Dir {
	t.Helper()
	dir, err := datadir.Open(filepath.Join(t.TempDir(), "node"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	if err := os.WriteFile(dir.File(datadir.ConfigFile), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestConfigErrors: a config file the node cannot use is reported with the
// file, the line, the key, what the value must be and what to do.
func TestConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		name, text string
		want       []string
	}{
		{"unknown key", "network = \"p2pchain\"\nprot = 10000\n",
			[]string{"line 2: unknown key \"prot\"", `did you mean "port"?`, "the keys are network, difficulty", "fix or remove the line"}},
		{"two unknown keys", "colour = 1\n[extra]\nx = 1\n",
			[]string{"line 1: unknown key \"colour\"", "line 2: unknown key \"extra\""}},
		{"wrong type", "network = \"p2pchain\"\n\nport = \"10000x\"\n",
			[]string{"line 3: port = \"10000x\" is not a port number from 0 to 65535", "fix the line, or remove it"}},
		{"wrong type bool", "mdns = 1\n", []string{"line 1: mdns = 1 is not true or false"}},
		{"wrong type list", "peers = \"/ip4/1.2.3.4/tcp/1/p2p/x\"\n", []string{"line 1: peers = ", "is not a list of multiaddrs"}},
		{"damaged", "network = \"p2pchain\"\n\x00\xff\xfe garbage\n",
			[]string{"line 2, column 1: not valid TOML", "move the file away: the node then writes a fresh default one"}},
		{"out of range", "difficulty = 99\n", []string{"line 1: difficulty 99: must be 0 to 64", "want a whole number of bits"}},
		{"bad subject", "subject = \"a b\"\n", []string{"line 1: subject \"a b\"", "want a subject in quotes"}},
		{"bad checkpoint", "checkpoint = \"12\"\n", []string{"line 1: checkpoint \"12\": want HEIGHT:HASH"}},
		// ip, api and peers were used as they were, and failed later
		// without the file, the line or the key.
		{"bad ip", "ip = \"999.1.1.1\"\n", []string{"line 1: ip \"999.1.1.1\"", "want an IP address in quotes"}},
		{"bad api", "api = \"nonsense\"\n", []string{"line 1: api \"nonsense\"", "want HOST:PORT in quotes"}},
		{"bad peer", "peers = [\"foo\"]\n", []string{"line 1: peers: peer address \"foo\" is not a multiaddr", "want a list of multiaddrs"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeConfigFile(t, tt.text)
			_, _, err := readConfig(dir)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range append([]string{dir.File(datadir.ConfigFile)}, tt.want...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "nodeConfig") || strings.Contains(err.Error(), "strict mode") {
				t.Errorf("error %q speaks of Go, not of the file", err)
			}
		})
	}
}

// TestConfigSources: the source of every setting is named, and an empty or
// missing file says so.
func TestConfigSources(t *testing.T) {
	dir := writeConfigFile(t, "# a comment\n\ndifficulty = 8\n")
	cfg, f, err := readConfig(dir)
	if err != nil || cfg.Difficulty != 8 || f.lines["difficulty"] != 3 || f.missing || f.empty {
		t.Fatalf("readConfig: %+v %+v %v", cfg, f, err)
	}
	env := map[string]string{"P2PCHAIN_NETWORK": "lab"}
	getenv := func(k string) string { return env[k] }
	set := map[string]bool{"l": true}
	for key, want := range map[string]string{
		"difficulty": f.path + " line 3",
		"network":    "$P2PCHAIN_NETWORK",
		"port":       "flag -l",
		"subject":    "the default: " + f.path + " does not set subject",
	} {
		if got := source(key, f, set, getenv); got != want {
			t.Errorf("source(%s) = %q, want %q", key, got, want)
		}
	}
	empty := writeConfigFile(t, "\n# nothing set\n")
	_, f, _ = readConfig(empty)
	if got := source("difficulty", f, nil, getenv); !strings.Contains(got, "is empty") {
		t.Errorf("empty file: source %q", got)
	}
	os.Remove(empty.File(datadir.ConfigFile))
	_, f, _ = readConfig(empty)
	if got := source("difficulty", f, nil, getenv); !f.missing || !strings.Contains(got, "there is no") {
		t.Errorf("missing file: source %q", got)
	}
	if _, err := os.Stat(empty.File(datadir.ConfigFile)); !os.IsNotExist(err) {
		t.Error("readConfig wrote a config file")
	}
}

// TestEnvErrors: a bad environment variable is named with its value.
func TestEnvErrors(t *testing.T) {
	for k, v := range map[string]string{"P2PCHAIN_PORT": "x", "P2PCHAIN_MDNS": "maybe", "P2PCHAIN_DIFFICULTY": "99", "P2PCHAIN_SUBJECT": "a b",
		"P2PCHAIN_IP": "999.1.1.1", "P2PCHAIN_API": "nonsense", "P2PCHAIN_PEERS": "foo"} {
		c := defaultNodeConfig()
		err := applyEnv(&c, func(n string) string {
			if n == k {
				return v
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), k+"=") {
			t.Errorf("%s=%s: error %v, want one naming the variable", k, v, err)
		}
	}
}

// TestSettingsCoverConfig: every config key has a setting (flag, variable),
// every setting a config key and a flag of the node command.
func TestSettingsCoverConfig(t *testing.T) {
	cfg := defaultNodeConfig()
	f := nodeFlags{set: map[string]bool{}}
	fs := nodeFlagSet(&cfg, &f, io.Discard)
	for _, s := range settings {
		_ = cfg.field(s.key) // panics for a key nodeConfig lacks
		if fs.Lookup(s.flag) == nil {
			t.Errorf("setting %s: no node flag -%s", s.key, s.flag)
		}
		if !strings.HasPrefix(s.env, "P2PCHAIN_") || s.want == "" {
			t.Errorf("setting %s: env %q, want %q", s.key, s.env, s.want)
		}
	}
	if n := len(settings); n != 12 || len(configKeys()) != n {
		t.Errorf("%d settings", n)
	}
	// Every flag that sets a config key reaches the config (-checkpoint did not).
	flags, nf, err := parseNodeFlags([]string{"-checkpoint", "5:" + strings.Repeat("ab", 32), "-api", "off", "-log-level", "warn"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	got := nf.merge(defaultNodeConfig(), flags)
	if got.Checkpoint != "5:"+strings.Repeat("ab", 32) || got.API != "off" || got.LogLevel != "warn" {
		t.Errorf("merged: %+v", got)
	}
}

// TestReadmeFlagTable: the README's table of node flags lists exactly the
// node command's flags.
func TestReadmeFlagTable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	table := docTable(t, string(readme), "| flag | meaning |")
	documented := map[string]bool{}
	for _, row := range table {
		for _, m := range regexp.MustCompile("`(-[a-z-]+)[^`]*`").FindAllStringSubmatch(row[0], -1) {
			documented[strings.TrimPrefix(m[1], "-")] = true
		}
	}
	cfg := defaultNodeConfig()
	f := nodeFlags{set: map[string]bool{}}
	fs := nodeFlagSet(&cfg, &f, io.Discard)
	fs.VisitAll(func(fl *flag.Flag) {
		if !documented[fl.Name] {
			t.Errorf("node flag -%s is missing from README.md's flag table", fl.Name)
		}
		delete(documented, fl.Name)
	})
	for name := range documented {
		t.Errorf("README.md's flag table lists -%s, which the node command does not have", name)
	}
}

// TestOperationsSettingsTable: docs/OPERATIONS.md's settings table lists
// every config key with its variable and flag, and nothing else.
func TestOperationsSettingsTable(t *testing.T) {
	doc, err := os.ReadFile("../../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := docTable(t, string(doc), "| config key | environment | flag | default |")
	seen := map[string]bool{}
	for _, row := range rows {
		key := strings.Trim(row[0], "` ")
		s := settingOf(key)
		if s.env == "" {
			t.Errorf("OPERATIONS.md lists config key %q, which does not exist", key)
			continue
		}
		seen[key] = true
		if !strings.Contains(row[1], "`"+s.env+"`") {
			t.Errorf("OPERATIONS.md: %s: environment %q, want %s", key, row[1], s.env)
		}
		if !strings.Contains(row[2], "`-"+s.flag+"`") {
			t.Errorf("OPERATIONS.md: %s: flag %q, want -%s", key, row[2], s.flag)
		}
		defaults := defaultNodeConfig()
		def := defaults.field(key)
		if d := fmt.Sprint(def.Interface()); d != "" && d != "[]" && !strings.Contains(row[3], d) {
			t.Errorf("OPERATIONS.md: %s: default %q does not say %s", key, row[3], d)
		}
	}
	for _, k := range configKeys() {
		if !seen[k] {
			t.Errorf("OPERATIONS.md's settings table lacks config key %s", k)
		}
	}
}

// docTable returns the rows of the Markdown table that starts with header:
// its cells, after the separator row, up to the first line not a row.
func docTable(t *testing.T, doc, header string) [][]string {
	t.Helper()
	i := strings.Index(doc, header+"\n")
	if i < 0 {
		t.Fatalf("no table %q", header)
	}
	lines := strings.Split(doc[i:], "\n")[2:]
	var rows [][]string
	for _, l := range lines {
		if !strings.HasPrefix(l, "|") {
			break
		}
		var cells []string
		for _, c := range strings.Split(strings.Trim(l, "|"), " | ") {
			cells = append(cells, strings.TrimSpace(c))
		}
		rows = append(rows, cells)
	}
	if len(rows) == 0 {
		t.Fatalf("table %q is empty", header)
	}
	return rows
}

// TestAPIPortFallback: the default port moves to the next free one, then to
// any, and says so; another port must be free.
func TestAPIPortFallback(t *testing.T) {
	// Three free ports in a row, found by trying.
	var first int
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for p := 20000 + os.Getpid()%20000; p < 60000; p += 3 {
		ok := true
		for i := range 3 {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+i))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			first = p
			break
		}
	}
	if first == 0 {
		t.Skip("no three free ports in a row")
	}
	taken, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", first))
	if err != nil {
		t.Skip(err)
	}
	held = append(held, taken)
	ln, note, err := listenFrom("127.0.0.1", first, first+2)
	if err != nil {
		t.Fatal(err)
	}
	held = append(held, ln)
	if p := ln.Addr().(*net.TCPAddr).Port; p != first+1 || note != fmt.Sprintf("API port %d in use, using %d", first, first+1) {
		t.Errorf("with %d taken: port %d, note %q", first, p, note)
	}
	// Two taken: the note names both.
	ln1, note, err := listenFrom("127.0.0.1", first, first+2)
	if err != nil {
		t.Fatal(err)
	}
	if p := ln1.Addr().(*net.TCPAddr).Port; p != first+2 || note != fmt.Sprintf("API ports %d to %d in use, using %d", first, first+1, first+2) {
		t.Errorf("with %d and %d taken: port %d, note %q", first, first+1, p, note)
	}
	ln1.Close()
	third, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", first+2))
	if err != nil {
		t.Skip(err)
	}
	held = append(held, third)
	ln2, note, err := listenFrom("127.0.0.1", first, first+2)
	if err != nil {
		t.Fatal(err)
	}
	held = append(held, ln2)
	if p := ln2.Addr().(*net.TCPAddr).Port; p >= first && p <= first+2 ||
		note != fmt.Sprintf("API ports %d to %d in use, using %d", first, first+2, p) {
		t.Errorf("with all taken: port %d, note %q", p, note)
	}
	// A port the user chose is not moved.
	if _, _, err := listenAPI(taken.Addr().String()); err == nil || !strings.Contains(err.Error(), "is in use") {
		t.Errorf("explicit port in use: %v", err)
	}
}

// fakeConsole records what the sync display does.
type fakeConsole struct {
	plainConsole
	prompts []string
}

func (c *fakeConsole) SetPrompt(p string) { c.prompts = append(c.prompts, p) }

// TestSyncView: a running sync is shown in the prompt with done / total, rate
// and time left; its end is one line; block lines wait meanwhile, and a
// sync that added at most maxBlockLines blocks prints them before its end
// line, even one too short for the view to have seen it running.
func TestSyncView(t *testing.T) {
	var out bytes.Buffer
	con := &fakeConsole{plainConsole: plainConsole{out: &out}}
	id, _ := p2p.PeerID(p2p.KeyFromSeed(3))
	started := time.Now()
	state := p2p.SyncState{}
	last := p2p.SyncState{}
	v := &syncView{con: con, out: &out, state: func() p2p.SyncState { return state }, last: func() p2p.SyncState { return last }}
	blocks := testBlocks(t, 7)
	var cur p2p.SyncState
	v.step(&cur)
	if len(con.prompts) != 0 || out.Len() != 0 || v.hold(blocks[:1]) {
		t.Fatalf("idle: prompts %q, out %q", con.prompts, out.String())
	}
	for _, done := range []uint64{512, 1024, 12288} {
		state = p2p.SyncState{Syncing: true, Peer: id, Done: done, Total: 36708, Rate: 2400, Left: 10 * time.Second, Height: done, Target: 36708, Started: started}
		v.step(&cur)
	}
	if !v.hold(blocks[:6]) {
		t.Error("blocks printed while syncing")
	}
	if got := con.prompts[len(con.prompts)-1]; got != "sync 12288/36708 blocks 33%, 2400 blocks/s, 10s left " {
		t.Errorf("prompt %q", got)
	}
	if out.Len() != 0 {
		t.Errorf("lines while syncing: %q", out.String())
	}
	last = p2p.SyncState{Peer: id, Done: 36708, Total: 36708, Rate: 2400, Height: 36708, Target: 36708, Started: started, Result: "done"}
	state = p2p.SyncState{}
	v.step(&cur)
	v.step(&cur)
	if got := con.prompts[len(con.prompts)-1]; got != "" {
		t.Errorf("prompt after the sync %q, want the plain one", got)
	}
	want := fmt.Sprintf("synced 36708 blocks from %s in 15s (2400 blocks/s), now at #36708\n", id)
	if out.String() != want {
		t.Errorf("end line %q, want %q", out.String(), want)
	}
	if v.hold(blocks[6:]) {
		t.Error("blocks held after the sync")
	}

	// A sync of two blocks that ends between two steps: its blocks were
	// held while it ran, and print before its end line. The view goes on
	// with the cur it kept (as run does): the end line is this sync's, not
	// the one seen before again.
	out.Reset()
	state = p2p.SyncState{Syncing: true, Peer: id, Started: started.Add(time.Minute)}
	if !v.hold(blocks[1:3]) {
		t.Fatal("blocks of a short sync printed while it ran")
	}
	last = p2p.SyncState{Peer: id, Done: 2, Total: 2, Height: 2, Target: 2, Started: started.Add(time.Minute), Result: "done"}
	state = p2p.SyncState{}
	v.step(&cur)
	want = fmt.Sprintf("block %s\nblock %s\nsynced 2 blocks from %s, now at #2\n", blockLine(blocks[1]), blockLine(blocks[2]), id)
	if got := syncSummary(p2p.SyncState{Peer: id, Done: 1, Height: 3, Result: "done"}); got != fmt.Sprintf("synced 1 block from %s, now at #3", id) {
		t.Errorf("the end line of a one-block sync: %q", got)
	}
	if out.String() != want {
		t.Errorf("a short sync printed %q, want %q", out.String(), want)
	}
}

// testBlocks returns n blocks at heights 0 to n-1, each but the first with
// a reading: what the console prints of them, not a valid chain.
func testBlocks(t *testing.T, n int) []*chain.Block {
	t.Helper()
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	bs := []*chain.Block{{}}
	for i := 1; i < n; i++ {
		r, err := chain.NewReading(p2p.KeyFromSeed(1), "alice", 60+i, at)
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, &chain.Block{Header: chain.Header{Height: uint64(i), Time: at.UnixMilli() + int64(i)}, Readings: []chain.Reading{r}})
	}
	return bs
}

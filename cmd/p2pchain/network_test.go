package main

// Authority networks on the command line (issue 9): network new and show,
// --network-file on init, verify and node, and the errors of a bad file.

import (
	"crypto/ed25519"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/bft"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/datadir"
	"github.com/p2pchain/p2pchain/internal/netfile"
	"github.com/p2pchain/p2pchain/internal/p2p"
)

func seedID(t *testing.T, seed int64) string {
	t.Helper()
	id, err := p2p.PeerID(p2p.KeyFromSeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

func TestNetworkNew(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	a, b := seedID(t, 1), seedID(t, 2)
	r := runCLI(t, home, home, "network", "new", "clinic", "--authority", a, "--authority", b, "--block-interval", "2s")
	wantOK(t, r, `p2pchain node --network-file FILE`)
	nw, err := netfile.Parse([]byte(r.stdout))
	if err != nil {
		t.Fatalf("network new printed a file that does not parse: %v\n%s", err, r.stdout)
	}
	if nw.Params.Name != "clinic" || nw.Set.Len() != 2 || nw.Interval != 2*time.Second || nw.File.Authorities[1] != b {
		t.Errorf("network %+v", nw.File)
	}

	file := filepath.Join(home, "clinic.toml")
	wantOK(t, runCLI(t, home, home, "network", "new", "clinic", "--authority", a+","+b, "-o", file), `wrote .*clinic\.toml: network "clinic", 2 authorities`)
	wantFail(t, runCLI(t, home, home, "network", "new", "clinic", "--authority", a, "-o", file), "exists: give --force")
	wantOK(t, runCLI(t, home, home, "network", "new", "clinic", "--authority", a, "-o", file, "--force"))
	shown := nwLoad(t, file)
	r = runCLI(t, home, home, "network", "show", file)
	wantOK(t, r, `(?m)^network +"clinic"$`, `(?m)^consensus +authority$`, `(?m)^genesis +`+shown.Params.Genesis().Hash().String(),
		`(?m)^  #0 +`+a+`$`, `(?m)^block interval +5s$`)

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"network", "new", "clinic"}, "--authority PEERID"},
		{[]string{"network", "new", "clinic", "--authority", "nope"}, `authorities[0]: "nope" is not a peer ID`},
		{[]string{"network", "new", "clinic", "--authority", a + "," + a}, "authorities[1]"},
		{[]string{"network", "new", "clinic", "--authority", a, "--block-interval", "soon"}, "block_interval"},
		{[]string{"network", "show", file, "--authority", a}, "--authority is a flag of network new"},
		{[]string{"network", "frob"}, `unknown subcommand "frob"`},
		{[]string{"network"}, "give a subcommand"},
	} {
		r := runCLI(t, home, home, tt.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("p2pchain %s: want exit 2 saying %q:\n%s", strings.Join(tt.args, " "), tt.want, r)
		}
	}
}

func nwLoad(t *testing.T, path string) *netfile.Network {
	t.Helper()
	nw, err := netfile.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return nw
}

// sealedChain makes n blocks of network nw on its genesis, each with one
// reading, sealed by key as authority 0 (a network of one).
func sealedChain(t *testing.T, nw *netfile.Network, key ed25519.PrivateKey, n int) []*chain.Block {
	t.Helper()
	genesis := nw.Params.Genesis()
	network := genesis.Hash()
	parent := genesis
	var blocks []*chain.Block
	for range n {
		at := time.UnixMilli(parent.Header.Time).Add(time.Second)
		r, err := chain.NewReading(key, "alice", 70+len(blocks), at)
		if err != nil {
			t.Fatal(err)
		}
		b := &chain.Block{Readings: []chain.Reading{r}}
		b.Header = chain.Header{Version: chain.HeaderVersion, Height: parent.Header.Height + 1, Parent: parent.Hash(),
			Time: at.UnixMilli(), Count: 1}
		b.Header.Root = b.ReadingsRoot()
		v := bft.Vote{Type: bft.KindPrecommit, Height: b.Header.Height, Hash: b.Hash()}
		v.Sign(network, key)
		c := bft.Commit{Height: v.Height, Hash: v.Hash, Sigs: []bft.CommitSig{{Index: 0, Sig: v.Sig}}}
		b.Seal = c.AppendBinary(nil)
		blocks = append(blocks, b)
		parent = b
	}
	return blocks
}

// TestNetworkFileSetUp: the three steps of OPERATIONS.md (init to learn the
// peer ID, network new with it, a node on the file), with verify on the
// chain of that network: an empty one, a sealed one, a bad seal.
func TestNetworkFileSetUp(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	port := strconv.Itoa(freePort(t))
	r := runCLI(t, home, home, "init", "-l", port)
	wantOK(t, r)
	id := strings.TrimSpace(runCLI(t, home, home, "id", "-l", port).stdout)
	file := filepath.Join(home, "ward.toml")
	wantOK(t, runCLI(t, home, home, "network", "new", "ward", "--authority", id, "--authority", seedID(t, 2), "-o", file))
	nw := nwLoad(t, file)
	path := filepath.Join(home, "node-"+port)

	// init again with the file: nothing changes, and it says the node is
	// an authority, and that config.toml does not name the file.
	r = runCLI(t, home, home, "init", "-l", port, "--network-file", file)
	wantOK(t, r, `consensus authority, 2 authorities, this node is authority #0`, `does not name`)
	// A follower's directory made with the file records it.
	fpath := filepath.Join(home, "follower")
	wantOK(t, runCLI(t, home, home, "init", "--data", fpath, "--network-file", "ward.toml"), `this node is a follower`)
	cfgText, err := os.ReadFile(filepath.Join(fpath, datadir.ConfigFile))
	if err != nil || !strings.Contains(string(cfgText), `network_file = "`+file+`"`) {
		t.Errorf("the follower's config does not name %s (%v):\n%s", file, err, cfgText)
	}

	// verify on the empty chain of the network.
	writeDataDir(t, path, nw.Params, nil)
	r = runCLI(t, home, home, "verify", "-l", port, "--network-file", file)
	wantOK(t, r, `chain OK: 0 blocks, 0 readings, network "ward", consensus authority`, `checked 0 commits`)
	// Without the file the chain is of another network, and says so.
	wantFail(t, runCLI(t, home, home, "verify", "-l", port), "another network")

	// A chain sealed by a network of one: every seal is checked.
	key, err := datadir.ReadKey(path)
	if err != nil {
		t.Fatal(err)
	}
	solo := filepath.Join(home, "solo.toml")
	wantOK(t, runCLI(t, home, home, "network", "new", "solo", "--authority", id, "-o", solo))
	snw := nwLoad(t, solo)
	blocks := sealedChain(t, snw, key, 3)
	good := filepath.Join(home, "good")
	writeDataDir(t, good, snw.Params, blocks)
	wantOK(t, runCLI(t, home, home, "verify", "--data", good, "--network-file", solo), `chain OK: 3 blocks`, `checked 3 commits`)
	// The config key network_file, relative to the data directory.
	if err := os.WriteFile(filepath.Join(good, "net.toml"), snw.File.Encode(), 0o644); err != nil {
		t.Fatal(err)
	}
	setConfigKey(t, good, "network_file", `"net.toml"`)
	wantOK(t, runCLI(t, home, home, "verify", "--data", good), `checked 3 commits`)
	// export writes the chain with its seals; import checks every seal
	// against the network file.
	export := filepath.Join(home, "solo.jsonl")
	r = runCLI(t, home, home, "export", "--data", good, "--out", export)
	wantOK(t, r, `exported 3 blocks .* consensus authority`)
	wantOK(t, runCLI(t, home, home, "import", "--data", filepath.Join(home, "imported"), "--network-file", solo, export), "3 blocks")
	wantOK(t, runCLI(t, home, home, "verify", "--data", filepath.Join(home, "imported"), "--network-file", solo), `checked 3 commits`)
	wantFail(t, runCLI(t, home, home, "import", "--data", filepath.Join(home, "imported2"), "--network-file", file, export),
		"is not the genesis block", "give the --network-file")
	// A seal signed by another key: the fault names the height.
	bad := filepath.Join(home, "bad")
	blocks2 := sealedChain(t, snw, key, 3)
	forged := sealedChain(t, snw, p2p.KeyFromSeed(5), 3)
	blocks2[2].Seal = forged[2].Seal // signs another hash
	writeDataDir(t, bad, snw.Params, blocks2)
	wantFail(t, runCLI(t, home, home, "verify", "--data", bad, "--network-file", solo), "FAULT at height 3", "bad seal")
}

// setConfigKey sets a key of a data directory's config file.
func setConfigKey(t *testing.T, dir, key, value string) {
	t.Helper()
	p := filepath.Join(dir, datadir.ConfigFile)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, key+" =") {
			l = key + " = " + value
		}
		out = append(out, l)
	}
	if err := os.WriteFile(p, []byte(strings.Join(out, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestNetworkFileErrors: --network-file with -network or -difficulty is
// refused, and a bad file's error names the file and the key.
func TestNetworkFileErrors(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	file := filepath.Join(home, "ward.toml")
	wantOK(t, runCLI(t, home, home, "network", "new", "ward", "--authority", seedID(t, 1), "-o", file))
	for _, args := range [][]string{
		{"node", "--network-file", file, "-difficulty", "4"},
		{"node", "--network-file", file, "-network", "other"},
		{"init", "--network-file", file, "--difficulty", "4"},
		{"verify", "--network-file", file, "--difficulty", "4"},
		{"import", "--network-file", file, "--network", "x", "chain.jsonl"},
	} {
		r := runCLI(t, home, home, args...)
		if r.code != 2 || !strings.Contains(r.stderr, "--network-file and -") || !strings.Contains(r.stderr, "conflict") {
			t.Errorf("p2pchain %s: want exit 2 saying the flags conflict:\n%s", strings.Join(args, " "), r)
		}
	}
	// The same from the environment.
	cmd := installed("node", "--network-file", file, "--data", filepath.Join(home, "n"), "-api", "off")
	cmd.Env = append(cmd.Env, nodeEnv(home)...)
	cmd.Env = append(cmd.Env, "P2PCHAIN_DIFFICULTY=4")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "conflict") || !strings.Contains(string(out), "$P2PCHAIN_DIFFICULTY") {
		t.Errorf("node --network-file with P2PCHAIN_DIFFICULTY: %v\n%s", err, out)
	}

	text := string(nwLoad(t, file).File.Encode())
	for _, tt := range []struct{ name, file, want string }{
		{"unknown key", strings.Replace(text, "max_readings", "colour = 1\nmax_readings", 1), `unknown key "colour"`},
		{"bad interval", strings.Replace(text, `block_interval = "5s"`, `block_interval = "often"`, 1), "block_interval"},
		{"consensus", strings.Replace(text, `consensus = "authority"`, `consensus = "pow"`, 1), "consensus"},
	} {
		bad := filepath.Join(home, strings.ReplaceAll(tt.name, " ", "-")+".toml")
		if err := os.WriteFile(bad, []byte(tt.file), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"network", "show", bad}, {"init", "--data", filepath.Join(home, "d"), "--network-file", bad}} {
			r := runCLI(t, home, home, args...)
			if r.code != 1 || !strings.Contains(r.stderr, bad) || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("%s: p2pchain %s: want exit 1 naming %s and %q:\n%s", tt.name, strings.Join(args, " "), bad, tt.want, r)
			}
		}
	}
}

// TestNodeNetworkFileBanner: a node on a network file says so in its
// banner, with its place among the authorities.
func TestNodeNetworkFileBanner(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real node process")
	}
	t.Parallel()
	home := t.TempDir()
	file := filepath.Join(home, "ward.toml")
	wantOK(t, runCLI(t, home, home, "network", "new", "ward", "--authority", seedID(t, 2), "--authority", seedID(t, 1), "-o", file))
	n := startEnv(t, "authority node", nodeEnv(home), "node", "-l", "0", "-seed", "1", "-api", "off", "--network-file", file)
	expectFrom(t, n, 0, `^network "ward", genesis \w+, consensus authority, 2 authorities, this node is authority #1$`)
}

// Two real node processes are the authorities of a network (a third is a
// follower): a reading typed at the follower becomes a block on all three,
// final at once; status says so, and an operator's approval of a new
// authority is taken by the running node.
func TestAuthorityProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real node processes")
	}
	home := t.TempDir()
	file := filepath.Join(home, "ward.toml")
	wantOK(t, runCLI(t, home, home, "network", "new", "ward", "--authority", seedID(t, 1), "--authority", seedID(t, 2), "-o", file))
	a := startEnv(t, "authority 1", nodeEnv(home), "node", "-l", "0", "-seed", "1", "--data", filepath.Join(home, "a"), "--network-file", file)
	// The banner's command for another node names the network file too.
	addr := a.expect(`^  p2pchain node -l \d+ -d (/ip4/127\.0\.0\.1/tcp/\d+/p2p/\w+) --network-file ` + regexp.QuoteMeta(file) + `$`)[1]
	b := startEnv(t, "authority 2", nodeEnv(home), "node", "-l", "0", "-seed", "2", "--data", filepath.Join(home, "b"), "--network-file", file, "-d", addr)
	b.expect(`^connected to`)
	f := startEnv(t, "follower", nodeEnv(home), "node", "-l", "0", "--data", filepath.Join(home, "f"), "--network-file", file, "-d", addr)
	f.expect(`consensus authority, 2 authorities, this node is a follower`)
	f.expect(`^connected to`)
	f.waitMesh(1)
	b.waitMesh(1)

	f.type_("alice 72")
	f.expect(`^reading \w+: alice 72 bpm, pending`)
	for _, n := range []*proc{a, b, f} {
		n.expect(`^block #\d+ \w+ [\d:]+: alice 72 bpm$`)
	}
	var st struct {
		Consensus string `json:"consensus"`
		Height    uint64 `json:"height"`
		Final     uint64 `json:"finalized_height"`
	}
	out := runCLI(t, home, home, "status", "--json", "--data", filepath.Join(home, "f"))
	wantOK(t, out)
	if err := json.Unmarshal([]byte(out.stdout), &st); err != nil || st.Consensus != "authority" || st.Final != st.Height || st.Height == 0 {
		t.Fatalf("follower's status: %+v %v\n%s", st, err, out.stdout)
	}
	wantOK(t, runCLI(t, home, home, "readings", "alice", "--data", filepath.Join(home, "f")), `block \d+ \(\d+ conf\., final\)`)
	wantOK(t, runCLI(t, home, home, "authority", "add", seedID(t, 3), "--data", filepath.Join(home, "a")), "approved")
	// At the prompt too; a change the schedule refuses says why.
	b.type_("approve remove " + seedID(t, 2))
	b.expect(`^approved: remove ` + seedID(t, 2))
	b.type_("approve add " + seedID(t, 1))
	b.expect(`^approve: change refused: .*already an authority`)
	wantFail(t, runCLI(t, home, home, "authority", "add", "not-a-peer", "--data", filepath.Join(home, "a")), "peer")
}

// TestAuthoritySetupAsDocumented runs the steps of OPERATIONS.md "Setting
// one up" as printed, on a machine that already ran the README's demo (a
// proof-of-work chain in the default directory of -l 10000): the steps
// must not land on that directory, whose chain is of another network.
func TestAuthoritySetupAsDocumented(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real node process")
	}
	t.Parallel()
	doc, err := os.ReadFile("../../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	start, end := strings.Index(text, "### Setting one up"), strings.Index(text, "### The network file")
	if start < 0 || end < start {
		t.Fatal("OPERATIONS.md has no section \"Setting one up\" before \"The network file\"")
	}
	section := filepath.Join(t.TempDir(), "setup.md")
	if err := os.WriteFile(section, []byte(text[start:end]), 0o600); err != nil {
		t.Fatal(err)
	}
	home, wd := t.TempDir(), t.TempDir()
	writeDataDir(t, filepath.Join(home, "node-10000"), chain.DefaultParams(), nil) // the demo's chain
	id := ""
	ran := map[string]bool{}
	for _, line := range docCommands(t, section) {
		line = strings.NewReplacer("~/.p2pchain", home, "12D3KooW...", id).Replace(line)
		args := strings.Fields(line)[1:]
		ran[args[0]] = true
		if args[0] == "node" { // runs until stopped: on any free port, without the API
			for i, a := range args {
				if a == "-l" && i+1 < len(args) {
					args[i+1] = "0"
				}
			}
			n := &proc{t: t, name: "authority", cmd: installed(append(args, "-api", "off")...), exit: make(chan error, 1)}
			n.cmd.Env, n.cmd.Dir = append(n.cmd.Env, nodeEnv(home)...), wd // where the file is
			startProc(t, n)
			n.expect(`^network "clinic", genesis \w+, consensus authority, 1 authority, this node is authority #0$`)
			n.stop()
			continue
		}
		r := runCLI(t, home, wd, args...)
		if r.code != 0 {
			t.Fatalf("%s:\n%s", line, r)
		}
		if m := regexp.MustCompile(`peer ID  (12D3KooW\w+)`).FindStringSubmatch(r.stdout); args[0] == "init" && m != nil {
			id = m[1]
		}
	}
	for _, c := range []string{"init", "id", "network", "node"} {
		if !ran[c] {
			t.Errorf("the steps have no %s command", c)
		}
	}
}

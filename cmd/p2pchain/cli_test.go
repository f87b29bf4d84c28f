package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// cli runs a client command of the built binary with the given P2PCHAIN_HOME
// and returns its combined output and whether it succeeded.
func cli(t *testing.T, home string, args ...string) (string, bool) {
	t.Helper()
	cmd := installed(args...)
	cmd.Env = append(cmd.Env, "P2PCHAIN_HOME="+home, "P2PCHAIN_DATA=")
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

func mustCLI(t *testing.T, home string, args ...string) string {
	t.Helper()
	out, ok := cli(t, home, args...)
	if !ok {
		t.Fatalf("p2pchain %s failed:\n%s", strings.Join(args, " "), out)
	}
	return out
}

// TestClientCommands runs the client commands of the built binary against a
// running node that they find by themselves through its data directory.
func TestClientCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real node processes")
	}
	home := t.TempDir()
	if out, ok := cli(t, home, "status"); ok || !strings.Contains(out, "no running node found") {
		t.Fatalf("status with no node: ok=%v %q", ok, out)
	}
	initOut := mustCLI(t, home, "init", "-l", "0", "--difficulty", "8")
	id := regexp.MustCompile(`peer ID  (\w+)`).FindStringSubmatch(initOut)
	if id == nil {
		t.Fatalf("init printed no peer ID:\n%s", initOut)
	}
	if got := strings.TrimSpace(mustCLI(t, home, "id")); got != id[1] {
		t.Fatalf("id printed %q, init %q", got, id[1])
	}

	n := startEnv(t, "node", []string{"P2PCHAIN_HOME=" + home, "P2PCHAIN_DATA="}, "node")
	n.expect(`^explorer and API: http://127\.0\.0\.1:\d+/$`)
	n.expect(`^p2pchain node ` + id[1] + `$`) // init's identity is the node's

	out := mustCLI(t, home, "add", "72", "--subject", "alice")
	m := regexp.MustCompile(`^reading ([0-9a-f]{64}): alice 72 bpm, pending`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("add printed %q", out)
	}
	n.expect(`^block #1 \w+ [\d:]+: alice 72 bpm$`)

	if out := mustCLI(t, home, "status"); !regexp.MustCompile(`(?m)^height\s+1$`).MatchString(out) ||
		!strings.Contains(out, id[1]) {
		t.Errorf("status:\n%s", out)
	}
	if out := mustCLI(t, home, "blocks"); !regexp.MustCompile(`(?m)^1\s+[0-9a-f]{64}\s+\S+ \S+\s+1$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^0\s+[0-9a-f]{64}\s+genesis`).MatchString(out) {
		t.Errorf("blocks:\n%s", out)
	}
	if out := mustCLI(t, home, "blocks", "--from", "0", "--limit", "1"); strings.Count(out, "\n") != 2 {
		t.Errorf("blocks --from 0 --limit 1 printed more or less than one row:\n%s", out)
	}
	if out := mustCLI(t, home, "block", "1"); !strings.Contains(out, m[1]) || !strings.Contains(out, "yes, 1 confirmation\n") {
		t.Errorf("block 1:\n%s", out)
	}
	if out := mustCLI(t, home, "readings", "--subject", "alice"); !strings.Contains(out, "block 1 (1 conf.)") || !strings.Contains(out, m[1]) {
		t.Errorf("readings:\n%s", out)
	}
	if out := mustCLI(t, home, "peers"); !strings.Contains(out, "no peers") {
		t.Errorf("peers:\n%s", out)
	}

	// --json prints the API's JSON.
	var st struct {
		Height uint64 `json:"height"`
		PeerID string `json:"peer_id"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, home, "status", "--json")), &st); err != nil || st.Height != 1 || st.PeerID != id[1] {
		t.Errorf("status --json: %+v %v", st, err)
	}

	// The subject ".." is valid: its path is not read as the parent's.
	out = mustCLI(t, home, "add", "73", "--subject", "..")
	dots := regexp.MustCompile(`^reading ([0-9a-f]{64}): \.\. 73 bpm, pending`).FindStringSubmatch(out)
	if dots == nil {
		t.Fatalf("add --subject .. printed %q", out)
	}
	if out := mustCLI(t, home, "readings", "--subject", ".."); !strings.Contains(out, dots[1]) {
		t.Errorf("readings --subject ..:\n%s", out)
	}

	// Errors say what is wrong and fail.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"add", "500"}, "not a plausible heart rate"},
		{[]string{"add"}, "want a heart rate"},
		{[]string{"block", "999"}, "999"},
		{[]string{"block", "zz"}, "zz"},
		{[]string{"readings"}, "--subject is required"},
		{[]string{"connect", "/ip4/127.0.0.1/tcp/1"}, "/p2p/"},
		{[]string{"status", "--api", "http://127.0.0.1:1"}, "cannot reach the node"},
		{[]string{"status", "--data", filepath.Join(home, "nowhere")}, "no node is running"},
	} {
		out, ok := cli(t, home, tc.args...)
		if ok || !strings.Contains(out, tc.want) {
			t.Errorf("p2pchain %s: ok=%v output %q, want failure mentioning %q", strings.Join(tc.args, " "), ok, out, tc.want)
		}
	}

	// With two nodes running, a client must be told which one.
	n2 := startEnv(t, "node2", []string{"P2PCHAIN_HOME=" + home, "P2PCHAIN_DATA="}, "node", "-l", "0", "--data", filepath.Join(home, "second"), "--difficulty", "8")
	n2.expect(`^explorer and API:`)
	if out, ok := cli(t, home, "status"); ok || !strings.Contains(out, "2 nodes are running") || !strings.Contains(out, filepath.Join(home, "second")) {
		t.Errorf("status with two nodes: ok=%v %q", ok, out)
	}
	if out := mustCLI(t, home, "status", "--data", filepath.Join(home, "second")); !regexp.MustCompile(`(?m)^height\s+0$`).MatchString(out) {
		t.Errorf("status --data second:\n%s", out)
	}
	n2.stop()
	n.stop()
	if _, err := os.Stat(filepath.Join(home, "default", "api")); !os.IsNotExist(err) {
		t.Errorf("the api file outlived the node: %v", err)
	}
}

// TestAPIOnAllInterfaces: with -api :PORT the banner prints a URL that
// works (IPv4 loopback, not [::1]) and says that writes need the token and
// where it is; a write without it is refused, the client commands send it.
func TestAPIOnAllInterfaces(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real node processes")
	}
	t.Parallel()
	home := t.TempDir()
	data := filepath.Join(home, "node")
	n := startEnv(t, "node", nodeEnv(home), "node", "--data", data, "-l", "0", "-difficulty", "4", "-api", ":0")
	m := n.expect(`^explorer and API: (http://127\.0\.0\.1:\d+)/ \(listening on all interfaces: writes need the token in (\S+), sent as Authorization: Bearer TOKEN; the p2pchain commands send it; the read token in (\S+) opens the explorer's live view from other machines, and no writes\)$`)
	if want := filepath.Join(data, "api.token"); m[2] != want {
		t.Errorf("token file %s, want %s", m[2], want)
	}
	if want := filepath.Join(data, "api.read-token"); m[3] != want {
		t.Errorf("read token file %s, want %s", m[3], want)
	}
	if read, err := os.ReadFile(m[3]); err != nil || len(strings.TrimSpace(string(read))) != 64 {
		t.Errorf("the read token file: %q %v", read, err)
	}
	resp, err := http.Get(m[1] + "/api/v1/status")
	if err != nil {
		t.Fatalf("the printed URL does not work: %v", err)
	}
	resp.Body.Close()
	resp, err = http.Post(m[1]+"/api/v1/readings", "application/json", strings.NewReader(`{"subject":"alice","bpm":72}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a write without the token: %s, want 401", resp.Status)
	}
	if _, err := os.Stat(m[2]); err != nil {
		t.Errorf("the token file: %v", err)
	}
	if out, ok := cli(t, home, "add", "72", "--data", data); !ok {
		t.Errorf("add through the client command: %s", out)
	}
	// From a machine without the data directory: --api alone is refused,
	// saying how to give the token; a copy of api.token in a file, or in
	// $P2PCHAIN_TOKEN, is sent.
	if out, ok := cli(t, home, "add", "73", "--api", m[1]); ok || !strings.Contains(out, "--token-file") {
		t.Errorf("add with --api and no token: ok=%v %s", ok, out)
	}
	token, err := os.ReadFile(m[2])
	if err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(t.TempDir(), "clinic.token")
	if err := os.WriteFile(copied, token, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, ok := cli(t, home, "add", "74", "--api", m[1], "--token-file", copied); !ok {
		t.Errorf("add with --token-file: %s", out)
	}
	cmd := installed("add", "75", "--api", m[1])
	cmd.Env = append(cmd.Env, "P2PCHAIN_HOME="+home, "P2PCHAIN_DATA=", envToken+"="+string(token))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("add with $%s: %v %s", envToken, err, out)
	}
	if out, ok := cli(t, home, "add", "76", "--api", m[1], "--token-file", filepath.Join(home, "none")); ok || !strings.Contains(out, "--token-file") {
		t.Errorf("add with a missing token file: ok=%v %s", ok, out)
	}
	// $P2PCHAIN_TOKEN, exported for another node, does not replace the
	// token of the data directory --data names.
	cmd = installed("add", "77", "--data", data)
	cmd.Env = append(cmd.Env, "P2PCHAIN_HOME="+home, "P2PCHAIN_DATA=", envToken+"=a-token-of-another-node")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("add --data with $%s set for another node: %v %s", envToken, err, out)
	}
	n.stop()
}

// TestBannerNextPortIsFree: the banner's command for another node names a
// port it can listen on: not this node's API port (-l 21000 -api
// 127.0.0.1:21001 printed "node -l 21001", which failed as printed), and
// not one another program holds.
func TestBannerNextPortIsFree(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real node processes")
	}
	t.Parallel()
	// Three ports in a row, free now: the node's, its API's, and one held.
	var port int
	var held net.Listener
	for try := 0; ; try++ {
		port = freePort(t)
		l1, err1 := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+1))
		l2, err2 := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+2))
		if err1 == nil && err2 == nil {
			_ = l1.Close()
			held = l2
			break
		}
		for _, l := range []net.Listener{l1, l2} {
			if l != nil {
				_ = l.Close()
			}
		}
		if try > 50 {
			t.Skip("found no three free ports in a row")
		}
	}
	defer held.Close()
	home := t.TempDir()
	n := startEnv(t, "node", nodeEnv(home), "node", "--data", filepath.Join(home, "a"), "-l", fmt.Sprint(port),
		"-api", fmt.Sprintf("127.0.0.1:%d", port+1), "-difficulty", "4")
	m := n.expect(`^  p2pchain node -l (\d+) -d `)
	if got := m[1]; got == fmt.Sprint(port+1) || got == fmt.Sprint(port+2) {
		t.Errorf("the banner's next node listens on %s: the API's port is %d, %d is held", got, port+1, port+2)
	}
	n.stop()
}

// TestBannerCommandNamesTheNetwork: the banner's command for another node
// carries the network's name and difficulty when they are not the
// defaults, so that, pasted as printed, it starts a node of the same
// network (without them it made another genesis, and the two refused each
// other).
func TestBannerCommandNamesTheNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real node processes")
	}
	t.Parallel()
	home := t.TempDir()
	a := startEnv(t, "node a", nodeEnv(home), "node", "--data", filepath.Join(home, "a"), "-l", "0", "-network", "ward 7", "-difficulty", "4", "-api", "off")
	m := a.expect(`^  p2pchain node -l \d+ -d (/ip4/127\.0\.0\.1/tcp/\d+/p2p/\w+) -network 'ward 7' -difficulty 4$`)
	b := startEnv(t, "node b", nodeEnv(home), "node", "--data", filepath.Join(home, "b"), "-l", "0", "-d", m[1], "-network", "ward 7", "-difficulty", "4", "-api", "off")
	b.expect(`^connected to`)
	b.stop()
	a.stop()

	// The defaults are left out: the command stays short.
	c := startEnv(t, "node c", nodeEnv(home), "node", "--data", filepath.Join(home, "c"), "-l", "0", "-api", "off")
	c.expect(`^  p2pchain node -l \d+ -d /ip4/127\.0\.0\.1/tcp/\d+/p2p/\w+$`)
	c.stop()
}

// TestBannerCommandOnRandomPort: a node started without -l (any free port,
// the default data directory) printed "node -l 0 -d ...", and -l 0 means
// that same default directory: pasted as printed, the command failed with
// "data directory in use". The command names a port, so a directory, of
// its own.
func TestBannerCommandOnRandomPort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real node processes")
	}
	t.Parallel()
	home := t.TempDir()
	a := startEnv(t, "node a", nodeEnv(home), "node", "-difficulty", "4", "-api", "off")
	m := a.expect(`^  p2pchain node (-l \d+ -d \S+ -difficulty 4)$`)
	args := append([]string{"node"}, strings.Fields(m[1])...)
	b := startEnv(t, "node b", nodeEnv(home), append(args, "-api", "off")...)
	b.expect(`^connected to`)
	b.stop()
	a.stop()
}

// TestClientNodeWithoutAPI: a client command aimed at a node that runs
// with -api off says so. It said "no node is running on DIR: start it
// with ...", and starting it failed: the directory was in use.
func TestClientNodeWithoutAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real node process")
	}
	t.Parallel()
	home := t.TempDir()
	data := filepath.Join(home, "a")
	n := startEnv(t, "node", nodeEnv(home), "node", "--data", data, "-l", "0", "-difficulty", "4", "-api", "off")
	n.expect(`^type a heart rate`)
	out, ok := cli(t, home, "status", "--data", data)
	if ok || strings.Contains(out, "no node is running") || !strings.Contains(out, "-api off") {
		t.Errorf("status of a node without its API:\n%s", out)
	}
	// init on the directory of a running node: it was told to give "this
	// node its own directory", advice for a node, not for init.
	out, ok = cli(t, home, "init", "--data", data)
	if ok || !strings.Contains(out, "is initialised already") || !strings.Contains(out, "p2pchain id --data "+data) {
		t.Errorf("init on a running node's directory:\n%s", out)
	}
	n.stop()
}

package main

import (
	"encoding/json"
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

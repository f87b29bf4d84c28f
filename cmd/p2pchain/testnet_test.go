package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTestnetCommand runs p2pchain testnet as a user would: three nodes in
// a ring, each answering on its API with two peers; SIGINT stops it at once
// with status 0 and its temporary directory gone.
func TestTestnetCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a network of nodes")
	}
	t.Parallel()
	tmp := t.TempDir()
	p := startEnv(t, "testnet", append(nodeEnv(t.TempDir()), "TMPDIR="+tmp),
		"testnet", "--nodes", "3", "--topology", "ring", "--difficulty", "0")
	p.expect(`^NODE\s+PEER ID\s+LISTEN\s+API$`)
	var ids, apis []string
	for i := 0; i < 3; i++ {
		m := p.expect(fmt.Sprintf(`^%d\s+(12D3KooW\w+)\s+/ip4/127\.0\.0\.1/tcp/\d+/p2p/(\w+)\s+(http://127\.0\.0\.1:\d+)$`, i))
		if m[1] != m[2] {
			t.Errorf("node %d: peer ID %s, address of %s", i, m[1], m[2])
		}
		ids, apis = append(ids, m[1]), append(apis, m[3])
	}
	dir := p.expect(`^3 nodes, topology ring, difficulty 0, data in (\S+) \(removed at exit\)$`)[1]
	p.expect(`Ctrl-C`)
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}

	resp, err := http.Get(apis[1] + "/api/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		PeerID     string `json:"peer_id"`
		Difficulty int    `json:"difficulty"`
		Peers      int    `json:"peers"`
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/api/v1/status: %s, %v", apis[1], resp.Status, err)
	}
	if st.PeerID != ids[1] || st.Difficulty != 0 || st.Peers != 2 {
		t.Errorf("node 1's status: %+v, want peer %s, difficulty 0, 2 peers (a ring of 3)", st, ids[1])
	}

	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exit:
		if err != nil {
			t.Fatalf("testnet exited with %v after SIGINT", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("testnet still running 5 s after SIGINT")
	}
	t.Logf("stopped in %v", time.Since(start))
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("temporary directory %s still there after exit (%v)", dir, err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left in $TMPDIR: %v", left)
	}
}

// TestTestnetForcedExitRemovesTemp: a second Ctrl-C forces the exit, and
// the temporary directory (the nodes' keys and readings) goes too; it was
// left behind in $TMPDIR.
func TestTestnetForcedExitRemovesTemp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a network of nodes")
	}
	t.Parallel()
	tmp := t.TempDir()
	p := startEnv(t, "testnet", append(nodeEnv(t.TempDir()), "TMPDIR="+tmp),
		"testnet", "--nodes", "2", "--difficulty", "0")
	p.expect(`Ctrl-C`)
	for range 2 {
		if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-p.exit:
	case <-time.After(10 * time.Second):
		t.Fatal("testnet still running 10 s after two SIGINTs")
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left in $TMPDIR: %v", left)
	}
}

// startTestnet starts p2pchain with args (beginning with "testnet") as a
// process of a home and a TMPDIR of its own, so that what it leaves behind
// is the test's to see.
func startTestnet(t *testing.T, args ...string) *proc {
	t.Helper()
	return startEnv(t, "testnet", append(nodeEnv(t.TempDir()), "TMPDIR="+t.TempDir()), args...)
}

// testnet --authorities runs an authority network: a reading submitted to
// a follower becomes final on it.
func TestTestnetAuthorities(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a network of nodes")
	}
	t.Parallel()
	p := startTestnet(t, "testnet", "--nodes", "4", "--topology", "full", "--authorities", "3")
	p.expect(`^NODE\s+PEER ID\s+LISTEN\s+API$`)
	var apis []string
	for i := 0; i < 4; i++ {
		apis = append(apis, p.expect(fmt.Sprintf(`^%d\s+12D3KooW\w+\s+\S+\s+(http://127\.0\.0\.1:\d+)$`, i))[1])
	}
	p.expect(`^4 nodes, topology full, consensus authority, 3 authorities, data in `)
	waitReadingFinal(t, apis[3])
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	<-p.exit
}

// testnet --network-file runs the network of a file whose authorities are
// nodes of --dir: identities made first (p2pchain init in dir/node-i),
// listed with network new, then the testnet started on the file.
func TestTestnetNetworkFile(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a network of nodes")
	}
	t.Parallel()
	home, dir := t.TempDir(), t.TempDir()
	var ids []string
	for i := range 3 {
		data := filepath.Join(dir, fmt.Sprintf("node-%d", i))
		wantOK(t, runCLI(t, home, home, "init", "--data", data))
		r := runCLI(t, home, home, "id", "--data", data)
		wantOK(t, r)
		ids = append(ids, strings.TrimSpace(r.stdout))
	}
	file := filepath.Join(home, "ward.toml")
	args := []string{"network", "new", "ward", "-o", file}
	for _, id := range ids {
		args = append(args, "--authority", id)
	}
	wantOK(t, runCLI(t, home, home, args...))
	p := startEnv(t, "testnet", nodeEnv(home), "testnet", "--nodes", "4", "--topology", "full", "--dir", dir, "--network-file", file)
	p.expect(`^NODE\s+PEER ID\s+LISTEN\s+API$`)
	var apis []string
	for i := 0; i < 4; i++ {
		m := p.expect(fmt.Sprintf(`^%d\s+(12D3KooW\w+)\s+\S+\s+(http://127\.0\.0\.1:\d+)$`, i))
		if i < 3 && m[1] != ids[i] {
			t.Errorf("node %d is %s, its data directory's identity is %s", i, m[1], ids[i])
		}
		apis = append(apis, m[2])
	}
	p.expect(`^4 nodes, topology full, consensus authority, 3 authorities of network file `)
	waitReadingFinal(t, apis[3])
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	<-p.exit
}

// waitReadingFinal submits a reading through api and waits until it is
// final there.
func waitReadingFinal(t *testing.T, api string) {
	t.Helper()
	id := submit(t, api, "alice", 72)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got struct {
			Final bool `json:"final"`
		}
		resp, err := http.Get(api + "/api/v1/readings/" + id)
		if err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&got)
			resp.Body.Close()
		}
		if got.Final {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the reading never became final")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A testnet whose output went to a reader that has gone (`| head`) still
// cleans up when stopped: it died of SIGPIPE writing "stopping", and left
// its temporary directory behind.
func TestTestnetStopsCleanWithOutputGone(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a network of nodes")
	}
	t.Parallel()
	tmp := t.TempDir()
	cmd := installed("testnet", "--nodes", "2", "--difficulty", "0")
	cmd.Env = append(cmd.Env, append(nodeEnv(t.TempDir()), "TMPDIR="+tmp)...)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	exit := make(chan error, 1)
	go func() { exit <- cmd.Wait() }()
	s := bufio.NewScanner(r)
	var out []string
	for s.Scan() {
		if out = append(out, s.Text()); strings.Contains(s.Text(), "Ctrl-C") {
			break
		}
	}
	if !strings.Contains(strings.Join(out, "\n"), "Ctrl-C") {
		t.Fatalf("testnet did not start:\n%s", strings.Join(out, "\n"))
	}
	if made, _ := os.ReadDir(tmp); len(made) == 0 {
		t.Fatal("the testnet made no temporary directory under $TMPDIR: nothing to check")
	}
	r.Close() // the reader goes, as head does after its lines
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exit:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("testnet still running 10 s after SIGTERM")
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left in $TMPDIR after SIGTERM with its output gone: %v", left)
	}
}

// A load the nodes cannot take at the rate asked says so in its report
// (it fell behind in silence).
func TestLoadRateSaysWhenBehind(t *testing.T) {
	rate := loadRate(20, 5*time.Second)
	if got := rate(100, 0); got != "" { // 20/s
		t.Errorf("keeping up: %q", got)
	}
	if got := rate(135, 0); got != " (7.0/s of the 20/s asked: the nodes take readings more slowly than that)" {
		t.Errorf("behind: %q", got)
	}
	// Readings that found a node down are not the nodes being slow.
	if got := rate(210, 25); got != " (15.0/s of the 20/s asked: 25 readings of the last 5s reached no node, one is down or not answering)" {
		t.Errorf("a node down: %q", got)
	}
}

// testnet --processes --load: readings sent to a node that was killed are
// reported as reaching no node, not as refused, and the rate note says a
// node is down rather than that the nodes are slow.
func TestTestnetLoadNodeDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts node processes")
	}
	t.Parallel()
	p := startTestnet(t, "testnet", "--processes", "--nodes", "2", "--difficulty", "0", "--load", "20")
	p.expect(`partition or heal to split the network`)
	p.type_("kill 1")
	p.expect(`^node 1 killed$`)
	line := p.expect(`^heights \d+ -; readings submitted \d+, sent to no node that answered \d+ \(last: .*\) \(.* readings of the last 5s reached no node, one is down or not answering\)$`)[0]
	if strings.Contains(line, ", refused ") || strings.Contains(line, "more slowly") {
		t.Errorf("report with node 1 down: %s", line)
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	<-p.exit
}

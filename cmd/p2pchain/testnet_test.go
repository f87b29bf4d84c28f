package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
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

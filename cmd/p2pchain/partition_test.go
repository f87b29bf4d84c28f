package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// apiGet decodes GET url into v and returns the status code (0 when the
// request failed).
func apiGet(url string, v any) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			return 0
		}
	}
	return resp.StatusCode
}

// submit posts a reading to the API at api and returns its id.
func submit(t *testing.T, api, subject string, bpm int) string {
	t.Helper()
	return submitAuth(t, api, "", subject, bpm)
}

// submitAuth is submit with the node's API token ("": none).
func submitAuth(t *testing.T, api, token, subject string, bpm int) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, api+"/api/v1/readings", strings.NewReader(fmt.Sprintf(`{"subject":%q,"bpm":%d}`, subject, bpm)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.ID == "" {
		t.Fatalf("POST reading to %s: %s %v", api, resp.Status, err)
	}
	return r.ID
}

// subjectOnMain reports how many readings of subject the node at api has in
// its main chain and how many pending.
func subjectOnMain(api, subject string) (main, pending int, ok bool) {
	var page struct {
		Pending  []json.RawMessage `json:"pending"`
		Readings []json.RawMessage `json:"readings"`
	}
	if apiGet(api+"/api/v1/subjects/"+subject+"/readings", &page) != http.StatusOK {
		return 0, 0, false
	}
	return len(page.Readings), len(page.Pending), true
}

// readingBlock returns the main-chain block of a reading at the node at
// api ("" if it is not in one).
func readingBlock(api, id string) string {
	var r struct {
		Status string `json:"status"`
		Block  string `json:"block"`
	}
	if apiGet(api+"/api/v1/readings/"+id, &r) != http.StatusOK || r.Status != "in_block" {
		return ""
	}
	return r.Block
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTestnetPartition: partition typed at a testnet of four fully
// connected nodes cuts it into nodes 0-1 and 2-3; a reading submitted on
// each side is mined on its side only; heal joins the halves again and
// every node ends with both readings in its main chain, once each. With
// --processes the nodes block through their APIs, and a node restarted
// while partitioned stays in its half.
func TestTestnetPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a network of nodes")
	}
	t.Parallel()
	for _, procs := range []bool{false, true} {
		name := "in-process"
		if procs {
			name = "processes"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testPartition(t, procs)
		})
	}
}

func testPartition(t *testing.T, procs bool) {
	args := []string{"testnet", "--nodes", "4", "--topology", "full", "--difficulty", "0"}
	if procs {
		args = append(args, "--processes")
	}
	p := startTestnet(t, args...)
	p.expect(`^NODE\s+PEER ID\s+LISTEN\s+API`)
	row := `^%d\s+12D3KooW\w+\s+\S+\s+(http://127\.0\.0\.1:\d+)(\s+\d+)?$`
	var apis []string
	for i := 0; i < 4; i++ {
		apis = append(apis, p.expect(fmt.Sprintf(row, i))[1])
	}
	p.expect(`partition or heal to split the network`)
	peers := func(api string) int {
		var v struct {
			Count   int      `json:"count"`
			Blocked []string `json:"blocked"`
		}
		if apiGet(api+"/api/v1/peers", &v) != http.StatusOK {
			return -1
		}
		return v.Count
	}

	p.type_("heal")
	p.expect(`^heal: the network is not partitioned$`)
	// help lists what this testnet takes; in one process, kill says what
	// it needs instead of only the usage.
	p.type_("help")
	p.expect(`^  partition   split the network in two$`)
	if procs {
		p.expect(`^  kill I      kill node I with SIGKILL, as a crash \(I from 0 to 3\)$`)
	} else {
		p.expect(`^kill I, stop I and restart I need the nodes as processes: start the testnet with --processes$`)
		p.type_("kill 2")
		p.expect(`^kill: kill, stop and restart need the nodes as processes: start the testnet with --processes; here partition or heal$`)
	}
	p.type_("partition")
	p.expect(`^partition: nodes 0-1 \| nodes 2-3, every node blocking the other half; 4 links cut \(`)
	p.type_("partition")
	p.expect(`^partition: the network is partitioned already: heal it first$`)
	waitUntil(t, 10*time.Second, "each node keeps only its half's peer", func() bool {
		for _, a := range apis {
			if peers(a) != 1 {
				return false
			}
		}
		return true
	})
	if procs {
		// A node restarted while partitioned blocks the other half again
		// and dials only its own half.
		p.type_("restart 3")
		old := apis[3]
		waitUntil(t, 30*time.Second, "node 3's new table line", func() bool { return p.count(fmt.Sprintf(row, 3)) == 2 })
		var lines [][]string // node 3's table lines: before and after the restart
		p.mu.Lock()
		for _, l := range p.lines {
			if m := regexp.MustCompile(fmt.Sprintf(row, 3)).FindStringSubmatch(l); m != nil {
				lines = append(lines, m)
			}
		}
		p.mu.Unlock()
		// A new process on its old ports (free here): the same API.
		if len(lines) != 2 || lines[1][1] != old || lines[0][2] == lines[1][2] {
			t.Fatalf("node 3's table lines %q: want the same API %s and a new PID", lines, old)
		}
		waitUntil(t, 10*time.Second, "restarted node 3 connected to node 2 only", func() bool {
			var v struct {
				Count   int      `json:"count"`
				Blocked []string `json:"blocked"`
			}
			return apiGet(apis[3]+"/api/v1/peers", &v) == http.StatusOK && v.Count == 1 && len(v.Blocked) == 2
		})
		for _, i := range []int{0, 1, 2} {
			if n := peers(apis[i]); n != 1 {
				t.Fatalf("node %d has %d peers after node 3's restart, want 1", i, n)
			}
		}
	}
	sides := [2]struct {
		subject, id, block string
		nodes              []int
	}{{subject: "west", nodes: []int{0, 1}}, {subject: "east", nodes: []int{2, 3}}}
	sides[0].id = submit(t, apis[0], "west", 70)
	sides[1].id = submit(t, apis[3], "east", 80)
	for s := range sides {
		side := &sides[s]
		waitUntil(t, 15*time.Second, side.subject+" reading mined on its side", func() bool {
			side.block = readingBlock(apis[side.nodes[0]], side.id)
			if side.block == "" {
				return false
			}
			for _, i := range side.nodes {
				if readingBlock(apis[i], side.id) != side.block {
					return false
				}
			}
			return true
		})
		t.Logf("%s reading in block %s on nodes %v", side.subject, side.block, side.nodes)
	}
	time.Sleep(500 * time.Millisecond) // a block that crossed the cut would show by now
	for s := range sides {
		side, other := sides[s], sides[1-s]
		for _, i := range other.nodes {
			if code := apiGet(apis[i]+"/api/v1/blocks/"+side.block, nil); code != http.StatusNotFound {
				t.Errorf("node %d (the %s side) answers %d for the %s side's block, want 404", i, other.subject, code, side.subject)
			}
			if m, pend, _ := subjectOnMain(apis[i], side.subject); m != 0 || pend != 0 {
				t.Errorf("node %d (the %s side) has the %s reading: %d in its chain, %d pending", i, other.subject, side.subject, m, pend)
			}
		}
	}

	start := time.Now()
	p.type_("heal")
	p.expect(`^heal: nodes 0-1 \| nodes 2-3 unblocked each other; 4 links across the cut dialled again \(`)
	waitUntil(t, 30*time.Second, "every node has both readings in its main chain, once each", func() bool {
		for _, a := range apis {
			for _, side := range sides {
				if m, pend, ok := subjectOnMain(a, side.subject); !ok || m != 1 || pend != 0 {
					return false
				}
			}
		}
		return true
	})
	converged := time.Since(start)
	for i, a := range apis {
		if n := peers(a); n != 3 {
			t.Errorf("node %d has %d peers after the heal, want 3", i, n)
		}
	}
	t.Logf("converged %v after heal", converged)

	_ = p.cmd.Process.Signal(syscall.SIGINT)
	<-p.exit
}

// TestTestnetPartitionNodeDown: with node 1 of a ring of four node
// processes killed, partition and heal skip it and say so, and work on the
// three others: each blocks the other half, then unblocks it, and the heal
// dials the link across the cut between running nodes (3 to 0). Restarted
// after the heal, node 1 comes back unblocked with both its links.
func TestTestnetPartitionNodeDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a network of node processes")
	}
	t.Parallel()
	p := startTestnet(t, "testnet", "--nodes", "4", "--topology", "ring", "--processes", "--difficulty", "0")
	p.expect(`^NODE\s+PEER ID\s+LISTEN\s+API`)
	var apis []string
	for i := 0; i < 4; i++ {
		apis = append(apis, p.expect(fmt.Sprintf(`^%d\s+12D3KooW\w+\s+\S+\s+(http://127\.0\.0\.1:\d+)\s+\d+$`, i))[1])
	}
	p.expect(`partition or heal to split the network`)
	type peersView struct {
		Count   int      `json:"count"`
		Blocked []string `json:"blocked"`
	}
	// want[i] is node i's peers and blocked peers.
	waitPeers := func(what string, want [][2]int) {
		t.Helper()
		waitUntil(t, 20*time.Second, what, func() bool {
			for i, w := range want {
				var v peersView
				if i == 1 && w[0] < 0 {
					continue // not running
				}
				if apiGet(apis[i]+"/api/v1/peers", &v) != http.StatusOK || v.Count != w[0] || len(v.Blocked) != w[1] {
					return false
				}
			}
			return true
		})
	}

	p.type_("kill 1")
	p.expect(`^node 1 killed$`)
	// A node already down, a node that is not there, a word that is not a
	// node: each says what is wrong.
	p.type_("kill 1")
	p.expect(`^kill: node 1 is not running \(restart 1 starts it again\)$`)
	p.type_("stop 1")
	p.expect(`^stop: node 1 is not running \(restart 1 starts it again\)$`)
	p.type_("kill 9")
	p.expect(`^kill: no node 9: the nodes are 0 to 3$`)
	p.type_("stop x")
	p.expect(`^stop: "x" is not a node number: want 0 to 3$`)
	p.type_("restart")
	p.expect(`^restart: want restart I, with I a node from 0 to 3$`)
	if n := p.count(`^node 1 (killed|stopped)$`); n != 1 {
		t.Errorf("%d lines say node 1 was killed or stopped, want 1 (the first kill)", n)
	}
	p.type_("partition")
	p.expect(`^partition: nodes 0-1 \| nodes 2-3, every node blocking the other half; 2 links cut \(\S+\); skipped node 1 \(not running: restarted, it blocks the other half\)$`)
	// The ring 0-1-2-3-0: node 0 keeps no peer (1 is down, 3 is across),
	// nodes 2 and 3 keep each other.
	waitPeers("the running nodes blocking the other half", [][2]int{{0, 2}, {-1, -1}, {1, 2}, {1, 2}})
	p.type_("heal")
	p.expect(`^heal: nodes 0-1 \| nodes 2-3 unblocked each other; 1 links across the cut dialled again \(\S+\); skipped node 1 \(not running: restarted, it dials all its links\)$`)
	waitPeers("the running nodes joined again", [][2]int{{1, 0}, {-1, -1}, {1, 0}, {2, 0}})
	p.type_("restart 1")
	waitUntil(t, 30*time.Second, "node 1's new table line", func() bool {
		return p.count(`^1\s+12D3KooW\w+\s+\S+\s+http://127\.0\.0\.1:\d+\s+\d+$`) == 2
	})
	waitPeers("the ring whole again", [][2]int{{2, 0}, {2, 0}, {2, 0}, {2, 0}})

	_ = p.cmd.Process.Signal(syscall.SIGINT)
	<-p.exit
}

package p2p_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/p2p"
)

// The mDNS test sends multicast, which must never leave this machine's test
// sandbox. So its nodes run in network namespaces the test makes itself:
//
//	netns a: node A, network "mdns-x", 10.231.77.1 ─┐
//	netns b: node B, network "mdns-x", 10.231.77.2 ─┤
//	netns c: node C, network "mdns-y", 10.231.77.3 ─┼─ bridge in netns br
//	netns d: node D, network "mdns-y", 10.231.77.4 ─┘
//
// Each veth is created with both ends inside test namespaces; the 10.x
// addresses exist only there, and deleting the namespaces at the end removes
// everything. Each node is this test binary run again under
// `ip netns exec`, as the helper TestMDNSHelperProcess, started with mDNS
// only and no address of any peer. A and B must find and connect to each
// other, and so must C and D, but no node may hear of a node of the other
// network.

const mdnsHelperEnv = "P2P_TEST_MDNS_HELPER"

// TestMDNSDiscovery: two nodes with only mDNS find each other; nodes of
// another network on the same LAN are not told about them.
func TestMDNSDiscovery(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mDNS test skipped: creating network namespaces needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("mDNS test skipped: the ip command (iproute2) is missing")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Skipf("mDNS test skipped: cannot find the test binary: %v", err)
	}
	ctx := discCtx(t, 60*time.Second)
	removeStaleNetns(t)
	prefix := fmt.Sprintf("p2pc-mdns-%d-", os.Getpid())
	ns := func(name string) string { return prefix + name }
	for _, n := range []string{"br", "a", "b", "c", "d"} {
		if out, err := exec.Command("ip", "netns", "add", ns(n)).CombinedOutput(); err != nil {
			t.Skipf("mDNS test skipped: cannot create a network namespace: %v: %s", err, out)
		}
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", ns(n)).CombinedOutput(); err != nil {
				t.Errorf("delete network namespace %s: %v: %s", ns(n), err, out)
			}
		})
	}
	ips := map[string]string{"a": "10.231.77.1", "b": "10.231.77.2", "c": "10.231.77.3", "d": "10.231.77.4"}
	cmds := [][]string{
		{"-n", ns("br"), "link", "add", "br0", "type", "bridge"},
		{"-n", ns("br"), "link", "set", "br0", "up"},
	}
	for _, n := range []string{"a", "b", "c", "d"} {
		cmds = append(cmds,
			[]string{"link", "add", "eth0", "netns", ns(n), "type", "veth", "peer", "name", "to-" + n, "netns", ns("br")},
			[]string{"-n", ns("br"), "link", "set", "to-" + n, "master", "br0"},
			[]string{"-n", ns("br"), "link", "set", "to-" + n, "up"},
			[]string{"-n", ns(n), "addr", "add", ips[n] + "/24", "dev", "eth0"},
			[]string{"-n", ns(n), "link", "set", "eth0", "up"},
			[]string{"-n", ns(n), "link", "set", "lo", "up"},
		)
	}
	for _, c := range cmds {
		if out, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(c, " "), err, out)
		}
	}

	nodes := map[string]*mdnsHelper{}
	networks := map[string]string{"a": "mdns-x", "b": "mdns-x", "c": "mdns-y", "d": "mdns-y"}
	for n, network := range networks {
		nodes[n] = startMDNSHelper(t, ctx, exe, ns(n), ips[n], network)
	}
	ids := map[string]string{}
	for n, h := range nodes {
		ids[n] = h.waitID(t, ctx)
	}
	start := time.Now()
	pairs := [][2]string{{"a", "b"}, {"b", "a"}, {"c", "d"}, {"d", "c"}}
	for _, pr := range pairs {
		for !nodes[pr[0]].hasPeer(ids[pr[1]]) {
			select {
			case <-ctx.Done():
				t.Fatalf("%s did not find %s by mDNS: it has %+v", pr[0], pr[1], nodes[pr[0]].snapshot())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	t.Logf("both pairs connected %v after start", time.Since(start).Round(time.Millisecond))
	// Give every node time to hear announcements it must ignore.
	time.Sleep(time.Second)
	for _, n := range []string{"a", "b", "c", "d"} {
		s := nodes[n].snapshot()
		t.Logf("node %s (%s) of %s: %+v", n, ids[n], networks[n], s)
		if len(s.peers) != 1 || s.mdnsFound == 0 {
			t.Errorf("node %s: %+v, want its partner only", n, s)
		}
		if !strings.Contains(strings.Join(nodes[n].logLines(), "\n"), "mDNS discovery on") {
			t.Errorf("node %s did not log that mDNS started: %v", n, nodes[n].logLines())
		}
		// Had it heard of a node of the other network, it would have
		// dialled it and logged so, or refused it after the handshake.
		for _, line := range nodes[n].logLines() {
			for m, id := range ids {
				if networks[m] != networks[n] && strings.Contains(line, id) || strings.Contains(line, "refusing peer") {
					t.Errorf("node %s met node %s of the other network: %s", n, m, line)
				}
			}
		}
	}
	for _, h := range nodes { // all at once: each takes a moment to go
		h.closeStdin()
	}
	for _, h := range nodes {
		h.stop(t)
	}
}

// removeStaleNetns deletes the namespaces of an earlier run of this test
// that was killed before its cleanup: those whose process is gone.
func removeStaleNetns(t *testing.T) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "p2pc-mdns-") {
			continue
		}
		pid, _, _ := strings.Cut(strings.TrimPrefix(f[0], "p2pc-mdns-"), "-")
		if _, err := os.Stat("/proc/" + pid); err == nil {
			continue // its test is still running
		}
		if out, err := exec.Command("ip", "netns", "del", f[0]).CombinedOutput(); err != nil {
			t.Logf("cannot delete stale network namespace %s: %v: %s", f[0], err, out)
		}
	}
}

// mdnsHelper is a node running in a helper process.
type mdnsHelper struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{} // closed when the process's stdout ends

	mu    sync.Mutex
	id    string
	state mdnsState
	lines []string // everything else it printed, for failures
}

type mdnsState struct {
	peers     []string
	mdnsFound uint64
}

func startMDNSHelper(t *testing.T, ctx context.Context, exe, netns, ip, network string) *mdnsHelper {
	t.Helper()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", netns, exe, "-test.run=^TestMDNSHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), mdnsHelperEnv+"=1", "P2P_TEST_MDNS_IP="+ip, "P2P_TEST_MDNS_NETWORK="+network)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &mdnsHelper{name: netns, cmd: cmd, stdin: stdin, done: make(chan struct{})}
	t.Cleanup(func() { h.stop(t) })
	go func() {
		defer close(h.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			h.parse(sc.Text())
		}
	}()
	return h
}

// parse reads one line of the helper: "ID <peer ID>" or
// "STATE <mdns found> <peer ID>,<peer ID>...".
func (h *mdnsHelper) parse(line string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := strings.Fields(line)
	switch {
	case len(f) == 2 && f[0] == "ID":
		h.id = f[1]
	case len(f) >= 2 && f[0] == "STATE":
		n, _ := strconv.ParseUint(f[1], 10, 64)
		h.state = mdnsState{mdnsFound: n}
		if len(f) == 3 {
			h.state.peers = strings.Split(f[2], ",")
		}
	default:
		h.lines = append(h.lines, line)
	}
}

func (h *mdnsHelper) waitID(t *testing.T, ctx context.Context) string {
	t.Helper()
	for {
		h.mu.Lock()
		id, lines := h.id, h.lines
		h.mu.Unlock()
		if id != "" {
			return id
		}
		select {
		case <-ctx.Done():
			t.Fatalf("helper in %s did not start: %v", h.name, lines)
		case <-h.done:
			t.Fatalf("helper in %s ended before it started: %v", h.name, lines)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (h *mdnsHelper) logLines() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.lines...)
}

func (h *mdnsHelper) snapshot() mdnsState {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.state
}

func (h *mdnsHelper) hasPeer(id string) bool {
	for _, p := range h.snapshot().peers {
		if p == id {
			return true
		}
	}
	return false
}

// stop closes the helper's stdin, which makes it close its node and exit,
// and waits for it (killing it if it hangs).
func (h *mdnsHelper) stop(t *testing.T) {
	if h.cmd == nil {
		return
	}
	h.closeStdin()
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		_ = h.cmd.Process.Kill()
	}
	err := h.cmd.Wait()
	h.cmd = nil
	if err != nil {
		h.mu.Lock()
		defer h.mu.Unlock()
		t.Errorf("helper in %s: %v; it printed %v", h.name, err, h.lines)
	}
}

func (h *mdnsHelper) closeStdin() {
	if h.stdin != nil {
		_ = h.stdin.Close()
		h.stdin = nil
	}
}

// TestMDNSHelperProcess is not a test: it is the node TestMDNSDiscovery runs
// in a network namespace. It starts a host with mDNS on, listening on
// P2P_TEST_MDNS_IP, prints its state every 50 ms and its log, and stops when
// its stdin closes.
func TestMDNSHelperProcess(t *testing.T) {
	if os.Getenv(mdnsHelperEnv) != "1" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	defer cancel()
	go func() { // stdin closed: time to go
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	key, err := p2p.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(chain.TestParams(os.Getenv("P2P_TEST_MDNS_NETWORK")), key)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, err := p2p.New(ctx, n, p2p.WithKey(key), p2p.WithMDNS(true), p2p.WithLogger(log),
		p2p.WithListenAddrs(p2p.ListenAddrs(os.Getenv("P2P_TEST_MDNS_IP"), 0)...))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	fmt.Println("ID", h.ID())
	last := ""
	for {
		var ids []string
		for _, p := range h.Peers() {
			ids = append(ids, p.ID.String())
		}
		line := fmt.Sprintf("STATE %d %s", h.DiscoveryStats().MDNSFound, strings.Join(ids, ","))
		if line != last {
			fmt.Println(line)
			last = line
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

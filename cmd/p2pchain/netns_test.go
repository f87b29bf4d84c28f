package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/datadir"
)

// netns is a set of Linux network namespaces the test made, one per node,
// joined in a line by veth pairs: node i and node i+1 share the link
// 10.77.i.0/24 (.1 is node i, .2 node i+1). Each namespace also has a
// management link to the test's own namespace (10.M.i.1 here, 10.M.i.2
// there) on which only the node's HTTP API listens, so the test talks to
// the APIs without being a path between the nodes.
type netns struct {
	t      *testing.T
	prefix string
	n      int
	mgmt   int // M: the management links' second octet, one per set of namespaces
}

// run runs a command and fails the test with its output if it fails.
func (ns *netns) run(args ...string) {
	ns.t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		ns.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (ns *netns) name(i int) string           { return fmt.Sprintf("%s-%d", ns.prefix, i) }
func (ns *netns) link(i int) string           { return fmt.Sprintf("%sl%d", ns.prefix, i) } // + "a" in ns i, "b" in ns i+1
func (ns *netns) api(i int) string            { return "http://" + ns.apiAddr(i) }
func (ns *netns) apiAddr(i int) string        { return fmt.Sprintf("10.%d.%d.2:8080", ns.mgmt, i) }
func (ns *netns) mgmtAddr(i, host int) string { return fmt.Sprintf("10.%d.%d.%d", ns.mgmt, i, host) }
func (ns *netns) linkAddr(i, side int) string { return fmt.Sprintf("10.77.%d.%d", i, side) }

// netnsSets counts the sets of namespaces this process made.
var netnsSets atomic.Int32

// newNetns makes n namespaces in a line, or skips the test where it cannot
// (not root, no ip command, no namespaces).
func newNetns(t *testing.T, n int) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip command (iproute2): cannot make network namespaces")
	}
	// One prefix per set, so that tests running in parallel do not share
	// names (interface names stay under the kernel's 15 bytes).
	set := netnsSets.Add(1)
	ns := &netns{t: t, prefix: fmt.Sprintf("pc%d%c", os.Getpid()%100000, 'a'+set%26), n: n, mgmt: 78 + int(set%16)}
	probe := ns.prefix + "-probe"
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		t.Skipf("cannot make a network namespace: %v %s", err, out)
	}
	_ = exec.Command("ip", "netns", "del", probe).Run()
	t.Cleanup(func() {
		for i := 0; i < n; i++ {
			_ = exec.Command("ip", "netns", "del", ns.name(i)).Run() // removes its veth ends too
		}
	})
	for i := 0; i < n; i++ {
		ns.run("ip", "netns", "add", ns.name(i))
		ns.run("ip", "-n", ns.name(i), "link", "set", "lo", "up")
		m := fmt.Sprintf("%sm%d", ns.prefix, i)
		ns.run("ip", "link", "add", m+"a", "type", "veth", "peer", "name", m+"b")
		ns.run("ip", "link", "set", m+"b", "netns", ns.name(i))
		ns.run("ip", "addr", "add", ns.mgmtAddr(i, 1)+"/24", "dev", m+"a")
		ns.run("ip", "link", "set", m+"a", "up")
		ns.run("ip", "-n", ns.name(i), "addr", "add", ns.mgmtAddr(i, 2)+"/24", "dev", m+"b")
		ns.run("ip", "-n", ns.name(i), "link", "set", m+"b", "up")
	}
	for i := 0; i+1 < n; i++ {
		l := ns.link(i)
		ns.run("ip", "link", "add", l+"a", "netns", ns.name(i), "type", "veth", "peer", "name", l+"b", "netns", ns.name(i+1))
		ns.run("ip", "-n", ns.name(i), "addr", "add", ns.linkAddr(i, 1)+"/24", "dev", l+"a")
		ns.run("ip", "-n", ns.name(i+1), "addr", "add", ns.linkAddr(i, 2)+"/24", "dev", l+"b")
		ns.run("ip", "-n", ns.name(i), "link", "set", l+"a", "up")
		ns.run("ip", "-n", ns.name(i+1), "link", "set", l+"b", "up")
	}
	return ns
}

// impair puts delay, jitter and loss on both ends of every link between
// nodes with tc netem. It returns what it put, or "" and why not when the
// kernel has no netem (CONFIG_NET_SCH_NETEM).
func (ns *netns) impair(delay, jitter time.Duration, lossPct int) (string, string) {
	for i := 0; i+1 < ns.n; i++ {
		for _, end := range []struct {
			ns  int
			dev string
		}{{i, ns.link(i) + "a"}, {i + 1, ns.link(i) + "b"}} {
			out, err := exec.Command("ip", "netns", "exec", ns.name(end.ns), "tc", "qdisc", "add", "dev", end.dev, "root", "netem",
				"delay", fmt.Sprintf("%dms", delay.Milliseconds()), fmt.Sprintf("%dms", jitter.Milliseconds()),
				"loss", fmt.Sprintf("%d%%", lossPct)).CombinedOutput()
			if err != nil {
				return "", fmt.Sprintf("tc netem: %v %s", err, bytes.TrimSpace(out))
			}
		}
	}
	return fmt.Sprintf("netem delay %v ±%v, loss %d%% on each end of every link", delay, jitter, lossPct), ""
}

// drop makes every link between nodes lose lossPct% of the packets each
// way with nftables (a random number per packet): the loss half of impair,
// for kernels without netem. It returns "" and why not where nft is
// missing or fails.
func (ns *netns) drop(lossPct int) (string, string) {
	if _, err := exec.LookPath("nft"); err != nil {
		return "", "no nft command (nftables)"
	}
	for i := 0; i < ns.n; i++ {
		rules := fmt.Sprintf("table inet p2ploss {\n chain in {\n  type filter hook input priority 0; policy accept;\n")
		for _, dev := range []string{ns.link(i-1) + "b", ns.link(i) + "a"} {
			rules += fmt.Sprintf("  iifname %q numgen random mod 100 < %d drop\n", dev, lossPct)
		}
		rules += " }\n}\n"
		cmd := exec.Command("ip", "netns", "exec", ns.name(i), "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(rules)
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Sprintf("nft: %v %s", err, bytes.TrimSpace(out))
		}
	}
	return fmt.Sprintf("no delay (the kernel has no netem: %s); loss %d%% each way by nftables", "CONFIG_NET_SCH_NETEM", lossPct), ""
}

// setLink brings the link between node i and node i+1 down or up, on both
// ends: a partition the nodes cannot tell from a cable pulled out.
func (ns *netns) setLink(i int, up bool) {
	state := "down"
	if up {
		state = "up"
	}
	ns.run("ip", "-n", ns.name(i), "link", "set", ns.link(i)+"a", state)
	ns.run("ip", "-n", ns.name(i+1), "link", "set", ns.link(i)+"b", state)
}

// TestLossyPartitionHeal: four node processes in four network namespaces,
// in a line 0-1-2-3 over veth links with 200 ms of delay (±40 ms) and 5%
// loss each way where the kernel has netem (where it has not, 5% loss by
// nftables and no delay; the log says which). The link 1-2 goes down (a
// partition: nodes 0-1 | nodes 2-3); readings submitted on both sides are
// mined on their side; the link comes back, and every reading ends up in
// the main chain of every node exactly once, on one tip. The time from the
// heal to that is logged.
func TestLossyPartitionHeal(t *testing.T) {
	if testing.Short() {
		t.Skip("starts node processes in network namespaces")
	}
	t.Parallel()
	const n = 4
	ns := newNetns(t, n)
	impairment, why := ns.impair(200*time.Millisecond, 40*time.Millisecond, 5)
	if impairment == "" {
		var why2 string
		if impairment, why2 = ns.drop(5); impairment == "" {
			impairment = "none (" + why + "; " + why2 + ")"
		}
	}
	t.Logf("links: %s", impairment)

	home := t.TempDir()
	var procs []*proc
	for i := 0; i < n; i++ {
		args := []string{"ip", "netns", "exec", ns.name(i), binary, "node", "--data", fmt.Sprintf("%s/node-%d", home, i),
			"-ip", "0.0.0.0", "-l", "4001", "--api", ns.apiAddr(i), "--difficulty", "0", "--mdns=false"}
		if i > 0 {
			var st struct {
				PeerID string `json:"peer_id"`
			}
			if apiGet(ns.api(i-1)+"/api/v1/status", &st) != http.StatusOK {
				t.Fatalf("node %d's API does not answer", i-1)
			}
			args = append(args, "-peer", fmt.Sprintf("/ip4/%s/tcp/4001/p2p/%s", ns.linkAddr(i-1, 1), st.PeerID))
		}
		p := &proc{t: t, name: fmt.Sprintf("node %d", i), exit: make(chan error, 1)}
		p.cmd = exec.Command(args[0], args[1:]...)
		p.cmd.Env = append(os.Environ(), nodeEnv(home)...)
		startProc(t, p)
		procs = append(procs, p)
		waitUntil(t, 30*time.Second, fmt.Sprintf("node %d's API", i), func() bool { return apiGet(ns.api(i)+"/api/v1/status", nil) == http.StatusOK })
	}
	peers := func(i int) int {
		var v struct {
			Count int `json:"count"`
		}
		if apiGet(ns.api(i)+"/api/v1/peers", &v) != http.StatusOK {
			return -1
		}
		return v.Count
	}
	waitUntil(t, 60*time.Second, "the line is connected", func() bool {
		return peers(0) == 1 && peers(1) == 2 && peers(2) == 2 && peers(3) == 1
	})

	token := func(i int) string { // the API listens off loopback: writes need the node's token
		b, err := os.ReadFile(fmt.Sprintf("%s/node-%d/%s", home, i, datadir.TokenFile))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	tip := func(i int) string {
		var st struct {
			Tip string `json:"tip"`
		}
		apiGet(ns.api(i)+"/api/v1/status", &st)
		return st.Tip
	}
	rounds := 1
	if os.Getenv("P2PCHAIN_LONG") != "" {
		rounds = 10 // docs/RELIABILITY.md: the long mode
	}
	west, east := []int{0, 1}, []int{2, 3}
	var ids []string
	var subjects []string
	var times []time.Duration
	for r := 0; r < rounds; r++ {
		ns.setLink(1, false)
		w, e := fmt.Sprintf("west%d", r), fmt.Sprintf("east%d", r)
		subjects = append(subjects, w, e)
		for k := 0; k < 3; k++ {
			ids = append(ids, submitAuth(t, ns.api(0), token(0), w, 60+k), submitAuth(t, ns.api(3), token(3), e, 90+k))
		}
		for _, side := range []struct {
			subject, other string
			nodes          []int
		}{{w, e, west}, {e, w, east}} {
			waitUntil(t, 90*time.Second, side.subject+" readings mined on their side", func() bool {
				for _, i := range side.nodes {
					if m, _, _ := subjectOnMain(ns.api(i), side.subject); m != 3 {
						return false
					}
				}
				return true
			})
			for _, i := range side.nodes {
				if m, pend, _ := subjectOnMain(ns.api(i), side.other); m != 0 || pend != 0 {
					t.Fatalf("round %d: node %d has %s readings across the partition: %d in its chain, %d pending", r, i, side.other, m, pend)
				}
			}
		}

		healed := time.Now()
		ns.setLink(1, true)
		converged := func() bool {
			first := tip(0)
			for i := 0; i < n; i++ {
				if tip(i) != first {
					return false
				}
				for _, s := range subjects {
					want := 3
					if strings.HasPrefix(s, "tie") {
						want = 1
					}
					if m, pend, _ := subjectOnMain(ns.api(i), s); m != want || pend != 0 {
						return false
					}
				}
			}
			return true
		}
		// Both sides may have mined chains of the same work: a tie holds
		// until the next block, as in every longest-chain network (the
		// fork choice keeps an established tip). Give the network that
		// block if it has not converged within 20 s.
		for wait := time.Now().Add(20 * time.Second); !converged() && time.Now().Before(wait); {
			time.Sleep(200 * time.Millisecond)
		}
		if !converged() {
			tips := make([]string, n)
			for i := range tips {
				tips[i] = tip(i)
			}
			t.Logf("round %d: tips %v 20 s after the heal (a tie of equal work?): one more reading", r+1, tips)
			tie := fmt.Sprintf("tie%d", r)
			subjects = append(subjects, tie)
			ids = append(ids, submitAuth(t, ns.api(0), token(0), tie, 70))
		}
		waitUntil(t, 120*time.Second, "every node has every reading once, on one tip", converged)
		times = append(times, time.Since(healed))
		t.Logf("round %d: converged %.1f s after the heal", r+1, times[len(times)-1].Seconds())
	}
	slices.Sort(times)
	t.Logf("%d rounds, %d readings, links: %s; convergence after the heal: median %.1f s, max %.1f s",
		rounds, len(ids), impairment, times[len(times)/2].Seconds(), times[len(times)-1].Seconds())
	for i := 0; i < n; i++ {
		for _, id := range ids {
			if readingBlock(ns.api(i), id) == "" {
				t.Errorf("node %d: reading %s not in its main chain", i, id)
			}
		}
	}
	for _, p := range procs {
		p.stop()
	}
}

// TestAPIConnectionsPerAddress: a node's API listening beyond loopback,
// in a network namespace, reached from this namespace by two addresses.
// One address holds api.DefaultMaxConnectionsPerIP connections: its next
// one is answered 503 too_many_connections, while the other address is
// served; once one of the held connections closes, the first address is
// served again. (The per-address limit cannot be shown from loopback,
// which has no such limit.)
func TestAPIConnectionsPerAddress(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node process in a network namespace")
	}
	t.Parallel()
	ns := newNetns(t, 1)
	first, second := ns.mgmtAddr(0, 1), ns.mgmtAddr(0, 3)
	ns.run("ip", "addr", "add", second+"/24", "dev", ns.prefix+"m0a") // a second address on this side
	home := t.TempDir()
	p := &proc{t: t, name: "node", exit: make(chan error, 1)}
	p.cmd = exec.Command("ip", "netns", "exec", ns.name(0), binary, "node", "--data", home+"/node",
		"-ip", "127.0.0.1", "-l", "4001", "--api", ns.apiAddr(0), "--difficulty", "0", "--mdns=false")
	p.cmd.Env = append(os.Environ(), nodeEnv(home)...)
	startProc(t, p)
	api := ns.apiAddr(0)
	dial := func(from string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
		return d.Dial("tcp", api)
	}
	// ask sends GET path on a new connection from the address from and
	// returns the answer's status and body (status 0: no answer).
	ask := func(from, path string) (int, string) {
		c, err := dial(from)
		if err != nil {
			return 0, err.Error()
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, ns.mgmtAddr(0, 2)); err != nil {
			return 0, err.Error()
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitUntil(t, 30*time.Second, "the node's API", func() bool { s, _ := ask(second, "/api/v1/status"); return s == http.StatusOK })

	const perIP = 64 // api.DefaultMaxConnectionsPerIP
	var held []net.Conn
	for range perIP {
		c, err := dial(first)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	open := func() int {
		_, body := ask(second, "/metrics")
		for _, l := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(l, "p2pchain_api_connections "); ok {
				n, _ := strconv.Atoi(v)
				return n
			}
		}
		return -1
	}
	waitUntil(t, 30*time.Second, "the held connections counted", func() bool { return open() >= perIP+1 }) // + the asking one
	if s, body := ask(first, "/api/v1/status"); s != http.StatusServiceUnavailable || !strings.Contains(body, "too_many_connections") {
		t.Fatalf("connection %d from one address: %d %s, want 503 too_many_connections", perIP+1, s, body)
	}
	if s, body := ask(second, "/api/v1/status"); s != http.StatusOK {
		t.Fatalf("another address while the first holds its limit: %d %s", s, body)
	}
	_ = held[0].Close()
	waitUntil(t, 30*time.Second, "a place freed for the first address", func() bool {
		s, _ := ask(first, "/api/v1/status")
		return s == http.StatusOK
	})
	p.stop()
}

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/p2p"
)

var binary string // the p2pchain binary built for the end-to-end tests

func TestMain(m *testing.M) {
	if os.Getenv("P2PCHAIN_FLOOD_PROBE") != "" {
		os.Exit(m.Run()) // TestFlood's probe process (flood_test.go): no binary needed
	}
	for _, a := range os.Args[1:] {
		if strings.HasPrefix(a, "-test.fuzzworker") {
			os.Exit(m.Run()) // a fuzzing worker runs one fuzz target: no binary needed
		}
	}
	dir, err := os.MkdirTemp("", "p2pchain-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "p2pchain")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build p2pchain: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// installed returns the command that runs the binary as an installed one
// runs: found on $PATH by its bare name, so that the commands it prints
// ("p2pchain node -l ...") run as printed.
func installed(args ...string) *exec.Cmd {
	cmd := exec.Command(binary, args...)
	cmd.Args[0] = "p2pchain"
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(binary)+string(os.PathListSeparator)+os.Getenv("PATH"))
	return cmd
}

// proc is a running p2pchain process whose output the test reads.
type proc struct {
	t     *testing.T
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser

	mu    sync.Mutex
	lines []string
	exit  chan error
}

// start runs p2pchain with args and a fresh, private P2PCHAIN_HOME, so its
// default data directory is its own and nothing lands in the user's home.
func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	return startEnv(t, name, []string{"P2PCHAIN_HOME=" + t.TempDir()}, args...)
}

// startEnv runs p2pchain with extra environment variables.
func startEnv(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, cmd: installed(args...), exit: make(chan error, 1)}
	p.cmd.Env = append(p.cmd.Env, env...)
	startProc(t, p)
	return p
}

// startProc starts p.cmd and collects its output lines.
func startProc(t *testing.T, p *proc) {
	t.Helper()
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s := bufio.NewScanner(pr)
		for s.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, s.Text())
			p.mu.Unlock()
		}
	}()
	go func() {
		err := p.cmd.Wait()
		pw.Close()
		p.exit <- err
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("output of %s:\n%s", p.name, p.output())
		}
	})
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// type_ sends a line to the node's prompt.
func (p *proc) type_(line string) {
	p.t.Helper()
	if _, err := fmt.Fprintln(p.stdin, line); err != nil {
		p.t.Fatalf("%s: type %q: %v", p.name, line, err)
	}
}

// expect waits for an output line matching re and returns its submatches.
func (p *proc) expect(re string) []string {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		for _, l := range p.lines {
			if m := rx.FindStringSubmatch(l); m != nil {
				p.mu.Unlock()
				return m
			}
		}
		p.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	p.t.Fatalf("%s: no output line matches %q", p.name, re)
	return nil
}

// count returns how many output lines match re.
func (p *proc) count(re string) int {
	rx := regexp.MustCompile(re)
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.lines {
		if rx.MatchString(l) {
			n++
		}
	}
	return n
}

// waitMesh asks for status until the node forwards blocks to want peers.
func (p *proc) waitMesh(want int) {
	p.t.Helper()
	re := fmt.Sprintf(`\(%d in the block gossip mesh\)`, want)
	for i := 0; i < 100 && p.count(re) == 0; i++ {
		p.type_("status")
		time.Sleep(100 * time.Millisecond)
	}
	p.expect(re)
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case err := <-p.exit:
		if err != nil {
			p.t.Fatalf("%s exited with %v after SIGTERM", p.name, err)
		}
	case <-time.After(15 * time.Second):
		p.t.Fatalf("%s did not stop within 15 s of SIGTERM", p.name)
	}
	p.expect(`^stopped$`)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestThreeTerminalDemo runs the classic demo with real processes, typed
// exactly as a user of the original demo would.
func TestThreeTerminalDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real node processes")
	}
	port := freePort(t)
	n1 := start(t, "node1", "-l", fmt.Sprint(port), "-seed", "1", "-secio")
	m := n1.expect(`^  p2pchain node -l \d+ -d (/ip4/127\.0\.0\.1/tcp/\d+/p2p/(\w+))$`)
	addr1, id1 := m[1], m[2]
	n1.expect(`-secio is not needed`)
	want, err := p2p.PeerID(p2p.KeyFromSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	if id1 != want.String() {
		t.Fatalf("-seed 1 gave peer ID %s, want the deterministic %s", id1, want)
	}
	if !strings.Contains(addr1, fmt.Sprintf("/tcp/%d/", port)) {
		t.Fatalf("node 1 address %s is not on port %d", addr1, port)
	}

	n2 := start(t, "node2", "-l", "0", "-d", addr1)
	addr2 := n2.expect(`^  p2pchain node -l \d+ -d (/ip4/\S+)(?: -network \S+)?(?: -difficulty \d+)?$`)[1]
	n2.expect(`^connected to`)
	n3 := start(t, "node3", "--l", "0", "--d", addr2) // two dashes work too
	n3.expect(`^connected to`)
	n1.waitMesh(1)
	n2.waitMesh(2)
	n3.waitMesh(1)

	n1.type_("70")
	n1.expect(`^reading \w+: demo 70 bpm, pending`)
	for _, n := range []*proc{n1, n2, n3} {
		n.expect(`^block #1 \w+ [\d:]+: demo 70 bpm$`)
	}
	n3.type_("alice 80")
	for _, n := range []*proc{n1, n2, n3} {
		n.expect(`^block #2 \w+ [\d:]+: alice 80 bpm$`)
	}

	// Bad input gets one line and the node keeps going.
	for line, msg := range map[string]string{
		"abc":    `^not a heart rate: "abc"`,
		"-5":     `^-5 bpm is not a plausible heart rate`,
		"100000": `^100000 bpm is not a plausible heart rate`,
		"":       `^empty line`,
	} {
		n1.type_(line)
		n1.expect(msg)
	}
	n1.type_("help")
	n1.expect(`^  chain \[N\]`)
	n1.type_("chain")
	n1.expect(`^#0 \w+ genesis$`)
	n1.type_("peers")
	n1.expect(`^12D3\w+  /ip4/127\.0\.0\.1/.*height 2$`)

	// A fourth node, started later, catches up from the peer it dials.
	addr3 := n3.expect(`^  p2pchain node -l \d+ -d (/ip4/\S+)(?: -network \S+)?(?: -difficulty \d+)?$`)[1]
	n4 := start(t, "node4", "-l", "0", "-d", addr3)
	n4.expect(`"msg":"synced".*"height":2`) // logs are JSON when not on a terminal
	n4.type_("status")
	n4.expect(`^height 2, tip`)

	if n1.count(`block #1 `) != 1 || n2.count(`block #1 `) != 1 {
		t.Error("a block was shown twice")
	}
	for _, n := range []*proc{n4, n3, n2, n1} {
		n.stop()
	}
}

func TestBadFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"node", "-l", "70000"}, "a port is 0 to 65535"},
		{[]string{"node", "-subject", "a b"}, `subject "a b"`},
		{[]string{"node", "-d", "/ip4/127.0.0.1/tcp/1/notaprotocol"}, "want a full multiaddr such as"},
		{[]string{"node", "-d", "/ip4/127.0.0.1/tcp/1"}, "/p2p/"},
		{[]string{"node", "stray"}, "unexpected argument"},
		{[]string{"frobnicate"}, "unknown command"},
	}
	for _, tt := range tests {
		cmd := exec.Command(binary, tt.args...)
		cmd.Env = append(os.Environ(), "P2PCHAIN_HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tt.want) {
			t.Errorf("p2pchain %v: err %v, output %q; want failure mentioning %q", tt.args, err, out, tt.want)
		}
	}
}

// TestUnreachablePeerKeepsRunning: a well-formed address of a node that is
// not running is reported, and the node keeps going (and keeps trying).
func TestUnreachablePeerKeepsRunning(t *testing.T) {
	id, err := p2p.PeerID(p2p.KeyFromSeed(99))
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", freePort(t), id)
	n := start(t, "node", "-l", "0", "-d", addr)
	n.expect(`^could not connect to ` + regexp.QuoteMeta(addr))
	n.type_("status")
	n.expect(`^height 0, tip`)
	n.stop()
}

// TestOtherNetworkSaysWhy: a node dialling a node of another difficulty is
// refused with a reason that says which settings make a network and what
// to do, not only that the genesis differs.
func TestOtherNetworkSaysWhy(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real node processes")
	}
	t.Parallel()
	a := start(t, "difficulty 4", "node", "-l", "0", "-difficulty", "4", "-api", "off")
	addr := expectFrom(t, a, 0, `^  p2pchain node -l \d+ -d (/ip4/\S+)(?: -network \S+)?(?: -difficulty \d+)?$`)[1]
	b := start(t, "difficulty 5", "node", "-l", "0", "-difficulty", "5", "-api", "off", "-d", addr)
	m := b.expect(`"msg":"refusing peer".*"reason":"([^"]*)"`)
	for _, want := range []string{"another network", "network 'p2pchain' at difficulty 4", "this node 'p2pchain' at difficulty 5", "start a node with -network 'p2pchain' -difficulty 4"} {
		if !strings.Contains(m[1], want) {
			t.Errorf("refusal reason %q does not say %q", m[1], want)
		}
	}
	// The dial's own line says so too, and no line says "connected to"
	// the peer it refused.
	b.expect(`^could not connect to ` + regexp.QuoteMeta(addr) + `: .*another network`)
	if n := b.count(`^connected to `); n != 0 {
		t.Errorf("%d lines say connected to the refused peer", n)
	}
	b.stop()
	a.stop()
}

//go:build linux

package main

// A node in a real terminal (a pseudo-terminal the test holds): every way to
// stop it stops it within a couple of seconds with no key pressed, gives the
// terminal back as it was, and leaves unread what is typed after (issue 8,
// bug 2).

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// openPTY opens a pseudo-terminal pair.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	var unlock int32
	if err := ioctl(m, syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)); err != nil {
		m.Close()
		t.Skipf("unlock pty: %v", err)
	}
	var n uint32
	if err := ioctl(m, syscall.TIOCGPTN, unsafe.Pointer(&n)); err != nil {
		m.Close()
		t.Skipf("pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Skipf("open pty slave: %v", err)
	}
	return m, s
}

func ioctl(f *os.File, req uint, arg unsafe.Pointer) error {
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), uintptr(req), uintptr(arg)); e != 0 {
		return e
	}
	return nil
}

func termios(t *testing.T, f *os.File) syscall.Termios {
	t.Helper()
	var tio syscall.Termios
	if err := ioctl(f, syscall.TCGETS, unsafe.Pointer(&tio)); err != nil {
		t.Fatalf("TCGETS: %v", err)
	}
	return tio
}

// ttyNode is a node whose standard input, output and error are a terminal.
type ttyNode struct {
	t      *testing.T
	cmd    *exec.Cmd
	master *os.File
	slave  *os.File // kept open, as a shell keeps the terminal after the node ends
	exit   chan error

	mu  sync.Mutex
	out bytes.Buffer
}

func startTTY(t *testing.T, args ...string) *ttyNode {
	t.Helper()
	master, slave := openPTY(t)
	n := &ttyNode{t: t, master: master, slave: slave, exit: make(chan error, 1)}
	n.cmd = exec.Command(binary, args...)
	n.cmd.Env = append(os.Environ(), nodeEnv(t.TempDir())...)
	n.cmd.Stdin, n.cmd.Stdout, n.cmd.Stderr = slave, slave, slave
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := master.Read(buf)
			n.mu.Lock()
			n.out.Write(buf[:k])
			n.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() { n.exit <- n.cmd.Wait() }()
	t.Cleanup(func() {
		_ = n.cmd.Process.Kill()
		slave.Close()
		master.Close()
		if t.Failed() {
			t.Logf("terminal output:\n%s", n.output())
		}
	})
	return n
}

func (n *ttyNode) output() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.out.String()
}

// waitFor waits up to 30 s for the terminal to show text matching re.
func (n *ttyNode) waitFor(re string) {
	n.t.Helper()
	rx := regexp.MustCompile(re)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if rx.MatchString(n.output()) {
			return
		}
	}
	n.t.Fatalf("the terminal never showed %q", re)
}

func (n *ttyNode) typeKeys(s string) {
	n.t.Helper()
	if _, err := n.master.Write([]byte(s)); err != nil {
		n.t.Fatal(err)
	}
}

// waitExit waits up to limit for the node to exit and returns how long it
// took and its exit error.
func (n *ttyNode) waitExit(limit time.Duration) (time.Duration, error) {
	n.t.Helper()
	start := time.Now()
	select {
	case err := <-n.exit:
		return time.Since(start), err
	case <-time.After(limit):
		n.t.Fatalf("the node did not exit within %v", limit)
		return 0, nil
	}
}

func TestTerminalStops(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real node processes")
	}
	t.Parallel()
	for _, how := range []string{"quit", "exit", "ctrl-c", "ctrl-d", "SIGTERM", "SIGINT"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			n := startTTY(t, "node", "-l", "0", "-difficulty", "4", "-api", "off")
			before := termios(t, n.slave)
			n.waitFor(`help lists commands[\s\S]*> `)
			// The line editor has the terminal now (no echo, no line mode).
			if termios(t, n.slave).Lflag&syscall.ICANON != 0 {
				t.Fatal("the prompt runs with the terminal in line mode")
			}
			switch how {
			case "quit", "exit":
				n.typeKeys(how + "\r")
			case "ctrl-c":
				n.typeKeys("\x03")
			case "ctrl-d":
				n.typeKeys("\x04")
			case "SIGTERM":
				_ = n.cmd.Process.Signal(syscall.SIGTERM)
			case "SIGINT":
				_ = n.cmd.Process.Signal(syscall.SIGINT)
			}
			took, err := n.waitExit(10 * time.Second)
			if err != nil {
				t.Fatalf("exit: %v", err)
			}
			if took > 2*time.Second {
				t.Errorf("took %v to stop, want at most 2 s", took.Round(time.Millisecond))
			}
			// The process may be gone before the reader of the terminal has
			// read its last line: give it a moment.
			stopped := regexp.MustCompile(`stopped\r?\n`)
			for deadline := time.Now().Add(2 * time.Second); !stopped.MatchString(n.output()) && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			if !stopped.MatchString(n.output()) {
				t.Error("no 'stopped' line")
			}
			after := termios(t, n.slave)
			if after.Lflag != before.Lflag || after.Iflag != before.Iflag || after.Oflag != before.Oflag {
				t.Errorf("terminal not restored: lflag %#x iflag %#x oflag %#x, before %#x %#x %#x",
					after.Lflag, after.Iflag, after.Oflag, before.Lflag, before.Iflag, before.Oflag)
			}
			// What is typed next is the shell's: nothing read it.
			n.typeKeys("echo next\n")
			buf := make([]byte, 64)
			_ = n.slave.SetReadDeadline(time.Now().Add(5 * time.Second))
			k, err := n.slave.Read(buf)
			if err != nil || string(buf[:k]) != "echo next\n" {
				t.Errorf("the next line typed reached the shell as %q (%v), want \"echo next\\n\"", buf[:k], err)
			}
		})
	}
}

// TestSecondSignalForces: once the node is stopping, the next signal ends it
// at once; the first only asks it to stop.
func TestSecondSignalForces(t *testing.T) {
	type call struct {
		what string
		sig  os.Signal
	}
	run := func(pre func(cancelCtx func()), signals ...os.Signal) []call {
		var (
			mu    sync.Mutex
			calls []call
		)
		record := func(what string) func(os.Signal) {
			return func(s os.Signal) {
				mu.Lock()
				calls = append(calls, call{what, s})
				mu.Unlock()
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		sigs := make(chan os.Signal, len(signals))
		done := make(chan struct{})
		forced := record("force")
		go func() {
			watchSignals(ctx, sigs, func() { record("cancel")(nil); cancel() }, record("note"),
				func(s os.Signal) { forced(s); close(done) })
		}()
		if pre != nil {
			pre(cancel)
		}
		for _, s := range signals {
			sigs <- s
		}
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("no forced exit")
		}
		mu.Lock()
		defer mu.Unlock()
		return calls
	}
	got := run(nil, syscall.SIGTERM, syscall.SIGINT)
	want := []call{{"note", syscall.SIGTERM}, {"cancel", nil}, {"force", syscall.SIGINT}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("two signals: %v, want %v", got, want)
	}
	// Stopping for another reason (quit, p2pchain stop): the first signal forces.
	got = run(func(cancel func()) { cancel(); time.Sleep(50 * time.Millisecond) }, syscall.SIGINT)
	if fmt.Sprint(got) != fmt.Sprint([]call{{"force", syscall.SIGINT}}) {
		t.Errorf("signal while stopping: %v, want one forced exit", got)
	}
}

// TestTerminalSyncProgress: a node catching up in a terminal shows the sync
// as one progress line (the prompt), not a line per batch, and reports its
// end in one line.
func TestTerminalSyncProgress(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real node processes")
	}
	t.Parallel()
	const blocks = 6000
	p := toolParams(0)
	data := filepath.Join(t.TempDir(), "source")
	writeDataDir(t, data, p, buildChain(t, p, blocks, 1, tamper{}))
	src := startEnv(t, "source", nodeEnv(t.TempDir()), "node", "--data", data, "-l", "0", "-api", "off")
	addr := expectFrom(t, src, 0, `^  p2pchain node -l \d+ -d (/ip4/\S+)(?: -network \S+)?(?: -difficulty \d+)?$`)[1]

	n := startTTY(t, "node", "-l", "0", "-network", p.Name, "-difficulty", "0", "-api", "off", "-d", addr)
	n.waitFor(fmt.Sprintf(`synced %d blocks from \S+`, blocks))
	out := n.output()
	m := regexp.MustCompile(fmt.Sprintf(`synced %d blocks from \S+ in ([\d.]+)(ms|s) \(\d+ blocks/s\), now at #%d`, blocks, blocks)).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no end line with the duration and rate")
	}
	took, _ := time.ParseDuration(m[1] + m[2])
	t.Logf("%s; progress shown: %v", m[0], regexp.MustCompile(`sync \d+/\d+ blocks`).MatchString(out))
	if took > time.Second && !regexp.MustCompile(`sync \d+/\d+ blocks \d+%, \d+ blocks/s`).MatchString(out) {
		t.Errorf("a sync of %v showed no progress line", took)
	}
	for _, noise := range []string{"received ", "msg=syncing", "msg=synced"} {
		if strings.Contains(out, noise) {
			t.Errorf("the terminal shows %q: one line per batch", noise)
		}
	}
	n.typeKeys("quit\r")
	if _, err := n.waitExit(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	src.stop()
}

// TestTerminalOutputBeforePrompt: in a terminal, a command's output and the
// log lines end before the prompt is drawn again (never "> height 1" or
// "> time=..."), routine start-up logs stay out of the way, and once the
// node has stopped no prompt follows "stopped" (the shell's prompt would
// come after it: "> $").
func TestTerminalOutputBeforePrompt(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real node processes")
	}
	t.Parallel()
	home := t.TempDir()
	peer := startEnv(t, "peer", nodeEnv(home), "node", "--data", filepath.Join(home, "peer"), "-l", "0", "-difficulty", "4", "-api", "off")
	addr := expectFrom(t, peer, 0, `^  p2pchain node -l \d+ -d (/ip4/\S+)(?: -network \S+)?(?: -difficulty \d+)?$`)[1]
	data := filepath.Join(home, "tty")
	// The line editor draws its prompt as ">  \b" and erases it with "\r"
	// and control sequences before output: output right after the prompt
	// lands on the prompt's line.
	garbled := regexp.MustCompile(`> [ \x08]*(?:peer 12D|height \d|consensus |peers \d|time=|connected to|stopped)`)
	check := func(n *ttyNode, stop func()) {
		t.Helper()
		n.waitFor(`connected to ` + regexp.QuoteMeta(addr))
		for i := 0; i < 15; i++ {
			n.typeKeys("status\r")
			n.waitFor(fmt.Sprintf(`(?s)(?:pending readings \d+.*){%d}`, i+1))
		}
		stop()
		if _, err := n.waitExit(10 * time.Second); err != nil {
			t.Fatalf("exit: %v", err)
		}
		n.waitFor(`stopped\r?\n`)
		time.Sleep(200 * time.Millisecond) // what the node wrote last, if anything
		out := n.output()
		if m := garbled.FindString(out); m != "" {
			i := strings.Index(out, m)
			t.Errorf("output after a fresh prompt: %q in %q", m, out[max(0, i-600):min(len(out), i+300)])
		}
		for _, routine := range []string{`msg="connected to bootstrap peer"`, `msg="loaded the peerstore file"`} {
			if strings.Contains(out, routine) {
				t.Errorf("the terminal shows the routine log line %s", routine)
			}
		}
		if tail := out[strings.LastIndex(out, "stopped"):]; strings.Contains(tail, ">") {
			t.Errorf("a prompt after the node stopped: %q", tail)
		}
	}
	n := startTTY(t, "node", "--data", data, "-l", "0", "-difficulty", "4", "-api", "off", "-d", addr)
	check(n, func() { n.typeKeys("QUIT\r") })
	// Again with the peer in the peerstore file, stopped by p2pchain stop.
	n = startTTY(t, "node", "--data", data, "-l", "0", "-difficulty", "4", "-api", "127.0.0.1:0", "-d", addr)
	check(n, func() {
		if r := runCLI(t, home, home, "stop", "--data", data); r.code != 0 {
			t.Errorf("p2pchain stop:\n%s", r)
		}
	})
	peer.stop()
}

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chzyer/readline"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// console reads the user's lines and writes the node's output. In a terminal
// it is a line editor whose prompt is redrawn below any output, so blocks
// arriving while the user types never garble the line being typed.
type console interface {
	ReadLine() (string, error) // io.EOF at end of input, errInterrupt on Ctrl-C
	Out() io.Writer
	Interactive() bool
	SetPrompt(string) // in a terminal: what the prompt shows before "> "
	// Close ends a ReadLine in progress at once, without waiting for a key,
	// and gives the terminal back as it was.
	Close() error
	// Restore gives the terminal back as it was, for a forced exit.
	Restore()
}

var errInterrupt = errors.New("interrupted")

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && readline.IsTerminal(int(f.Fd()))
}

func newConsole(in *os.File, out io.Writer) (console, error) {
	if readline.IsTerminal(int(in.Fd())) && readline.IsTerminal(int(os.Stdout.Fd())) {
		// The line editor reads stdin on a goroutine of its own; its Close
		// waits for that read to end. Through a cancelable reader, closing
		// ends the read at once instead of at the next key.
		stdin := readline.NewCancelableStdin(in)
		screen := &gate{w: os.Stdout}
		rl, err := readline.NewEx(&readline.Config{Prompt: "> ", HistoryLimit: 200, InterruptPrompt: "^C", Stdin: stdin, Stdout: screen})
		if err != nil {
			return nil, fmt.Errorf("terminal: %w", err)
		}
		return &ttyConsole{rl: rl, stdin: stdin, screen: screen}, nil
	}
	return &plainConsole{in: bufio.NewScanner(in), out: out}, nil
}

type ttyConsole struct {
	rl     *readline.Instance
	stdin  *readline.CancelableStdin
	screen *gate // the terminal, as the line editor writes to it
	once   sync.Once
	out    sync.Mutex // one write to the terminal at a time

	mu      sync.Mutex
	closed  bool
	reading chan struct{} // while a ReadLine runs; closed when it returns
}

func (c *ttyConsole) ReadLine() (string, error) {
	c.mu.Lock()
	if c.closed {
		// A line editor called after Close draws its prompt once more,
		// after "stopped", and the shell's prompt would follow it.
		c.mu.Unlock()
		return "", io.EOF
	}
	done := make(chan struct{})
	c.reading = done
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.reading = nil
		c.mu.Unlock()
		close(done)
	}()
	line, err := c.rl.Readline()
	if errors.Is(err, readline.ErrInterrupt) {
		return "", errInterrupt
	}
	return line, err
}

// inReadLine reports whether a ReadLine is running.
func (c *ttyConsole) inReadLine() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reading != nil
}

func (c *ttyConsole) Out() io.Writer    { return ttyWriter{c} }
func (c *ttyConsole) Interactive() bool { return true }
func (c *ttyConsole) SetPrompt(p string) {
	c.rl.SetPrompt(p + "> ")
	c.rl.Refresh()
}
func (c *ttyConsole) Close() error {
	var err error
	c.once.Do(func() {
		c.mu.Lock()
		c.closed = true
		reading := c.reading
		c.mu.Unlock()
		c.stdin.Close() // first: it ends the editor's pending read
		err = c.rl.Close()
		if reading != nil {
			select {
			case <-reading:
			case <-time.After(time.Second):
			}
		}
		// Closed in the middle of a read, the editor may leave its prompt
		// on the line, or draw it once more a moment later: erase the line
		// and write nothing of the editor's from now on, so that "stopped"
		// and then the shell's prompt start at the margin.
		c.out.Lock()
		c.screen.close(eraseLine)
		c.out.Unlock()
	})
	return err
}

// gate passes writes to w until it is closed, and drops them after.
type gate struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func (g *gate) Write(b []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return len(b), nil
	}
	return g.w.Write(b)
}

// close writes last and closes the gate.
func (g *gate) close(last string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		_, _ = io.WriteString(g.w, last)
		g.closed = true
	}
}

// isClosed reports whether the gate is closed.
func (g *gate) isClosed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// ttyWriter writes the node's output above the prompt. While the line
// editor reads keys it erases its prompt, writes and draws the prompt
// again. But it draws the prompt a moment before it marks itself reading,
// and still counts as reading a moment after the line has ended: output in
// those moments would land after a prompt ("> height 1"). So a write waits,
// briefly, for a read that is starting, and a write with no read in
// progress goes straight to the terminal, erasing first any prompt the
// editor left as its read ended.
type ttyWriter struct{ c *ttyConsole }

// eraseLine moves to the line's start and clears it.
const eraseLine = "\r\x1b[K"

func (w ttyWriter) Write(b []byte) (int, error) {
	w.c.out.Lock()
	defer w.c.out.Unlock()
	if w.c.screen.isClosed() { // the editor is gone: straight to the terminal
		return w.c.screen.w.Write(b)
	}
	for deadline := time.Now().Add(200 * time.Millisecond); w.c.inReadLine() && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if w.c.rl.Terminal.IsReading() {
			return w.c.rl.Stdout().Write(b)
		}
	}
	if _, err := io.WriteString(w.c.screen, eraseLine); err != nil {
		return 0, err
	}
	return w.c.screen.Write(b)
}

func (c *ttyConsole) Restore() { _ = c.rl.Terminal.ExitRawMode() }

// plainConsole serves pipes and files: no prompt, no line editing.
type plainConsole struct {
	in  *bufio.Scanner
	out io.Writer
}

func (c *plainConsole) ReadLine() (string, error) {
	if c.in.Scan() {
		return c.in.Text(), nil
	}
	if err := c.in.Err(); err != nil {
		return "", err
	}
	return "", io.EOF
}
func (c *plainConsole) Out() io.Writer    { return c.out }
func (c *plainConsole) Interactive() bool { return false }
func (c *plainConsole) SetPrompt(string)  {}
func (c *plainConsole) Close() error      { return nil }
func (c *plainConsole) Restore()          {}

// input is one parsed line typed at the prompt.
type input struct {
	cmd     string // a command name, or "" for a reading
	arg     int    // the command's numeric argument, if any
	subject string // for a reading
	bpm     int
	// approve: the membership change an operator approves.
	op, peer string
	height   uint64
}

const promptHelp = `type a heart rate to add a reading:
  72          a reading for the default subject
  alice 72    a reading for subject alice
commands:
  status      this node's chain and network
  peers       connected peers
  chain [N]   the last N blocks (default 10)
  approve add|remove PEERID [HEIGHT]
              (authority networks) approve adding or removing an authority
  help        this text
  quit        stop the node (exit, Ctrl-C and Ctrl-D too)
subjects are case-sensitive: alice and Alice are two subjects`

// parseInput reads a prompt line. Commands come first; anything else must be
// a reading: "BPM" or "SUBJECT BPM".
func parseInput(line, defaultSubject string) (input, error) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return input{}, errors.New("empty line: type a heart rate such as 72, or help")
	}
	switch strings.ToLower(f[0]) {
	case "help", "?", "status", "peers", "quit", "exit":
		if len(f) > 1 {
			return input{}, fmt.Errorf("%s takes no arguments", f[0])
		}
		cmd := strings.ToLower(f[0])
		if cmd == "?" {
			cmd = "help"
		}
		if cmd == "exit" {
			cmd = "quit"
		}
		return input{cmd: cmd}, nil
	case "approve":
		// "approve 72" stays a reading of subject approve.
		if len(f) >= 2 && (f[1] == "add" || f[1] == "remove") {
			in := input{cmd: "approve", op: f[1]}
			if len(f) < 3 || len(f) > 4 {
				return input{}, errors.New("usage: approve add|remove PEERID [HEIGHT]")
			}
			in.peer = f[2]
			if len(f) == 4 {
				h, err := strconv.ParseUint(f[3], 10, 64)
				if err != nil {
					return input{}, fmt.Errorf("approve: height %q must be a block height", f[3])
				}
				in.height = h
			}
			return in, nil
		}
	case "chain", "blocks":
		in := input{cmd: "chain", arg: 10}
		if len(f) > 2 {
			return input{}, errors.New("usage: chain [N]")
		}
		if len(f) == 2 {
			n, err := strconv.Atoi(f[1])
			if err != nil || n < 1 {
				return input{}, fmt.Errorf("chain %s: N must be a positive number of blocks", f[1])
			}
			in.arg = n
		}
		return in, nil
	}
	subject, rate := defaultSubject, f[0]
	switch len(f) {
	case 1:
	case 2:
		subject, rate = f[0], f[1]
	default:
		return input{}, fmt.Errorf("not a reading: %q (type 72, or alice 72; help lists commands)", line)
	}
	bpm, err := strconv.Atoi(rate)
	if err != nil {
		return input{}, fmt.Errorf("not a heart rate: %q (type a whole number of beats per minute such as 72, or help)", rate)
	}
	if bpm < chain.MinBPM || bpm > chain.MaxBPM {
		return input{}, fmt.Errorf("%d bpm is not a plausible heart rate: type a number from %d to %d", bpm, chain.MinBPM, chain.MaxBPM)
	}
	if err := chain.CheckSubject(subject); err != nil {
		return input{}, fmt.Errorf("subject %q: %v (use up to %d letters, digits or punctuation, no spaces)", subject, err, chain.MaxSubjectLen)
	}
	return input{subject: subject, bpm: bpm}, nil
}

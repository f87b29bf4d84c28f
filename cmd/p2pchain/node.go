package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/p2p"
)

// listFlag collects a flag given several times or as a comma-separated list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

type nodeFlags struct {
	port       int
	ip         string
	dial       listFlag
	seed       int64
	secio      bool
	subject    string
	network    string
	difficulty int
	logLevel   string
}

func parseNodeFlags(args []string, stderr io.Writer) (nodeFlags, error) {
	var f nodeFlags
	fs := flag.NewFlagSet("p2pchain node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&f.port, "l", 0, "port to listen on, TCP and QUIC (0: any free port)")
	fs.StringVar(&f.ip, "ip", "127.0.0.1", "address to listen on (0.0.0.0 for every interface)")
	fs.Var(&f.dial, "d", "multiaddr of a peer to dial, e.g. /ip4/127.0.0.1/tcp/10000/p2p/12D3KooW... (repeatable)")
	fs.Int64Var(&f.seed, "seed", 0, "derive a fixed identity from this number, for demos (0: random identity)")
	fs.BoolVar(&f.secio, "secio", false, "accepted for the classic demo; connections are always encrypted")
	fs.StringVar(&f.subject, "subject", "demo", "subject of readings typed as a bare number")
	fs.StringVar(&f.network, "network", chain.DefaultParams().Name, "network name (nodes of different networks refuse each other)")
	fs.IntVar(&f.difficulty, "difficulty", int(chain.DefaultDifficulty), "proof-of-work difficulty in leading zero bits (part of the network's identity)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: p2pchain node [-l PORT] [-d MULTIADDR] [-seed N] [flags]")
		fmt.Fprintln(stderr, "\nRuns a node. In a terminal it shows a > prompt: type a heart rate to add a reading.")
		fmt.Fprintln(stderr, "\nFlags (one dash or two):")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected argument %q (flags start with -; see p2pchain node -h)", fs.Arg(0))
	}
	if f.port < 0 || f.port > 65535 {
		return f, fmt.Errorf("-l %d: a port is 0 to 65535", f.port)
	}
	if f.difficulty < 0 || f.difficulty > chain.MaxDifficulty {
		return f, fmt.Errorf("-difficulty %d: must be 0 to %d", f.difficulty, chain.MaxDifficulty)
	}
	if err := chain.CheckSubject(f.subject); err != nil {
		return f, fmt.Errorf("-subject %q: %w", f.subject, err)
	}
	return f, nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("-log-level %q: use debug, info, warn or error", s)
	}
	return l, nil
}

func runNode(args []string, stdout, stderr io.Writer) error {
	f, err := parseNodeFlags(args, stderr)
	if err != nil {
		return err
	}
	level, err := parseLevel(f.logLevel)
	if err != nil {
		return err
	}
	params := chain.DefaultParams()
	params.Name, params.Difficulty = f.network, uint32(f.difficulty)
	if err := params.Validate(); err != nil {
		return err
	}

	var key ed25519.PrivateKey
	if f.seed != 0 {
		key = p2p.KeyFromSeed(f.seed)
	} else if key, err = p2p.GenerateKey(); err != nil {
		return err
	}

	con, err := newConsole(os.Stdin, stdout)
	if err != nil {
		return err
	}
	defer con.Close()
	out := con.Out()
	logOut := io.Writer(stderr)
	if con.Interactive() {
		logOut = out
	}
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	n, err := node.New(params, key, node.WithLogger(log))
	if err != nil {
		return err
	}
	h, err := p2p.New(ctx, n, p2p.WithKey(key), p2p.WithLogger(log),
		p2p.WithListenAddrs(p2p.ListenAddrs(f.ip, f.port)...))
	if err != nil {
		if strings.Contains(err.Error(), "address already in use") {
			return fmt.Errorf("port %d is in use: another node may be running there; pick another with -l", f.port)
		}
		return err
	}
	defer h.Close()

	if f.secio {
		fmt.Fprintln(out, "note: -secio is not needed: every connection is always encrypted (Noise or TLS 1.3)")
	}
	printBanner(out, params, n.Status().Genesis, h, f.port)

	events, unsubscribe := n.Subscribe(4096)
	defer unsubscribe()
	go printEvents(out, events)

	minerDone := make(chan struct{})
	go func() {
		defer close(minerDone)
		_ = n.Run(ctx, h)
	}()

	for _, a := range f.dial {
		dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		if err := h.Connect(dctx, a); err != nil {
			fmt.Fprintf(out, "could not connect to %s: %v\n  check that the node there runs and that the address ends in /p2p/<its peer ID>\n", a, err)
		} else {
			fmt.Fprintf(out, "connected to %s\n", a)
		}
		cancel()
	}

	repl(ctx, con, n, h, f.subject, stop)
	stop()
	<-minerDone
	fmt.Fprintln(out, "stopped")
	return nil
}

func printBanner(out io.Writer, params chain.Params, genesis chain.Hash, h *p2p.Host, port int) {
	fmt.Fprintf(out, "p2pchain node %s\n", h.ID())
	fmt.Fprintf(out, "network %q, genesis %s, difficulty %d\n", params.Name, genesis.Short(), params.Difficulty)
	fmt.Fprintln(out, "listening on:")
	for _, a := range h.Addrs() {
		fmt.Fprintf(out, "  %s\n", a)
	}
	if a := h.TCPAddr(); a != nil {
		next := 0
		if port != 0 {
			next = port + 1
		}
		fmt.Fprintf(out, "start another node with:\n  p2pchain node -l %d -d %s\n", next, a)
	}
	fmt.Fprintln(out, `type a heart rate (72, or "alice 72") to add a reading; help lists commands`)
}

// repl reads prompt lines until the user quits or ctx ends.
func repl(ctx context.Context, con console, n *node.Node, h *p2p.Host, subject string, stop func()) {
	lines := make(chan string)
	go func() {
		defer close(lines)
		for {
			line, err := con.ReadLine()
			if errors.Is(err, errInterrupt) || (err != nil && con.Interactive()) {
				stop() // Ctrl-C or Ctrl-D in a terminal
				return
			}
			if err != nil {
				return // end of piped input: keep running until a signal
			}
			select {
			case lines <- line:
			case <-ctx.Done():
				return
			}
		}
	}()
	out := con.Out()
	for {
		select {
		case <-ctx.Done():
			_ = con.Close() // unblock the reader
			return
		case line, ok := <-lines:
			if !ok {
				lines = nil
				continue
			}
			in, err := parseInput(line, subject)
			if err != nil {
				fmt.Fprintln(out, err)
				continue
			}
			switch in.cmd {
			case "":
				r, err := n.Submit(in.subject, in.bpm)
				if err != nil {
					fmt.Fprintf(out, "reading not added: %v\n", err)
					continue
				}
				id := r.ID()
				fmt.Fprintf(out, "reading %s: %s %d bpm, pending (mining)\n", id.Short(), r.Subject, r.BPM)
			case "help":
				fmt.Fprintln(out, promptHelp)
			case "status":
				printStatus(out, n, h)
			case "peers":
				printPeers(out, h)
			case "chain":
				printChain(out, n, in.arg)
			case "quit":
				stop()
			}
		}
	}
}

func printStatus(out io.Writer, n *node.Node, h *p2p.Host) {
	st := n.Status()
	fmt.Fprintf(out, "peer %s\n", h.ID())
	fmt.Fprintf(out, "height %d, tip %s, work %s\n", st.Height, st.Tip.Short(), st.Work)
	fmt.Fprintf(out, "peers %d (%d in the block gossip mesh), pending readings %d\n", len(h.Peers()), h.MeshPeers(), n.Pending())
	if s := h.Sync(); s.Syncing {
		fmt.Fprintf(out, "syncing from %s: height %d of %d\n", s.Peer, s.Height, s.Target)
	}
}

func printPeers(out io.Writer, h *p2p.Host) {
	peers := h.Peers()
	if len(peers) == 0 {
		fmt.Fprintln(out, "no peers: start another node with -d pointing at this one")
		return
	}
	for _, p := range peers {
		addr := ""
		if len(p.Addrs) > 0 {
			addr = p.Addrs[0].String()
		}
		fmt.Fprintf(out, "%s  %s  height %d\n", p.ID, addr, p.Height)
	}
}

func printChain(out io.Writer, n *node.Node, count int) {
	for _, b := range n.Blocks(n.Status().Height, count) {
		fmt.Fprintln(out, blockLine(b))
	}
}

// blockLine describes a block in one line.
func blockLine(b *chain.Block) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "#%d %s", b.Header.Height, b.Hash().Short())
	if b.Header.Height == 0 {
		sb.WriteString(" genesis")
		return sb.String()
	}
	fmt.Fprintf(&sb, " %s", time.UnixMilli(b.Header.Time).UTC().Format("15:04:05"))
	for i, r := range b.Readings {
		if i == 3 {
			fmt.Fprintf(&sb, " (+%d more)", len(b.Readings)-3)
			break
		}
		sep := ","
		if i == 0 {
			sep = ":"
		}
		fmt.Fprintf(&sb, "%s %s %d bpm", sep, r.Subject, r.BPM)
	}
	return sb.String()
}

// printEvents shows new blocks as they join the main chain. When many arrive
// at once (a sync), it prints one summary line instead of one per block.
func printEvents(out io.Writer, events <-chan node.Event) {
	for e := range events {
		batch := []node.Event{e}
	drain:
		for len(batch) < 1000 {
			select {
			case more, ok := <-events:
				if !ok {
					break drain
				}
				batch = append(batch, more)
			default:
				break drain
			}
		}
		var connected []*chain.Block
		for _, ev := range batch {
			if d := len(ev.Update.Disconnected); d > 0 {
				fmt.Fprintf(out, "reorganisation: %d block(s) replaced by a chain with more work; %d reading(s) back to pending\n",
					d, len(ev.Update.Returned))
			}
			connected = append(connected, ev.Update.Connected...)
		}
		last := batch[len(batch)-1]
		if len(connected) <= 5 {
			for _, b := range connected {
				fmt.Fprintf(out, "block %s\n", blockLine(b))
			}
		} else {
			fmt.Fprintf(out, "received %d blocks, now at #%d %s\n", len(connected), last.Height, last.Tip.Short())
		}
	}
}

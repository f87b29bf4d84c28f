package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/datadir"
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

// nodeFlags are the node command's flags beyond the config file's settings.
type nodeFlags struct {
	data  string
	seed  int64
	secio bool
	dial  listFlag
	peers listFlag
	set   map[string]bool // flags given on the command line
}

func parseNodeFlags(args []string, stderr io.Writer) (nodeConfig, nodeFlags, error) {
	cfg := defaultNodeConfig()
	f := nodeFlags{set: map[string]bool{}}
	fs := flag.NewFlagSet("p2pchain node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&cfg.Port, "l", cfg.Port, "port to listen on, TCP and QUIC (0: any free port)")
	fs.StringVar(&cfg.IP, "ip", cfg.IP, "address to listen on (0.0.0.0 for every interface)")
	fs.Var(&f.dial, "d", "multiaddr of a peer to dial, e.g. /ip4/127.0.0.1/tcp/10000/p2p/12D3KooW... (repeatable)")
	fs.Var(&f.peers, "peer", "bootstrap peer multiaddr, kept connected (repeatable; adds to the config file's peers)")
	fs.Int64Var(&f.seed, "seed", 0, "derive a fixed identity from this number, for demos (0: the data directory's identity)")
	fs.BoolVar(&f.secio, "secio", false, "accepted for the classic demo; connections are always encrypted")
	fs.StringVar(&f.data, "data", "", "data directory (default $"+envData+", or ~/.p2pchain/node-PORT)")
	fs.StringVar(&cfg.Subject, "subject", cfg.Subject, "subject of readings typed as a bare number")
	fs.StringVar(&cfg.Network, "network", cfg.Network, "network name (nodes of different networks refuse each other)")
	fs.IntVar(&cfg.Difficulty, "difficulty", cfg.Difficulty, "proof-of-work difficulty in leading zero bits (part of the network's identity)")
	fs.BoolVar(&cfg.MDNS, "mdns", cfg.MDNS, "find peers on the LAN by mDNS (idle while listening on loopback only)")
	fs.BoolVar(&cfg.DHT, "dht", cfg.DHT, "find peers through the Kademlia DHT, by rendezvous on the network name")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "log level: debug, info, warn or error")
	fs.StringVar(&cfg.API, "api", cfg.API, `HTTP API and explorer address, e.g. 127.0.0.1:5001 ("off" to disable)`)
	fs.StringVar(&cfg.Checkpoint, "checkpoint", cfg.Checkpoint, "HEIGHT:HASH of a block this node requires on its chain (from a node you trust)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: p2pchain node [-l PORT] [-d MULTIADDR] [-seed N] [flags]")
		fmt.Fprintln(stderr, "\nRuns a node. In a terminal it shows a > prompt: type a heart rate to add a reading.")
		fmt.Fprintln(stderr, "Settings come from the config file in the data directory; flags override them.")
		fmt.Fprintln(stderr, "\nFlags (one dash or two):")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, f, err
	}
	if fs.NArg() > 0 {
		return cfg, f, fmt.Errorf("unexpected argument %q (flags start with -; see p2pchain node -h)", fs.Arg(0))
	}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	return cfg, f, nil
}

// envData names the environment variable that sets the data directory.
const envData = "P2PCHAIN_DATA"

// merge applies the flags given on the command line over the file's config.
func (f nodeFlags) merge(file, flags nodeConfig) nodeConfig {
	cfg := file
	for name, apply := range map[string]func(){
		"l":          func() { cfg.Port = flags.Port },
		"ip":         func() { cfg.IP = flags.IP },
		"subject":    func() { cfg.Subject = flags.Subject },
		"network":    func() { cfg.Network = flags.Network },
		"difficulty": func() { cfg.Difficulty = flags.Difficulty },
		"mdns":       func() { cfg.MDNS = flags.MDNS },
		"dht":        func() { cfg.DHT = flags.DHT },
		"log-level":  func() { cfg.LogLevel = flags.LogLevel },
		"api":        func() { cfg.API = flags.API },
	} {
		if f.set[name] {
			apply()
		}
	}
	cfg.Peers = append(append([]string(nil), cfg.Peers...), f.peers...)
	return cfg
}

func (c nodeConfig) check() error {
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("port %d: a port is 0 to 65535", c.Port)
	}
	if c.Difficulty < 0 || c.Difficulty > chain.MaxDifficulty {
		return fmt.Errorf("difficulty %d: must be 0 to %d", c.Difficulty, chain.MaxDifficulty)
	}
	if err := chain.CheckSubject(c.Subject); err != nil {
		return fmt.Errorf("subject %q: %w", c.Subject, err)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return err
	}
	return nil
}

func (c nodeConfig) params() (chain.Params, error) {
	p := chain.DefaultParams()
	p.Name, p.Difficulty = c.Network, uint32(c.Difficulty)
	return p, p.Validate()
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("log level %q: use debug, info, warn or error", s)
	}
	return l, nil
}

// openDataDir opens the data directory the flags name, or the default one.
func openDataDir(f nodeFlags, port int) (*datadir.Dir, error) {
	path, err := dirFlags{data: f.data, port: port}.path()
	if err != nil {
		return nil, err
	}
	return datadir.Open(path)
}

func runNode(args []string, stdout, stderr io.Writer) error {
	flags, f, err := parseNodeFlags(args, stderr)
	if err != nil {
		return err
	}
	if err := flags.check(); err != nil {
		return err
	}
	dir, err := openDataDir(f, flags.Port)
	if err != nil {
		return err
	}
	defer dir.Close()
	file, err := loadConfig(dir, flags)
	if err != nil {
		return err
	}
	if err := applyEnv(&file, os.Getenv); err != nil {
		return err
	}
	cfg := f.merge(file, flags)
	if err := cfg.check(); err != nil {
		return fmt.Errorf("%w (from %s)", err, dir.File(datadir.ConfigFile))
	}
	params, err := cfg.params()
	if err != nil {
		return err
	}
	level, _ := parseLevel(cfg.LogLevel)

	key, _, err := dir.Key()
	if err != nil {
		return err
	}
	if f.seed != 0 {
		key = p2p.KeyFromSeed(f.seed)
	}

	con, err := newConsole(os.Stdin, stdout)
	if err != nil {
		return err
	}
	defer con.Close()
	out := con.Out()
	// Logs are text for people at a terminal and JSON for log collectors.
	var log *slog.Logger
	opts := &slog.HandlerOptions{Level: level}
	switch {
	case con.Interactive():
		log = slog.New(slog.NewTextHandler(out, opts))
	case isTerminal(stderr):
		log = slog.New(slog.NewTextHandler(stderr, opts))
	default:
		log = slog.New(slog.NewJSONHandler(stderr, opts))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	st, state, err := openStore(dir, params)
	if err != nil {
		return err
	}
	defer st.Close()
	cp, err := parseCheckpoint(cfg.Checkpoint)
	if err != nil {
		return err
	}
	n, err := node.New(params, key, node.WithLogger(log), node.WithStore(st, state), node.WithCheckpoint(cp))
	if err != nil {
		return fmt.Errorf("%w (check the store with p2pchain verify --data %s)", err, dir.Path())
	}
	h, err := p2p.New(ctx, n, p2p.WithKey(key), p2p.WithLogger(log),
		p2p.WithListenAddrs(p2p.ListenAddrs(cfg.IP, cfg.Port)...),
		p2p.WithBootstrap(append(append([]string(nil), cfg.Peers...), f.dial...)...),
		p2p.WithMDNS(cfg.MDNS && !isLoopback(cfg.IP)),
		p2p.WithDHT(cfg.DHT),
		p2p.WithPeerstoreFile(dir.File(datadir.PeerstoreFile)))
	if err != nil {
		if strings.Contains(err.Error(), "address already in use") {
			return fmt.Errorf("port %d is in use: another node may be running there; pick another with -l", cfg.Port)
		}
		return err
	}
	defer h.Close()

	apiURL, apiDone, err := startAPI(ctx, dir, cfg.API, n, h, log)
	if err != nil {
		return err
	}
	defer func() {
		stop()
		<-apiDone
	}()

	if f.secio {
		fmt.Fprintln(out, "note: -secio is not needed: every connection is always encrypted (Noise or TLS 1.3)")
	}
	printBanner(out, params, n.Status(), h, cfg.Port, dir.Path())
	if apiURL != "" {
		fmt.Fprintf(out, "explorer and API: %s/\n", apiURL)
	}

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

	repl(ctx, con, n, h, cfg.Subject, stop)
	stop()
	<-minerDone
	if err := n.Err(); err != nil {
		return err
	}
	fmt.Fprintln(out, "stopped")
	return nil
}

func isLoopback(ip string) bool {
	a := net.ParseIP(ip)
	return a != nil && a.IsLoopback()
}

func printBanner(out io.Writer, params chain.Params, st chain.Status, h *p2p.Host, port int, data string) {
	fmt.Fprintf(out, "p2pchain node %s\n", h.ID())
	fmt.Fprintf(out, "network %q, genesis %s, difficulty %d\n", params.Name, st.Genesis.Short(), params.Difficulty)
	fmt.Fprintf(out, "data %s, height %d, tip %s\n", data, st.Height, st.Tip.Short())
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
		case <-n.Done():
			fmt.Fprintln(out, n.Err())
			stop()
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
				// The full id is the receipt: p2pchain readings and the
				// explorer find the reading by it.
				fmt.Fprintf(out, "reading %s: %s %d bpm, pending (mining)\n", r.ID(), r.Subject, r.BPM)
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

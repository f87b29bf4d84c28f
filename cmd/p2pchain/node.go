package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/p2pchain/p2pchain/internal/bft"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/datadir"
	"github.com/p2pchain/p2pchain/internal/netfile"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/p2p"
	"github.com/p2pchain/p2pchain/internal/store"
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
	prof  string // --cpuprofile
	dial  listFlag
	peers listFlag
	set   map[string]bool // flags given on the command line
}

var nodeHelp = help{
	usage: "[-l PORT] [-d MULTIADDR] [-seed N] [flags]",
	about: []string{"Runs a node. In a terminal it shows a > prompt: type a heart rate (72, or alice 72)",
		"to add a reading, help for the prompt's commands, quit to stop. Ctrl-C, SIGTERM and",
		"p2pchain stop stop it too (a second Ctrl-C or signal forces the exit).",
		"",
		"Settings come from config.toml in the data directory, then P2PCHAIN_* environment",
		"variables, then these flags. The data directory is --data DIR, else $P2PCHAIN_DATA,",
		"else ~/.p2pchain/node-PORT with -l PORT (~/.p2pchain/default without)."},
	examples: []string{
		"node -l 10000 -seed 1",
		"node -l 10001 -d /ip4/127.0.0.1/tcp/10000/p2p/12D3KooW...",
		"node --data /srv/p2pchain -ip 0.0.0.0 -l 10000 -peer /ip4/192.0.2.7/tcp/10000/p2p/12D3KooW...",
	},
}

// nodeFlagSet returns the node command's flags, which set cfg and f.
func nodeFlagSet(cfg *nodeConfig, f *nodeFlags, stdout io.Writer) *cmdFlags {
	fs := newCmdFlags("node", nodeHelp, stdout)
	fs.IntVar(&cfg.Port, "l", cfg.Port, "`PORT` to listen on, TCP and QUIC (0: any free port)")
	fs.StringVar(&cfg.IP, "ip", cfg.IP, "`ADDRESS` to listen on (0.0.0.0 for every interface)")
	fs.Var(&f.dial, "d", "`MULTIADDR` of a peer to dial, e.g. /ip4/127.0.0.1/tcp/10000/p2p/12D3KooW... (repeatable)")
	fs.Var(&f.peers, "peer", "bootstrap peer `MULTIADDR`, kept connected (repeatable; adds to the config file's peers)")
	fs.Int64Var(&f.seed, "seed", 0, "derive a fixed identity from `N`, for demos (0: the data directory's identity)")
	fs.BoolVar(&f.secio, "secio", false, "accepted for the classic demo; connections are always encrypted")
	fs.StringVar(&f.prof, "cpuprofile", "", "write a CPU profile of the node to `FILE` until it stops (go tool pprof FILE)")
	fs.StringVar(&f.data, "data", "", "data directory `DIR` (default $"+envData+", else ~/.p2pchain/node-PORT with -l PORT, else ~/.p2pchain/default)")
	fs.StringVar(&cfg.Subject, "subject", cfg.Subject, "`SUBJECT` of readings typed as a bare number (case-sensitive)")
	fs.StringVar(&cfg.Network, "network", cfg.Network, "network `NAME` (nodes of different networks refuse each other)")
	fs.IntVar(&cfg.Difficulty, "difficulty", cfg.Difficulty, "proof-of-work difficulty in leading zero `BITS` (part of the network's identity)")
	fs.StringVar(&cfg.NetworkFile, "network-file", cfg.NetworkFile, "run the authority network of network `FILE` (p2pchain network new), instead of -network and -difficulty")
	fs.BoolVar(&cfg.MDNS, "mdns", cfg.MDNS, "find peers on the LAN by mDNS (idle while listening on loopback only)")
	fs.BoolVar(&cfg.DHT, "dht", cfg.DHT, "find peers through the Kademlia DHT, by rendezvous on the network's genesis hash")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "log `LEVEL`: debug, info, warn or error")
	fs.StringVar(&cfg.API, "api", cfg.API, fmt.Sprintf("HTTP API and explorer `ADDRESS` (HOST:PORT; on port %d the next free port up to %d is taken if it is in use; \"off\" to disable)", DefaultAPIPort, lastAPIPort))
	fs.StringVar(&cfg.Checkpoint, "checkpoint", cfg.Checkpoint, "`HEIGHT:HASH` of a block this node requires on its chain (from a node you trust)")
	return fs
}

func parseNodeFlags(args []string, stdout io.Writer) (nodeConfig, nodeFlags, error) {
	cfg := defaultNodeConfig()
	f := nodeFlags{set: map[string]bool{}}
	fs := nodeFlagSet(&cfg, &f, stdout)
	pos, err := fs.parse(args)
	if err != nil {
		return cfg, f, err
	}
	if len(pos) > 0 {
		return cfg, f, usagef("node", "unexpected argument %q (flags start with -)", pos[0])
	}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	if err := conflictingFlags("node", f.set); err != nil {
		return cfg, f, err
	}
	// A peer address is checked here, not when the node dials it, so that
	// a mistyped one is a command-line mistake (status 2) said at once.
	for _, d := range []struct {
		flag  string
		addrs []string
	}{{"d", f.dial}, {"peer", f.peers}} {
		for _, a := range d.addrs {
			if _, err := p2p.ParsePeerAddr(a); err != nil {
				return cfg, f, usagef("node", "-%s: %v%s", d.flag, err, hostPortHint(a))
			}
		}
	}
	for _, s := range settings {
		if f.set[s.flag] {
			if err := cfg.checkKey(s.key); err != nil {
				return cfg, f, &usageError{cmd: "node", err: fmt.Errorf("-%s: %w", s.flag, err)}
			}
		}
	}
	return cfg, f, nil
}

// hostPortHint says how to write HOST:PORT as a peer multiaddr, or "".
func hostPortHint(a string) string {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return ""
	}
	proto := "ip4"
	if ip := net.ParseIP(host); ip == nil {
		proto = "dns"
	} else if ip.To4() == nil {
		proto = "ip6"
	}
	return fmt.Sprintf("; for %s that is /%s/%s/tcp/%s/p2p/<its peer ID>: %s", a, proto, host, port, whereAddrs)
}

// whereAddrs says where a node's full addresses are printed.
const whereAddrs = `the other node's banner and its p2pchain status list its addresses under "listening on"`

// merge applies the flags given on the command line over the file's config
// (and the environment's): -peer adds to the file's peers.
func (f nodeFlags) merge(file, flags nodeConfig) nodeConfig {
	cfg := file
	for _, s := range settings {
		if s.key != "peers" && f.set[s.flag] {
			cfg.field(s.key).Set(flags.field(s.key))
		}
	}
	cfg.Peers = append(append([]string(nil), cfg.Peers...), f.peers...)
	return cfg
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

// nodeSettings are a node's settings and where each came from.
type nodeSettings struct {
	cfg   nodeConfig
	file  configFile
	flags nodeFlags
}

// from says where the value of a setting came from.
func (s nodeSettings) from(key string) string { return source(key, s.file, s.flags.set, os.Getenv) }

// settle reads the config file of dir, the environment and the flags into
// the node's settings, and checks them, naming where a bad value came from.
func settle(dir *datadir.Dir, flags nodeConfig, f nodeFlags) (nodeSettings, error) {
	file, cf, err := readConfig(dir)
	if err != nil {
		return nodeSettings{}, err
	}
	if err := applyEnv(&file, os.Getenv); err != nil {
		return nodeSettings{}, err
	}
	s := nodeSettings{cfg: f.merge(file, flags), file: cf, flags: f}
	if err := s.resolveNetworkFile(dir.Path()); err != nil {
		return s, err
	}
	for _, st := range settings {
		if err := s.cfg.checkKey(st.key); err != nil {
			return s, fmt.Errorf("%w (from %s)", err, s.from(st.key))
		}
	}
	return s, nil
}

// wrongNetwork explains a store of another network: what the chain was
// made for when that can be found, what this node runs and where that came
// from, and what to do.
func (s nodeSettings) wrongNetwork(err error) error {
	// The store's own advice ("use another data directory") is replaced by
	// advice that knows the settings.
	msg := strings.TrimSuffix(err.Error(), "; use another data directory")
	if s.cfg.NetworkFile != "" {
		return explained(err, fmt.Sprintf("%s\n  the network file %s comes from %s: use the network file the chain was made with, or another data directory",
			msg, s.cfg.NetworkFile, s.from("network_file")))
	}
	var held *store.NetworkError
	if !errors.As(err, &held) {
		held = &store.NetworkError{}
	}
	if difficulty, ok := heldDifficulty(held.HeldName, held.HeldGenesis); ok {
		name := held.HeldName
		var made, runs, give []string
		if name != s.cfg.Network {
			made = append(made, fmt.Sprintf("network %q", name))
			runs = append(runs, fmt.Sprintf("network %q (from %s)", s.cfg.Network, s.from("network")))
			give = append(give, "--network "+shellQuote(name))
		}
		if difficulty != s.cfg.Difficulty {
			made = append(made, fmt.Sprintf("difficulty %d", difficulty))
			runs = append(runs, fmt.Sprintf("difficulty %d (from %s)", s.cfg.Difficulty, s.from("difficulty")))
			give = append(give, fmt.Sprintf("--difficulty %d", difficulty))
		}
		if len(give) > 0 {
			return explained(err, fmt.Sprintf("%s\n  the chain was made with %s; this node runs %s\n"+
				"  to run this chain, give %s (a new chain with these settings needs another --data)",
				msg, strings.Join(made, " and "), strings.Join(runs, " and "), strings.Join(give, " ")))
		}
	}
	return explained(err, fmt.Sprintf("%s\n  the network %q comes from %s, the difficulty %d from %s:\n"+
		"  set network and difficulty in %s to those the chain was made with (or give --network and --difficulty), or use another data directory",
		msg, s.cfg.Network, s.from("network"), s.cfg.Difficulty, s.from("difficulty"), s.file.path))
}

// heldDifficulty returns the difficulty of the proof-of-work network named
// name whose genesis is genesis: the genesis is a hash of the name and the
// difficulty (with the default rules), so trying each difficulty finds it;
// ok is false for any other network (a network file's, say).
func heldDifficulty(name string, genesis chain.Hash) (difficulty int, ok bool) {
	for d := 0; d <= chain.MaxDifficulty; d++ {
		p := chain.DefaultParams()
		p.Name, p.Difficulty = name, uint32(d)
		if p.Genesis().Hash() == genesis {
			return d, true
		}
	}
	return 0, false
}

// shellQuote quotes s for a shell when it needs it.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t'\"$`\\;&|<>()*?[]{}~#!") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// explained is an error with a better text that still matches its cause
// with errors.Is.
func explained(err error, text string) error { return &explainedError{text, err} }

type explainedError struct {
	text string
	err  error
}

func (e *explainedError) Error() string { return e.text }
func (e *explainedError) Unwrap() error { return e.err }

// startCPUProfile profiles the process's CPU into the file at path until
// the returned function runs, which says on stderr if the file could not
// be written whole.
func startCPUProfile(path string, stderr io.Writer) (stop func(), err error) {
	out, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(out); err != nil {
		_ = out.Close()
		return nil, fmt.Errorf("--cpuprofile %s: %w", path, err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := out.Close(); err != nil {
			fmt.Fprintf(stderr, "--cpuprofile %s: %v (the profile may be incomplete)\n", path, err)
		}
	}, nil
}

// nodeMemoryLimit is the node's soft memory limit unless GOMEMLIMIT sets
// another.
const nodeMemoryLimit = 160 << 20

func runNode(args []string, stdout, stderr io.Writer) error {
	flags, f, err := parseNodeFlags(args, stdout)
	if err != nil {
		return err
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// A soft limit: the collector works harder near it instead of
		// letting the heap double, so a node under a flood of blocks stays
		// well inside its memory budget (docs/SECURITY.md).
		debug.SetMemoryLimit(nodeMemoryLimit)
	}
	if f.prof != "" {
		stop, err := startCPUProfile(f.prof, stderr)
		if err != nil {
			return err
		}
		defer stop()
	}
	path, err := target{data: f.data, port: flags.Port, portSet: f.set["l"]}.newDir()
	if err != nil {
		return err
	}
	dir, err := datadir.Open(path)
	if err != nil {
		return err
	}
	defer dir.Close()
	set, err := settle(dir, flags, f)
	if err != nil {
		return err
	}
	cfg := set.cfg
	params, nw, err := set.network()
	if err != nil {
		return err
	}
	if nw != nil { // what a config file written below says
		cfg.Network, cfg.Difficulty = params.Name, 0
	}
	level, _ := parseLevel(cfg.LogLevel)
	cp, err := parseCheckpoint(cfg.Checkpoint)
	if err != nil {
		return err
	}
	// A new directory gets the documented config file now. One whose file
	// was deleted gets it back once its chain has opened with these
	// settings, and the banner says so.
	hadChain := fileOrDirExists(dir.File(datadir.StoreDir))
	if set.file.missing && !hadChain {
		if err := writeConfig(dir, cfg); err != nil {
			return err
		}
	}

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
		// The prompt shows a sync's progress: no log line per batch.
		log = slog.New(dropMessages(slog.NewTextHandler(out, opts), "syncing", "synced"))
	case isTerminal(stderr):
		log = slog.New(slog.NewTextHandler(stderr, opts))
	default:
		log = slog.New(slog.NewJSONHandler(stderr, opts))
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer stopOnSignals(ctx, cancel,
		func(s os.Signal) { fmt.Fprintf(out, "%s: stopping (once more to force the exit)\n", s) },
		func(s os.Signal) {
			con.Restore()
			fmt.Fprintf(stderr, "%s again: exiting at once (the store is crash-safe: nothing acknowledged is lost)\n", s)
			os.Exit(1)
		})()

	st, state, err := openStore(dir, params, store.WithLogger(log))
	if errors.Is(err, store.ErrWrongNetwork) {
		return set.wrongNetwork(err)
	}
	if err != nil {
		return err
	}
	defer st.Close()
	var notes []string
	if set.file.missing && hadChain {
		if err := writeConfig(dir, cfg); err != nil {
			return err
		}
		notes = append(notes, fmt.Sprintf("note: %s was missing: wrote a default one with network %q and difficulty %d, which the chain here was made with",
			set.file.path, cfg.Network, cfg.Difficulty))
	}
	nopts := []node.Option{node.WithLogger(log), node.WithStore(st, state), node.WithCheckpoint(cp)}
	if nw != nil {
		nopts = append(nopts, node.WithAuthority(nw.Authority()))
	}
	n, err := node.New(params, key, nopts...)
	if err != nil {
		return fmt.Errorf("%w (check the store with %s verify --data %s)", err, invocation(), dir.Path())
	}
	h, err := p2p.New(ctx, n, p2p.WithKey(key), p2p.WithLogger(log),
		p2p.WithListenAddrs(p2p.ListenAddrs(cfg.IP, cfg.Port)...),
		p2p.WithBootstrap(append(append([]string(nil), cfg.Peers...), f.dial...)...),
		p2p.WithMDNS(cfg.MDNS && !isLoopback(cfg.IP)),
		p2p.WithDHT(cfg.DHT),
		p2p.WithPeerstoreFile(dir.File(datadir.PeerstoreFile)),
		p2p.WithUserAgent("p2pchain/"+version))
	if err != nil {
		return err // p2p.ErrPortInUse names the port and says what to do
	}
	defer h.Close()

	apiURL, apiNote, apiAccess, apiDone, err := startAPI(ctx, dir, cfg.API, n, h, log, cancel)
	if err != nil {
		return err
	}
	defer func() {
		cancel()
		<-apiDone
	}()

	if f.secio {
		notes = append(notes, "note: -secio is not needed: every connection is always encrypted (Noise or TLS 1.3)")
	}
	netFile := ""
	if nw != nil {
		netFile = cfg.NetworkFile
	}
	printBanner(out, params, rulesText(params, nw, h.ID().String()), n.Status(), h, nextPort(cfg.IP, cmp.Or(cfg.Port, h.TCPPort()), apiURL), dir.Path(), netFile)
	for _, l := range notes {
		fmt.Fprintln(out, l)
	}
	if apiNote != "" {
		fmt.Fprintln(out, apiNote)
	}
	switch {
	case apiAccess != "":
		fmt.Fprintf(out, "explorer and API: %s/ (%s)\n", apiURL, apiAccess)
	case apiURL != "":
		fmt.Fprintf(out, "explorer and API: %s/\n", apiURL)
	}

	sv := newSyncView(con, h)
	go sv.run(ctx)
	events, unsubscribe := n.Subscribe(4096)
	defer unsubscribe()
	go printEvents(out, events, sv.hold)

	minerDone := make(chan struct{})
	go func() {
		defer close(minerDone)
		_ = n.Run(ctx, h)
	}()

	for _, a := range f.dial {
		dctx, dcancel := context.WithTimeout(ctx, 15*time.Second)
		err := h.Connect(dctx, a)
		switch {
		case errors.Is(err, p2p.ErrRefused): // the error says why, and what to do
			fmt.Fprintf(out, "could not connect to %s: %v\n", a, err)
		case err != nil:
			fmt.Fprintf(out, "could not connect to %s: %v\n  check that the node there runs and that the address ends in /p2p/<its peer ID>\n", a, err)
		default:
			fmt.Fprintf(out, "connected to %s\n", a)
		}
		dcancel()
	}

	repl(ctx, con, n, h, cfg.Subject, cancel)
	cancel()
	<-minerDone
	if err := n.Err(); err != nil {
		return err
	}
	fmt.Fprintln(out, "stopped")
	return nil
}

// watchSignals stops the node (cancel) at the first SIGINT or SIGTERM, with
// a note; once the node is stopping, for whatever reason, the next signal
// forces the exit.
// stopOnSignals runs watchSignals on SIGINT and SIGTERM until the returned
// function is called.
//
// It also ignores SIGPIPE: a command that stops on signals has things to
// clean up (data directories, child processes), and a reader of its output
// that went away (`| head`) must not kill it first; its writes to the
// closed pipe fail instead.
func stopOnSignals(ctx context.Context, cancel func(), note, force func(os.Signal)) (stop func()) {
	signal.Ignore(syscall.SIGPIPE)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go watchSignals(ctx, sigs, cancel, note, force)
	return func() { signal.Stop(sigs) }
}

func watchSignals(ctx context.Context, sigs <-chan os.Signal, cancel func(), note, force func(os.Signal)) {
	select {
	case s := <-sigs:
		note(s)
		cancel()
	case <-ctx.Done():
	}
	force(<-sigs)
}

// dropMessages is a log handler that leaves out records with these messages.
func dropMessages(h slog.Handler, msgs ...string) slog.Handler { return &dropHandler{h, msgs} }

type dropHandler struct {
	slog.Handler
	msgs []string
}

func (d *dropHandler) Handle(ctx context.Context, r slog.Record) error {
	if slices.Contains(d.msgs, r.Message) {
		return nil
	}
	return d.Handler.Handle(ctx, r)
}
func (d *dropHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return &dropHandler{d.Handler.WithAttrs(a), d.msgs}
}
func (d *dropHandler) WithGroup(g string) slog.Handler {
	return &dropHandler{d.Handler.WithGroup(g), d.msgs}
}

func fileOrDirExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func isLoopback(ip string) bool {
	a := net.ParseIP(ip)
	return a != nil && a.IsLoopback()
}

// nextPort is the port the banner's command for another node listens on:
// the first port after this node's that is not its API's and that can be
// listened on now (TCP and UDP) (port+1 was printed even when it was the
// API's, and the command failed as printed). A node on any free port
// passes the port it got: "-l 0" named the default data directory, the
// one such a node started without --data holds, and failed as printed.
func nextPort(ip string, port int, apiURL string) int {
	if port == 0 {
		return 0
	}
	apiPort := 0
	if u, err := url.Parse(apiURL); err == nil && apiURL != "" {
		apiPort, _ = strconv.Atoi(u.Port())
	}
	for p := port + 1; p <= min(port+20, 65535); p++ {
		if p == apiPort {
			continue
		}
		// The node listens on TCP and QUIC (UDP) on its port.
		addr := net.JoinHostPort(ip, strconv.Itoa(p))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		_ = ln.Close()
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			continue
		}
		_ = pc.Close()
		return p
	}
	return min(port+1, 65535)
}

// printBanner prints what the node is; rules describe its consensus
// (rulesText); next is the port the command for another node listens on
// (nextPort); netFile is the network file of an authority network ("" on
// proof of work), which the command for another node must name too.
func printBanner(out io.Writer, params chain.Params, rules string, st chain.Status, h *p2p.Host, next int, data, netFile string) {
	fmt.Fprintf(out, "p2pchain node %s\n", h.ID())
	fmt.Fprintf(out, "network %q, genesis %s, %s\n", params.Name, st.Genesis.Short(), rules)
	fmt.Fprintf(out, "data %s, height %d, tip %s\n", data, st.Height, st.Tip.Short())
	fmt.Fprintln(out, "listening on:")
	for _, a := range h.Addrs() {
		fmt.Fprintf(out, "  %s\n", a)
	}
	if a := h.TCPAddr(); a != nil {
		// The network's identity, where it is not the default's: a node
		// started without it would make another genesis and refuse this
		// one (and be refused).
		network := ""
		if netFile != "" {
			network = " --network-file " + netFile
			if strings.ContainsAny(netFile, " '\"\\$`") {
				network = fmt.Sprintf(" --network-file %q", netFile)
			}
		} else {
			def := chain.DefaultParams()
			if params.Name != def.Name {
				network += " -network " + shellQuote(params.Name)
			}
			if params.Difficulty != def.Difficulty {
				network += fmt.Sprintf(" -difficulty %d", params.Difficulty)
			}
		}
		fmt.Fprintf(out, "start another node with:\n  %s node -l %d -d %s%s\n", invocation(), next, a, network)
	}
	fmt.Fprintln(out, `type a heart rate (72, or "alice 72") to add a reading; help lists commands`)
}

// promptLine is a line typed at the prompt; the reader of the console
// waits for handled before it reads, and draws the prompt, again.
type promptLine struct {
	text    string
	handled chan struct{}
}

// repl reads prompt lines until the user quits or ctx ends.
func repl(ctx context.Context, con console, n *node.Node, h *p2p.Host, subject string, stop func()) {
	lines := make(chan promptLine)
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
			// The next prompt comes once the line's output is all written
			// (so it never lands after a fresh "> "), and never after quit.
			l := promptLine{text: line, handled: make(chan struct{})}
			select {
			case lines <- l:
			case <-ctx.Done():
				return
			}
			select {
			case <-l.handled:
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
		case l, ok := <-lines:
			if !ok {
				lines = nil
				continue
			}
			if handleLine(out, n, h, subject, l.text) {
				stop() // quit: no prompt after it
				continue
			}
			close(l.handled)
		}
	}
}

// handleLine runs a line typed at the prompt and reports whether it was quit.
func handleLine(out io.Writer, n *node.Node, h *p2p.Host, subject, line string) (quit bool) {
	in, err := parseInput(line, subject)
	if err != nil {
		fmt.Fprintln(out, err)
		return false
	}
	switch in.cmd {
	case "":
		r, err := n.Submit(in.subject, in.bpm)
		if err != nil {
			fmt.Fprintf(out, "reading not added: %v\n", err)
			return false
		}
		// The full id is the receipt: p2pchain readings and the
		// explorer find the reading by it.
		fmt.Fprintf(out, "reading %s: %s %d bpm, pending (%s)\n", r.ID(), r.Subject, r.BPM, pendingNote(n.Params()))
	case "help":
		fmt.Fprintln(out, promptHelp)
	case "status":
		printStatus(out, n, h)
	case "peers":
		printPeers(out, h)
	case "chain":
		printChain(out, n, in.arg)
	case "approve":
		approveAtPrompt(out, n, in)
	case "quit":
		return true
	}
	return false
}

func printStatus(out io.Writer, n *node.Node, h *p2p.Host) {
	st := n.Overview()
	fmt.Fprintf(out, "peer %s\n", h.ID())
	fmt.Fprintf(out, "height %d, tip %s, work %s\n", st.Height, st.Tip.Short(), st.Work)
	if st.Stored < st.Height {
		fmt.Fprintf(out, "on disk up to height %d: the blocks above wait for the store's writer\n", st.Stored)
	}
	final, finalHash := n.Final()
	if c := n.Consensus(); c.Kind == chain.Authority.String() {
		self := "follower"
		if c.Self >= 0 {
			self = fmt.Sprintf("this node #%d", c.Self)
		}
		fmt.Fprintf(out, "consensus authority: height %d round %d step %s, %s, %s%s\n",
			c.Height, c.Round, c.Step, countAuthorities(len(c.Authorities)), self, heardPhrase(c.Heard, c.Quorum, c.IdleUntil))
		fmt.Fprintf(out, "final up to height %d (%s): blocks signed by more than two thirds of the authorities never leave the chain\n",
			final, finalHash.Short())
	} else {
		fmt.Fprintf(out, "consensus %s: final up to height %d (%s): blocks %d deep and %v on this chain never leave it\n",
			c.Kind, final, finalHash.Short(), n.Params().MaxReorgDepth, n.Params().FinalAge)
	}
	fmt.Fprintf(out, "peers %d (%d in the block gossip mesh), pending readings %d\n", len(h.Peers()), h.MeshPeers(), st.Pending)
	if s := h.Sync(); s.Syncing {
		fmt.Fprintf(out, "syncing from %s: height %d of %d, %s\n", s.Peer, s.Height, s.Target, strings.TrimSpace(syncPrompt(s)))
	}
	if s := n.Storage(); s.Full {
		fmt.Fprintf(out, "disk full since %s: readings are refused until there is room: %v\n", s.Since.Format(time.TimeOnly), s.Err)
	}
	if d := n.Disk(); d.Slow {
		fmt.Fprintf(out, "disk slow since %s: readings and blocks are refused until the write completes: %v\n", d.Since.Format(time.TimeOnly), d.Err)
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
	blocks, err := n.Blocks(n.Status().Height, count)
	for _, b := range blocks {
		fmt.Fprintln(out, blockLine(b))
	}
	if err != nil {
		fmt.Fprintf(out, "cannot show the chain: %v (run `p2pchain verify` on the data directory)\n", err)
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
// at once it prints one summary line instead of one per block; those that
// hold takes (a sync shows its own progress, and its end) it leaves.
func printEvents(out io.Writer, events <-chan node.Event, hold func([]*chain.Block) bool) {
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
		var last node.Event
		for _, ev := range batch {
			if ev.Kind != node.EventTip || ev.Update == nil {
				continue // finality shows in status and the explorer
			}
			last = ev
			if d := len(ev.Update.Disconnected); d > 0 {
				fmt.Fprintf(out, "reorganisation: %d block(s) replaced by a chain with more work; %d reading(s) back to pending\n",
					d, len(ev.Update.Returned))
			}
			connected = append(connected, ev.Update.Connected...)
		}
		switch {
		case len(connected) == 0, hold(connected): // the sync shows its progress, and its end
		case len(connected) <= maxBlockLines:
			for _, b := range connected {
				fmt.Fprintf(out, "block %s\n", blockLine(b))
			}
		default:
			fmt.Fprintf(out, "received %d blocks, now at #%d %s\n", len(connected), last.Height, last.Tip.Short())
		}
	}
}

// pendingNote says what a pending reading waits for.
func pendingNote(p chain.Params) string {
	if p.Consensus == chain.Authority {
		return "until the authorities' next block"
	}
	return "mining"
}

// approveAtPrompt records the operator's approval of a membership change.
func approveAtPrompt(out io.Writer, n *node.Node, in input) {
	key, err := netfile.KeyOf(in.peer)
	if err != nil {
		fmt.Fprintf(out, "approve: %v\n", err)
		return
	}
	op := bft.OpAdd
	if in.op == "remove" {
		op = bft.OpRemove
	}
	if err := n.Approve(bft.Change{Op: op, Height: in.height, Key: key}); err != nil {
		fmt.Fprintf(out, "approve: %v\n", err)
		return
	}
	fmt.Fprintf(out, "approved: %s %s; it takes effect once more than two thirds of the authorities approved it\n", in.op, in.peer)
}

package main

// The flood test of the issue "Floods": many connection and stream attempts
// and junk gossip against one node of a line of three real node processes,
// for a bounded time, while honest readings cross the line.
//
//	go test -run TestFlood -v ./cmd/p2pchain                     # quick: a 3 s flood
//	P2PCHAIN_LONG=1 go test -run TestFlood -v ./cmd/p2pchain     # long: a 30 s flood, latency asserted
//
// docs/RELIABILITY.md ("Floods") has the figures of the last runs.

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/p2p"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

const (
	// floodMaxGoroutines bounds the victim's goroutines during the flood:
	// about 5 per connection were measured (transport, multiplexer,
	// identify, gossip, and the streams being served, at most
	// p2p.MaxStreamsPerPeer per protocol); 20 per connection for at most
	// floodMaxConns connections, and 400 of the node's own.
	floodMaxGoroutines = 20*floodMaxConns + 400
	// floodMaxRSS bounds the victim's peak resident memory (VmHWM), as the
	// attack test does.
	floodMaxRSS = attackMaxRSS
	// floodConnSlack is how many connections over the connection limits
	// (p2p.DefaultHighWater inbound, and the outbound ones) may be seen:
	// connections being set up and torn down while the metric is read.
	floodConnSlack = 16
	// floodMaxConns bounds the victim's connected peers.
	floodMaxConns = p2p.DefaultHighWater + floodConnSlack
	// floodHolders is how many attacker identities the flood keeps
	// connected at once, idle: more than the connection limits.
	floodHolders = 2 * p2p.DefaultHighWater
	// floodWorkers is how many goroutines of the flood cycle identities
	// that open streams and gossip junk.
	floodWorkers = 6
	// floodStreams is how many streams each cycling identity opens of
	// each protocol (status, blocks and one the node does not speak).
	floodStreams = 8
	// floodSamples is how many readings are timed across the line before
	// the flood.
	floodSamples = 20
)

// junkProtocol is a protocol no node speaks.
const junkProtocol = protocol.ID("/p2pchain/nothing/1.0.0")

// floodDuration returns how long the flood lasts and whether the latency
// bound is asserted (P2PCHAIN_LONG set).
func floodDuration() (time.Duration, bool) {
	if os.Getenv("P2PCHAIN_LONG") != "" {
		return 30 * time.Second, true
	}
	return 3 * time.Second, false
}

// floodNode is one node process of the line and where to reach it.
type floodNode struct {
	p    *proc
	api  string
	addr string // its TCP multiaddr
}

func startFloodNode(t *testing.T, name string, dial ...string) *floodNode {
	t.Helper()
	args := []string{"--data", filepath.Join(t.TempDir(), name), "-l", "0", "-api", "127.0.0.1:0", "-difficulty", "0", "-subject", "flood-" + name}
	for _, d := range dial {
		args = append(args, "-d", d)
	}
	p := start(t, name, args...)
	readBanner(t, p)
	return &floodNode{p: p,
		addr: expectFrom(t, p, 0, `^  (/ip4/127\.0\.0\.1/tcp/\d+/p2p/\w+)$`)[1],
		api:  expectFrom(t, p, 0, `^explorer and API: (http://\S+)/$`)[1]}
}

var scrapeClient = &http.Client{Timeout: 10 * time.Second}

// promLine is one sample of the Prometheus text format.
var promLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$`)

// scrape reads every sample of the node's /metrics.
func scrape(api string) (map[string]float64, error) {
	resp, err := scrapeClient.Get(api + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		if m := promLine.FindStringSubmatch(s.Text()); m != nil {
			f, _ := strconv.ParseFloat(m[2], 64)
			out[m[1]] = f
		}
	}
	return out, s.Err()
}

// propagation times readings across the line: each is posted at from and
// timed until to's API shows it in a main-chain block. It runs until n
// readings are timed (n > 0) or until end, and fails the test if one takes
// over 30 s.
func propagation(t *testing.T, from, to *floodNode, label string, n int, end time.Time) []time.Duration {
	t.Helper()
	var out []time.Duration
	for i := 0; (n > 0 && i < n) || (n == 0 && time.Now().Before(end)); i++ {
		begin := time.Now()
		id := submit(t, from.api, "flood-"+label, 60+i%100)
		for readingBlock(to.api, id) == "" {
			if time.Since(begin) > 30*time.Second {
				t.Fatalf("%s: reading %d (%s) posted at %s is not in a block at %s after 30 s", label, i, id, from.p.name, to.p.name)
			}
			time.Sleep(2 * time.Millisecond)
		}
		out = append(out, time.Since(begin))
		time.Sleep(20 * time.Millisecond)
	}
	return out
}

// floodProbe is a helper process that times readings across the line
// (propagation), apart from this process, whose flood would otherwise
// delay the clock readings and polls of the measurement.
type floodProbe struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

// startProbe starts the test binary again as TestFloodProbe, timing n
// readings (n > 0) or readings for d, once started.
func startProbe(t *testing.T, from, to *floodNode, label string, n int, d time.Duration) *floodProbe {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFloodProbe$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "P2PCHAIN_FLOOD_PROBE="+from.api, "P2PCHAIN_FLOOD_PROBE_TO="+to.api,
		"P2PCHAIN_FLOOD_PROBE_LABEL="+label, fmt.Sprintf("P2PCHAIN_FLOOD_PROBE_N=%d", n), "P2PCHAIN_FLOOD_PROBE_FOR="+d.String())
	pr := &floodProbe{t: t, cmd: cmd, lines: make(chan string, 1<<16)}
	var err error
	if pr.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	go func() {
		defer close(pr.lines)
		s := bufio.NewScanner(out)
		for s.Scan() {
			pr.lines <- s.Text()
		}
	}()
	for l := range pr.lines {
		if l == "probe ready" {
			return pr
		}
	}
	t.Fatalf("the %s probe exited before it was ready: %v", label, cmd.Wait())
	return nil
}

func (pr *floodProbe) start() {
	if _, err := io.WriteString(pr.stdin, "go\n"); err != nil {
		pr.t.Fatalf("start the probe: %v", err)
	}
}

// wait waits for the probe to end and returns its latencies.
func (pr *floodProbe) wait() []time.Duration {
	pr.t.Helper()
	var ds []time.Duration
	var text []string
	for l := range pr.lines {
		text = append(text, l)
		if us, ok := strings.CutPrefix(l, "probe latency us "); ok {
			n, _ := strconv.ParseInt(us, 10, 64)
			ds = append(ds, time.Duration(n)*time.Microsecond)
		}
	}
	if err := pr.cmd.Wait(); err != nil {
		pr.t.Fatalf("the probe failed: %v\n%s", err, strings.Join(text, "\n"))
	}
	return ds
}

func (pr *floodProbe) run() []time.Duration { pr.start(); return pr.wait() }

// TestFloodProbe is the probe process of TestFlood; alone it skips.
func TestFloodProbe(t *testing.T) {
	from := os.Getenv("P2PCHAIN_FLOOD_PROBE")
	if from == "" {
		t.Skip("a helper process of TestFlood")
	}
	n, _ := strconv.Atoi(os.Getenv("P2PCHAIN_FLOOD_PROBE_N"))
	d, _ := time.ParseDuration(os.Getenv("P2PCHAIN_FLOOD_PROBE_FOR"))
	fmt.Println("probe ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	stub := func(name, api string) *floodNode { return &floodNode{p: &proc{t: t, name: name}, api: api} }
	ds := propagation(t, stub("A", from), stub("C", os.Getenv("P2PCHAIN_FLOOD_PROBE_TO")),
		os.Getenv("P2PCHAIN_FLOOD_PROBE_LABEL"), n, time.Now().Add(d))
	for _, x := range ds {
		fmt.Printf("probe latency us %d\n", x.Microseconds())
	}
}

// percentile returns the p-th percentile (0 to 100) of ds, nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

func latencyRow(ds []time.Duration) string {
	return fmt.Sprintf("%3d readings, p50 %6.1f ms, p95 %6.1f ms, p99 %6.1f ms, max %6.1f ms", len(ds),
		ms(percentile(ds, 50)), ms(percentile(ds, 95)), ms(percentile(ds, 99)), ms(percentile(ds, 100)))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// floodStats is what the flood did.
type floodStats struct {
	identities, connectFailed, streams, streamsRefused, junk atomic.Int64
	held                                                     atomic.Int64
}

// TestFlood runs three node processes in a line A-B-C (difficulty 0,
// durable stores), times readings posted at A until C has them in a block,
// then floods B from this process and times them again. The flood, for
// floodDuration:
//
//   - floodHolders identities that connect to B at once and stay, idle,
//     for the first half: twice the connection manager's high water, which
//     is also B's cap on inbound connections;
//   - floodWorkers goroutines that each, again and again, make a new
//     identity, connect it to B, open floodStreams streams of the status
//     protocol, of the blocks protocol and of a protocol B does not speak,
//     writing junk on each, gossip a junk message on the blocks topic (B
//     refuses the identity for it), and go.
//
// It checks what the node promises (docs/SECURITY.md): B stays up and
// answers its API throughout, its goroutines and peak RSS stay under
// floodMaxGoroutines and floodMaxRSS, its connected peers under
// floodMaxConns, and readings keep reaching C. The propagation percentiles
// before and during the flood are logged with their ratio; with
// P2PCHAIN_LONG set the flood lasts 30 s and the during/before ratio of the
// median must be at most 2 (in the quick mode it is not asserted: timing
// assertions do not belong in a quick test on a shared machine).
func TestFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three node processes and floods one")
	}
	d, long := floodDuration()
	a := startFloodNode(t, "A")
	b := startFloodNode(t, "B", a.addr)
	c := startFloodNode(t, "C", b.addr)
	waitUntil(t, 30*time.Second, "B in the block gossip mesh of A and C", func() bool {
		for _, n := range []struct {
			n    *floodNode
			want float64
		}{{a, 1}, {b, 2}, {c, 1}} {
			m, err := scrape(n.n.api)
			if err != nil || m["p2pchain_gossip_mesh_peers"] < n.want {
				return false
			}
		}
		return true
	})
	before := startProbe(t, a, c, "before", floodSamples, 0).run()
	t.Logf("before the flood: %s", latencyRow(before))

	info, err := p2p.ParsePeerAddr(b.addr)
	if err != nil {
		t.Fatal(err)
	}
	params := chain.DefaultParams()
	params.Difficulty = 0
	cfg := testnet.AttackerConfig{Params: params, Target: *info}
	m0, err := scrape(b.api)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), d+2*time.Minute)
	defer cancel()
	cpuOf := func(n *floodNode) time.Duration {
		d, err := testnet.ProcessCPUTime(n.p.cmd.Process.Pid)
		if err != nil {
			t.Fatalf("the CPU time of a node: %v", err)
		}
		return d
	}
	cpu0 := []time.Duration{cpuOf(a), cpuOf(b), cpuOf(c), selfCPU(t)}
	var st floodStats
	probe := startProbe(t, a, c, "during", 0, d)
	probe.start()
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	// The holders: connect at once and stay for the first half.
	var holdersMu sync.Mutex
	var holders []*testnet.Attacker
	var holding sync.WaitGroup
	for i := 0; i < floodHolders; i++ {
		holding.Add(1)
		go func() {
			defer holding.Done()
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			at, err := testnet.NewAttacker(sctx, cfg)
			st.identities.Add(1)
			if err != nil {
				st.connectFailed.Add(1)
				return
			}
			st.held.Add(1)
			holdersMu.Lock()
			holders = append(holders, at)
			holdersMu.Unlock()
		}()
	}
	stillHeld := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		holding.Wait()
		time.Sleep(time.Until(end.Add(-d / 2)))
		holdersMu.Lock()
		defer holdersMu.Unlock()
		for _, h := range holders {
			if h.Connected() {
				stillHeld++
			}
			_ = h.Close()
		}
	}()
	// The cycling workers.
	for w := 0; w < floodWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) && ctx.Err() == nil {
				floodOnce(ctx, cfg, &st)
			}
		}()
	}
	// The monitor: B's metrics every 250 ms.
	var peak struct {
		goroutines, rss, peers float64
		scrapes, failed        int
		lastErr                error
	}
	monDone := make(chan struct{})
	go func() {
		defer close(monDone)
		for time.Now().Before(end.Add(time.Second)) {
			m, err := scrape(b.api)
			peak.scrapes++
			if err != nil {
				peak.failed++
				peak.lastErr = err
			} else {
				peak.goroutines = max(peak.goroutines, m["go_goroutines"])
				peak.rss = max(peak.rss, m["process_resident_memory_bytes"])
				peak.peers = max(peak.peers, m["p2pchain_peers"])
			}
			time.Sleep(250 * time.Millisecond)
		}
	}()
	during := probe.wait()
	wg.Wait()
	<-monDone
	cpu1 := []time.Duration{cpuOf(a), cpuOf(b), cpuOf(c), selfCPU(t)}
	wall := time.Since(end.Add(-d))
	m1, err := scrape(b.api)
	if err != nil {
		t.Fatalf("B does not answer its metrics after the flood: %v", err)
	}
	_, hwmBytes, err := testnet.ProcessMemory(b.p.cmd.Process.Pid)
	if err != nil {
		t.Fatalf("the memory of B: %v", err)
	}
	hwm := int64(hwmBytes)
	ratio := func(p float64) float64 { return ms(percentile(during, p)) / max(ms(percentile(before, p)), 0.001) }
	t.Logf("flood of %v on B: %d identities (%d failed to connect; %d of %d holders connected, %d of them still after %v), "+
		"%d streams opened (%d refused), %d junk gossip messages; B: refused %d peers, "+
		"malformed %.0f; peak %0.f goroutines, RSS %.0f MB (VmHWM %d MB), %.0f peers; %d of %d scrapes failed",
		d, st.identities.Load(), st.connectFailed.Load(), st.held.Load(), floodHolders, stillHeld, d/2,
		st.streams.Load(), st.streamsRefused.Load(), st.junk.Load(),
		b.p.count(`"msg":"refusing peer"`),
		m1[`p2pchain_blocks_rejected_total{reason="malformed"}`]-m0[`p2pchain_blocks_rejected_total{reason="malformed"}`],
		peak.goroutines, peak.rss/(1<<20), hwm>>20, peak.peers, peak.failed, peak.scrapes)
	cores := func(i int) float64 { return (cpu1[i] - cpu0[i]).Seconds() / wall.Seconds() }
	t.Logf("CPU during the flood, in cores (this machine has %d): B %.2f, A %.2f, C %.2f, the attacker (this process) %.2f",
		runtime.NumCPU(), cores(1), cores(0), cores(2), cores(3))
	t.Logf("before the flood: %s", latencyRow(before))
	t.Logf("during the flood: %s", latencyRow(during))
	t.Logf("during/before: p50 %.2f, p95 %.2f, p99 %.2f", ratio(50), ratio(95), ratio(99))

	select {
	case err := <-b.p.exit:
		t.Fatalf("B exited during the flood: %v", err)
	default:
	}
	checkNoPanic(t, b.p)
	if peak.failed > 0 {
		t.Errorf("B did not answer %d of %d scrapes of its metrics during the flood; the last error: %v", peak.failed, peak.scrapes, peak.lastErr)
	}
	if peak.goroutines >= floodMaxGoroutines {
		t.Errorf("B ran %.0f goroutines during the flood, want under %d", peak.goroutines, floodMaxGoroutines)
	}
	if hwm >= floodMaxRSS {
		t.Errorf("B's peak RSS (VmHWM) is %d MB, want under %d MB", hwm>>20, floodMaxRSS>>20)
	}
	if peak.peers > floodMaxConns {
		t.Errorf("B had %.0f peers during the flood, want at most %d (high water %d + %d)", peak.peers, floodMaxConns, p2p.DefaultHighWater, floodConnSlack)
	}
	if len(during) == 0 {
		t.Errorf("no reading crossed the line during the flood")
	}
	// After the flood: the line still works.
	after := startProbe(t, a, c, "after", 5, 0).run()
	t.Logf("after the flood: %s", latencyRow(after))
	if long {
		if r := ratio(50); r > 2 {
			t.Errorf("the median propagation during the flood is %.2f times the one before, want at most 2", r)
		}
	}
}

// floodOnce makes one identity, connects it to the target, opens streams of
// every protocol with junk on them, gossips junk, and closes it.
func floodOnce(ctx context.Context, cfg testnet.AttackerConfig, st *floodStats) {
	cfg.Gossip = true
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	at, err := testnet.NewAttacker(sctx, cfg)
	st.identities.Add(1)
	if err != nil {
		st.connectFailed.Add(1)
		return
	}
	defer at.Close()
	var wg sync.WaitGroup
	for _, proto := range []protocol.ID{p2p.StatusProtocol, p2p.BlocksProtocol, junkProtocol} {
		for i := 0; i < floodStreams; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st.streams.Add(1)
				s, err := at.Host.NewStream(sctx, cfg.Target.ID, proto)
				if err != nil {
					st.streamsRefused.Add(1)
					return
				}
				_ = s.SetDeadline(time.Now().Add(2 * time.Second))
				if _, err := s.Write([]byte("\x7fjunk, not a frame of any protocol")); err != nil {
					st.streamsRefused.Add(1)
				}
				_ = s.Reset()
			}()
		}
	}
	wg.Wait()
	msg := make([]byte, 64+int(st.junk.Load()%512))
	_, _ = rand.Read(msg)
	if at.Publish(sctx, msg) == nil {
		st.junk.Add(1)
	}
	// Let the junk go out before the identity does.
	_ = at.WaitRefused(sctx)
}

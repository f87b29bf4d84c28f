package testnet

// Block propagation measured from the outside, through the nodes' HTTP
// APIs, as p2pchain bench propagation does: the same for nodes in this
// process and for node processes.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// PropagationResult is what MeasurePropagation measured.
type PropagationResult struct {
	Latencies []time.Duration // per block, in the order submitted
	Blocks    int
	// BytesIn is the block bytes every node received by gossip and sync
	// during the run, summed over the nodes (the nodes'
	// p2pchain_gossip_bytes_total and p2pchain_sync_bytes_total "in"):
	// payload only, without libp2p framing, encryption and control messages.
	BytesIn uint64
	// WireIn is the bytes received on the wire over the run (Meters.Wire
	// after, Since before); WireMeasured says whether it was read, and
	// WireGone how many connections closed during the run (their bytes
	// after the first reading are not in WireIn).
	WireIn       uint64
	WireMeasured bool
	WireWhyNot   string // why not, when not measured
	WireGone     int
	// WireEnds is how many TCP connection ends between the nodes were
	// counted at the end: two per connection. A link the nodes hold over
	// QUIC instead (libp2p prefers it when it dials again) is not seen by
	// TCPReceived, and its bytes are not in WireIn.
	WireEnds int
	// CPUSeconds is what Meters.CPU returned after the run less before it.
	CPUSeconds float64
}

// Meters read what the nodes have spent so far; MeasurePropagation reports
// the difference over its run. A nil one is not read. Progress, if set, is
// told of each block timed. Down, if set, receives an error when a node
// stops (ProcNetwork.Exits): the run stops at once with it.
type Meters struct {
	CPU      func(context.Context) (float64, error)   // CPU seconds of the nodes
	Wire     func(context.Context) (TCPCounts, error) // bytes they received on the wire
	Progress Progress
	Down     <-chan error
}

// downGrace is how long a failure that a node's exit may explain (a
// refused request, an event stream that ended) waits for the exit's
// report, which names the node and says how it exited.
const downGrace = 3 * time.Second

// whyDown returns the error of down (a node that stopped) if one comes
// within downGrace, else err.
func whyDown(down <-chan error, err error) error {
	if down == nil {
		return err
	}
	t := time.NewTimer(downGrace)
	defer t.Stop()
	select {
	case derr := <-down:
		return derr
	case <-t.C:
		return err
	}
}

// WireMeter is a Meters.Wire that reads TCPReceived of the nodes' libp2p
// listen ports; ErrNoSS where ss cannot run.
func WireMeter(ports []int) func(context.Context) (TCPCounts, error) {
	return func(ctx context.Context) (TCPCounts, error) { return TCPReceived(ctx, ports) }
}

// Metrics is the part of a node's /metrics the harness reads.
type Metrics struct {
	GossipIn, SyncIn float64 // p2pchain_{gossip,sync}_bytes_total{direction="in"}
	CPUSeconds       float64 // process_cpu_seconds_total (the whole process)
	MeshPeers        float64 // p2pchain_gossip_mesh_peers
}

// ScrapeMetrics reads a node's /metrics.
func ScrapeMetrics(ctx context.Context, api string) (Metrics, error) {
	var m Metrics
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, api+"/metrics", nil)
	if err != nil {
		return m, err
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return m, fmt.Errorf("GET %s/metrics: %s", api, resp.Status)
	}
	fields := map[string]*float64{
		`p2pchain_gossip_bytes_total{direction="in"}`: &m.GossipIn,
		`p2pchain_sync_bytes_total{direction="in"}`:   &m.SyncIn,
		`process_cpu_seconds_total`:                   &m.CPUSeconds,
		`p2pchain_gossip_mesh_peers`:                  &m.MeshPeers,
	}
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		name, value, ok := strings.Cut(s.Text(), " ")
		if p := fields[name]; ok && p != nil {
			if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
				*p = v
			}
		}
	}
	return m, s.Err()
}

// ScrapeAll reads every node's /metrics, 32 at a time.
func ScrapeAll(ctx context.Context, apis []string) ([]Metrics, error) {
	out := make([]Metrics, len(apis))
	err := parallel(ctx, len(apis), 32, false, func(i int) error {
		var err error
		out[i], err = ScrapeMetrics(ctx, apis[i])
		return err
	})
	return out, err
}

// ProcessCPU returns a CPU function for MeasurePropagation that sums
// process_cpu_seconds_total over the nodes at apis: one process each.
func ProcessCPU(apis []string) func(context.Context) (float64, error) {
	return func(ctx context.Context) (float64, error) {
		ms, err := ScrapeAll(ctx, apis)
		var sum float64
		for _, m := range ms {
			sum += m.CPUSeconds
		}
		return sum, err
	}
}

// WaitMeshAPI waits until every node i at apis forwards blocks to at least
// want[i] peers (p2pchain_gossip_mesh_peers), so that the blocks measured
// do not pay for the mesh forming; want[i] is capped at 4, the fewest
// GossipSub keeps when it can.
func WaitMeshAPI(ctx context.Context, apis []string, want []int) error {
	var (
		short   []string
		scraped error
	)
	for {
		ms, err := ScrapeAll(ctx, apis)
		if scraped = err; err == nil {
			short = short[:0]
			for i, m := range ms {
				if w := min(want[i], 4); m.MeshPeers < float64(w) {
					short = append(short, fmt.Sprintf("node %d: %v of %d", i, m.MeshPeers, w))
				}
			}
			if len(short) == 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if scraped != nil && len(short) == 0 {
				return fmt.Errorf("the gossip mesh is not complete (%v): %w", scraped, ctx.Err())
			}
			return fmt.Errorf("the gossip mesh is not complete (%s): %w", strings.Join(short[:min(len(short), 10)], ", "), ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// tipEvent is a tip (or ready) event of a node's event stream and when it
// was read; or, with ended set, the stream's end.
type tipEvent struct {
	node   int
	height uint64
	hash   string
	at     time.Time
	ended  bool
}

// watchTips reads the event stream of node i at api until ctx ends and
// sends its ready and tip events on out, and an ended event if the stream
// ends first (the node stopped). It sends nil on ready once the stream has
// sent its ready event, or an error if it never does.
func watchTips(ctx context.Context, i int, api string, out chan<- tipEvent, ready chan<- error) {
	readTips(ctx, api, ready, func(_ bool, t tipData, at time.Time) bool {
		select {
		case out <- tipEvent{node: i, height: t.Height, hash: t.Hash, at: at}:
			return true
		case <-ctx.Done():
			return false
		}
	})
	select {
	case out <- tipEvent{node: i, ended: true}:
	case <-ctx.Done():
	}
}

// waitReady waits until n event streams read by readTips have sent their
// ready event, and returns the first error one sends instead.
func waitReady(ctx context.Context, ready <-chan error, n int) error {
	for range n {
		select {
		case err := <-ready:
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// tipData is what the harness reads of a tip or ready event.
type tipData struct {
	Hash   string `json:"hash"`
	Height uint64 `json:"height"`
}

// readTips reads the event stream of the node whose API is at api until
// ctx ends or f returns false, and calls f with each ready and tip event
// (isReady for the first) and when it was read. It sends nil on ready
// once the stream has sent its ready event, or an error if it never does.
func readTips(ctx context.Context, api string, ready chan<- error, f func(isReady bool, t tipData, at time.Time) bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, api+"/api/v1/events", nil)
	if err != nil {
		ready <- err
		return
	}
	resp, err := (&http.Client{}).Do(req) // no timeout: the stream lasts the run
	if err != nil {
		ready <- fmt.Errorf("%s: %w", api, err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		ready <- fmt.Errorf("GET %s/api/v1/events: %s", api, resp.Status)
		return
	}
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	event, sentReady := "", false
	for s.Scan() {
		line := s.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && (event == "tip" || event == "ready"):
			at := time.Now()
			var d tipData
			if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &d) != nil {
				continue
			}
			if !f(event == "ready", d, at) {
				return
			}
			if event == "ready" && !sentReady {
				sentReady = true
				ready <- nil
			}
		case line == "":
			event = ""
		}
	}
	if !sentReady {
		ready <- fmt.Errorf("the event stream of %s ended before its ready event", api)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
}

// MeasurePropagation submits blocks readings one at a time, each through
// POST /api/v1/readings of a node drawn by rng, and times each from just
// before the request until the last node's event stream (subscribed to
// before the first submission) reports a tip at the height of the block
// holding it. So each latency includes the HTTP request, the node storing
// the reading, mining it (proof of work at the network's difficulty),
// storing the block, gossip over every hop, each node's checks and durable
// write, and its event stream. m reads the CPU and the bytes on the wire
// before and after the blocks; a Wire meter that returns ErrNoSS leaves
// WireMeasured false.
//
// Only this harness may submit readings meanwhile: the block holding the
// reading is taken to be the next height, and checked to be after its
// clock stopped (checkTimed); a run where another block took that height
// ends with an error.
func MeasurePropagation(ctx context.Context, apis []string, blocks int, rng *rand.Rand, m Meters) (PropagationResult, error) {
	res := PropagationResult{Blocks: blocks}
	ctx, cancel := context.WithCancel(ctx)
	events := make(chan tipEvent, 64*len(apis)+64)
	ready := make(chan error, len(apis))
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i, api := range apis {
		wg.Add(1)
		go func() {
			defer wg.Done()
			watchTips(ctx, i, api, events, ready)
		}()
	}
	heights := make([]uint64, len(apis))
	if err := waitReady(ctx, ready, len(apis)); err != nil {
		return res, err
	}
	ended := func(e tipEvent) error {
		return whyDown(m.Down, fmt.Errorf("node %d (%s): its event stream ended: the node stopped or dropped the stream", e.node, apis[e.node]))
	}
	drain := func() error { // the events so far: ready events and any late tips
		for {
			select {
			case e := <-events:
				if e.ended {
					return ended(e)
				}
				heights[e.node] = max(heights[e.node], e.height)
			case err := <-m.Down:
				return err
			default:
				return nil
			}
		}
	}
	if err := drain(); err != nil {
		return res, err
	}
	before, err := ScrapeAll(ctx, apis)
	if err != nil {
		return res, err
	}
	var cpu0 float64
	if m.CPU != nil {
		if cpu0, err = m.CPU(ctx); err != nil {
			return res, err
		}
	}
	var wire0 TCPCounts
	if m.Wire != nil {
		wire0, err = m.Wire(ctx)
		switch {
		case errors.Is(err, ErrNoSS):
			m.Wire, res.WireWhyNot = nil, err.Error()
		case err != nil:
			return res, err
		}
	}
	for b := 0; b < blocks; b++ {
		if err := drain(); err != nil {
			return res, fmt.Errorf("block %d: %w", b, err)
		}
		target := slices.Max(heights) + 1
		node := rng.IntN(len(apis))
		body := fmt.Appendf(nil, `{"subject":"bench","bpm":%d}`, 60+b%100)
		var sub struct {
			ID string `json:"id"`
		}
		start := time.Now()
		if err := postJSON(ctx, apis[node]+"/api/v1/readings", body, &sub); err != nil {
			return res, fmt.Errorf("block %d: %w", b, whyDown(m.Down, fmt.Errorf("node %d: %w", node, err)))
		}
		reached := make([]time.Time, len(apis))
		tips := make([]tipData, len(apis)) // the tip that stopped each node's clock
		left := 0
		for i, h := range heights {
			if h >= target { // cannot happen before the submission; kept safe
				reached[i] = start
			} else {
				left++
			}
		}
		timeout := time.NewTimer(2 * time.Minute)
		for left > 0 {
			select {
			case e := <-events:
				if e.ended {
					timeout.Stop()
					return res, fmt.Errorf("block %d (height %d): %w", b, target, ended(e))
				}
				if heights[e.node] < target && e.height >= target {
					reached[e.node] = e.at
					tips[e.node] = tipData{Hash: e.hash, Height: e.height}
					left--
				}
				heights[e.node] = max(heights[e.node], e.height)
			case <-timeout.C:
				var late []string
				for i, h := range heights {
					if h < target {
						late = append(late, strconv.Itoa(i))
					}
				}
				return res, fmt.Errorf("block %d (height %d) did not reach nodes %s within 2 minutes", b, target, strings.Join(late[:min(len(late), 20)], ", "))
			case err := <-m.Down:
				timeout.Stop()
				return res, fmt.Errorf("block %d (height %d): %w", b, target, err)
			case <-ctx.Done():
				timeout.Stop()
				return res, ctx.Err()
			}
		}
		timeout.Stop()
		if err := checkTimed(ctx, apis, node, sub.ID, target, tips); err != nil {
			return res, fmt.Errorf("block %d (height %d): %w", b, target, whyDown(m.Down, err))
		}
		last := slices.MaxFunc(reached, func(a, b time.Time) int { return a.Compare(b) })
		res.Latencies = append(res.Latencies, last.Sub(start))
		m.Progress.report(fmt.Sprintf("timing blocks on %d nodes", len(apis)), "blocks", b+1, blocks)
	}
	// The CPU and the wire first: the scrape of /metrics costs the nodes
	// CPU of its own (its bytes go over the API ports, not counted).
	if m.CPU != nil {
		cpu1, err := m.CPU(ctx)
		if err != nil {
			return res, err
		}
		res.CPUSeconds = cpu1 - cpu0
	}
	if m.Wire != nil {
		wire1, err := m.Wire(ctx)
		switch {
		case errors.Is(err, ErrNoSS):
			res.WireWhyNot = err.Error()
		case err != nil:
			return res, err
		default:
			res.WireIn, res.WireGone = wire1.Since(wire0)
			res.WireMeasured, res.WireEnds = true, len(wire1)
		}
	}
	after, err := ScrapeAll(ctx, apis)
	if err != nil {
		return res, err
	}
	for i := range apis {
		res.BytesIn += uint64(after[i].GossipIn + after[i].SyncIn - before[i].GossipIn - before[i].SyncIn)
	}
	return res, nil
}

// checkTimed checks that the block whose arrival stopped the clock is the
// one holding the reading submitted, id, to node node: that node's main
// chain holds the reading at height target, and every node's tip that
// stopped its clock (tips[i]: at target, or above it when the node took
// several blocks at once, or none) is that block or on it. So a block of
// another submitter's, or one left over, at that height cannot pass for
// the one timed. It costs one request to the submitting node, and one to
// each node whose tip was above target, after the clock stopped.
func checkTimed(ctx context.Context, apis []string, node int, id string, target uint64, tips []tipData) error {
	var r struct {
		Status string `json:"status"`
		Height uint64 `json:"height"`
		Block  string `json:"block"`
	}
	if err := getJSON(ctx, apis[node]+"/api/v1/readings/"+id, &r); err != nil {
		return fmt.Errorf("node %d: the reading submitted: %w", node, err)
	}
	if r.Status != "in_block" || r.Height != target {
		where := r.Status
		if r.Status == "in_block" {
			where = fmt.Sprintf("in the block at height %d", r.Height)
		}
		return fmt.Errorf("node %d holds the reading submitted, %s, %s, not in the block at height %d that stopped the clock: "+
			"another block took that height (another submitter's, or one left over); run the bench where nothing else submits readings",
			node, id, where, target)
	}
	for i, t := range tips {
		hash := t.Hash
		if t.Height != target { // above it (or the node was there before): its main chain's block at target
			var b blockJSON
			if err := getJSON(ctx, fmt.Sprintf("%s/api/v1/blocks/%d", apis[i], target), &b); err != nil {
				return fmt.Errorf("node %d: its block at height %d: %w", i, target, err)
			}
			hash = b.Block.Hash
		}
		if hash != r.Block {
			return fmt.Errorf("node %d's block at height %d is %s, not %s, which holds the reading submitted: another block stopped its clock "+
				"(another submitter's, or a fork); run the bench where nothing else submits readings", i, target, hash, r.Block)
		}
	}
	return nil
}

// Percentile returns the q-quantile (0 to 1) of ds, nearest rank, in
// milliseconds; 0 for none.
func Percentile(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s)) + 0.999999) // nearest rank: ceil(q·n)
	i = min(max(i, 1), len(s)) - 1
	return float64(s[i].Microseconds()) / 1000
}

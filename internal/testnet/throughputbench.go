package testnet

// Readings per second accepted and confirmed by a small network, measured
// from the outside through the nodes' HTTP APIs, as p2pchain bench
// throughput runs it: the same for nodes in this process and for node
// processes.

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// ThroughputConfig says what MeasureThroughput submits.
type ThroughputConfig struct {
	Readings int // readings submitted in all
	Clients  int // concurrent clients, spread over the nodes (0: 32 per node)
	// Batch, above 1, makes each request carry that many readings (POST
	// /api/v1/readings/batch, as p2pchain import-readings sends them)
	// instead of one (POST /api/v1/readings).
	Batch int
	// MaxWait is how long to wait, after the last submission, for every
	// node's main chain to hold every acknowledged reading (0: 3 minutes).
	MaxWait  time.Duration
	Progress Progress
	// Down, if set, receives an error when a node stops
	// (ProcNetwork.Exits): the run stops at once with it.
	Down <-chan error
}

// ThroughputResult is what MeasureThroughput measured.
type ThroughputResult struct {
	Acked, Failed int
	FirstErr      error
	// Accepted: first submission to the last acknowledgement; Confirmed:
	// first submission to every acknowledged reading in the main chain of
	// every node (or MaxWait ran out).
	Accepted, Confirmed time.Duration
	// Latencies: per acknowledged reading, from just before its request to
	// the arrival of the event of the last node whose main chain took in
	// a block holding it.
	Latencies []time.Duration
	// Lost counts acknowledged readings missing from the main chain of at
	// least one node at the end.
	Lost   int
	Height uint64 // of the first node at the end
}

// nodeWatch follows one node's main chain through its event stream: each
// tip event's block and the ancestors not seen yet are fetched by hash
// (GET /api/v1/blocks/HASH), and each reading in them is stamped with the
// arrival of the tip event that put it in the node's main chain. A reading
// whose block a reorganisation took out is unstamped until a block of the
// new main chain holds it again.
type nodeWatch struct {
	api string

	mu     sync.Mutex
	queue  []watchTip
	wake   chan struct{}
	seen   map[string]time.Time // reading id in the main chain: when it joined
	blocks map[string]watchBlock
	mainAt map[uint64]string // height: hash, of the main chain above the base
	count  atomic.Int64      // len(seen)
	err    error
}

type watchTip struct {
	hash string
	at   time.Time
}

type watchBlock struct {
	height uint64
	parent string
	ids    []string
}

// blockJSON is the part of GET /api/v1/blocks/HASH the harness reads.
type blockJSON struct {
	Block struct {
		Height   uint64 `json:"height"`
		Hash     string `json:"hash"`
		Parent   string `json:"parent"`
		Readings []struct {
			ID string `json:"id"`
		} `json:"readings"`
	} `json:"block"`
}

// readTips reads the node's event stream until ctx ends and queues its
// tip events; ready gets nil once its ready event (the base, whose
// ancestors are not followed) has been read.
func (w *nodeWatch) readTips(ctx context.Context, ready chan<- error) {
	readTips(ctx, w.api, ready, func(isReady bool, t tipData, at time.Time) bool {
		w.mu.Lock()
		if isReady {
			w.blocks[t.Hash] = watchBlock{}
		} else {
			w.queue = append(w.queue, watchTip{hash: t.Hash, at: at})
		}
		w.mu.Unlock()
		select {
		case w.wake <- struct{}{}:
		default:
		}
		return true
	})
	if ctx.Err() == nil { // the node stopped, or dropped the stream
		w.mu.Lock()
		if w.err == nil {
			w.err = fmt.Errorf("its event stream ended: the node stopped or dropped the stream")
		}
		w.mu.Unlock()
	}
}

// fetch processes the queued tip events in order until ctx ends.
func (w *nodeWatch) fetch(ctx context.Context) {
	for {
		w.mu.Lock()
		q := w.queue
		w.queue = nil
		w.mu.Unlock()
		for _, t := range q {
			if err := w.follow(ctx, t.hash, t.at); err != nil {
				if ctx.Err() == nil {
					w.mu.Lock()
					w.err = err
					w.mu.Unlock()
				}
				return
			}
		}
		select {
		case <-w.wake:
		case <-ctx.Done():
			return
		}
	}
}

// follow fetches the block hash and its ancestors down to one already
// known, then moves the watch's main chain to hash (setTip).
func (w *nodeWatch) follow(ctx context.Context, hash string, at time.Time) error {
	for h := hash; ; {
		w.mu.Lock()
		_, known := w.blocks[h]
		w.mu.Unlock()
		if known {
			break
		}
		var b blockJSON
		if err := getJSON(ctx, w.api+"/api/v1/blocks/"+h, &b); err != nil {
			return err
		}
		wb := watchBlock{height: b.Block.Height, parent: b.Block.Parent}
		for _, r := range b.Block.Readings {
			wb.ids = append(wb.ids, r.ID)
		}
		w.mu.Lock()
		w.blocks[h] = wb
		w.mu.Unlock()
		if wb.height <= 1 {
			break
		}
		h = wb.parent
	}
	w.mu.Lock()
	w.setTip(hash, at)
	w.mu.Unlock()
	return nil
}

// setTip makes hash the tip of the watch's main chain: the readings of the
// blocks that left it are no longer seen (a reorganisation returned them
// to the pending set, and they count again only once a block on the new
// main chain holds them), and those of the blocks that joined it and not
// seen yet are stamped with at. w.mu must be held; the blocks from hash
// down to the main chain or the base must be in w.blocks.
func (w *nodeWatch) setTip(hash string, at time.Time) {
	var path []string // the new branch, tip first
	for h := hash; ; {
		b, ok := w.blocks[h]
		if !ok || b.height == 0 || w.mainAt[b.height] == h {
			break // the base (or before it), or the fork point
		}
		path = append(path, h)
		h = b.parent
	}
	if len(path) == 0 {
		return
	}
	fork := w.blocks[path[len(path)-1]].height - 1
	for height := fork + 1; ; height++ {
		h, ok := w.mainAt[height]
		if !ok {
			break
		}
		for _, id := range w.blocks[h].ids {
			delete(w.seen, id)
		}
		delete(w.mainAt, height)
	}
	for i := len(path) - 1; i >= 0; i-- {
		b := w.blocks[path[i]]
		w.mainAt[b.height] = path[i]
		for _, id := range b.ids {
			if _, ok := w.seen[id]; !ok {
				w.seen[id] = at
			}
		}
	}
	w.count.Store(int64(len(w.seen)))
}

// holding returns how many of ids (empty ones left out) the watch has
// seen in the node's main chain.
func (w *nodeWatch) holding(ids []string) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	var n int64
	for _, id := range ids {
		if _, ok := w.seen[id]; ok && id != "" {
			n++
		}
	}
	return n
}

// mainChain returns the reading ids of the node's main chain now: the
// ancestry of its tip down to the base, from the blocks fetched so far and
// those it fetches now (the fetcher may be in the middle of a walk).
func (w *nodeWatch) mainChain(ctx context.Context) (map[string]bool, uint64, error) {
	var st struct {
		Tip    string `json:"tip"`
		Height uint64 `json:"height"`
	}
	if err := getJSON(ctx, w.api+"/api/v1/status", &st); err != nil {
		return nil, 0, err
	}
	out := map[string]bool{}
	for h := st.Tip; ; {
		w.mu.Lock()
		b, ok := w.blocks[h]
		w.mu.Unlock()
		if !ok {
			var bj blockJSON
			if err := getJSON(ctx, w.api+"/api/v1/blocks/"+h, &bj); err != nil {
				return nil, 0, err
			}
			b = watchBlock{height: bj.Block.Height, parent: bj.Block.Parent}
			for _, r := range bj.Block.Readings {
				b.ids = append(b.ids, r.ID)
			}
		}
		if b.height == 0 { // the base
			break
		}
		for _, id := range b.ids {
			out[id] = true
		}
		if b.height == 1 {
			break
		}
		h = b.parent
	}
	return out, st.Height, nil
}

// MeasureThroughput submits cfg.Readings readings through POST
// /api/v1/readings of the nodes at apis, from cfg.Clients concurrent
// clients (client k to node k mod len(apis)) over keep-alive connections,
// each posting its next reading as soon as the previous one is
// acknowledged. It follows every node's main chain through its event
// stream (subscribed to before the first submission) and stops the clock
// when every acknowledged reading is in the main chain of every node. The
// nodes' chains must hold no readings of this harness before.
func MeasureThroughput(ctx context.Context, apis []string, cfg ThroughputConfig) (ThroughputResult, error) {
	var res ThroughputResult
	if cfg.Clients <= 0 {
		cfg.Clients = 32 * len(apis)
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 3 * time.Minute
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	watches := make([]*nodeWatch, len(apis))
	ready := make(chan error, len(apis))
	for i, api := range apis {
		w := &nodeWatch{api: api, wake: make(chan struct{}, 1), seen: make(map[string]time.Time, cfg.Readings),
			blocks: map[string]watchBlock{}, mainAt: map[uint64]string{}}
		watches[i] = w
		wg.Add(2)
		go func() { defer wg.Done(); w.readTips(ctx, ready) }()
		go func() { defer wg.Done(); w.fetch(ctx) }()
	}
	if err := waitReady(ctx, ready, len(apis)); err != nil {
		return res, err
	}

	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		MaxIdleConns: cfg.Clients, MaxIdleConnsPerHost: cfg.Clients, IdleConnTimeout: time.Minute}}
	defer client.CloseIdleConnections()
	ids := make([]string, cfg.Readings)
	submitted := make([]time.Time, cfg.Readings)
	var (
		next, acked, failed atomic.Int64
		firstErr            atomic.Value
		clients             sync.WaitGroup
	)
	start := time.Now()
	for k := range cfg.Clients {
		api := apis[k%len(apis)]
		clients.Add(1)
		go func() {
			defer clients.Done()
			for ctx.Err() == nil {
				n := max(1, cfg.Batch)
				first := int(next.Add(int64(n)) - int64(n))
				if first >= cfg.Readings {
					return
				}
				n = min(n, cfg.Readings-first)
				at := time.Now()
				for i := first; i < first+n; i++ {
					submitted[i] = at
				}
				var got, refusals []string
				var err error
				if cfg.Batch > 1 {
					got, refusals, err = submitBatch(ctx, client, api, first, n)
				} else {
					var id string
					id, err = submitReading(ctx, client, api, fmt.Appendf(nil, `{"subject":"tp-%d","bpm":%d}`, first, chain.MinBPM+first%100))
					got = []string{id}
				}
				if err != nil {
					if failed.Add(int64(n)) == int64(n) {
						firstErr.Store(err)
					}
					continue
				}
				for j, id := range got {
					if id == "" {
						if failed.Add(1) == 1 && j < len(refusals) {
							firstErr.Store(fmt.Errorf("reading %d of a batch refused: %s", first+j, refusals[j]))
						}
						continue
					}
					ids[first+j] = id
					acked.Add(1)
				}
			}
		}()
	}
	submitting := make(chan struct{})
	go func() { clients.Wait(); close(submitting) }()
	confirmedAll := func() int64 {
		m := watches[0].count.Load()
		for _, w := range watches[1:] {
			m = min(m, w.count.Load())
		}
		return m
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var deadline time.Time
	for done := false; !done; {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case err := <-cfg.Down:
			return res, err
		case <-submitting:
			submitting = nil
			res.Accepted = time.Since(start)
			deadline = time.Now().Add(cfg.MaxWait)
		case <-tick.C:
		}
		conf := confirmedAll()
		cfg.Progress.report("readings confirmed on every node", "readings", int(conf), cfg.Readings)
		for _, w := range watches {
			w.mu.Lock()
			err := w.err
			w.mu.Unlock()
			if err != nil {
				return res, whyDown(cfg.Down, fmt.Errorf("following %s: %w", w.api, err))
			}
		}
		// Once every request is answered, count exactly the acknowledged
		// readings (a reading stored whose answer the client never got
		// is in the chain too, and must not stand in for one missing).
		if submitting == nil && conf >= acked.Load() {
			conf = int64(len(ids))
			for _, w := range watches {
				conf = min(conf, w.holding(ids))
			}
		}
		if submitting == nil && (conf >= acked.Load() || time.Now().After(deadline)) {
			done = true
		}
	}
	res.Confirmed = time.Since(start)
	res.Acked, res.Failed = int(acked.Load()), int(failed.Load())
	if err, ok := firstErr.Load().(error); ok {
		res.FirstErr = err
	}

	// Every node's main chain now, and the latencies.
	missing := map[string]bool{}
	for i, w := range watches {
		main, height, err := w.mainChain(ctx)
		if err != nil {
			return res, whyDown(cfg.Down, fmt.Errorf("node %d: %w", i, err))
		}
		if i == 0 {
			res.Height = height
		}
		for _, id := range ids {
			if id != "" && !main[id] {
				missing[id] = true
			}
		}
	}
	res.Lost = len(missing)
	end := start.Add(res.Confirmed)
	var lastAll time.Time // the last reading's confirmation on its last node
	complete := true
	for i, id := range ids {
		if id == "" {
			continue
		}
		var last time.Time
		for _, w := range watches {
			w.mu.Lock()
			t, ok := w.seen[id]
			w.mu.Unlock()
			if !ok {
				t, complete = end, false
			}
			if t.After(last) {
				last = t
			}
		}
		res.Latencies = append(res.Latencies, last.Sub(submitted[i]))
		if last.After(lastAll) {
			lastAll = last
		}
	}
	if complete && !lastAll.IsZero() {
		res.Confirmed = lastAll.Sub(start) // not rounded up to the check's tick
	}
	return res, nil
}

// submitBatch posts readings first to first+n-1 in one request and returns
// their ids ("" for one refused) and, for each refused, the node's code and
// message.
func submitBatch(ctx context.Context, client *http.Client, api string, first, n int) (ids, refusals []string, err error) {
	body := []byte(`{"readings":[`)
	for i := first; i < first+n; i++ {
		if i > first {
			body = append(body, ',')
		}
		body = fmt.Appendf(body, `{"subject":"tp-%d","bpm":%d}`, i, chain.MinBPM+i%100)
	}
	body = append(body, "]}"...)
	var v struct {
		Results []struct {
			ID    string `json:"id"`
			Code  string `json:"code"`
			Error string `json:"error"`
		} `json:"results"`
	}
	if err := postJSONWith(ctx, client, api+"/api/v1/readings/batch", body, &v); err != nil {
		return nil, nil, err
	}
	if len(v.Results) != n {
		return nil, nil, fmt.Errorf("POST %s/api/v1/readings/batch: %d results, want %d", api, len(v.Results), n)
	}
	ids, refusals = make([]string, n), make([]string, n)
	for i, r := range v.Results {
		ids[i], refusals[i] = r.ID, r.Code+": "+r.Error
	}
	return ids, refusals, nil
}

// submitReading posts one reading and returns its id.
func submitReading(ctx context.Context, client *http.Client, api string, body []byte) (string, error) {
	var v struct {
		ID string `json:"id"`
	}
	if err := postJSONWith(ctx, client, api+"/api/v1/readings", body, &v); err != nil {
		return "", err
	}
	if v.ID == "" {
		return "", fmt.Errorf("POST %s/api/v1/readings: an answer without an id", api)
	}
	return v.ID, nil
}

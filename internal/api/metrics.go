package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
)

// metrics is what GET /metrics serves: p2pchain's own metrics in a registry
// of the handler, gathered together with the process-wide gatherer that
// holds go-libp2p's metrics.
//
// Most values are read from the node and its host at scrape time
// (collector). Counts of main-chain changes come from the node's events,
// counted by a goroutine for the handler's lifetime: they start at zero
// when the handler does. So does p2pchain_finality_seconds, fed by the
// node's finality events.
//
// The consensus metrics are registered on every node, so dashboards and
// alerts need no special case: on a proof-of-work network the
// p2pchain_consensus_* series stay zero (p2pchain_finalized_height and
// p2pchain_finality_seconds apply to both kinds).
type metrics struct {
	h   *Handler
	reg *prometheus.Registry

	connected    prometheus.Counter
	disconnected prometheus.Counter
	reorgs       prometheus.Counter
	reorgDepth   prometheus.Histogram
	finality     prometheus.Histogram
	requests     *prometheus.CounterVec
}

func newMetrics(h *Handler) *metrics {
	m := &metrics{
		h:   h,
		reg: prometheus.NewRegistry(),
		connected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "p2pchain_blocks_connected_total",
			Help: "Blocks that joined the main chain (mined here or received), since the API started.",
		}),
		disconnected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "p2pchain_blocks_disconnected_total",
			Help: "Blocks that left the main chain in reorganisations, since the API started.",
		}),
		reorgs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "p2pchain_reorgs_total",
			Help: "Reorganisations of the main chain, since the API started.",
		}),
		reorgDepth: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "p2pchain_reorg_depth_blocks",
			Help:    "Blocks disconnected per reorganisation.",
			Buckets: []float64{1, 2, 3, 5, 10, 20, 50, 100, 500},
		}),
		finality: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "p2pchain_finality_seconds",
			Help: "Time from a reading's submission at this node to its block becoming final, since the API started.",
			// Authority networks finalise in seconds; proof of work takes
			// MaxReorgDepth blocks and FinalAge (minutes).
			Buckets: []float64{0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600},
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "p2pchain_api_requests_total",
			Help: "HTTP API requests by route and status code.",
		}, []string{"route", "code"}),
	}
	m.reg.MustRegister(m.connected, m.disconnected, m.reorgs, m.reorgDepth, m.finality, m.requests, collector{h})
	events, stop := h.node.Subscribe(8192) // the node drops events this falls behind by
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer stop()
		for {
			select {
			case <-h.done:
				return
			case e, ok := <-events:
				if !ok {
					return
				}
				if e.Kind == node.EventFinal {
					for _, d := range e.Latencies {
						m.finality.Observe(d.Seconds())
					}
					continue
				}
				if !chainChange(e) {
					continue
				}
				m.connected.Add(float64(len(e.Update.Connected)))
				if d := len(e.Update.Disconnected); d > 0 {
					m.disconnected.Add(float64(d))
					m.reorgs.Inc()
					m.reorgDepth.Observe(float64(d))
				}
			}
		}
	}()
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(prometheus.Gatherers{m.reg, m.h.cfg.gatherer}, promhttp.HandlerOpts{
		ErrorLog:      slogPrinter{m.h},
		ErrorHandling: promhttp.ContinueOnError, // a broken metric must not hide the others
	})
}

type slogPrinter struct{ h *Handler }

func (p slogPrinter) Println(v ...any) { p.h.cfg.log.Warn("metrics", "err", v) }

// collector reads the node's state at each scrape.
type collector struct{ h *Handler }

// RejectedOversized is the reason, in the metric
// p2pchain_blocks_rejected_total, of blocks over the network's size limit.
const RejectedOversized = "oversized"

// rejected counts blocks from peers refused as invalid (gossip and sync), by
// reason: the node's refusals by the name of the broken rule
// (chain.ErrorCode's String), plus the host's own before the node saw them:
// bytes that do not decode as a block (the chain's ErrMalformed, "malformed")
// and RejectedOversized. Both of those are always present, so alerts see a
// zero before the first.
func (c collector) rejected() map[string]uint64 {
	t := c.h.host.Traffic()
	r := c.h.node.Rejected()
	r[chain.ErrMalformed.String()] += t.Malformed
	r[RejectedOversized] += t.Oversized
	return r
}

var (
	descHeight     = prometheus.NewDesc("p2pchain_chain_height", "Height of the main-chain tip.", nil, nil)
	descWork       = prometheus.NewDesc("p2pchain_chain_work", "Cumulative proof of work of the main chain (expected hashes).", nil, nil)
	descTipAge     = prometheus.NewDesc("p2pchain_tip_age_seconds", "Time since the tip block's timestamp.", nil, nil)
	descKnown      = prometheus.NewDesc("p2pchain_blocks_known", "Blocks the node knows, genesis and side branches included.", nil, nil)
	descRejected   = prometheus.NewDesc("p2pchain_blocks_rejected_total", "Blocks from peers (gossip or sync) refused, by reason: the broken rule's name, malformed, or oversized.", []string{"reason"}, nil)
	descPending    = prometheus.NewDesc("p2pchain_pending_readings", "Readings waiting to be mined.", nil, nil)
	descPeers      = prometheus.NewDesc("p2pchain_peers", "Connected peers.", nil, nil)
	descMesh       = prometheus.NewDesc("p2pchain_gossip_mesh_peers", "Peers in the GossipSub mesh for blocks.", nil, nil)
	descSyncing    = prometheus.NewDesc("p2pchain_syncing", "1 while the node is catching up with a peer, else 0.", nil, nil)
	descSyncTarget = prometheus.NewDesc("p2pchain_sync_target_height", "Height the current sync aims for (the tip height when not syncing).", nil, nil)
	descSyncProg   = prometheus.NewDesc("p2pchain_sync_progress_ratio", "Progress of the current sync, 0 to 1 (1 when not syncing).", nil, nil)
	descGossip     = prometheus.NewDesc("p2pchain_gossip_bytes_total", "Bytes of blocks moved by gossip.", []string{"direction"}, nil)
	descSyncBytes  = prometheus.NewDesc("p2pchain_sync_bytes_total", "Bytes of blocks moved by the sync protocol.", []string{"direction"}, nil)
	descEvicted    = prometheus.NewDesc("p2pchain_peers_evicted_total", "Peers that connected to the node and were disconnected to make room, one more than the connection limit's high water having connected.", nil, nil)
	descServeBusy  = prometheus.NewDesc("p2pchain_sync_serve_busy_total", "Blocks requests of peers that waited for, or were refused by, the node's serving budget for all peers together (16 MiB/s).", nil, nil)
	descFound      = prometheus.NewDesc("p2pchain_discovery_found_total", "Peers found by discovery, by source.", []string{"source"}, nil)
	descDials      = prometheus.NewDesc("p2pchain_discovery_dials_total", "Dials made by discovery.", nil, nil)
	descDialErrors = prometheus.NewDesc("p2pchain_discovery_dial_errors_total", "Dials made by discovery that failed.", nil, nil)
	descFinal      = prometheus.NewDesc("p2pchain_finalized_height", "Height of the highest final block (it never leaves the main chain).", nil, nil)
	descConsHeight = prometheus.NewDesc("p2pchain_consensus_height", "Height the authorities are deciding (0 on proof of work).", nil, nil)
	descConsRound  = prometheus.NewDesc("p2pchain_consensus_round", "Round of the height being decided (0 on proof of work).", nil, nil)
	descConsAuth   = prometheus.NewDesc("p2pchain_consensus_authorities", "Authorities in the set of the height being decided (0 on proof of work).", nil, nil)
	descDecided    = prometheus.NewDesc("p2pchain_consensus_decided_total", "Heights this node saw decided since it started.", nil, nil)
	descRounds     = prometheus.NewDesc("p2pchain_consensus_rounds_total", "Rounds after round 0 that the decided heights took, since the node started.", nil, nil)
	descMissed     = prometheus.NewDesc("p2pchain_consensus_missed_turns_total", "Decided heights whose round-0 proposer missed its turn, since the node started.", nil, nil)
	descEvidence   = prometheus.NewDesc("p2pchain_consensus_evidence", "Equivocations (evidence of faulty authorities) the node holds.", nil, nil)
	descDiskFull   = prometheus.NewDesc("p2pchain_storage_full", "1 while the node's disk is full (readings refused; it resumes by itself), else 0.", nil, nil)
	descDiskSlow   = prometheus.NewDesc("p2pchain_storage_slow", "1 while a store write has lasted longer than the slow-disk threshold (readings and blocks refused; it resumes by itself), else 0.", nil, nil)
	descAPIConns   = prometheus.NewDesc("p2pchain_api_connections", "Connections to the HTTP API open now.", nil, nil)
	descAPIRefused = prometheus.NewDesc("p2pchain_api_connections_refused_total", "Connections to the HTTP API refused at once: over the limit in all or from one address.", nil, nil)
	descStored     = prometheus.NewDesc("p2pchain_storage_height", "Height of the tip last written to disk (below p2pchain_chain_height while blocks wait for the writer).", nil, nil)
	descWriteWait  = prometheus.NewDesc("p2pchain_storage_write_wait_seconds", "How long the oldest store write in flight has lasted (0: none).", nil, nil)
	descStoreFail  = prometheus.NewDesc("p2pchain_storage_failed", "1 once a write of the node's store failed (the node is stopping), else 0.", nil, nil)
	descClockOff   = prometheus.NewDesc("p2pchain_clock_offset_seconds", "Median time of the last blocks gossiped by peers minus this node's clock at their arrival (positive: this clock is behind; 0 before any).", nil, nil)
	descClockSkew  = prometheus.NewDesc("p2pchain_clock_skewed", "1 while the clock offset is over its threshold (half max_future_drift, at least 30 s), else 0.", nil, nil)
	descTooNew     = prometheus.NewDesc("p2pchain_blocks_too_new_total", "Blocks from peers refused for now as too far ahead of this node's clock (not counted as rejected: nobody's fault).", nil, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHeight, descWork, descTipAge, descKnown, descRejected, descPending,
		descPeers, descMesh, descSyncing, descSyncTarget, descSyncProg, descGossip, descSyncBytes, descServeBusy, descEvicted, descFound, descDials, descDialErrors,
		descFinal, descConsHeight, descConsRound, descConsAuth, descDecided, descRounds, descMissed, descEvidence,
		descDiskFull, descDiskSlow, descStored, descWriteWait, descAPIConns, descAPIRefused, descStoreFail, descClockOff, descClockSkew, descTooNew} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	n, host := c.h.node, c.h.host
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	st := n.Overview()
	w, _ := work(st.Work).Float64()
	gauge(descHeight, float64(st.Height))
	gauge(descStored, float64(st.Stored))
	open, refused := c.h.conns.counts()
	gauge(descAPIConns, float64(open))
	counter(descAPIRefused, refused)
	gauge(descWork, w)
	gauge(descTipAge, time.Since(time.UnixMilli(n.TipBlock().Header.Time)).Seconds())
	gauge(descKnown, float64(n.KnownBlocks()))
	for reason, count := range c.rejected() {
		counter(descRejected, count, reason)
	}
	gauge(descPending, float64(st.Pending))
	disk := n.Disk()
	storage := newStorageView(n.Storage(), disk)
	gauge(descDiskFull, boolGauge(storage.State == StorageFull))
	gauge(descDiskSlow, boolGauge(disk.Slow))
	gauge(descWriteWait, disk.Wait.Seconds())
	gauge(descStoreFail, boolGauge(storage.State == StorageFailed))
	clock := n.ClockCheck()
	gauge(descClockOff, clock.Offset.Seconds())
	gauge(descClockSkew, boolGauge(clock.Skewed))
	counter(descTooNew, clock.TooNew)
	peers := host.Peers()
	gauge(descPeers, float64(len(peers)))
	gauge(descMesh, float64(host.MeshPeers()))
	sy := host.Sync()
	syncing, target := 0.0, st.Height
	if sy.Syncing {
		syncing, target = 1, sy.Target
	}
	gauge(descSyncing, syncing)
	gauge(descSyncTarget, float64(target))
	gauge(descSyncProg, newSyncView(st.Height, peers, sy).Progress)
	t, d := host.Traffic(), host.DiscoveryStats()
	counter(descGossip, t.GossipIn, "in")
	counter(descGossip, t.GossipOut, "out")
	counter(descSyncBytes, t.SyncIn, "in")
	counter(descSyncBytes, t.SyncOut, "out")
	counter(descServeBusy, t.ServeBusy)
	counter(descEvicted, t.Evicted)
	counter(descFound, d.MDNSFound, "mdns")
	counter(descFound, d.DHTFound, "dht")
	counter(descDials, d.Dials)
	counter(descDialErrors, d.DialErrors)
	gauge(descFinal, float64(n.FinalHeight()))
	var cs node.ConsensusInfo // zero on proof of work
	if n.Params().Consensus == chain.Authority {
		cs = n.Consensus()
	}
	gauge(descConsHeight, float64(cs.Height))
	gauge(descConsRound, float64(cs.Round))
	gauge(descConsAuth, float64(len(cs.Authorities)))
	counter(descDecided, cs.Decided)
	counter(descRounds, cs.Rounds)
	counter(descMissed, cs.MissedTurns)
	gauge(descEvidence, float64(len(cs.Evidence)))
}

// count records each request in p2pchain_api_requests_total by the route
// that served it.
func (h *Handler) count(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		route := r.Pattern // set by the mux on r
		if route == "" || route == "/" || route == "/api/" || route == "/metrics" {
			route = "other"
		}
		h.metrics.requests.WithLabelValues(route, strconv.Itoa(sw.status)).Inc()
	})
}

// statusWriter remembers the status code. Unwrap lets
// http.ResponseController reach the connection (to flush event streams).
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

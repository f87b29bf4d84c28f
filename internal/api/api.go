package api

import (
	"bytes"
	"cmp"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/p2pchain/p2pchain/internal/fhir"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/p2p"
)

// Limits of the API.
const (
	// MaxBodyBytes is the largest request body accepted (413 above), but
	// for POST /api/v1/readings/batch, which takes MaxBatchBodyBytes.
	MaxBodyBytes = 4 << 10
	// MaxBatchBodyBytes bounds the body of POST /api/v1/readings/batch,
	// which carries at most node.MaxSubmitAll readings.
	MaxBatchBodyBytes = 256 << 10
	// DefaultLimit is the page size when a request gives no limit.
	DefaultLimit = 20
	// MaxLimit is the largest page size; a larger limit is lowered to it.
	MaxLimit = 100
	// DefaultConnectTimeout bounds POST /api/v1/peers.
	DefaultConnectTimeout = 10 * time.Second
	// DefaultPeerPoll is how often the event streams' one poller looks for
	// peers that connected or left.
	DefaultPeerPoll = time.Second
	// DefaultMaxStreams is how many event streams may be open at once;
	// one more is refused with 503 too_many_streams.
	DefaultMaxStreams = 64
	// DefaultCostlyWait is how long a costly read waits for a slot before
	// it is answered 503 busy.
	DefaultCostlyWait = 2 * time.Second
	// heartbeat is how often an idle event stream sends a comment, so
	// proxies and clients see it is alive.
	heartbeat = 15 * time.Second
)

// Timeouts are the HTTP server's timeouts (see http.Server). Event streams
// are exempt from Write.
type Timeouts struct {
	ReadHeader, Read, Write, Idle, Shutdown time.Duration
}

// DefaultTimeouts are the timeouts Serve uses unless WithTimeouts is given.
var DefaultTimeouts = Timeouts{
	ReadHeader: 5 * time.Second,
	Read:       15 * time.Second,
	Write:      30 * time.Second,
	Idle:       2 * time.Minute,
	Shutdown:   5 * time.Second,
}

type config struct {
	token          string
	readToken      string
	log            *slog.Logger
	gatherer       prometheus.Gatherer
	hosts          []string
	anyHost        bool
	connectTimeout time.Duration
	peerPoll       time.Duration
	maxStreams     int
	maxCostly      int
	costlyWait     time.Duration
	maxConns       int
	maxConnsPerIP  int
	fallback       http.Handler
	timeouts       Timeouts
	shutdown       func()
	version        string
}

// Option configures a Handler.
type Option func(*config)

// WithToken makes the write endpoints (POST) require the header
// "Authorization: Bearer <token>", and so does the event stream for a
// client off loopback (which may also give it as ?access_token=<token>).
// Other reads stay open. Serve refuses a non-loopback listener without a
// token.
func WithToken(token string) Option { return func(c *config) { c.token = token } }

// WithReadToken sets a second token that opens event streams from other
// machines (as the token does) and nothing else: for viewers of the
// explorer who may watch the ledger live but must not write to it. It has
// effect only beside WithToken.
func WithReadToken(token string) Option { return func(c *config) { c.readToken = token } }

// WithLogger sets the logger for server faults (default: discard).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithGatherer sets where GET /metrics finds metrics beyond p2pchain's own
// (default prometheus.DefaultGatherer, which holds go-libp2p's metrics and
// the Go runtime's).
func WithGatherer(g prometheus.Gatherer) Option { return func(c *config) { c.gatherer = g } }

// WithAllowedHosts adds host names a request's Host header may carry, "*"
// for any. IP addresses and "localhost" are always allowed; any other name
// is refused (403), which stops DNS-rebinding attacks from web pages.
func WithAllowedHosts(hosts ...string) Option {
	return func(c *config) {
		for _, h := range hosts {
			if h == "*" {
				c.anyHost = true
			}
			c.hosts = append(c.hosts, strings.ToLower(h))
		}
	}
}

// WithConnectTimeout bounds how long POST /api/v1/peers waits for a peer
// (default DefaultConnectTimeout).
func WithConnectTimeout(d time.Duration) Option { return func(c *config) { c.connectTimeout = d } }

// WithPeerPoll sets how often event streams look for peers that connected
// or left (default DefaultPeerPoll).
func WithPeerPoll(d time.Duration) Option { return func(c *config) { c.peerPoll = d } }

// WithMaxStreams sets how many event streams may be open at once (default
// DefaultMaxStreams; n below 1 keeps the default).
func WithMaxStreams(n int) Option {
	return func(c *config) {
		if n >= 1 {
			c.maxStreams = n
		}
	}
}

// WithMaxCostly sets how many costly reads (receipts, subject pages and
// figures, FHIR searches) run at once, and how long one more waits for a
// slot before it is answered 503 busy (defaults: DefaultMaxCostly(),
// DefaultCostlyWait; n below 1 or wait not positive keeps the default).
func WithMaxCostly(n int, wait time.Duration) Option {
	return func(c *config) {
		if n >= 1 {
			c.maxCostly = n
		}
		if wait > 0 {
			c.costlyWait = wait
		}
	}
}

// DefaultMaxCostly is how many costly reads run at once by default: two per
// core the Go runtime uses, enough to keep the cores busy while some wait on
// the disk; more would only queue for the cores beside the node's blocks.
func DefaultMaxCostly() int { return 2 * runtime.GOMAXPROCS(0) }

// WithFallback serves requests outside /api/ and /metrics with h (the web
// explorer, for instance) instead of a JSON 404.
func WithFallback(h http.Handler) Option { return func(c *config) { c.fallback = h } }

// WithShutdown offers POST /api/v1/shutdown, which calls fn (once, in a
// goroutine of its own, after the 202 answer is sent) to stop the node.
// Without it that endpoint answers 404 not_supported.
func WithShutdown(fn func()) Option { return func(c *config) { c.shutdown = fn } }

// WithVersion sets the software version that GET /fhir/metadata states.
func WithVersion(v string) Option { return func(c *config) { c.version = v } }

// WithTimeouts sets the server timeouts Serve uses.
func WithTimeouts(t Timeouts) Option { return func(c *config) { c.timeouts = t } }

// Handler is the HTTP API of a node. Close it when done: it stops the
// metrics' event counter and ends open event streams. Its handlers read the
// node and its host directly; both are safe for concurrent use, and every
// method called here returns quickly (Host.Connect excepted, bounded by
// WithConnectTimeout).
type Handler struct {
	node    *node.Node
	host    *p2p.Host
	cfg     config
	mux     *http.ServeMux
	root    http.Handler
	metrics *metrics
	streams chan struct{} // a slot per open event stream; capacity maxStreams
	costlyC chan struct{} // a slot per costly read running; capacity maxCostly
	conns   *connLimiter  // the connections Serve admits
	peerHub peerHub
	started time.Time // when New made it: the date of the FHIR CapabilityStatement

	done         chan struct{}
	closeOnce    sync.Once
	shutdownOnce sync.Once
	wg           sync.WaitGroup
}

// New returns the API of a running node and its network host.
func New(n *node.Node, host *p2p.Host, opts ...Option) *Handler {
	cfg := config{
		log:            slog.New(slog.NewTextHandler(io.Discard, nil)),
		gatherer:       prometheus.DefaultGatherer,
		connectTimeout: DefaultConnectTimeout,
		peerPoll:       DefaultPeerPoll,
		maxStreams:     DefaultMaxStreams,
		maxCostly:      DefaultMaxCostly(),
		costlyWait:     DefaultCostlyWait,
		maxConns:       DefaultMaxConnections,
		maxConnsPerIP:  DefaultMaxConnectionsPerIP,
		timeouts:       DefaultTimeouts,
		version:        "dev",
	}
	for _, o := range opts {
		o(&cfg)
	}
	h := &Handler{node: n, host: host, cfg: cfg, mux: http.NewServeMux(), done: make(chan struct{}),
		streams: make(chan struct{}, cfg.maxStreams), costlyC: make(chan struct{}, cfg.maxCostly), started: time.Now(),
		conns: newConnLimiter(cfg.maxConns, cfg.maxConnsPerIP, cfg.log)}
	h.metrics = newMetrics(h)
	h.routes()
	h.root = h.recoverer(h.checkHost(h.count(h.mux)))
	return h
}

func (h *Handler) routes() {
	m := h.mux
	m.HandleFunc("GET /api/v1/status", h.status)
	m.HandleFunc("GET /api/v1/blocks", h.blocks)
	m.HandleFunc("GET /api/v1/blocks/{ref}", h.block)
	m.HandleFunc("POST /api/v1/readings", h.write(h.submitReading))
	m.HandleFunc("GET /api/v1/readings/{id}", h.reading)
	m.HandleFunc("GET /api/v1/readings/{id}/receipt", h.costly(h.receipt))
	m.HandleFunc("POST /api/v1/readings/batch", h.write(h.submitBatch))
	m.HandleFunc("GET /api/v1/subjects", h.costly(h.subjects))
	m.HandleFunc("GET /api/v1/subjects/{subject}", h.costly(h.subject))
	m.HandleFunc("GET /api/v1/subjects/{subject}/readings", h.costly(h.subjectReadings))
	m.HandleFunc("GET /api/v1/peers", h.peers)
	m.HandleFunc("POST /api/v1/peers", h.write(h.connect))
	m.HandleFunc("POST /api/v1/peers/block", h.write(h.blockPeers))
	m.HandleFunc("POST /api/v1/peers/unblock", h.write(h.unblockPeers))
	m.HandleFunc("POST /api/v1/shutdown", h.write(h.shutdown))
	m.HandleFunc("GET /api/v1/consensus", h.consensus)
	m.HandleFunc("POST /api/v1/authorities", h.write(h.approve))
	m.HandleFunc("GET /api/v1/events", h.events)
	m.HandleFunc("GET /fhir/metadata", h.fhirMetadata)
	m.HandleFunc("GET /fhir/Observation", h.costly(h.fhirSearch))
	m.HandleFunc("GET /fhir/Observation/{id}", h.fhirObservation)
	m.HandleFunc("/fhir/", h.fhirUnrouted)
	m.Handle("GET /metrics", h.metrics.handler())
	m.HandleFunc("/api/", h.unrouted(nil))
	m.HandleFunc("/metrics", h.unrouted(nil))
	m.HandleFunc("/", h.unrouted(h.cfg.fallback))
}

// costly bounds how many of the reads that may cost a node tens of
// milliseconds of CPU and store reads each (receipts: up to 10,000 headers;
// subject pages and figures, FHIR searches: up to 10,000 index entries) run
// at once, so that a client cannot take every core from the node's blocks.
// A request waits up to costlyWait for a slot, then gets 503 busy with
// Retry-After (an OperationOutcome under /fhir/). The answer is made into a
// buffer and the slot freed before it is sent: a client that reads slowly
// holds its connection, not a slot.
func (h *Handler) costly(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		wait := time.NewTimer(h.cfg.costlyWait)
		defer wait.Stop()
		select {
		case h.costlyC <- struct{}{}:
			buf := &bufferedAnswer{header: http.Header{}}
			func() {
				defer func() { <-h.costlyC }()
				next(buf, r)
			}()
			buf.send(w)
			return
		case <-r.Context().Done():
			return // the client left
		case <-wait.C:
		}
		const msg = "this node already runs %d such reads, as many as it allows at once; try again in a second"
		if strings.HasPrefix(r.URL.Path, "/fhir/") {
			w.Header().Set("Retry-After", strconv.Itoa(retryAfterBusy))
			fhir.WriteError(w, fhir.Errorf(http.StatusServiceUnavailable, "throttled", msg, cap(h.costlyC)))
			return
		}
		e := newError(http.StatusServiceUnavailable, CodeBusy, msg, cap(h.costlyC))
		e.retryAfter = retryAfterBusy
		writeError(w, e)
	}
}

// bufferedAnswer is an http.ResponseWriter that keeps the answer for send.
type bufferedAnswer struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedAnswer) Header() http.Header { return b.header }

func (b *bufferedAnswer) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedAnswer) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.body.Write(p)
}

// send writes the kept answer to w.
func (b *bufferedAnswer) send(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	w.WriteHeader(cmp.Or(b.status, http.StatusOK))
	_, _ = w.Write(b.body.Bytes()) // the client may have gone; nothing to do about it
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.root.ServeHTTP(w, r) }

// Close stops the handler's background work and ends its event streams.
// It is safe to call more than once.
func (h *Handler) Close() error {
	h.closeOnce.Do(func() {
		// Under the peer poller's lock, so that no poller starts (and joins
		// wg) once Wait may have begun.
		h.peerHub.mu.Lock()
		close(h.done)
		h.peerHub.mu.Unlock()
		h.wg.Wait()
	})
	return nil
}

// unrouted answers a request no route took: 405 if the path exists with
// other methods, else the fallback or a JSON 404.
func (h *Handler) unrouted(fallback http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if allow := h.allowed(r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, newError(http.StatusMethodNotAllowed, CodeMethod, "%s is not allowed on %s; use %s", r.Method, r.URL.Path, strings.Join(allow, " or ")))
			return
		}
		if fallback != nil {
			fallback.ServeHTTP(w, r)
			return
		}
		writeError(w, newError(http.StatusNotFound, CodeNotFound, "no such endpoint: %s %s (see docs/API.md)", r.Method, r.URL.Path))
	}
}

// allowed returns the methods a route of r's path takes (GET with HEAD,
// POST): only routes registered with that method count. A route without a
// method (a catch-all such as "/api/", or "/metrics", which answers the
// methods its GET route does not take) answers every method, so it allows
// none of them.
func (h *Handler) allowed(r *http.Request) []string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := h.mux.Handler(probe); strings.HasPrefix(pattern, m+" ") {
			allow = append(allow, m)
			if m == http.MethodGet {
				allow = append(allow, http.MethodHead)
			}
		}
	}
	return allow
}

// write guards a write endpoint: the bearer token, if one is set.
func (h *Handler) write(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !h.bearerOK(r) {
			msg := "this endpoint needs the header Authorization: Bearer <token>; the token is in the node's data directory"
			got, sent := bearer(r)
			switch {
			case h.isReadToken(got):
				msg = "the bearer token is the node's read token (api.read-token): it opens event streams, not writes; send the one in its api.token file"
			case sent:
				// Sent, but not this node's: an old token (a new data
				// directory makes a new one) or another node's.
				msg = "the bearer token is not this node's: send the one in its data directory's api.token file (each data directory has its own)"
			}
			unauthorized(w, msg)
			return
		}
		next(w, r)
	}
}

// bearerOK reports whether r carries "Authorization: Bearer <token>", or
// no token is set.
func (h *Handler) bearerOK(r *http.Request) bool {
	if h.cfg.token == "" {
		return true
	}
	got, ok := bearer(r)
	return ok && h.isToken(got)
}

// bearer returns the token of r's "Authorization: Bearer <token>" header,
// and whether it has one.
func bearer(r *http.Request) (string, bool) {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return strings.TrimSpace(got), ok
}

// isToken compares s with the token in constant time. It is false when no
// token is set.
func (h *Handler) isToken(s string) bool {
	return h.cfg.token != "" && subtle.ConstantTimeCompare([]byte(s), []byte(h.cfg.token)) == 1
}

// isReadToken compares s with the read token in constant time. It is
// false when no read token (or no token) is set.
func (h *Handler) isReadToken(s string) bool {
	return h.cfg.token != "" && h.cfg.readToken != "" && subtle.ConstantTimeCompare([]byte(s), []byte(h.cfg.readToken)) == 1
}

// unauthorized writes a 401 that asks for the bearer token.
func unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="p2pchain"`)
	writeError(w, newError(http.StatusUnauthorized, CodeUnauthorized, "%s", msg))
}

// checkHost refuses Host headers that name neither an IP address,
// localhost nor an allowed host.
func (h *Handler) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h.hostAllowed(r.Host) {
			const msg = "host %q is not allowed; use the node's IP address, or allow the name with the API's allowed hosts"
			if strings.HasPrefix(r.URL.Path, "/fhir/") { // a FHIR client reads OperationOutcomes
				fhir.WriteError(w, fhir.Errorf(http.StatusForbidden, "forbidden", msg, r.Host))
				return
			}
			writeError(w, newError(http.StatusForbidden, CodeForbiddenHost, msg, r.Host))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (h *Handler) hostAllowed(hostport string) bool {
	if h.cfg.anyHost {
		return true
	}
	host := hostport
	if hst, _, err := net.SplitHostPort(hostport); err == nil {
		host = hst
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if host == "" || host == "localhost" || net.ParseIP(host) != nil {
		return true // "": HTTP/1.0 without Host
	}
	for _, a := range h.cfg.hosts {
		if a == host {
			return true
		}
	}
	return false
}

// recoverer turns a panic in a handler into a 500 with the JSON error
// shape, and logs it.
func (h *Handler) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				h.cfg.log.Error("api handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v)
				const msg = "internal error; see the node's log"
				if strings.HasPrefix(r.URL.Path, "/fhir/") { // a FHIR client reads OperationOutcomes
					fhir.WriteError(w, errors.New(msg))
					return
				}
				writeError(w, newError(http.StatusInternalServerError, CodeInternal, msg))
			}
		}()
		w.Header().Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

// writeJSON writes v as the response body with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client may have gone; nothing to do about it
}

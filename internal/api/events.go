package api

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
)

// Event names of GET /api/v1/events.
const (
	EventReady         = "ready"          // first event of every stream: the state it starts from
	EventTip           = "tip"            // the main chain has a new tip
	EventReorg         = "reorg"          // the main chain reorganised (a tip event follows)
	EventPeerConnected = "peer-connected" // a peer connected
	EventPeerGone      = "peer-gone"      // a peer disconnected
	EventFinal         = "final"          // the final height rose
)

type readyEvent struct {
	Height uint64     `json:"height"`
	Hash   chain.Hash `json:"hash"`
	Peers  int        `json:"peers"`
}

type tipEvent struct {
	Height    uint64     `json:"height"`
	Hash      chain.Hash `json:"hash"`
	Connected int        `json:"connected"` // blocks that joined the main chain with this change
}

type reorgEvent struct {
	Depth      int        `json:"depth"` // blocks that left the main chain
	ForkHeight uint64     `json:"fork_height"`
	OldTip     chain.Hash `json:"old_tip"`
	NewTip     chain.Hash `json:"new_tip"`
	Height     uint64     `json:"height"`
	Returned   int        `json:"returned_readings"` // back in the pending set, to be mined again
}

// newReorgEvent returns the reorganisation a node.EventTip reports, false
// when no block left the main chain. The blocks that left come tip first:
// the first was the old tip, the last sits on the fork block.
func newReorgEvent(e node.Event) (reorgEvent, bool) {
	d := e.Update.Disconnected
	if len(d) == 0 {
		return reorgEvent{}, false
	}
	return reorgEvent{Depth: len(d), ForkHeight: d[len(d)-1].Header.Height - 1, OldTip: d[0].Hash(),
		NewTip: e.Tip, Height: e.Height, Returned: len(e.Update.Returned)}, true
}

// chainChange reports whether a node event is a change of the main chain
// (node.EventTip with its update), as opposed to a finality event.
func chainChange(e node.Event) bool { return e.Kind == node.EventTip && e.Update != nil }

type finalEvent struct {
	Height uint64     `json:"height"`
	Hash   chain.Hash `json:"hash"`
}

type peerEvent struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs,omitempty"`
}

// peerBuffer is how many peer events a stream may fall behind before it
// misses some.
const peerBuffer = 64

// streamAllowed reports whether r brings the token or the read token, in
// its Authorization header or as access (the ?access_token= value).
func (h *Handler) streamAllowed(r *http.Request, access string) bool {
	got, _ := bearer(r)
	return h.bearerOK(r) || h.isToken(access) || h.isReadToken(got) || h.isReadToken(access)
}

// events streams changes as server-sent events: GET /api/v1/events.
//
// Off loopback, a stream needs the token or the read token when a token
// is set: in the Authorization header like a write, or as ?access_token=
// because browsers' EventSource cannot set headers. At most maxStreams are open at
// once; one more is refused with 503 before anything is set up for it.
//
// Chain events come from the node as they happen; the node drops those of
// a stream more than its buffer behind. Peer events come from
// the handler's one peer poller (peerHub), so a peer that comes and goes
// between two polls is not reported. A stream that falls behind by more
// than its buffers misses events: a client that sees heights jump should
// read /api/v1/status, one that doubts its peers /api/v1/peers.
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	q, e := query(r)
	if e != nil {
		writeError(w, e)
		return
	}
	if h.cfg.token != "" && !isLoopbackHost(r.RemoteAddr) && !h.streamAllowed(r, q.Get("access_token")) {
		unauthorized(w, "an event stream from another machine needs the header Authorization: Bearer <token> "+
			"or ?access_token=<token>: the node's token, or its read token (api.read-token in its data directory), which opens streams only")
		return
	}
	select {
	case h.streams <- struct{}{}:
		defer func() { <-h.streams }()
	default:
		e := newError(http.StatusServiceUnavailable, CodeTooManyStreams,
			"this node already serves %d event streams, as many as it allows; try again later", cap(h.streams))
		e.retryAfter = retryAfterStreams
		writeError(w, e)
		return
	}

	rc := http.NewResponseController(w)
	// A stream lives longer than the server's write timeout allows other
	// responses; the server's shutdown ends it instead.
	_ = rc.SetWriteDeadline(time.Time{})
	chainEvents, stopChain := h.node.Subscribe(512) // as deep as the node's 256 and the translation's 256 were
	defer stopChain()
	peerEvents, peers, stopPeers := h.subscribePeers()
	defer stopPeers()

	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no") // tell nginx-like proxies not to buffer
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriter(w)
	send := func(name string, v any) error {
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		fmt.Fprintf(bw, "event: %s\ndata: %s\n\n", name, data)
		if err := bw.Flush(); err != nil {
			return err
		}
		return rc.Flush()
	}

	st := h.node.Status()
	fmt.Fprint(bw, "retry: 3000\n\n")
	if send(EventReady, readyEvent{Height: st.Height, Hash: st.Tip, Peers: peers}) != nil {
		return
	}

	beat := time.NewTicker(heartbeat)
	defer beat.Stop()
	for {
		var err error
		select {
		case <-r.Context().Done():
			return
		case <-h.done:
			return
		case e, ok := <-chainEvents:
			if !ok {
				return
			}
			if e.Kind == node.EventFinal {
				err = send(EventFinal, finalEvent{Height: e.Final, Hash: e.FinalHash})
				break
			}
			if !chainChange(e) {
				break
			}
			if re, ok := newReorgEvent(e); ok {
				err = send(EventReorg, re)
			}
			if err == nil {
				err = send(EventTip, tipEvent{Height: e.Height, Hash: e.Tip, Connected: len(e.Update.Connected)})
			}
		case c := <-peerEvents:
			err = send(c.name, c.peer)
		case <-beat.C:
			fmt.Fprint(bw, ": keep-alive\n\n")
			if err = bw.Flush(); err == nil {
				err = rc.Flush()
			}
		}
		if err != nil {
			return // the client went away
		}
	}
}

// peerChange is a peer event for the streams.
type peerChange struct {
	name string // EventPeerConnected or EventPeerGone
	peer peerEvent
}

// peerHub is the one poller of the connected peers behind every event
// stream (package p2p has no connection hook for outsiders yet). It runs
// while streams are subscribed: the first starts it, the last to leave (or
// Close) stops it. Every peerPoll it diffs the connected peers against the
// last poll and sends the changes to each stream without blocking: a
// stream whose buffer is full misses them, and the poller goes on.
type peerHub struct {
	mu    sync.Mutex
	subs  map[chan peerChange]struct{}
	known map[string]bool // connected peers at the last poll
	stop  chan struct{}   // closed to stop the running poller; nil when none runs
	polls atomic.Int64    // reads of the host's peers, to check there is one poller
}

// connectedPeers reads the host's connected peers for the peer poller.
func (h *Handler) connectedPeers() []peerEvent {
	h.peerHub.polls.Add(1)
	ps := h.host.Peers()
	out := make([]peerEvent, 0, len(ps))
	for _, p := range ps {
		out = append(out, peerEvent{ID: p.ID.String(), Addrs: addrStrings(p.Addrs)})
	}
	return out
}

// subscribePeers subscribes a stream to the peer poller, starting it if
// none runs. It returns the stream's channel, the number of connected
// peers that its events follow on from, and the function that
// unsubscribes. Once the handler is closed the channel is nil.
func (h *Handler) subscribePeers() (<-chan peerChange, int, func()) {
	p := &h.peerHub
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-h.done:
		return nil, 0, func() {}
	default:
	}
	if p.stop == nil {
		p.known = nil
		p.update(h.connectedPeers())
		p.subs = map[chan peerChange]struct{}{}
		p.stop = make(chan struct{})
		h.wg.Add(1) // Close takes p.mu before it waits, and we checked h.done under it
		go h.pollPeers(p.stop)
	}
	ch := make(chan peerChange, peerBuffer)
	p.subs[ch] = struct{}{}
	return ch, len(p.known), func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		delete(p.subs, ch)
		if len(p.subs) == 0 && p.stop != nil {
			close(p.stop)
			p.stop = nil
		}
	}
}

// pollPeers is the poller started by subscribePeers; it runs until stop
// is closed or the handler is.
func (h *Handler) pollPeers(stop <-chan struct{}) {
	defer h.wg.Done()
	p := &h.peerHub
	tick := time.NewTicker(h.cfg.peerPoll)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-h.done:
			return
		case <-tick.C:
		}
		now := h.connectedPeers()
		p.mu.Lock()
		select {
		case <-stop: // the streams left during the poll; a new poller may own p now
			p.mu.Unlock()
			return
		default:
		}
		changes := p.update(now)
		for ch := range p.subs {
			for _, c := range changes {
				select {
				case ch <- c:
				default: // the stream is behind: it misses this event
				}
			}
		}
		p.mu.Unlock()
	}
}

// update makes now the known peers and returns what changed. The caller
// holds p.mu.
func (p *peerHub) update(now []peerEvent) []peerChange {
	var changes []peerChange
	set := make(map[string]bool, len(now))
	for _, q := range now {
		if !p.known[q.ID] && !set[q.ID] {
			changes = append(changes, peerChange{EventPeerConnected, q})
		}
		set[q.ID] = true
	}
	for id := range p.known {
		if !set[id] {
			changes = append(changes, peerChange{EventPeerGone, peerEvent{ID: id}})
		}
	}
	p.known = set
	return changes
}

package api

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// Event names of GET /api/v1/events.
const (
	EventReady         = "ready"          // first event of every stream: the state it starts from
	EventTip           = "tip"            // the main chain has a new tip
	EventReorg         = "reorg"          // the main chain reorganised (a tip event follows)
	EventPeerConnected = "peer-connected" // a peer connected
	EventPeerGone      = "peer-gone"      // a peer disconnected
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

type peerEvent struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs,omitempty"`
}

// events streams changes as server-sent events: GET /api/v1/events.
//
// Chain events come from the node as they happen. Peer events come from
// polling the connected peers every peerPoll (package p2p has no
// connection hook for outsiders yet), so a peer that comes and goes between
// two polls is not reported. A stream that falls behind by more than its
// buffer misses chain events: a client that sees heights jump should
// read /api/v1/status.
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	// A stream lives longer than the server's write timeout allows other
	// responses; the server's shutdown ends it instead.
	_ = rc.SetWriteDeadline(time.Time{})
	chainEvents, stop := h.svc.Subscribe(256)
	defer stop()

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

	st := h.svc.Status()
	known := map[string]bool{}
	for _, p := range h.svc.Peers() {
		known[p.ID] = true
	}
	fmt.Fprint(bw, "retry: 3000\n\n")
	if send(EventReady, readyEvent{Height: st.Chain.Height, Hash: st.Chain.Tip, Peers: len(known)}) != nil {
		return
	}

	poll := time.NewTicker(h.cfg.peerPoll)
	defer poll.Stop()
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
			if e.Disconnected > 0 {
				err = send(EventReorg, reorgEvent{Depth: e.Disconnected, ForkHeight: e.ForkHeight, OldTip: e.OldTip,
					NewTip: e.Tip, Height: e.Height, Returned: e.Returned})
			}
			if err == nil {
				err = send(EventTip, tipEvent{Height: e.Height, Hash: e.Tip, Connected: e.Connected})
			}
		case <-poll.C:
			now := map[string]bool{}
			for _, p := range h.svc.Peers() {
				now[p.ID] = true
				if !known[p.ID] && err == nil {
					err = send(EventPeerConnected, peerEvent{ID: p.ID, Addrs: p.Addrs})
				}
			}
			for id := range known {
				if !now[id] && err == nil {
					err = send(EventPeerGone, peerEvent{ID: id})
				}
			}
			known = now
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

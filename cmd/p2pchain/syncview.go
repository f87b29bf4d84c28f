package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/p2p"
)

// syncView shows the progress of the host's catch-up syncs: in a terminal in
// the prompt, redrawn in place ("sync 12000/36708 blocks 33%, 2400 blocks/s,
// 10s left > "), and when a sync ends as one line. Block lines are held back
// meanwhile (hold); a sync that added at most maxBlockLines blocks prints
// them before its end line, as if they had come by gossip: in the demo, a
// block mined before the gossip mesh formed reaches a new peer by sync, and
// its readings still show.
type syncView struct {
	con   console
	out   io.Writer
	state func() p2p.SyncState // the running sync
	last  func() p2p.SyncState // the last finished one
	every time.Duration

	mu      sync.Mutex
	showing bool           // a sync is shown and its end not printed yet (guarded by mu)
	held    []*chain.Block // the first blocks the shown sync added (guarded by mu)
	added   int            // blocks the shown sync added (guarded by mu)
}

// maxBlockLines is the most blocks that arrive together and print a line
// each; more print one summary line.
const maxBlockLines = 5

func newSyncView(con console, h *p2p.Host) *syncView {
	return &syncView{con: con, out: con.Out(), state: h.Sync, last: h.LastSync, every: 200 * time.Millisecond}
}

// hold takes blocks that joined the main chain while a sync runs or its end
// is still to be printed, for its end line, and reports whether it did;
// otherwise the caller prints them.
func (v *syncView) hold(bs []*chain.Block) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.showing && !v.state().Syncing {
		return false
	}
	v.showing = true // a sync too short for a step to see still ends with its line
	v.added += len(bs)
	for _, b := range bs {
		if len(v.held) == maxBlockLines {
			break
		}
		v.held = append(v.held, b)
	}
	return true
}

func (v *syncView) run(ctx context.Context) {
	t := time.NewTicker(v.every)
	defer t.Stop()
	var cur p2p.SyncState
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		v.step(&cur)
	}
}

// step looks at the sync once: cur is the running sync last seen.
func (v *syncView) step(cur *p2p.SyncState) {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := v.state()
	if s.Syncing {
		v.showing = true
		*cur = s
		v.con.SetPrompt(syncPrompt(s))
		return
	}
	if !v.showing {
		return
	}
	v.con.SetPrompt("")
	end := v.last()
	if !cur.Started.IsZero() && !end.Started.Equal(cur.Started) {
		end = *cur // the host moved on: report what was seen
	}
	if v.added <= maxBlockLines {
		for _, b := range v.held {
			fmt.Fprintf(v.out, "block %s\n", blockLine(b))
		}
	}
	fmt.Fprintln(v.out, syncSummary(end))
	// Forget the sync seen: the next one may end before a step sees it
	// run (hold shows it), and must not be reported as this one.
	*cur = p2p.SyncState{}
	v.showing, v.held, v.added = false, nil, 0
}

// syncPrompt is a running sync's progress, to show before the prompt.
func syncPrompt(s p2p.SyncState) string {
	pct := 0.0
	if s.Total > 0 {
		pct = 100 * float64(s.Done) / float64(s.Total)
	}
	p := fmt.Sprintf("sync %d/%d blocks %.0f%%, %.0f blocks/s", s.Done, s.Total, pct, s.Rate)
	if s.Left > 0 {
		p += fmt.Sprintf(", %s left", max(s.Left, time.Second).Round(time.Second))
	}
	return p + " "
}

// syncSummary is the line that reports a finished sync.
func syncSummary(s p2p.SyncState) string {
	took := ""
	if s.Rate > 0 {
		took = fmt.Sprintf(" in %s (%.0f blocks/s)", roundDuration(time.Duration(float64(s.Done)/s.Rate*float64(time.Second))), s.Rate)
	}
	if s.Result == "" || s.Result == "done" {
		return fmt.Sprintf("synced %s from %s%s, now at #%d", countOf(int(s.Done), "block"), s.Peer, took, s.Height)
	}
	return fmt.Sprintf("sync from %s ended (%s) after %s%s, at #%d", s.Peer, s.Result, countOf(int(s.Done), "block"), took, s.Height)
}

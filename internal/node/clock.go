package node

import (
	"errors"
	"slices"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// Clock trouble. The chain's only clock rule is 5c (docs/PROTOCOL.md): a
// block more than Params.MaxFutureDrift ahead of the receiver's clock is
// refused for now (chain.ErrTimeTooNew, nobody's fault). So a node whose
// clock is far behind refuses every new block of its peers, and one whose
// clock is far ahead makes blocks its peers refuse. Neither can tell from
// one block whose clock is wrong; a node can see that the new blocks most
// of its peers relay are far from its clock.
//
// The node compares the time of each block a peer relays by gossip
// (AddBlockFrom: blocks made moments ago) with its clock at arrival, and
// keeps the last such offset per relaying peer for clockMaxAge. It judges
// the median over the peers (of two middle values, the one nearer zero, so that a majority
// must agree): beyond ClockThreshold either way, with at least
// ClockMinSources peers, it logs a warning once, saying which way and what
// to do, and ClockCheck reports Skewed until the median comes back (logged
// too). Per peer, so that one skewed peer re-mining its readings again and
// again does not outvote the others; a node with a single peer never
// judges (it cannot tell whose clock is wrong).
//
// Samples: accepted blocks, blocks refused as too new, and blocks whose
// parent is unknown (a node whose clock is behind refuses the first new
// block of its peers, and every later one arrives without its parent).
// Not samples: blocks from sync (old by nature), the node's own,
// duplicates and blocks refused for another reason. Peers can make the
// check warn falsely, with many identities relaying blocks of any
// time (each at the price of its proof of work); it changes nothing but
// the warning and the metrics. Proof-of-work networks only: on an
// authority network the blocks are the authorities' decisions, timed by
// their proposers.

const (
	// ClockSources is how many relaying peers the clock check remembers; a
	// new one past it replaces the one heard from longest ago.
	ClockSources = 64
	// ClockMinSources is how many it needs before it judges.
	ClockMinSources = 2
	// clockFloor is the least threshold, for networks with a tiny drift.
	clockFloor = 30 * time.Second
	// clockMaxAge is how long a peer's last offset counts.
	clockMaxAge = 10 * time.Minute
)

// ClockThreshold is how far the median offset of peers' blocks may be from
// the node's clock before the node calls its clock skewed: half the
// network's MaxFutureDrift, at least 30 s. The honest lag of a block (its
// proof of work and its way here) is well under it.
func ClockThreshold(p chain.Params) time.Duration { return max(p.MaxFutureDrift/2, clockFloor) }

// ClockCheck is what the node knows of its clock against its peers'.
type ClockCheck struct {
	// Offset is the median, over the peers that relayed blocks lately, of
	// the last block's time minus this node's clock when it arrived:
	// positive when peers' clocks are ahead of ours (ours is behind),
	// negative when ours is ahead. 0 without sources.
	Offset    time.Duration
	Sources   int
	Threshold time.Duration
	// Skewed: at least ClockMinSources, and |Offset| over Threshold.
	Skewed bool
	// TooNew counts the blocks from peers refused as too far in the future
	// (chain.ErrTimeTooNew), by gossip or sync, since the node started; a
	// block refused again (a sync retried) counts again.
	TooNew uint64
}

// clockWatch is the state of the clock check; guarded by Node.mu.
type clockWatch struct {
	last   map[string]clockSample // by relaying peer
	skewed bool
	tooNew uint64
}

type clockSample struct {
	offset time.Duration
	at     time.Time // by our clock
}

// watchClock records what the arrival at now of b, with the verdict err,
// says about the node's clock. from is the peer that relayed b by gossip;
// "" (a sync, or no peer known) counts a block too new but is no sample,
// and b may then be nil.
func (n *Node) watchClock(now time.Time, b *chain.Block, err error, from string) {
	tooNew := errors.Is(err, chain.ErrTimeTooNew)
	orphan := errors.Is(err, chain.ErrUnknownParent)
	if n.cons != nil || (err != nil && !tooNew && !orphan) {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	w := &n.clock
	if tooNew {
		w.tooNew++
	}
	if from == "" {
		return
	}
	if w.last == nil {
		w.last = map[string]clockSample{}
	}
	if _, ok := w.last[from]; !ok && len(w.last) >= ClockSources {
		oldest := ""
		for k, v := range w.last {
			if oldest == "" || v.at.Before(w.last[oldest].at) {
				oldest = k
			}
		}
		delete(w.last, oldest)
	}
	w.last[from] = clockSample{offset: time.Duration(b.Header.Time-now.UnixMilli()) * time.Millisecond, at: now}
	c := n.clockCheckLocked()
	switch {
	case c.Skewed && !w.skewed:
		w.skewed = true
		if c.Offset > 0 {
			n.log.Warn("this node's clock looks behind: the new blocks of its peers are ahead of it; "+
				"it refuses them until they are no more than max_future_drift ahead, and falls behind the network. "+
				"Check this machine's clock (NTP: timedatectl, chronyc tracking)",
				"peers_ahead_by", c.Offset.Round(time.Second), "max_future_drift", n.params.MaxFutureDrift, "sources", c.Sources)
		} else {
			n.log.Warn("this node's clock looks ahead: the new blocks of its peers are behind it; "+
				"peers whose clock is right refuse its blocks while they are more than max_future_drift ahead, "+
				"so readings submitted here may never be confirmed. Check this machine's clock (NTP: timedatectl, chronyc tracking)",
				"peers_behind_by", (-c.Offset).Round(time.Second), "max_future_drift", n.params.MaxFutureDrift, "sources", c.Sources)
		}
	case !c.Skewed && w.skewed:
		w.skewed = false
		n.log.Info("this node's clock agrees with its peers' blocks again", "offset", c.Offset.Round(time.Second), "sources", c.Sources)
	}
}

// ClockCheck returns what the node knows of its clock against its peers'
// (see watchClock).
func (n *Node) ClockCheck() ClockCheck {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.clockCheckLocked()
}

func (n *Node) clockCheckLocked() ClockCheck {
	w := &n.clock
	c := ClockCheck{Threshold: ClockThreshold(n.params), TooNew: w.tooNew}
	now := n.now()
	var s []time.Duration
	for _, v := range w.last {
		if now.Sub(v.at) <= clockMaxAge {
			s = append(s, v.offset)
		}
	}
	if c.Sources = len(s); c.Sources == 0 {
		return c
	}
	slices.Sort(s)
	c.Offset = s[len(s)/2]
	if len(s)%2 == 0 && s[len(s)/2-1].Abs() < c.Offset.Abs() {
		c.Offset = s[len(s)/2-1] // of the two middle values, the one nearer zero
	}
	c.Skewed = c.Sources >= ClockMinSources && (c.Offset > c.Threshold || c.Offset < -c.Threshold)
	return c
}

// mineable returns the readings of rs that a block timed now may hold (rule
// 6d: none more than MaxFutureDrift after its block's time) and, if it left
// some out, how long until the first of those may be mined. A reading taken
// while the node's clock was ahead, then set back, waits in the pool for
// its time instead of making every block the miner makes invalid.
func mineable(rs []chain.Reading, now time.Time, p chain.Params) ([]chain.Reading, time.Duration) {
	limit := now.UnixMilli() + p.MaxFutureDrift.Milliseconds()
	out := rs[:0:0]
	var wait time.Duration
	for _, r := range rs {
		if r.Time <= limit {
			out = append(out, r)
		} else if d := time.Duration(r.Time-limit) * time.Millisecond; wait == 0 || d < wait {
			wait = d
		}
	}
	return out, wait
}

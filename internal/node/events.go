package node

import (
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// EventKind tells events apart.
type EventKind int

// Event kinds.
const (
	EventTip   EventKind = iota + 1 // the main chain changed
	EventFinal                      // the final height rose
)

// Event reports a change of the node's state to subscribers.
type Event struct {
	Kind   EventKind
	Update *chain.Update // what changed (shared: do not modify)
	Height uint64        // tip height after the change
	Tip    chain.Hash    // tip hash after the change
	// EventFinal: the new final height and hash, and for each reading
	// submitted at this node that became final with them, the time from
	// its submission to now.
	Final     uint64
	FinalHash chain.Hash
	Latencies []time.Duration
}

// Subscribe returns a channel of events and a function to stop them. A
// subscriber that falls more than buffer events behind misses events; it can
// always ask Status for the current state.
func (n *Node) Subscribe(buffer int) (<-chan Event, func()) {
	ch := make(chan Event, buffer)
	n.mu.Lock()
	n.subs[ch] = struct{}{}
	n.mu.Unlock()
	return ch, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		if _, ok := n.subs[ch]; ok {
			delete(n.subs, ch)
			close(ch)
		}
	}
}

// publishLocked sends e to every subscriber without blocking. n.mu must be held.
func (n *Node) publishLocked(e Event) {
	for ch := range n.subs {
		select {
		case ch <- e:
		default:
		}
	}
}

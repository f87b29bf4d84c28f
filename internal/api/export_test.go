package api

// PeerPolls returns how many times the event streams' peer poller read the
// host's connected peers, so a test can see that streams share one poller.
func (h *Handler) PeerPolls() int64 { return h.peerHub.polls.Load() }

// HoldCostly takes a costly read's slot, as a running receipt or search
// does, until release is called.
func (h *Handler) HoldCostly() (release func()) {
	h.costlyC <- struct{}{}
	return func() { <-h.costlyC }
}

// CostlyRunning returns how many costly reads hold a slot.
func (h *Handler) CostlyRunning() int { return len(h.costlyC) }

package api

// PeerPolls returns how many times the event streams' peer poller read the
// host's connected peers, so a test can see that streams share one poller.
func (h *Handler) PeerPolls() int64 { return h.peerHub.polls.Load() }

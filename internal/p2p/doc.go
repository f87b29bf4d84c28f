// Package p2p is p2pchain's networking: a go-libp2p host (TCP and QUIC,
// Noise or TLS, Ed25519 identity), GossipSub for new blocks, and the
// request/response protocols a node uses to catch up with its peers.
//
// It knows the chain only through the Ledger interface, which package node
// implements; it never holds chain state of its own. One protocol per file:
//
//	status.go  /p2pchain/status/1.0.0  handshake: genesis, tip, height, work
//	blocks.go  /p2pchain/blocks/1.0.0  main-chain blocks after a block locator
//	gossip.go  GossipSub topic per network for new blocks, with a validator
//	sync.go    the sync manager: one catch-up at a time, from the best peer
//	peers.go   per-peer state and limits, and the sync manager's bookkeeping
//	gater.go   the refused peers
//
// The sync manager learns each peer's claimed status from handshakes (both
// directions), a poll every 10 s and gossiped blocks whose parent we lack,
// and syncs from the peer with the best claim better than our tip. A claim is
// never trusted until blocks prove it: a batch that brings nothing new, or an
// empty answer, while the peer still claims more, ends the sync with a strike
// and a back-off; MaxStrikes strikes get the peer refused. A peer that leaves
// a blocks request unanswered for stallTimeout (10 s) ends the sync as
// stalled and is backed off longer each time in a row, so the next best
// peer is tried. A sync that moved
// our tip announces the new tip by gossip, so peers behind us catch up at
// once. SyncState reports progress as done / total, rate and time left.
//
// Finding peers (see discovery.go): bootstrap peers kept connected with
// backoff, peers remembered from the last run, mDNS on the LAN and a
// Kademlia DHT rendezvous named after the genesis hash (RendezvousNamespace),
// all under a connection manager, with inbound connections capped at its
// high water (connmgr.go). score.go sets GossipSub peer scoring;
// mesh.go follows which peers are in the mesh, as they join and leave.
//
// Listening (listen.go): TCP without port reuse, so that a port another
// process holds is refused for TCP as for QUIC; New checks that every
// address it was given is listened on, and fails with an error wrapping
// ErrPortInUse that names the port otherwise. Identify announces
// WithUserAgent's agent and IdentifyProtocolVersion.
//
// Every message is length-prefixed (unsigned varint) and capped in size, and
// every stream has a deadline, so a slow or hostile peer costs a bounded
// amount. Each peer is served within token buckets (status and blocks
// requests per second, bytes of blocks per second, at most MaxStreamsPerPeer
// streams per protocol at once; over a limit its stream is reset), its
// gossiped blocks are validated within a budget (over it they are ignored),
// and a blocks response it sends us may hold at most the blocks asked for
// and maxBatchBytes plus one block. A peer on another genesis, and a peer
// that relays an invalid block or breaks the blocks protocol, is
// disconnected and then refused by the connection gater for RefuseFor (at
// most MaxRefused peers are remembered). Per-peer state is dropped when the
// peer disconnects, but for its sync penalties (strikes, failures,
// back-off), which are kept for the last maxDepartedPenalties peers to
// leave, so that reconnecting does not wipe them. GossipSub tracks only the
// network's own topics, and drops an RPC with more than
// MaxSubscriptionsPerRPC subscriptions.
// docs/PROTOCOL.md specifies the wire format and the limits (section 14).
package p2p

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
//	sync.go    the client side: who to sync from, in batches, with progress
//
// Finding peers (see discovery.go): bootstrap peers kept connected with
// backoff, peers remembered from the last run, mDNS on the LAN and a
// Kademlia DHT rendezvous, all under a connection manager. score.go sets
// GossipSub peer scoring; mesh.go follows which peers are in the mesh.
//
// Every message is length-prefixed (unsigned varint) and capped in size, and
// every stream has a deadline, so a slow or hostile peer costs a bounded
// amount. A peer on another genesis, and a peer that relays an invalid block
// or breaks the blocks protocol, is disconnected and then refused by the
// connection gater.
// docs/PROTOCOL.md specifies the wire format.
package p2p

// Package sim runs many real p2pchain nodes on go-libp2p's simulated network
// (github.com/marcopolo/simnet) and measures how blocks spread among them.
//
// Each simulated node is the real code: a node.Node (memory store) and a
// p2p.Host (GossipSub with the project's settings and
// scoring, the block validator, the status and blocks protocols, the sync
// manager and peer limits) started by p2p.New with p2p.WithHost on a libp2p
// host whose only transport is QUIC over a simnet endpoint. Every node has
// its own simulated address and a link with an up and down bandwidth limit
// and a delay drawn at random; a packet from node i to node j takes the two
// nodes' delays added together, so the one-way latency of a link is the sum
// of two draws. Each node dials Degree others drawn at random, the meshes
// form, and then every Interval a node drawn at random adds the next block
// (built beforehand, without proof of work) and broadcasts it, as Node.Run
// does with a block it mined.
//
// Run measures, for every block and every other node, the time from the
// miner connecting the block to the node connecting it to its main chain
// (node.Subscribe), and reports its percentiles; the bytes each node moved
// per block, as block payload (p2p.Traffic) and as UDP bytes on the
// simulated wire (QUIC, GossipSub control messages and the background of
// heartbeats and status polls included); and the forks seen.
//
// Run under testing/synctest (synctest.Test), the clock is virtual: it moves
// on only when every goroutine of the simulation waits, so the figures are
// those of the simulated network however slowly the machine runs it, and
// the same for the same seed give or take scheduling order. Outside a
// bubble Run works too, in real time, and the machine's load then shows in
// the figures.
//
// What the simulation does not show: CPU is not simulated (under synctest,
// validating, storing and relaying a block take no time at all, so the
// figures are network latency and bandwidth only; on a real network a slow
// node adds its processing time to every hop it relays); all nodes share
// this machine's cores and memory, which bounds how many can be run, not
// what they measure; links lose no packets and their latency does not
// vary, apart from queueing behind the bandwidth limit; there is no NAT,
// no churn and no attacker; the topology is random dials, not what
// discovery (DHT, bootstrap, peer file) would build; the libp2p host has
// no resource manager and no connection gater of the node's own (see
// p2p.WithHost).
package sim

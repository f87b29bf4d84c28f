// Package node is the one owner of a p2pchain node's mutable state: the
// chain, the pending readings and, on an authority network, the consensus.
// The state in memory changes under one mutex in Node, so the network (many
// goroutines), the miner or consensus and the user see a consistent chain.
//
// It composes the pure consensus core (package chain) with the outside world
// through small interfaces it declares itself: a Store, and a Broadcaster
// that relays blocks, consensus messages and readings. Package p2p calls back
// into the node as its Ledger.
//
// Every block, from a peer, the sync, the miner or the consensus, takes one
// path (process): cheap checks under the lock, signatures on every core
// outside it, then chain.Process under the lock. Nothing waits for the disk
// under the lock: a block's store commit is queued in the order the chain
// changed and written after, and the block is announced, relayed and
// acknowledged only once it is durable (writeCommit); submitted readings
// are group-committed the same way (writer.go) and enter the pending set
// only once stored. A full disk is waited out (space.go: readings refused
// with ErrStoreFull, a refused block commit held and retried); a slow disk
// bounds what waits for it (slow.go: a write that lasts past a threshold
// refuses new readings and blocks with ErrDiskSlow, at most
// MaxQueuedCommits commits queue, and no caller waits longer than the
// write wait); any other store failure makes the node fail (Done, Err).
//
// Readers do not wait on the disk under the lock either: lookups of blocks
// and readings take from the chain what it holds in memory (chain.Ref: the
// hash, the header, the body of the newest blocks) and read and decode
// older bodies from the store after releasing the lock. Before, a client
// paging GET /api/v1/blocks?limit=100 over full blocks held the lock for
// ~70 ms a page, and two such clients kept every other caller waiting
// 135 ms at p50 (BenchmarkLockBesideReaders; 2 µs at p50 since).
//
// On a proof-of-work network the miner packs pending readings into a block
// on the current tip and solves its proof of work outside the lock, on a
// thread at the lowest priority (Linux: checking and relaying come first on
// shared cores); a new tip cancels the work and it starts again on the new
// tip. On an authority
// network the consensus loop (authority.go) runs package bft instead.
package node

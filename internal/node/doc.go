// Package node is the one owner of a p2pchain node's mutable state: the
// chain, the pending readings and the miner. Every access to them goes
// through one mutex in Node, so the network (many goroutines), the miner and
// the user see a consistent chain.
//
// It composes the pure consensus core (package chain) with the outside world
// through small interfaces it declares itself: a Broadcaster that relays the
// blocks it mines. Package p2p calls back into the node as its Ledger.
//
// The miner packs pending readings into a block on the current tip and
// solves its proof of work outside the lock; a new tip cancels the work and
// it starts again on the new tip, so no effort goes into a stale block.
package node

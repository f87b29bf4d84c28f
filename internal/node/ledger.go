package node

import "github.com/p2pchain/p2pchain/internal/chain"

// What package p2p needs of the node beyond the queries in query.go (its
// Ledger interface).

// IsMainChain reports whether hash is the hash of a block on the main chain.
func (n *Node) IsMainChain(hash chain.Hash) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.chain.IsMain(hash)
}

// HasBlock reports whether the node knows the block, on any branch.
func (n *Node) HasBlock(hash chain.Hash) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.chain.HasBlock(hash)
}

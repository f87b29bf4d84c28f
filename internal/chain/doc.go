// Package chain is the consensus core of p2pchain: the block and reading types,
// their canonical binary encoding and SHA-256 hashing, proof of work, the
// validation rules, fork choice and the set of pending readings.
//
// It is pure and deterministic: it imports only the standard library, does no
// network or disk I/O and never reads the wall clock. Callers pass the current
// time in, and every state change returns an Update that says what the caller
// must do next (persist the connected blocks, relay the new one, put returned
// readings back into the pending set). A Chain is not safe for concurrent use;
// its owner (package node) serialises access.
//
// Rules checked for every block, in order (see CheckBlock and (*Chain).AddBlock):
//
//  1. the encoding is canonical and within the size limits (DecodeBlock);
//  2. the header version is known and the difficulty is the network's;
//  3. the header hash meets the proof-of-work target;
//  4. the block holds at most Params.MaxReadings readings, no reading twice,
//     and its readings root is the Merkle root of the reading ids;
//  5. every reading's time is after genesis and not after its block's time
//     plus Params.MaxFutureDrift, its subject and BPM are in range, and its
//     Ed25519 signature verifies;
//  6. the parent is known (otherwise ErrUnknownParent: the caller syncs);
//  7. the height is the parent's plus one and the time is not before the parent's;
//  8. the time is not more than Params.MaxFutureDrift ahead of now
//     (ErrTimeTooNew: not the sender's fault, the block may be valid later);
//  9. no reading of the block is already in one of its ancestors.
//
// Error contract: every rule violation is a *RuleError whose Code is an
// ErrorCode. ErrorCode values are errors themselves, so callers test with
// errors.Is(err, chain.ErrBadPoW) and read the detail with errors.As.
// IsPeerFault tells the codes that prove a sender misbehaved apart from
// those that do not (duplicate, unknown parent, time too new).
//
// Fork choice: the valid chain with the most cumulative work wins; on equal
// work, the tip with the lower hash wins, so all nodes pick the same tip.
// Readings of blocks abandoned by a reorganisation are returned in the Update
// so that the owner puts them back into its Pool: no reading is lost.
package chain

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
// Process is the one entry point for a block. It checks the rules in this
// order, cheapest first, so that a block that is known, or that fails on its
// header or repeats a reading its ancestors hold, costs no signature:
//
//  1. the encoding is canonical and within the size limits (DecodeBlock);
//  2. the block is not known already (ErrDuplicateBlock: not a fault);
//  3. the header alone (CheckHeader): height above 0, a known version, the
//     network's difficulty, a reading count within Params.MaxReadings, and
//     the header hash meets the proof-of-work target;
//  4. the parent is known (otherwise ErrUnknownParent: the caller syncs);
//  5. the height is the parent's plus one, the time is not before the
//     parent's and not more than Params.MaxFutureDrift ahead of now
//     (ErrTimeTooNew: not the sender's fault), and the block's branch does
//     not fork from the main chain below the final height (ErrForkTooDeep);
//  6. the body against the header without a signature (CheckBody): the
//     count matches, no reading twice, the readings root (which commits to
//     every reading, signatures included) matches, every reading's subject,
//     BPM, author key and time (after genesis, not after its block's time
//     plus the drift) are in range;
//  7. no reading of the block is already in one of its ancestors (index
//     lookups: a block recycling readings of the chain, which cost its
//     sender no signing, costs the receiver no verifying);
//  8. every reading's Ed25519 signature verifies (CheckSignatures, through
//     the shared SigCache so that each signature is verified once).
//
// Finality: a main-chain block is final (FinalHeight) once it has at least
// Params.MaxReorgDepth blocks on top of it and has been on the main chain
// for Params.FinalAge by the clock the caller passes in. Branches that fork
// below the final height are refused (rule 5) and side branches that
// fall below it are pruned (Update.Pruned), so the tree holds the main chain
// plus at most MaxSideBlocks blocks of recent forks. With an Archive (the
// owner's store) and a call to Compact after each durable commit, the bodies
// of all but the newest KeepBodies main-chain blocks, the reading index of
// final blocks, and the entries (headers) of the main-chain blocks below the
// final one leave memory: the chain keeps whole only what can still change,
// and asks the archive about the rest (Block, Header, HashAt, HasBlock,
// IsMain, FindReading, locators, BlocksAfter and Process's known-block
// check all answer for final blocks as before). Update.Final tells the owner
// the final height to record, and Resume restarts a chain from the block at
// it, so that neither memory nor a restart grows with the chain. A
// Checkpoint (the node's own policy) holds finality back until the main
// chain reaches it.
//
// Error contract: every rule violation is a *RuleError whose Code is an
// ErrorCode. ErrorCode values are errors themselves, so callers test with
// errors.Is(err, chain.ErrBadPoW) and read the detail with errors.As.
// IsPeerFault tells the codes that prove a sender misbehaved apart from
// those that do not (duplicate, unknown parent, time too new).
//
// Fork choice: the valid chain with the most cumulative work wins. On equal
// work the tip stays, unless it became the tip less than TieWindow ago and
// the newcomer has a lower hash: blocks mined at the same moment resolve
// alike on every node, and a sibling made later never displaces an
// established tip. The readings of a tying branch that lost are offered to
// the owner (Update.Adopted), so the next block ends the tie with every
// reading on one chain.
// Readings of blocks abandoned by a reorganisation are returned in the Update
// so that the owner puts them back into its Pool: no reading is lost.
package chain

// Package bft is the consensus engine of a known-member ("authority")
// network: a fixed, ordered set of Ed25519 keys agrees on one block per
// height, and a block is final once more than two thirds of them have
// precommitted it. The algorithm is Tendermint's (Buchman, Kwon and
// Milosevic, "The latest gossip on BFT consensus", 2018): rounds of
// propose, prevote and precommit, with a lock and a proof-of-lock rule, so
// that two different blocks are never both decided at one height while
// fewer than a third of the authorities are faulty. docs/BFT.md gives the
// safety argument, the encodings with test vectors and the rules of
// membership changes.
//
// What it is: a pure state machine in the style of etcd raft. It imports
// the standard library and internal/chain (for the hash type and the key
// rule) only, does no network or disk I/O, reads no clock (every call takes
// now), draws no randomness and starts no goroutine; the same inputs give
// the same outputs on every node. A Machine is owned by one goroutine; each
// of its methods (Start, Resume, Propose, Validated, Receive, Tick) returns
// an Update that says what the owner must do: persist State before the
// Messages leave, send the Messages to every node, judge the blocks listed
// in Validate, build a block when NeedBlock, keep Evidence, apply and
// persist the Commit and then Start the next height, sync when Behind,
// call Tick at Deadline.
//
// What it is not: it knows nothing of block contents. It agrees on a block
// HASH; the owner builds, carries and validates blocks (chain.CheckBlock on
// its tip, plus its membership policy) and tells the machine with
// Validated; the machine prevotes only for blocks the owner judged valid.
// It does not carry messages either: the owner gossips them (and resends
// what Tick hands back) and fetches the block and commit of a height it
// missed.
//
// The authority set (Set) is ordered; the quorum is floor(2n/3)+1, and the
// proposer of (height, round) is authority (height + round) mod n. A
// Schedule holds the set of each height: the genesis set, then the sets
// that membership Changes carried in committed blocks bring in from the
// height they name (a change's block commit is the vote of the set in
// force).
//
// Messages (Proposal, Vote, Commit, and Evidence) have one canonical
// binary encoding each, fixed widths and big-endian, and every signature
// covers the domain tag "p2pchain/bft/v1" and the network's genesis hash.
// Decoders refuse every other byte string and are bounded: at most
// MaxAuthorities signatures, checked against the length before anything
// is allocated.
//
// Receive checks a message in this order, cheapest first:
//
//  1. the layout is canonical (a struct no decoder would produce is
//     refused as ErrMalformed);
//  2. the height: an older one is ErrOldHeight (a decided peer answers a
//     lagging one with the commit), a newer one ErrFutureHeight (the next
//     height's messages are kept for Start; Update.Behind says what to
//     sync);
//  3. the signer is in the set of the height (ErrUnknownAuthority);
//  4. a message already known is ErrDuplicate, before any signature, or
//     ErrRepeat if it is byte for byte the one held (a resend: authentic,
//     since the one held was verified, so its owner may relay it to peers
//     that missed it, as the machine's own resends need on a network whose
//     authorities reach each other only through others); a
//     message of a round beyond the next only counts towards the round
//     skip and is otherwise ErrFutureRound;
//  5. the signature: the proposer of (height, round) for a proposal, the
//     authority of the index for a vote, a quorum of distinct authorities
//     for a commit (VerifyCommit) (ErrBadSignature, ErrTooFewSignatures,
//     ErrDuplicateSigner);
//  6. a proposal or vote that contradicts one its signer sent for the
//     same height, round and step is accepted as Evidence, once.
//
// Error contract: every refusal is a *RuleError whose Code is an ErrorCode;
// ErrorCode values are errors, so callers test with errors.Is(err,
// bft.ErrBadSignature) and read the detail with errors.As. IsPeerFault
// tells the codes that prove the sender broke the protocol (reject and
// penalise) from those an honest peer causes while the network moves on
// (ErrOldHeight, ErrFutureHeight, ErrFutureRound, ErrDuplicate, ErrRepeat:
// ignore, or relay a repeat).
// A nil error from Receive means the message was new and valid: relay it.
package bft

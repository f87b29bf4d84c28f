// Package receipt makes and checks reading receipts: self-contained JSON
// documents, checkable offline by anyone, that prove a signed heart-rate
// reading was recorded in a block of the chain and has not changed since.
// docs/RECEIPTS.md specifies the format for other implementations.
//
// A receipt holds, and Check verifies in this order:
//
//  1. the format tag ("p2pchain-receipt/1");
//  2. the headers, from the reading's block up to the node's tip (at most
//     MaxHeaders; a node stops at an ancestor of its tip when there are
//     more): each header's hash field is the SHA-256 of its canonical
//     100-byte encoding, its version is 2, its count and difficulty are
//     within the protocol's limits, every header claims the difficulty of
//     the first, its hash meets that difficulty (proof of work), and each
//     header after the first is one higher, names the previous header's hash
//     as its parent and is not older than it;
//  3. the reading: its id is the hash of its content, its fields are valid
//     (subject, BPM range, author key);
//  4. the Merkle proof: leaf index and tree size (the size must be the
//     header's reading count) go into the leaf hash, the audit path leads to
//     the readings root, and with the block's membership changes (authority
//     networks) to the header's root;
//  5. the reading's Ed25519 signature;
//  6. on an authority network, the commit: the precommit signatures, by
//     more than two thirds of the authority set the receipt gives, over one
//     of the receipt's headers (the reading's block, in receipts a node
//     makes), for the network the receipt names;
//  7. when the caller gives a trusted block hash, that it is the hash of one
//     of the receipt's headers.
//
// The first check that fails ends Check with an error that names what did
// not match ("header 12 prev hash", "merkle proof", "commit signature 2",
// ...) and wraps one of the sentinel errors below, so errors.Is tells the
// kinds apart.
//
// Why this shape. A receipt carries headers, never whole blocks: the
// Merkle path of one reading is about log2(readings) hashes, so a receipt
// stays small however full the block, and it reveals no other patient's
// readings. It carries the headers above the block so that a checker sees
// how much work (proof of work) or which decision (authority networks)
// stands on the reading, and so that a block hash the checker already
// trusts, learned from anywhere (a node of its own, a colleague, a printout)
// and given with --trust, can be found among them: every header links to
// the one below by hash, so trusting one header trusts every header below
// it, the reading's block included. The headers are bounded so that a
// checker's work is bounded too.
//
// What a receipt does not prove by itself. Without a trusted hash, a
// receipt on a proof-of-work network proves that someone spent the work its
// headers show on blocks holding the reading; anyone can make a receipt of
// a made-up chain at a low difficulty, so the checker must look at the
// difficulty and depth, and compare the tip hash with one it trusts. On an
// authority network the commit proves that more than two thirds of the keys
// the receipt lists signed the block; the trust in those keys comes from
// outside the receipt: the network file (its genesis authorities) or a
// trusted block hash. Result gives the set's hash and keys to compare; the
// key of an authority that did not sign is checked by nothing else. A receipt says nothing of whether the reading is
// medically right, only that the author's key signed it and the chain
// recorded it. Check uses no clock: it does not say a block is not from the
// future, and it does not check the network's parameters (its genesis time,
// time drift, reading limit), which the headers do not carry.
//
// The package imports the standard library, package chain (encodings,
// hashes, Merkle leaves, proof of work) and package bft (commits and
// authority sets) only; it does no I/O.
package receipt

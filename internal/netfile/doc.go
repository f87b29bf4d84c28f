// Package netfile reads and writes the network file of an authority
// network: a TOML document that every member of the network uses alike,
// made by `p2pchain network new` and given to every command with
// --network-file FILE.
//
// Why a file: a proof-of-work network is fixed by two flags (its name and
// difficulty), but an authority network also needs the list of its
// authorities (libp2p Ed25519 peer IDs) and the timing of its consensus.
// That is too much for flags that must be typed alike on every machine, and
// a file can be copied, compared and reviewed before a network starts.
//
// What it does: Parse checks every value of a file (unknown keys, missing
// keys and bad values are refused, each error naming the key and saying
// what it must be) and returns the Network: the chain.Params of the
// network, its genesis authority set (bft.Set, in file order), its
// consensus timeouts and block interval. Encode writes a File back as a
// documented TOML file. Every key is required: a default that changed
// between two versions of the program would otherwise split a network.
//
// The genesis: chain.Params hold the name, genesis time, max readings and
// max future drift of the file as they hold them for any network
// (Difficulty 0, MaxReorgDepth 1, FinalAge 0: blocks are final once
// committed). What the chain does not interpret goes into
// Params.Commitment, the SHA-256 of a canonical binary encoding:
//
//	"p2pchain/network/v1" || set hash (bft.Set.Hash, 32 bytes)
//	|| block interval in ms || propose || propose delta || prevote
//	|| prevote delta || precommit || precommit delta     (ms, uint64 BE each)
//
// The genesis block commits to the Params and so to the Commitment: nodes
// whose files differ in any parameter have different genesis blocks and
// refuse each other at the handshake, while comments, key order and
// formatting of the file change nothing. Durations must be whole
// milliseconds, so that two files that read differently never commit alike.
//
// What it does not do: it runs no consensus (package bft and the node do)
// and holds no private key; membership changes after genesis are blocks of
// the chain, not edits of this file, which stays as the network began.
package netfile

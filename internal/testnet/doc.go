// Package testnet runs many p2pchain nodes in one process, each a real
// libp2p host on loopback with its own chain, for tests, demos and
// benchmarks. It wires package node and package p2p the same way the
// p2pchain binary does.
//
// Start starts one peer (a memory store unless Config.NodeOptions gives
// one); StartNetwork starts a network of durable peers, each with its own
// data directory (identity key and chain store), connected by a Topology
// (line, ring, random:K or full), as the p2pchain testnet command does.
// A Load puts a steady rate of readings on a network.
package testnet

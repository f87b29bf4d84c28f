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
//
// StartProcs runs a network of p2pchain node processes instead (the
// binary's node command, wired through the nodes' HTTP APIs), as
// p2pchain testnet --processes and p2pchain bench --processes do.
// MeasurePropagation times blocks from an API submission until every
// node's event stream reports them, for nodes in this process or not, and
// StartNaive runs the naive baseline (whole chains sent every 5 s) on the
// same links for comparison.
package testnet

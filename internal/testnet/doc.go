// Package testnet runs many p2pchain nodes in one process, each a real
// libp2p host on loopback with its own chain, for tests, demos and
// benchmarks. It wires package node and package p2p the same way the
// p2pchain binary does.
package testnet

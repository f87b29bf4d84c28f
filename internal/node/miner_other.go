//go:build !linux

package node

// atLowestPriority runs fn. Only Linux sets a priority per thread (see
// miner_linux.go).
func atLowestPriority(fn func()) { fn() }

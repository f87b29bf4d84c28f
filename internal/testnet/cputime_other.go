//go:build !unix

package testnet

import "time"

// SelfCPUTime returns this process's CPU time (user and system, all
// threads) at the resolution of getrusage; false where it cannot tell.
func SelfCPUTime() (time.Duration, bool) { return 0, false }

//go:build unix

package testnet

import (
	"syscall"
	"time"
)

// SelfCPUTime returns this process's CPU time (user and system, all
// threads) at the resolution of getrusage; false where it cannot tell.
func SelfCPUTime() (time.Duration, bool) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}

package node

import (
	"runtime"
	"syscall"
)

// atLowestPriority runs fn on an OS thread of its own at the lowest
// scheduling priority (nice 19) and returns when fn has. The miner runs its
// proof of work so, so that it takes only the CPU that checking, storing and
// relaying blocks and readings leave: a node that mines at normal priority
// competes with its own verification on every core it shares.
//
// The goroutine that runs fn ends locked to its thread, so the thread ends
// with it and no other goroutine inherits the priority (an unprivileged
// process cannot raise it again). The process's main thread outlives a
// goroutine locked to it; a goroutine that finds itself there holds it and
// starts another, which then cannot run on it. A priority that cannot be
// changed (a sandbox) is left as it is.
func atLowestPriority(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		tid := syscall.Gettid()
		if tid == syscall.Getpid() {
			atLowestPriority(fn)
			runtime.UnlockOSThread()
			return
		}
		_ = syscall.Setpriority(syscall.PRIO_PROCESS, tid, 19)
		fn()
	}()
	<-done
}

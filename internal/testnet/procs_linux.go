package testnet

import (
	"context"
	"syscall"
	"time"
)

// childAttr puts a node process in a process group of its own (a Ctrl-C at
// the terminal reaches the parent only, which stops its children in order)
// and has the kernel kill it if the parent dies, so that a killed testnet
// leaves no orphans. (Pdeathsig fires when the thread that started the
// child ends; the Go runtime ends threads only under LockOSThread, which
// this package does not use.)
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// CPU returns a CPU function for MeasurePropagation that sums the CPU time
// (user and system) of the network's running node processes, read from
// /proc/PID/stat (ProcessCPUTime): unlike ProcessCPU it costs the nodes
// nothing (a scrape of /metrics costs each node milliseconds of encoding and
// compression, inside the window it measures). The resolution is the
// kernel's clock tick.
func (pn *ProcNetwork) CPU() func(context.Context) (float64, error) {
	return func(context.Context) (float64, error) {
		pn.mu.Lock()
		pids := make([]int, 0, len(pn.Nodes))
		for _, n := range pn.Nodes {
			if pid := n.PID(); pid > 0 {
				pids = append(pids, pid)
			}
		}
		pn.mu.Unlock()
		var sum time.Duration
		for _, pid := range pids {
			d, err := ProcessCPUTime(pid)
			if err != nil {
				return sum.Seconds(), err
			}
			sum += d
		}
		return sum.Seconds(), nil
	}
}

package testnet

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
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
// /proc/PID/stat: unlike ProcessCPU it costs the nodes nothing (a scrape of
// /metrics costs each node milliseconds of encoding and compression, inside
// the window it measures). The resolution is the kernel's clock tick.
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
		var sum float64
		for _, pid := range pids {
			data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if err != nil {
				return sum, err
			}
			// The command name (field 2) may hold spaces: fields are
			// counted after its closing parenthesis.
			rest := string(data)
			if i := strings.LastIndexByte(rest, ')'); i >= 0 {
				rest = rest[i+1:]
			}
			f := strings.Fields(rest)
			if len(f) < 13 {
				return sum, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
			}
			utime, err1 := strconv.ParseUint(f[11], 10, 64) // field 14
			stime, err2 := strconv.ParseUint(f[12], 10, 64) // field 15
			if err1 != nil || err2 != nil {
				return sum, fmt.Errorf("/proc/%d/stat: utime %q, stime %q", pid, f[11], f[12])
			}
			sum += float64(utime+stime) / clockTicks
		}
		return sum, nil
	}
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat's times:
// 100 on every Linux architecture Go supports.
const clockTicks = 100

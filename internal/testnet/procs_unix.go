//go:build unix && !linux

package testnet

import (
	"context"
	"syscall"
)

// childAttr puts a node process in a process group of its own, so that a
// Ctrl-C at the terminal reaches the parent only, which stops its children
// in order. (Without Linux's Pdeathsig, a parent killed with SIGKILL
// leaves its children running.)
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// CPU returns ProcessCPU of the network's nodes: where there is no /proc,
// their /metrics.
func (pn *ProcNetwork) CPU() func(context.Context) (float64, error) { return ProcessCPU(pn.APIs()) }

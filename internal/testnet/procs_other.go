//go:build !unix

package testnet

import (
	"context"
	"syscall"
)

func childAttr() *syscall.SysProcAttr { return nil }

// CPU returns ProcessCPU of the network's nodes: where there is no /proc,
// their /metrics.
func (pn *ProcNetwork) CPU() func(context.Context) (float64, error) { return ProcessCPU(pn.APIs()) }

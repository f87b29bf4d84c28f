//go:build unix && !linux

package testnet

import "syscall"

// childAttr puts a node process in a process group of its own, so that a
// Ctrl-C at the terminal reaches the parent only, which stops its children
// in order. (Without Linux's Pdeathsig, a parent killed with SIGKILL
// leaves its children running.)
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

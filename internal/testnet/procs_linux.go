package testnet

import "syscall"

// childAttr puts a node process in a process group of its own (a Ctrl-C at
// the terminal reaches the parent only, which stops its children in order)
// and has the kernel kill it if the parent dies, so that a killed testnet
// leaves no orphans. (Pdeathsig fires when the thread that started the
// child ends; the Go runtime ends threads only under LockOSThread, which
// this package does not use.)
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

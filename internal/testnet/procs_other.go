//go:build !unix

package testnet

import "syscall"

func childAttr() *syscall.SysProcAttr { return nil }

//go:build !unix

package testnet

import "time"

func processCPU() (time.Duration, bool) { return 0, false }

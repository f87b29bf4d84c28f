package node_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
)

// TestMinerRunsAtLowestPriority: while a node mines, one of its threads runs
// at nice 19 (the proof of work, so that checking and relaying blocks and
// readings come first on shared cores), and once mining stops no thread of
// the process is left at that priority (the thread ended with the miner).
func TestMinerRunsAtLowestPriority(t *testing.T) {
	if p, err := syscall.Getpriority(syscall.PRIO_PROCESS, 0); err == nil && 20-p >= 19 {
		t.Skip("the test process already runs at nice 19")
	}
	niced := func() int {
		tasks, _ := filepath.Glob("/proc/self/task/*/stat")
		count := 0
		for _, f := range tasks {
			data, err := os.ReadFile(f)
			if err != nil {
				continue // a thread that just ended
			}
			s := string(data)
			fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
			if len(fields) > 16 {
				if nice, _ := strconv.Atoi(fields[16]); nice == 19 {
					count++
				}
			}
		}
		return count
	}
	if c := niced(); c != 0 {
		t.Fatalf("before mining, %d threads at nice 19", c)
	}

	params := chain.TestParams("miner-priority")
	params.Difficulty = 40 // never solved during the test
	n, err := node.New(params, key(9))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Submit("alice", 72); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(ctx, nil) }()
	waitFor(t, 10*time.Second, "a thread at nice 19 while mining", func() bool { return niced() == 1 })
	cancel()
	<-done
	waitFor(t, 10*time.Second, "no thread at nice 19 after mining stopped", func() bool { return niced() == 0 })
}

package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestSecondNodeSamePort: a second node on a port that a running node
// holds stops with an error that names the port and says what to do,
// instead of sharing the port (TCP) or dropping QUIC without a word.
func TestSecondNodeSamePort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real node processes")
	}
	t.Parallel()
	port := freePort(t)
	first := start(t, "first", "-l", fmt.Sprint(port), "-api", "127.0.0.1:0", "-difficulty", "0")
	first.expect(`^  p2pchain node -l \d+ -d (/ip4/\S+)(?: -network \S+)?(?: -difficulty \d+)?$`)
	r := runTool(t, nil, nil, "node", "-l", fmt.Sprint(port), "-api", "127.0.0.1:0", "-difficulty", "0")
	wantFail(t, r, fmt.Sprintf("port %d", port), "in use", "pick another with -l")
	if strings.Contains(r.stderr, "panic") {
		t.Fatalf("the second node panicked:\n%s", r)
	}
}

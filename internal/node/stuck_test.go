package node_test

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/netfile"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// TestStuckWarning: an authority that cannot reach a quorum (it alone of
// four runs) says so in its log once a height has waited 30 s, with what it
// hears and what to do, and not before; then again every 30 s, not on each
// check in between. The node's clock is the test's, moved by hand.
func TestStuckWarning(t *testing.T) {
	keys := []ed25519.PrivateKey{key(31), key(32), key(33), key(34)}
	net := authorityNetwork(t, keys)
	var mu sync.Mutex
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	var logged testnet.LogBuffer
	n, err := node.New(net.Params, keys[0], node.WithAuthority(net.Authority()), node.WithClock(clock),
		node.WithLogger(slog.New(slog.NewTextHandler(&logged, nil))))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Submit("alice", 72); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stopped atomic.Bool
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(ctx, nil); stopped.Store(true) }()
	defer func() { cancel(); <-done }()

	waitFor(t, 10*time.Second, "the height started", func() bool { return !n.Consensus().Started.IsZero() })
	warnings := func() int { return strings.Count(logged.String(), "consensus: no block decided") }

	// 29 s of the node's time, and long enough in real time for its checks
	// (every 2 s) to run: no warning yet.
	advance(29 * time.Second)
	time.Sleep(2500 * time.Millisecond)
	if w := warnings(); w != 0 || stopped.Load() {
		t.Fatalf("29 s after the start: %d warnings (stopped: %v); want none\n%s", w, stopped.Load(), logged.String())
	}
	advance(2 * time.Second)
	waitFor(t, 10*time.Second, "a warning 31 s after the start", func() bool { return warnings() == 1 })
	out := logged.String()
	for _, want := range []string{"level=WARN", "authorities_heard=1", "of=4", "needed=3",
		"start the authorities that are down, or connect this node to them (p2pchain connect ADDR)", "height=1"} {
		if !strings.Contains(out, want) {
			t.Fatalf("the warning does not say %q:\n%s", want, out)
		}
	}
	// The checks go on; the next warning waits another 30 s.
	time.Sleep(2500 * time.Millisecond)
	if w := warnings(); w != 1 {
		t.Fatalf("right after the first warning: %d warnings, want 1", w)
	}
	advance(30 * time.Second)
	waitFor(t, 10*time.Second, "a second warning 30 s later", func() bool { return warnings() == 2 })
}

// TestFollowerIdleNoStuckWarning: a follower starts each height at once,
// but on an idle network the next block is due only a block interval after
// the last one. With a 2-minute interval it warned "no block decided; start
// the authorities that are down" 30 s after every block while every
// authority ran. It warns once the block is 30 s overdue.
func TestFollowerIdleNoStuckWarning(t *testing.T) {
	keys := []ed25519.PrivateKey{key(41), key(42), key(43), key(44)}
	net := authorityNetworkWith(t, keys, func(f *netfile.File) { f.BlockInterval = "2m" })
	var mu sync.Mutex
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	var logged testnet.LogBuffer
	n, err := node.New(net.Params, key(45), node.WithAuthority(net.Authority()), node.WithClock(clock),
		node.WithLogger(slog.New(slog.NewTextHandler(&logged, nil))))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(ctx, nil) }()
	defer func() { cancel(); <-done }()

	waitFor(t, 10*time.Second, "the height started", func() bool { return !n.Consensus().Started.IsZero() })
	warnings := func() int { return strings.Count(logged.String(), "consensus: no block decided") }
	// 31 s, then 2 min 29 s: the block is not due, or not 30 s overdue.
	for _, d := range []time.Duration{31 * time.Second, 118 * time.Second} {
		advance(d)
		time.Sleep(2500 * time.Millisecond) // the checks run every 2 s
		if w := warnings(); w != 0 {
			t.Fatalf("an idle follower warned (%d):\n%s", w, logged.String())
		}
	}
	advance(2 * time.Second)
	waitFor(t, 10*time.Second, "a warning once the block is 30 s overdue", func() bool { return warnings() == 1 })
}

// waitFor polls ok every 5 ms until it holds, failing the test after d.
func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !ok(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("after %s, still not: %s", d, what)
		}
	}
}

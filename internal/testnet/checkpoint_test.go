package testnet_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// TestCheckpointMismatchWarns: a node whose checkpoint is not on its
// peer's chain (a hash copied wrong, or a peer on another branch) says so
// at warn level, once, with what to do. It only retried the sync every
// few seconds, the reason ("checkpoint mismatch") logged at debug level,
// so that at the default level it looked like a sync that never ended.
func TestCheckpointMismatchWarns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := chain.DefaultParams()
	p.Difficulty = 0
	a, err := testnet.Start(ctx, testnet.Config{Params: p})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	for i := range 3 {
		if _, err := a.Node.Submit("alice", 70+i); err != nil {
			t.Fatal(err)
		}
		if err := testnet.WaitFor(ctx, func() bool { return a.Node.Status().Height == uint64(i+1) }); err != nil {
			t.Fatal(err)
		}
	}
	var logged testnet.LogBuffer
	wrong := chain.Checkpoint{Height: 2, Hash: chain.Hash{7}}
	b, err := testnet.Start(ctx, testnet.Config{Params: p, NoMiner: true,
		Log:         slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelInfo})),
		NodeOptions: []node.Option{node.WithCheckpoint(&wrong)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if err := b.Connect(ctx, a); err != nil {
		t.Fatal(err)
	}
	warned := func() bool {
		return strings.Contains(logged.String(), "level=WARN") && strings.Contains(logged.String(), "checkpoint")
	}
	if err := testnet.WaitFor(ctx, warned); err != nil {
		t.Fatalf("no warning about the checkpoint at info level:\n%s", logged.String())
	}
	out := logged.String()
	for _, want := range []string{"does not pass through this node's checkpoint", "p2pchain block HEIGHT"} {
		if !strings.Contains(out, want) {
			t.Errorf("the warning does not say %q:\n%s", want, out)
		}
	}
	if h := b.Node.Status().Height; h >= 2 {
		t.Errorf("the node took the peer's chain past the checkpoint's height: at %d", h)
	}
}

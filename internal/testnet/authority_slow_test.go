package testnet_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/store"
	"github.com/p2pchain/p2pchain/internal/store/storetest"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// One authority of four whose disk stalls for 8 s (a gray failure: the
// node runs, its writes hang): the three others go on deciding, as with
// one of four stopped, and readings submitted to them become final there
// during the stall. The slow one says its disk is slow and does not fail;
// once its disk answers it catches up by itself, and every node holds the
// same final chain with every reading once.
func TestAuthoritySlowDisk(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	keys := keysN(t, 4)
	net := authorityNet(t, "slow", keys)
	ms := members(ctx, t, net, keys[:3])

	fs := storetest.New()
	st, err := store.Open(t.TempDir(), net.Params, store.WithFS(fs), store.WithDiskSlow(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	slow, err := testnet.Start(ctx, testnet.Config{Params: net.Params, Key: keys[3], SyncInterval: time.Second,
		NodeOptions: []node.Option{node.WithAuthority(net.Authority()), node.WithStore(st, node.State{}),
			node.WithDiskSlow(100 * time.Millisecond), node.WithWriteWait(time.Second)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = slow.Close() })
	healthy := running(ms)
	for _, p := range healthy {
		if err := slow.Connect(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	mesh(ctx, t, ms)
	all := append(append([]*testnet.Peer{}, healthy...), slow)
	r, err := ms[0].peer.Node.Submit("alice", 70)
	if err != nil {
		t.Fatal(err)
	}
	waitFinal(t, all, r.ID(), 30*time.Second)

	stall := fs.Stall(storetest.Syncs)
	defer stall.Release()
	stalled := time.Now()
	var ids []chain.Hash
	for i := range 6 {
		r, err := ms[i%3].peer.Node.Submit(fmt.Sprintf("s%d", i), 80+i)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID())
		waitFinal(t, healthy, r.ID(), 30*time.Second)
	}
	t.Logf("6 readings final on the three healthy authorities %v into the stall", time.Since(stalled).Round(time.Millisecond))
	if d := slow.Node.Disk(); !d.Slow {
		t.Errorf("the stalled authority does not say its disk is slow: %+v", d)
	}
	time.Sleep(time.Until(stalled.Add(8 * time.Second)))

	stall.Release()
	for _, id := range ids {
		waitFinal(t, all, id, 60*time.Second)
	}
	if err := slow.Node.Err(); err != nil {
		t.Fatalf("the slow authority failed: %v", err)
	}
	sameFinalChain(t, all)
	seen := map[chain.Hash]int{}
	h := slow.Node.FinalHeight()
	for i := uint64(1); i <= h; i++ {
		b, _, err := slow.Node.BlockByHeight(i)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range b.Block.Readings {
			seen[r.ID()]++
		}
	}
	for _, id := range append(ids, r.ID()) {
		if seen[id] != 1 {
			t.Errorf("reading %s %d times in the final chain, want once", id.Short(), seen[id])
		}
	}
}

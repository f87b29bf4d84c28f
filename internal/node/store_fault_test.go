package node_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/store"
	"github.com/p2pchain/p2pchain/internal/store/storetest"
)

// faultChain is a stored chain of 301 blocks whose first 300 are final
// (only the store holds their bodies and readings), reopened on a
// fault-injecting file system, and a node started from it.
type faultChain struct {
	params chain.Params
	path   string
	fs     *storetest.FS
	store  *store.Store
	node   *node.Node
	blocks []*chain.Block // the main chain above genesis
	b      *builder
	now    func() time.Time
}

func newFaultChain(t *testing.T) *faultChain {
	t.Helper()
	const blocks = 300
	params := chain.TestParams("fault")
	path := filepath.Join(t.TempDir(), "chain")
	var mu sync.Mutex
	clock := time.UnixMilli(params.GenesisTime).Add(time.Hour)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	st, err := store.Open(path, params)
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(params, key(9), node.WithClock(now), node.WithStore(st, store.State{}))
	if err != nil {
		t.Fatal(err)
	}
	b := newBuilder(t, params)
	var all []*chain.Block
	for i := range blocks {
		all = append(all, b.block(chain.Hash{}, fmt.Sprintf("s%d", i%50)))
	}
	ctx := context.Background()
	if _, err := n.AddBlocks(ctx, all); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	clock = clock.Add(params.FinalAge)
	mu.Unlock()
	last := b.block(chain.Hash{}, "last")
	if err := n.AddBlock(ctx, last); err != nil {
		t.Fatal(err)
	}
	all = append(all, last)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	fs := storetest.New()
	st, err = store.Open(path, params, store.WithFS(fs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	state, err := st.LoadRecent()
	if err != nil {
		t.Fatal(err)
	}
	r, err := node.New(params, key(9), node.WithClock(now), node.WithStore(st, *state))
	if err != nil {
		t.Fatal(err)
	}
	return &faultChain{params: params, path: path, fs: fs, store: st, node: r, blocks: all, b: b, now: now}
}

// failReads makes every read of the store's tables fail with EIO.
func (f *faultChain) failReads() {
	f.fs.Fail(func(op errorfs.Op) bool {
		return (op.Kind == errorfs.OpFileRead || op.Kind == errorfs.OpFileReadAt) && strings.HasSuffix(op.Path, ".sst")
	}, storetest.EIO, -1)
}

// wantDiskFailure checks that the node failed for its disk.
func wantDiskFailure(t *testing.T, n *node.Node) {
	t.Helper()
	err := n.Err()
	var de *store.DiskError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "check the disk") {
		t.Fatalf("node error %v: want the store's disk failure, which says to check the disk", err)
	}
	select {
	case <-n.Done():
	default:
		t.Fatal("Done is not closed")
	}
}

// TestReadFailureCommitsNothing: while the store's table reads fail, a
// block repeating a reading of a final (archived) block looked valid (the
// store answered that the reading was in no block) and was committed. Now
// the node fails instead, and nothing of the block is stored.
func TestReadFailureCommitsNothing(t *testing.T) {
	f := newFaultChain(t)
	ctx := context.Background()
	tip := f.node.Status().Height
	dup := f.blocks[80].Readings[0]
	blk := f.b.c.NewBlock([]chain.Reading{dup}, f.now())
	if err := chain.Solve(ctx, &blk.Header); err != nil {
		t.Fatal(err)
	}
	f.failReads()
	if err := f.node.AddBlock(ctx, blk); err == nil {
		t.Fatal("a block repeating an archived reading was accepted while the store could not be read")
	}
	wantDiskFailure(t, f.node)

	// Nothing of it reached the disk.
	f.fs.Clear()
	if err := f.store.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	st, err := store.Open(f.path, f.params)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.Height() != tip {
		t.Fatalf("stored height %d, want %d", st.Height(), tip)
	}
	if _, err := st.BlockByHash(blk.Hash()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the block repeating a reading is stored (%v)", err)
	}
	if h, ok := st.ReadingBlock(dup.ID()); !ok || h != f.blocks[80].Hash() {
		t.Fatalf("the reading is in block %s (%v), want %s", h.Short(), ok, f.blocks[80].Hash().Short())
	}
}

// TestReadFailureRefusesReading: a reading of an archived block submitted
// again while the store cannot be read is not acknowledged as pending.
func TestReadFailureRefusesReading(t *testing.T) {
	f := newFaultChain(t)
	old := f.blocks[60].Readings[0]
	f.failReads()
	if err := f.node.SubmitReading(old); err == nil || errors.Is(err, chain.ErrKnownReading) && f.node.Err() == nil {
		t.Fatalf("SubmitReading of an archived reading with the store failing: %v (node: %v)", err, f.node.Err())
	}
	wantDiskFailure(t, f.node)
	if f.node.Pending() != 0 {
		t.Fatalf("%d readings pending", f.node.Pending())
	}
}

// TestReadFailureIsNotAbsence: a block or reading the node holds but
// cannot read back is a failure, not "not found" (the API answered 404
// "no block at height N").
func TestReadFailureIsNotAbsence(t *testing.T) {
	f := newFaultChain(t)
	f.failReads()
	info, ok, err := f.node.BlockByHeight(70)
	if ok || err == nil || !strings.Contains(err.Error(), "check the disk") {
		t.Fatalf("BlockByHeight(70) = %v, %v, %v: want the disk failure", info.Block != nil, ok, err)
	}
	if _, ok, err := f.node.BlockByHash(f.blocks[100].Hash()); ok || err == nil {
		t.Fatalf("BlockByHash = %v, %v: want the disk failure", ok, err)
	}
	if _, ok, err := f.node.LocateReading(f.blocks[90].Readings[0].ID()); ok || err == nil {
		t.Fatalf("LocateReading = %v, %v: want the disk failure", ok, err)
	}
	wantDiskFailure(t, f.node)
	// Once the store failed, even a height above the tip answers the
	// failure: the node can no longer tell absence from a failed read.
	f.fs.Clear()
	if _, ok, err := f.node.BlockByHeight(1 << 40); ok || err == nil {
		t.Fatalf("above the tip of a failed store: %v, %v", ok, err)
	}
}

// TestStoreFailureStopsNode: a store that fails in the background (a
// flush whose table writes fail) stops a running node at once, without
// waiting for its next block.
func TestStoreFailureStopsNode(t *testing.T) {
	params := chain.TestParams("fault")
	fs := storetest.New()
	st, err := store.Open(filepath.Join(t.TempDir(), "chain"), params, store.WithFS(fs), store.WithReserve(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n, err := node.New(params, key(9), node.WithStore(st, store.State{}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan struct{})
	go func() { defer close(ran); _ = n.Run(ctx, nil) }()
	defer func() { cancel(); <-ran }()

	fs.Fail(func(op errorfs.Op) bool {
		return (storetest.DataWrites(op) || storetest.Syncs(op)) && strings.HasSuffix(op.Path, ".sst")
	}, storetest.EIO, -1)
	// Fill the engine's memtable (its flush fails) with writes of the
	// store's own, as another part of the process would.
	at := time.UnixMilli(params.GenesisTime)
	var rs []chain.Reading
	for i := range 200 {
		r, err := chain.NewReading(key(1), fmt.Sprintf("bulk%d", i), 70, at)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	for st.AddPending(rs...) == nil {
	}
	select {
	case <-n.Done():
	case <-time.After(time.Minute):
		t.Fatal("the node runs on after its store failed")
	}
	if err := n.Err(); !strings.Contains(err.Error(), "check the disk") {
		t.Fatalf("node error: %v", err)
	}
}

// TestAuthorityFullDiskStops: on an authority network a full disk that
// refuses the consensus state stops the node, and its message says to
// free space and start the node again; it said both that the node must
// stop and that it writes again by itself once there is room.
func TestAuthorityFullDiskStops(t *testing.T) {
	net := authorityNetwork(t, []ed25519.PrivateKey{key(9)})
	fs := storetest.New()
	st, err := store.Open(filepath.Join(t.TempDir(), "chain"), net.Params, store.WithFS(fs), store.WithReserve(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n, err := node.New(net.Params, key(9), node.WithAuthority(net.Authority()), node.WithStore(st, node.State{}),
		node.WithClock(func() time.Time { return time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC) }))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Submit("alice", 70); err != nil {
		t.Fatal(err)
	}
	fs.SetFree(0) // the next write (the proposal's consensus state) is refused
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan struct{})
	go func() { defer close(ran); _ = n.Run(ctx, nil) }()
	defer func() { cancel(); <-ran }()
	select {
	case <-n.Done():
	case <-time.After(time.Minute):
		t.Fatal("the authority node runs on with a full disk")
	}
	err = n.Err()
	if !errors.Is(err, node.ErrStoreFull) {
		t.Fatalf("node error %v: want ErrStoreFull", err)
	}
	msg := err.Error()
	if strings.Contains(msg, "by itself") || !strings.Contains(msg, "free space") || !strings.Contains(msg, "start the node again") {
		t.Fatalf("message does not say to free space and start the node again (only): %v", err)
	}
}

package node_test

import (
	"context"
	"crypto/ed25519"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/bft"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/store"
)

// TestSavedStateAboveChainDoesNotSpin: a consensus state stored above the
// height after the durable tip (a store written before the durable-tip
// rule) keeps the loop from starting the height; it must then sleep, not
// wake every millisecond until the chain reaches that height.
func TestSavedStateAboveChainDoesNotSpin(t *testing.T) {
	for _, above := range []bool{false, true} {
		keys := []ed25519.PrivateKey{key(71), key(72), key(73), key(74)}
		net := authorityNetwork(t, keys)
		dir := filepath.Join(t.TempDir(), "store")
		if above {
			st, err := store.Open(dir, net.Params)
			if err != nil {
				t.Fatal(err)
			}
			s := bft.State{Height: 3, Round: 0, Step: bft.StepPropose, LockedRound: -1, ValidRound: -1}
			if err := st.SaveConsensus(s.AppendBinary(nil), nil, true); err != nil {
				t.Fatal(err)
			}
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
		}
		var calls atomic.Int64
		clock := func() time.Time { calls.Add(1); return time.Now() }
		n, st := openNodeAs(t, net, dir, keys[0], node.WithClock(clock))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		var runErr error
		go func() { defer close(done); runErr = n.Run(ctx, &recorder{}) }()
		time.Sleep(6 * time.Second) // past the block interval (5 s)
		select {
		case <-done: // no loop at all would read no clock
			t.Fatalf("state above chain %v: Run ended: %v", above, runErr)
		default:
		}
		before := calls.Load()
		time.Sleep(time.Second)
		got := calls.Load() - before
		cancel()
		<-done
		_ = st.Close()
		t.Logf("run: %v", runErr)
		t.Logf("state above chain %v: %d clock reads in 1 s; consensus %+v", above, got, n.Consensus())
		if got > 200 {
			t.Errorf("state above chain %v: the loop read the clock %d times in 1 s while waiting: it spins", above, got)
		}
	}
}

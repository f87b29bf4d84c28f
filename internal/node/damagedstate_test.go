package node_test

import (
	"context"
	"crypto/ed25519"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/store"
)

// TestDamagedConsensusStateStops: an authority whose stored consensus state
// does not decode does not run (it could sign twice), and says what to do:
// not to start it from an older copy of its data directory (an older state
// forgets what it signed since), but to replace its key.
func TestDamagedConsensusStateStops(t *testing.T) {
	keys := []ed25519.PrivateKey{key(101), key(102), key(103), key(104)}
	net := authorityNetwork(t, keys)
	st, err := store.Open(filepath.Join(t.TempDir(), "store"), net.Params)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.SaveConsensus([]byte{1, 2, 3}, nil, true); err != nil {
		t.Fatal(err)
	}
	n, err := node.New(net.Params, keys[0], node.WithAuthority(net.Authority()), node.WithStore(st, node.State{}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = n.Run(ctx, &recorder{})
	if err == nil || ctx.Err() != nil {
		t.Fatalf("Run with a damaged consensus state: %v (context %v), want it to stop at once", err, ctx.Err())
	}
	for _, want := range []string{"damaged", "may sign twice", "do not start it from an older copy", "authority remove"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
}

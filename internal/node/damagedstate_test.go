package node_test

import (
	"context"
	"crypto/ed25519"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDamagedConsensusStateStops: an authority whose stored consensus state
// does not decode does not run (it could sign twice), and says what to do:
// not to start it from an older copy of its data directory (an older state
// forgets what it signed since), but to replace its key.
func TestDamagedConsensusStateStops(t *testing.T) {
	keys := []ed25519.PrivateKey{key(101), key(102), key(103), key(104)}
	net := authorityNetwork(t, keys)
	st, state := openState(t, net, filepath.Join(t.TempDir(), "store"))
	defer st.Close()
	if err := st.SaveConsensus([]byte{1, 2, 3}, nil, true); err != nil {
		t.Fatal(err)
	}
	n := newNodeOn(t, net, st, state, keys[0])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := n.Run(ctx, &recorder{})
	if err == nil || ctx.Err() != nil {
		t.Fatalf("Run with a damaged consensus state: %v (context %v), want it to stop at once", err, ctx.Err())
	}
	for _, want := range []string{"damaged", "may sign twice", "do not start it from an older copy", "authority remove"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
}

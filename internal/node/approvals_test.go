package node_test

import (
	"crypto/ed25519"
	"path/filepath"
	"testing"

	"github.com/p2pchain/p2pchain/internal/bft"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/store"
)

// TestApprovalSurvivesRestart: an operator's approval of a membership
// change is stored before Approve returns, so a restarted authority still
// proposes and votes for it (before, approvals lived in memory, and a
// restart dropped them while the API had answered "recorded"). A change
// the schedule no longer accepts is not restored.
func TestApprovalSurvivesRestart(t *testing.T) {
	keys := []ed25519.PrivateKey{key(81), key(82), key(83), key(84)}
	net := authorityNetwork(t, keys)
	dir := filepath.Join(t.TempDir(), "store")
	open := func() (*node.Node, *store.Store) { return openNodeAs(t, net, dir, keys[0]) }
	add := bft.Change{Op: bft.OpAdd, Key: bft.KeyOf(key(85))}
	remove := bft.Change{Op: bft.OpRemove, Key: bft.KeyOf(keys[3]), Height: 40}
	n, st := open()
	for _, c := range []bft.Change{add, remove} {
		if err := n.Approve(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Approve(add); err == nil {
		t.Fatal("the same change approved twice")
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	n, st = open()
	if got := n.Consensus().Approved; len(got) != 2 || got[0] != add || got[1] != remove {
		t.Fatalf("approvals after a restart: %+v, want %+v and %+v", got, add, remove)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// A record that also holds a change the schedule refuses now (as a
	// change a block applied meanwhile would be): left out.
	st, err := store.Open(dir, net.Params)
	if err != nil {
		t.Fatal(err)
	}
	stale := bft.Change{Op: bft.OpAdd, Key: bft.KeyOf(keys[1])} // an authority already
	if err := st.SaveApprovals(bft.EncodeChanges([]bft.Change{add, stale, remove})); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	n, st = open()
	defer st.Close()
	got := n.Consensus().Approved
	if len(got) != 2 || got[0] != add || got[1] != remove {
		t.Fatalf("approvals after a restart: %+v, want %+v and %+v", got, add, remove)
	}
	if err := n.Approve(add); err == nil {
		t.Fatal("a restored approval approved again")
	}
}

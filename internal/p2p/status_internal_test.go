package p2p

import (
	"strings"
	"testing"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// TestOtherNetworkNamesIt: a peer whose genesis is that of this network's
// name, or the default's, at another difficulty is named with the flags
// that join it; any other genesis gets the general advice.
func TestOtherNetworkNamesIt(t *testing.T) {
	ours := chain.TestParams("ward 7")
	ours.Difficulty = 5
	other := func(name string, d uint32) chain.Status {
		p := ours
		p.Name, p.Difficulty = name, d
		return chain.Status{Genesis: p.Genesis().Hash()}
	}
	st := chain.Status{Genesis: ours.Genesis().Hash()}
	for _, c := range []struct {
		theirs chain.Status
		want   string
	}{
		{other("ward 7", 0), "start a node with -network 'ward 7' -difficulty 0"},
		{other("ward 7", 64), "network 'ward 7' at difficulty 64"},
		{other(chain.DefaultParams().Name, 18), "start a node with -network 'p2pchain' -difficulty 18"},
		{other("ward 8", 5), "a different --network, --difficulty or --network-file gives another genesis"},
	} {
		if got := otherNetwork(c.theirs, st, ours, nearbyNetworks(ours)); !strings.Contains(got, c.want) || !strings.Contains(got, "another network") {
			t.Errorf("%s: %q, want %q", c.theirs.Genesis.Short(), got, c.want)
		}
	}
}

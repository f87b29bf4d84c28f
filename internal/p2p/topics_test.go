package p2p_test

import (
	"testing"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/p2p"
)

// TestTopicNames pins the default network's topics as PROTOCOL.md sections
// 6.5 and 16.8 print them: another implementation joins these strings.
func TestTopicNames(t *testing.T) {
	g := chain.DefaultParams().Genesis().Hash()
	const hex = "f8495d179707ef8eae495491fa224239427d2b3e63168f602087d4fcc6d047fb"
	for _, tc := range []struct{ got, want string }{
		{p2p.BlocksTopic(g), "/p2pchain/blocks/2/" + hex},
		{p2p.ConsensusTopic(g), "/p2pchain/consensus/2/" + hex},
		{p2p.ReadingsTopic(g), "/p2pchain/readings/2/" + hex},
	} {
		if tc.got != tc.want {
			t.Errorf("topic %s, PROTOCOL.md says %s", tc.got, tc.want)
		}
	}
}

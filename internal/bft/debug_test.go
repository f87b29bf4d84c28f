package bft_test

import "fmt"

func (s *simNet) dump() string {
	out := fmt.Sprintf("t=%v queue=%d\n", s.now.Sub(simEpoch), s.queue.Len())
	for _, n := range s.nodes {
		st := n.m.State()
		out += fmt.Sprintf("node %d up=%v h=%d r=%d step=%v locked=%d/%s valid=%d/%s decided=%v ticks=%d\n", n.id, n.up, st.Height, st.Round, st.Step,
			st.LockedRound, st.LockedHash.Short(), st.ValidRound, st.ValidHash.Short(), n.m.Decided() != nil, len(n.ticks))
		out += "   " + n.m.Debug() + "\n"
	}
	return out
}

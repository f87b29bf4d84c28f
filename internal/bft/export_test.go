package bft

import "fmt"

// Debug describes the machine's round state, for failing tests.
func (m *Machine) Debug() string {
	out := fmt.Sprintf("self=%d own=%d resendAt=%v propAt=%v pvAt=%v pcAt=%v maxRound=%v", m.self, len(m.own), m.resendAt.Format("15:04:05.000"), !m.proposeAt.IsZero(), !m.prevoteAt.IsZero(), !m.precommitAt.IsZero(), m.maxRound)
	for r := int32(0); r <= m.round+1; r++ {
		rs := m.rounds[r]
		if rs == nil {
			continue
		}
		out += fmt.Sprintf(" [r%d prop=%v pv=%d pc=%d]", r, rs.proposal != nil, rs.prevotes.total, rs.precommits.total)
	}
	return out
}

package bft

import (
	"encoding/binary"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// State is what an authority must persist, before the messages of the
// same Update leave the node, so that after a crash it resumes (Resume)
// without signing anything that contradicts what it signed before, and
// can still send what it signed. It is local storage, not a wire message.
type State struct {
	Height      uint64
	Round       int32
	Step        Step // the step reached: at prevote it has prevoted in Round
	LockedRound int32
	LockedHash  chain.Hash
	ValidRound  int32
	ValidHash   chain.Hash
	// Sent holds every proposal and vote the node sent at Height (its
	// own, and the proof-of-lock votes it relayed with its proposals).
	Sent []Message
}

const stateHeadSize = 8 + 4 + 1 + 4 + chain.HashSize + 4 + chain.HashSize + 4

// maxSent bounds the messages a decoded State may hold.
const maxSent = 1 << 20

// AppendBinary appends the encoding: height, round, step, locked round and
// hash, valid round and hash, uint32 count, then the messages (proposals
// and votes, each sized by its first byte).
func (st *State) AppendBinary(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, st.Height)
	b = binary.BigEndian.AppendUint32(b, uint32(st.Round))
	b = append(b, byte(st.Step))
	b = binary.BigEndian.AppendUint32(b, uint32(st.LockedRound))
	b = append(b, st.LockedHash[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(st.ValidRound))
	b = append(b, st.ValidHash[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(st.Sent)))
	for _, m := range st.Sent {
		b = m.AppendBinary(b)
	}
	return b
}

// MarshalBinary returns the encoding of st.
func (st *State) MarshalBinary() ([]byte, error) { return st.AppendBinary(nil), nil }

// UnmarshalBinary decodes a State written by AppendBinary.
func (st *State) UnmarshalBinary(b []byte) error {
	if len(b) < stateHeadSize {
		return ruleErr(ErrMalformed, "state of %d bytes", len(b))
	}
	var s State
	s.Height = binary.BigEndian.Uint64(b)
	s.Round = int32(binary.BigEndian.Uint32(b[8:]))
	s.Step = Step(b[12])
	s.LockedRound = int32(binary.BigEndian.Uint32(b[13:]))
	copy(s.LockedHash[:], b[17:49])
	s.ValidRound = int32(binary.BigEndian.Uint32(b[49:]))
	copy(s.ValidHash[:], b[53:85])
	n := binary.BigEndian.Uint32(b[85:])
	if s.Round < 0 || s.Step < StepPropose || s.Step > StepPrecommit || s.LockedRound < -1 || s.ValidRound < -1 || n > maxSent {
		return ruleErr(ErrMalformed, "state fields out of range")
	}
	for b = b[stateHeadSize:]; len(b) > 0; {
		size := 0
		switch Kind(b[0]) {
		case KindProposal:
			size = ProposalSize
		case KindPrevote, KindPrecommit:
			size = VoteSize
		}
		if size == 0 || len(b) < size {
			return ruleErr(ErrMalformed, "state message of kind %d", b[0])
		}
		m, err := DecodeMessage(b[:size])
		if err != nil {
			return err
		}
		s.Sent = append(s.Sent, m)
		b = b[size:]
	}
	if len(s.Sent) != int(n) {
		return ruleErr(ErrMalformed, "state holds %d messages, says %d", len(s.Sent), n)
	}
	*st = s
	return nil
}

package bft_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/p2pchain/p2pchain/internal/bft"
	"github.com/p2pchain/p2pchain/internal/chain"
)

// The fuzz targets decode arbitrary bytes. A decoder must never panic,
// must refuse with ErrMalformed, and whatever it accepts must re-encode to
// the very same bytes: one statement, one encoding.

func seeds(f *testing.F) [][]byte {
	set := vectorSet(f)
	block := testHash("block")
	var out [][]byte
	for _, m := range []interface{ AppendBinary([]byte) []byte }{
		signedProposal(set, 1, 0, block, -1),
		signedProposal(set, 9, 4, block, 3),
		signedVote(bft.KindPrevote, 1, 0, block, 0),
		signedVote(bft.KindPrecommit, 2, 1, chain.Hash{}, 3),
		signedCommit(5, 0, block, 0, 1, 2),
		bft.NewEvidence(signedVote(bft.KindPrevote, 1, 0, block, 0), signedVote(bft.KindPrevote, 1, 0, chain.Hash{}, 0)),
		bft.NewEvidence(signedProposal(set, 1, 0, block, -1), signedProposal(set, 1, 0, testHash("b"), -1)),
		bft.Change{Op: bft.OpAdd, Height: 3, Key: simKeys(1)[0]},
		&bft.State{Height: 3, Round: 1, Step: bft.StepPrevote, LockedRound: -1, ValidRound: 0, ValidHash: block,
			Sent: []bft.Message{signedProposal(set, 3, 1, block, 0), signedVote(bft.KindPrevote, 3, 0, block, 1)}},
	} {
		enc := m.AppendBinary(nil)
		out = append(out, enc, enc[:len(enc)-1], append(bytes.Clone(enc), 0))
	}
	return append(out, nil, []byte{1}, []byte{4, 0})
}

type decoder interface {
	UnmarshalBinary([]byte) error
	AppendBinary([]byte) []byte
}

func fuzzDecoder(f *testing.F, fresh func() decoder) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := fresh()
		if err := d.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, bft.ErrMalformed) {
				t.Fatalf("refused with %v, want malformed", err)
			}
			return
		}
		if enc := d.AppendBinary(nil); !bytes.Equal(enc, data) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", enc, data)
		}
	})
}

func FuzzProposal(f *testing.F) { fuzzDecoder(f, func() decoder { return new(bft.Proposal) }) }
func FuzzVote(f *testing.F)     { fuzzDecoder(f, func() decoder { return new(bft.Vote) }) }
func FuzzCommit(f *testing.F)   { fuzzDecoder(f, func() decoder { return new(bft.Commit) }) }
func FuzzEvidence(f *testing.F) { fuzzDecoder(f, func() decoder { return new(bft.Evidence) }) }
func FuzzState(f *testing.F)    { fuzzDecoder(f, func() decoder { return new(bft.State) }) }

type changeDecoder struct{ bft.Change }

func (c *changeDecoder) AppendBinary(b []byte) []byte { return c.Change.AppendBinary(b) }

func FuzzChange(f *testing.F) { fuzzDecoder(f, func() decoder { return new(changeDecoder) }) }

// FuzzDecodeMessage: the dispatcher agrees with the decoders, and
// whatever it accepts verifies or is refused with a rule error by a
// machine, never a panic.
func FuzzDecodeMessage(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	set := vectorSet(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := bft.DecodeMessage(data)
		if err != nil {
			if !errors.Is(err, bft.ErrMalformed) {
				t.Fatalf("refused with %v", err)
			}
			return
		}
		if enc := m.AppendBinary(nil); !bytes.Equal(enc, data) {
			t.Fatalf("re-encoding differs")
		}
		mc := bft.NewMachine(bft.Config{Network: vectorNetwork, Key: vectorKey(0)})
		mc.Start(1, set, simEpoch)
		if _, err := mc.Receive(m, simEpoch); err != nil && bft.CodeOf(err) == 0 {
			t.Fatalf("machine refused with a non-rule error %v", err)
		}
	})
}

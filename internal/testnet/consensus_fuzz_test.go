package testnet_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/bft"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/netfile"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/p2p"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// Fuzz targets for the payloads of the authority network's gossip
// (docs/PROTOCOL.md 16.8), fed to a running node as its gossip validators
// pass them on (after the size check and the nonce): a consensus message
// (a bft message; a proposal followed by its block) and a reading. The node
// must answer every payload without a panic and without failing, and a
// consensus message it accepts must be in the canonical encoding.

// consensusTarget starts an authority of a network of four whose three
// other authorities are down (the fuzzer holds their keys), and returns
// seeds: messages of the network, signed by its authorities.
func consensusTarget(f *testing.F) (*testnet.Peer, [][]byte) {
	var ids []string
	for i := range 4 {
		id, err := p2p.PeerID(p2p.KeyFromSeed(int64(300 + i)))
		if err != nil {
			f.Fatal(err)
		}
		ids = append(ids, id.String())
	}
	file, err := netfile.New("fuzz-ward", ids)
	if err != nil {
		f.Fatal(err)
	}
	file.GenesisTime = "2026-01-01T00:00:00Z"
	file.BlockInterval = "1h"
	nw, err := netfile.Parse(file.Encode())
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(cancel)
	p, err := testnet.Start(ctx, testnet.Config{Params: nw.Params, Key: p2p.KeyFromSeed(300),
		NodeOptions: []node.Option{node.WithAuthority(nw.Authority())}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = p.Close() })

	net := nw.Params.Genesis().Hash()
	c, err := chain.New(nw.Params)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Now()
	r, err := chain.NewReading(p2p.KeyFromSeed(1), "fuzz", 70, now)
	if err != nil {
		f.Fatal(err)
	}
	block := c.NewBlock([]chain.Reading{r}, now)
	enc, err := block.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	rd, _ := r.MarshalBinary()
	seeds := [][]byte{rd}
	for i := 1; i < 4; i++ {
		key := p2p.KeyFromSeed(int64(300 + i))
		v := &bft.Vote{Type: bft.KindPrevote, Height: 1, Hash: block.Hash(), Index: uint16(i)}
		v.Sign(net, key)
		pc := &bft.Vote{Type: bft.KindPrecommit, Height: 1, Round: 1, Hash: chain.Hash{}, Index: uint16(i)}
		pc.Sign(net, key)
		seeds = append(seeds, v.AppendBinary(nil), pc.AppendBinary(nil))
	}
	// Proposals of the first rounds by every authority: one of each round
	// is its proposer's.
	for round := range 4 {
		for i := range 4 {
			pr := &bft.Proposal{Height: 1, Round: int32(round), Hash: block.Hash(), POLRound: -1}
			pr.Sign(net, p2p.KeyFromSeed(int64(300+i)))
			seeds = append(seeds, pr.AppendBinary(nil), append(pr.AppendBinary(nil), enc...))
		}
	}
	return p, seeds
}

// FuzzConsensusMessage: HandleConsensus on any payload.
func FuzzConsensusMessage(f *testing.F) {
	p, seeds := consensusTarget(f)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Add([]byte{})
	f.Add([]byte{byte(bft.KindProposal)})
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := p.Node.HandleConsensus(ctx, data)
		if ferr := p.Node.Err(); ferr != nil {
			t.Fatalf("the node failed on %x: %v", data, ferr)
		}
		if err != nil {
			return
		}
		size := len(data)
		if bft.Kind(data[0]) == bft.KindProposal && size > bft.ProposalSize {
			size = bft.ProposalSize
		}
		m, derr := bft.DecodeMessage(data[:size])
		if derr != nil {
			t.Fatalf("accepted %x, which does not decode: %v", data, derr)
		}
		if again := m.AppendBinary(nil); !bytes.Equal(again, data[:size]) {
			t.Fatalf("accepted a message in another encoding: %x, canonical %x", data[:size], again)
		}
		if size < len(data) {
			b, berr := chain.DecodeBlock(data[size:], p.Node.Params().MaxReadings)
			if berr != nil {
				t.Fatalf("accepted a proposal with a block that does not decode: %v", berr)
			}
			if again, _ := b.MarshalBinary(); !bytes.Equal(again, data[size:]) {
				t.Fatal("accepted a proposal with a block in another encoding")
			}
		}
	})
}

// FuzzGossipReading: a gossiped reading, decoded as the validator does and
// given to ReceiveReading.
func FuzzGossipReading(f *testing.F) {
	p, seeds := consensusTarget(f)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > chain.MaxReadingSize {
			return // the validator refuses it before decoding
		}
		var r chain.Reading
		if err := r.UnmarshalBinary(data); err != nil {
			return
		}
		if err := p.Node.ReceiveReading(r); err == nil {
			if again, _ := r.MarshalBinary(); !bytes.Equal(again, data) {
				t.Fatalf("accepted a reading in another encoding: %x", data)
			}
		}
		if ferr := p.Node.Err(); ferr != nil {
			t.Fatalf("the node failed on %x: %v", data, ferr)
		}
	})
}

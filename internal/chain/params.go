package chain

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// Limits that hold on every network.
const (
	MinBPM           = 20      // lowest plausible heart rate
	MaxBPM           = 300     // highest plausible heart rate
	MaxSubjectLen    = 64      // bytes
	MaxDifficulty    = 64      // leading zero bits; more would take years per block
	MaxReadingsLimit = 4096    // upper bound for Params.MaxReadings
	MaxDepthLimit    = 1 << 16 // upper bound for Params.MaxReorgDepth
)

// Params are the parameters of a network. Every node of a network must use the
// same values: the genesis block commits to all of them, so nodes with
// different parameters refuse each other at the handshake.
type Params struct {
	// Name identifies the network; it is part of the genesis block and the
	// gossip topic.
	Name string
	// Difficulty is the number of leading zero bits a block hash must have.
	// 0 turns proof of work off (tests).
	Difficulty uint32
	// GenesisTime is the genesis block's time in Unix milliseconds.
	GenesisTime int64
	// MaxReadings is the most readings one block may carry.
	MaxReadings int
	// MaxFutureDrift is how far ahead of a node's clock a block or reading
	// time may be.
	MaxFutureDrift time.Duration
	// MaxReorgDepth is the most main-chain blocks a reorganisation may
	// disconnect. A block with at least MaxReorgDepth blocks on top of it
	// (and FinalAge on the main chain) is final: no branch that forks below
	// it is accepted, stored or relayed, and the readings it holds keep
	// their confirmations.
	MaxReorgDepth uint32
	// FinalAge is how long a block must also have been on a node's main
	// chain before it is final there. Depth alone would make a network
	// that mines many blocks a second split for good over a partition of
	// a second; with the age, partitions shorter than FinalAge heal.
	FinalAge time.Duration
	// Consensus is how the network agrees on blocks: ProofOfWork (the
	// default, open to anyone) or Authority (a known set of signers whose
	// votes make each block final; see package bft and docs/PROTOCOL.md).
	Consensus Consensus
	// Commitment is, on an authority network, the hash of the consensus
	// parameters the chain does not interpret itself (the authority set,
	// the block interval, the timeouts: see package netfile). The genesis
	// block commits to it, so nodes with different network files refuse
	// each other at the handshake. Zero on a proof-of-work network.
	Commitment Hash
}

// Consensus is the kind of agreement a network runs.
type Consensus uint8

// The kinds of consensus.
const (
	// ProofOfWork: anyone mines; the chain with the most work wins and a
	// block is final by depth and age (Params.MaxReorgDepth, FinalAge).
	ProofOfWork Consensus = 0
	// Authority: a known set of authorities proposes blocks in turn and
	// votes on each; a block joins a chain only with its seal, the
	// commit of more than two thirds of them, and is final at once.
	// Blocks carry no proof of work (Difficulty 0).
	Authority Consensus = 1
)

// String returns "pow" or "authority", the names the API and network files use.
func (c Consensus) String() string {
	switch c {
	case ProofOfWork:
		return "pow"
	case Authority:
		return "authority"
	}
	return fmt.Sprintf("consensus(%d)", uint8(c))
}

// Limits of the block trailer that authority networks use (see Block).
const (
	// ChangeSize is the size of one encoded membership change (package
	// bft decodes it): op (1), height (8), key (32).
	ChangeSize = 1 + 8 + 32
	// MaxChanges is the most membership changes one block may carry.
	MaxChanges = 16
	// MaxSealSize is the largest seal: a commit of 256 authorities
	// (bft.MaxMessageSize).
	MaxSealSize = 47 + 66*256
)

// Finality defaults: a block is final once it has at least 6 blocks on top
// of it and has been on the node's main chain for a minute. docs/PROTOCOL.md
// (finality) says what it costs an attacker to rewrite the blocks above it,
// and what a partition longer than that costs the network.
const (
	DefaultMaxReorgDepth = 6
	DefaultFinalAge      = time.Minute
)

// DefaultDifficulty makes a block take tens of milliseconds on one core of a
// current machine: enough that blocks are not free, fast enough for a demo.
const DefaultDifficulty = 18

// DefaultParams returns the parameters of the default network "p2pchain".
func DefaultParams() Params {
	return Params{
		Name:           "p2pchain",
		Difficulty:     DefaultDifficulty,
		GenesisTime:    time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli(),
		MaxReadings:    1024,
		MaxFutureDrift: 2 * time.Minute,
		MaxReorgDepth:  DefaultMaxReorgDepth,
		FinalAge:       DefaultFinalAge,
	}
}

// TestParams returns parameters for a network without proof of work.
func TestParams(name string) Params {
	p := DefaultParams()
	p.Name = name
	p.Difficulty = 0
	return p
}

// Validate reports whether the parameters are usable.
func (p Params) Validate() error {
	switch {
	case p.Name == "" || len(p.Name) > 64:
		return errors.New("network name must be 1 to 64 bytes")
	case p.Difficulty > MaxDifficulty:
		return fmt.Errorf("difficulty %d is above the maximum %d", p.Difficulty, MaxDifficulty)
	case p.MaxReadings < 1 || p.MaxReadings > MaxReadingsLimit:
		return fmt.Errorf("max readings %d must be between 1 and %d", p.MaxReadings, MaxReadingsLimit)
	case p.MaxFutureDrift < 0 || p.MaxFutureDrift > 24*time.Hour:
		return errors.New("max future drift must be between 0 and 24h")
	case p.MaxReorgDepth < 1 || p.MaxReorgDepth > MaxDepthLimit:
		return fmt.Errorf("max reorganisation depth %d must be between 1 and %d", p.MaxReorgDepth, MaxDepthLimit)
	case p.FinalAge < 0 || p.FinalAge > 24*time.Hour:
		return errors.New("final age must be between 0 and 24h")
	case p.Consensus != ProofOfWork && p.Consensus != Authority:
		return fmt.Errorf("unknown consensus %d", p.Consensus)
	case p.Consensus == Authority && p.Difficulty != 0:
		return errors.New("an authority network has no proof of work: difficulty must be 0")
	case p.Consensus == Authority && p.Commitment.IsZero():
		return errors.New("an authority network needs the commitment to its authority set (see package netfile)")
	case p.Consensus == ProofOfWork && !p.Commitment.IsZero():
		return errors.New("a proof-of-work network has no consensus commitment")
	}
	return nil
}

// DepthFinal is the highest height that depth alone makes final on a chain
// whose tip is at tip: every block on an authority network (its commits
// make blocks final), else the block MaxReorgDepth below the tip (0 while
// the chain is shorter). A proof-of-work block is final once, besides,
// FinalAge has passed since it joined the main chain (Chain.Advance).
func (p Params) DepthFinal(tip uint64) uint64 {
	if p.Consensus == Authority {
		return tip
	}
	if d := uint64(p.MaxReorgDepth); tip > d {
		return tip - d
	}
	return 0
}

// MaxBlockSize is the largest encoded block these parameters allow.
func (p Params) MaxBlockSize() int {
	n := HeaderSize + 4 + p.MaxReadings*MaxReadingSize
	if p.Consensus == Authority {
		n += 2 + MaxChanges*ChangeSize + 4 + MaxSealSize
	}
	return n
}

// Genesis returns the network's genesis block. Its header holds the
// difficulty and genesis time, and its parent field a tagged hash of the
// other parameters (max readings, max future drift, max reorganisation
// depth, final age, name and, on an authority network, the consensus kind
// and the commitment to its authority set), so nodes that differ in any
// parameter have different genesis blocks and refuse each other at the
// handshake. It needs no proof of work.
func (p Params) Genesis() *Block {
	var rules [24]byte
	binary.BigEndian.PutUint32(rules[0:], uint32(p.MaxReadings))
	binary.BigEndian.PutUint64(rules[4:], uint64(p.MaxFutureDrift.Milliseconds()))
	binary.BigEndian.PutUint32(rules[12:], p.MaxReorgDepth)
	binary.BigEndian.PutUint64(rules[16:], uint64(p.FinalAge.Milliseconds()))
	parent := taggedHash("p2pchain/genesis/v2", rules[:], []byte(p.Name))
	if p.Consensus != ProofOfWork {
		// Proof-of-work genesis blocks stay what they were.
		parent = taggedHash("p2pchain/genesis/v2", rules[:], []byte{byte(p.Consensus)}, p.Commitment[:], []byte(p.Name))
	}
	return &Block{Header: Header{
		Version:    HeaderVersion,
		Height:     0,
		Parent:     parent,
		Time:       p.GenesisTime,
		Root:       MerkleRoot(nil),
		Difficulty: p.Difficulty,
	}}
}

// addMillis returns t + d, saturated at the int64 limits: block and reading
// times come from peers, and a time near the limit must not wrap around.
func addMillis(t, d int64) int64 {
	switch {
	case d > 0 && t > math.MaxInt64-d:
		return math.MaxInt64
	case d < 0 && t < math.MinInt64-d:
		return math.MinInt64
	}
	return t + d
}

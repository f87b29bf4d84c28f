package bft_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/p2pchain/p2pchain/internal/bft"
	"github.com/p2pchain/p2pchain/internal/chain"
)

// Four authorities decide height 1. Each owner sends every message of its
// machine to the others, judges proposed blocks, builds a block when its
// machine asks, and stops at the commit. A vote with a forged signature
// is refused as a peer fault.
func Example() {
	network := chain.Hash(sha256.Sum256([]byte("example network")))
	keys := make([]ed25519.PrivateKey, 4)
	pubs := make([]bft.Key, 4)
	for i := range keys {
		seed := sha256.Sum256([]byte{byte(i)})
		keys[i] = ed25519.NewKeyFromSeed(seed[:])
		pubs[i] = bft.KeyOf(keys[i])
	}
	set, _ := bft.NewSet(pubs)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	block := chain.Hash(sha256.Sum256([]byte("block 1")))

	type delivery struct {
		to  int
		msg bft.Message
	}
	var queue []delivery
	machines := make([]*bft.Machine, 4)
	var handle func(i int, u bft.Update)
	handle = func(i int, u bft.Update) {
		for _, h := range u.Validate {
			handle(i, machines[i].Validated(h, h == block, now))
		}
		for _, msg := range u.Messages {
			for j := range machines {
				if j != i {
					queue = append(queue, delivery{j, msg})
				}
			}
		}
		if u.NeedBlock {
			fmt.Printf("authority %d proposes\n", i)
			handle(i, machines[i].Propose(1, block, now))
		}
		if c := u.Commit; c != nil {
			err := bft.VerifyCommit(network, set, 1, block, c)
			fmt.Printf("authority %d: height %d final in round %d (commit verifies: %v)\n", i, c.Height, c.Round, err == nil)
		}
	}
	for i := range machines {
		machines[i] = bft.NewMachine(bft.Config{Network: network, Key: keys[i]})
		handle(i, machines[i].Start(1, set, now))
	}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		u, _ := machines[d.to].Receive(d.msg, now)
		handle(d.to, u)
	}

	forged := &bft.Vote{Type: bft.KindPrevote, Height: 2, Hash: block, Index: 3}
	forged.Sign(network, keys[0]) // authority 0's key, authority 3's index
	machines[0].Start(2, set, now)
	_, err := machines[0].Receive(forged, now)
	fmt.Println(err, bft.IsPeerFault(err), errors.Is(err, bft.ErrBadSignature))
	// Output:
	// authority 1 proposes
	// authority 0: height 1 final in round 0 (commit verifies: true)
	// authority 1: height 1 final in round 0 (commit verifies: true)
	// authority 2: height 1 final in round 0 (commit verifies: true)
	// authority 3: height 1 final in round 0 (commit verifies: true)
	// bad signature: prevote by 3 at height 2 round 0 true true
}

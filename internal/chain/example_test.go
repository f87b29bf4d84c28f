package chain_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// This example makes a chain, signs a reading, mines it into a block and adds
// the block; adding the same block again shows the error path.
func Example() {
	params := chain.TestParams("example") // no proof of work
	params.Difficulty = 4                 // a little, so Solve has work to do
	c, err := chain.New(params)
	if err != nil {
		fmt.Println(err)
		return
	}

	// A device signs a reading with its key; the time is the caller's.
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r, err := chain.NewReading(key, "patient-17", 72, now)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := chain.CheckReading(&r, params, now.UnixMilli(), nil); err != nil {
		fmt.Println(err)
		return
	}

	// A miner packs it into a block on the tip and solves the proof of work.
	b := c.NewBlock([]chain.Reading{r}, now)
	if err := chain.Solve(context.Background(), &b.Header); err != nil {
		fmt.Println(err)
		return
	}
	u, err := c.AddBlock(b, now)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("height %d, tip changed %v, %d block(s) to persist\n", u.Height, u.TipChanged, len(u.Connected))
	fmt.Println("reading in chain:", c.HasReading(r.ID()))

	// The same block again is refused, without blame on the sender.
	_, err = c.AddBlock(b, now)
	var re *chain.RuleError
	if errors.As(err, &re) {
		fmt.Println("code:", re.Code)
	}
	fmt.Println("duplicate:", errors.Is(err, chain.ErrDuplicateBlock))
	fmt.Println("peer fault:", chain.IsPeerFault(err))

	// A reading altered after signing breaks a rule: the sender misbehaved.
	forged := r
	forged.BPM = 180
	b2 := c.NewBlock([]chain.Reading{forged}, now)
	if err := chain.Solve(context.Background(), &b2.Header); err != nil {
		fmt.Println(err)
		return
	}
	_, err = c.AddBlock(b2, now)
	fmt.Printf("forged: %v (peer fault %v)\n", chain.CodeOf(err), chain.IsPeerFault(err))

	// Output:
	// height 1, tip changed true, 1 block(s) to persist
	// reading in chain: true
	// code: duplicate block
	// duplicate: true
	// peer fault: false
	// forged: bad signature (peer fault true)
}

package testnet

// Long chains written straight into a node's data directory, and the
// machine's limits the benchmarks compare their figures with: what every
// core verifies per second (the checks a sync runs on every block) and
// signs and verifies per reading.

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/store"
)

// Progress reports how far a stage of a benchmark is: done of total (0:
// unknown), in the unit the stage names ("blocks", "readings").
type Progress func(stage, unit string, done, total int)

func (p Progress) report(stage, unit string, done, total int) {
	if p != nil {
		p(stage, unit, done, total)
	}
}

// storeDir is where a node keeps its chain in its data directory
// (datadir.StoreDir).
const storeDir = "chain"

// benchKey signs the readings of the chains the benchmarks build.
func benchKey() ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	copy(seed, "p2pchain bench")
	return ed25519.NewKeyFromSeed(seed)
}

// BuildDataDir writes a main chain of blocks blocks, one signed reading each,
// into a new store in the data directory dir (dir/chain), as a node of
// params stores it, and returns the blocks. The blocks are mined at
// params.Difficulty on every core and written 512 to a durable commit,
// without the checks a node runs on blocks from peers (they are valid by
// construction). Their times are one second apart from the genesis time.
func BuildDataDir(ctx context.Context, dir string, params chain.Params, blocks int, progress Progress) ([]*chain.Block, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s, err := store.Open(filepath.Join(dir, storeDir), params)
	if err != nil {
		return nil, err
	}
	c, err := chain.New(params)
	if err != nil {
		s.Close()
		return nil, err
	}
	key := benchKey()
	out := make([]*chain.Block, 0, blocks)
	var commit store.Commit
	for i := 1; i <= blocks; i++ {
		// At difficulty 0 no proof of work looks at ctx: an interrupt
		// (Ctrl-C at bench sync) went unheard until the chain was built.
		if err := ctx.Err(); err != nil {
			s.Close()
			return nil, err
		}
		at := time.UnixMilli(params.GenesisTime).Add(time.Duration(i) * time.Second)
		r, err := chain.NewReading(key, fmt.Sprintf("bench-%d", i%500), chain.MinBPM+i%100, at)
		if err != nil {
			s.Close()
			return nil, err
		}
		b := c.NewBlock([]chain.Reading{r}, at)
		if err := solveAll(ctx, &b.Header); err != nil {
			s.Close()
			return nil, err
		}
		u, err := c.Restore(b, at)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("block %d: %w", i, err)
		}
		out = append(out, b)
		commit.Blocks, commit.Updates = append(commit.Blocks, b), append(commit.Updates, u)
		if len(commit.Blocks) == 512 || i == blocks {
			if err := s.Commit(commit); err != nil {
				s.Close()
				return nil, err
			}
			commit = store.Commit{}
			progress.report("building the chain", "blocks", i, blocks)
		}
	}
	return out, s.Close()
}

// solveAll solves a header's proof of work on every core, each searching
// its own part of the nonce space.
func solveAll(ctx context.Context, h *chain.Header) error {
	if h.Difficulty == 0 {
		return nil
	}
	n := runtime.GOMAXPROCS(0)
	if n == 1 || h.Difficulty < 8 {
		return chain.Solve(ctx, h)
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		once  sync.Once
		found chain.Header
		wg    sync.WaitGroup
	)
	for k := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			try := *h
			try.Nonce = uint64(k) << 56
			if chain.Solve(ctx, &try) == nil {
				once.Do(func() { found = try; cancel() })
			}
		}()
	}
	wg.Wait()
	if found.Version == 0 {
		if err := parent.Err(); err != nil {
			return err
		}
		return chain.ErrNonceSpace
	}
	*h = found
	return nil
}

// onAllCores runs f(0) to f(n-1) on every core and returns what it cost:
// the CPU time this process used meanwhile, divided by the cores, where
// that can be read (so that others' load on a shared machine does not
// count), else the wall time.
func onAllCores(n int, f func(i int)) time.Duration {
	cores := runtime.GOMAXPROCS(0)
	cpu0, ok := SelfCPUTime()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range cores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				f(i)
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	if cpu1, ok1 := SelfCPUTime(); ok && ok1 && cpu1 > cpu0 {
		return (cpu1 - cpu0) / time.Duration(cores)
	}
	return wall
}

// VerifyRate checks blocks as a syncing node checks blocks from a peer,
// header (proof of work), body (readings root, ranges) and Ed25519
// signatures with no cache, on every core, and returns the blocks all the
// cores verify per second: the bound validation sets on a sync's rate. The
// time is this process's CPU time over the cores (onAllCores).
func VerifyRate(blocks []*chain.Block, params chain.Params) (float64, error) {
	if len(blocks) == 0 {
		return 0, nil
	}
	var failed atomic.Value
	took := onAllCores(len(blocks), func(i int) {
		b := blocks[i]
		err := chain.CheckHeader(&b.Header, params)
		if err == nil {
			var ids []chain.Hash
			if ids, err = chain.CheckBody(b, params); err == nil {
				err = chain.CheckSignatures(b, ids, nil)
			}
		}
		if err != nil {
			failed.CompareAndSwap(nil, fmt.Errorf("block %d: %w", b.Header.Height, err))
		}
	})
	if err, _ := failed.Load().(error); err != nil {
		return 0, err
	}
	return float64(len(blocks)) / took.Seconds(), nil
}

// SignatureBound returns how many readings a second this machine could
// carry through a network of nodes nodes if signatures were all it did: per
// reading one Ed25519 signing (by the node it is submitted to, which caches
// its own signature and does not verify it) and one verification on each
// of the other nodes, on every core (timed as VerifyRate is).
func SignatureBound(nodes int) float64 {
	const n = 4000
	_, key, _ := ed25519.GenerateKey(nil)
	pub := key.Public().(ed25519.PublicKey)
	msg := func(i int) []byte { return []byte{byte(i), byte(i >> 8), 64: 0} }
	sigs := make([][]byte, n)
	sign := onAllCores(n, func(i int) { sigs[i] = ed25519.Sign(key, msg(i)) })
	verify := onAllCores(n, func(i int) {
		if !ed25519.Verify(pub, msg(i), sigs[i]) {
			panic("testnet: SignatureBound: a signature made here does not verify")
		}
	})
	perReading := (sign + time.Duration(max(nodes-1, 0))*verify) / n // of all the cores
	return 1 / perReading.Seconds()
}

package store

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

var (
	smallOnce sync.Once
	smallFix  *fixture
)

// smallFixture is a chain of 120 blocks, 8 more, and a fork of the last 100.
func smallFixture(t testing.TB) *fixture {
	smallOnce.Do(func() { smallFix = newFixture(t, forkDepth+20, 8) })
	if smallFix == nil {
		t.Fatal("fixture failed")
	}
	return smallFix
}

func mustOpen(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(path, testParams())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// node mirrors what a node does: a chain, a pool and a store, kept in step.
type node struct {
	t     testing.TB
	chain *chain.Chain
	pool  *chain.Pool
	store *Store
	clock time.Time // advances a minute a block, so that no tip is displaced by an equal-work sibling
}

func newNode(t testing.TB, s *Store) *node {
	c, err := chain.New(testParams())
	if err != nil {
		t.Fatal(err)
	}
	return &node{t: t, chain: c, pool: chain.NewPool(1 << 20), store: s}
}

// add adds b to the chain and commits the result as a node would.
func (n *node) add(b *chain.Block) *chain.Update {
	n.t.Helper()
	n.clock = time.UnixMilli(max(n.clock.Add(time.Minute).UnixMilli(), b.Header.Time))
	u, err := n.chain.AddBlock(b, n.clock)
	if err != nil {
		n.t.Fatalf("AddBlock %d: %v", b.Header.Height, err)
	}
	before := n.pool.All()
	was := map[chain.Hash]bool{}
	for _, r := range before {
		was[r.ID()] = true
	}
	n.pool.Apply(u)
	c := Commit{Blocks: []*chain.Block{b}, Updates: []*chain.Update{u}}
	for _, r := range n.pool.All() { // returned by a reorganisation, or adopted from a tie
		if !was[r.ID()] {
			c.PendingAdd = append(c.PendingAdd, r)
		}
	}
	for _, r := range before {
		if !n.pool.Has(r.ID()) {
			c.PendingRemove = append(c.PendingRemove, r.ID())
		}
	}
	if err := n.store.Commit(c); err != nil {
		n.t.Fatalf("Commit %d: %v", b.Header.Height, err)
	}
	return u
}

func (n *node) submit(r chain.Reading) {
	n.t.Helper()
	if err := n.store.AddPending(r); err != nil {
		n.t.Fatal(err)
	}
	if err := n.pool.Add(r); err != nil {
		n.t.Fatal(err)
	}
}

// mainChain returns the chain's main blocks from height 1.
func (n *node) mainChain() []*chain.Block {
	var out []*chain.Block
	for h := uint64(1); h <= n.chain.Height(); h++ {
		b, _ := n.chain.BlockAt(h)
		out = append(out, b)
	}
	return out
}

// checkIndexes checks that the store's indexes hold exactly n's main chain.
func (n *node) checkIndexes(disconnected []*chain.Block) {
	t := n.t
	t.Helper()
	s := n.store
	if s.Tip() != n.chain.TipHash() || s.Height() != n.chain.Height() {
		t.Fatalf("store tip %s at %d, chain %s at %d", s.Tip().Short(), s.Height(), n.chain.TipHash().Short(), n.chain.Height())
	}
	for h := uint64(0); h <= n.chain.Height(); h++ {
		want, _ := n.chain.BlockAt(h)
		got, err := s.BlockAtHeight(h)
		if err != nil {
			t.Fatalf("BlockAtHeight(%d): %v", h, err)
		}
		if got.Hash() != want.Hash() {
			t.Fatalf("height %d: store has %s, chain %s", h, got.Hash().Short(), want.Hash().Short())
		}
		if hdr, err := s.HeaderByHash(want.Hash()); err != nil || hdr != want.Header {
			t.Fatalf("HeaderByHash at height %d: %+v, %v", h, hdr, err)
		}
		for _, id := range want.ReadingIDs() {
			if bh, ok := s.ReadingBlock(id); !ok || bh != want.Hash() {
				t.Fatalf("reading %s: in %s (%v), want %s", id.Short(), bh.Short(), ok, want.Hash().Short())
			}
		}
	}
	if _, err := s.BlockAtHeight(n.chain.Height() + 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("BlockAtHeight above the tip: %v, want ErrNotFound", err)
	}
	for _, b := range disconnected {
		for _, id := range b.ReadingIDs() {
			if n.chain.HasReading(id) {
				continue
			}
			if bh, ok := s.ReadingBlock(id); ok {
				t.Fatalf("reading %s of a disconnected block still indexed in %s", id.Short(), bh.Short())
			}
		}
	}
	n.checkSubjects()
	var walked []*chain.Block
	if err := s.Walk(1, func(b *chain.Block) error { walked = append(walked, b); return nil }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(walked, n.mainChain()) {
		t.Fatalf("Walk gave %d blocks, not the main chain of %d", len(walked), n.chain.Height())
	}
}

// checkLoad checks that Load returns n's chain and pool.
func (n *node) checkLoad(st *State) {
	t := n.t
	t.Helper()
	if !reflect.DeepEqual(st.Main, n.mainChain()) {
		t.Fatalf("Load: %d main blocks differ from the chain's %d", len(st.Main), n.chain.Height())
	}
	if want := n.pool.All(); !reflect.DeepEqual(st.Pending, want) && !(len(st.Pending) == 0 && len(want) == 0) {
		t.Fatalf("Load: %d pending readings, want %d in order", len(st.Pending), len(want))
	}
	for i, b := range st.Side {
		if n.chain.IsMain(b.Hash()) || !n.chain.HasBlock(b.Hash()) {
			t.Fatalf("side block %d is main or unknown", i)
		}
	}
	if len(st.Side)+len(st.Main)+1 != n.chain.Len() {
		t.Fatalf("Load: %d main + %d side blocks, chain knows %d", len(st.Main), len(st.Side), n.chain.Len())
	}
	// Rebuilding from the state as a node does must give the same chain:
	// parents first.
	c, err := chain.New(testParams())
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range append(slices.Clone(st.Main), st.Side...) {
		if _, err := c.Restore(b, n.clock); err != nil {
			t.Fatalf("rebuild: block %d: %v", b.Header.Height, err)
		}
	}
	if c.TipHash() != n.chain.TipHash() {
		t.Fatalf("rebuilt tip %s, want %s", c.TipHash().Short(), n.chain.TipHash().Short())
	}
}

func reopen(t testing.TB, n *node) *State {
	t.Helper()
	path := n.store.Path()
	if err := n.store.Close(); err != nil {
		t.Fatal(err)
	}
	n.store = mustOpen(t, path)
	t.Cleanup(func() { n.store.Close() })
	st, err := n.store.Load()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestNewStore(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "chain"))
	defer s.Close()
	g := testParams().Genesis()
	if s.Tip() != g.Hash() || s.Height() != 0 {
		t.Fatalf("new store: tip %s at %d", s.Tip().Short(), s.Height())
	}
	if b, err := s.BlockAtHeight(0); err != nil || b.Hash() != g.Hash() {
		t.Fatalf("BlockAtHeight(0) = %v, %v", b, err)
	}
	st, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Main)+len(st.Side)+len(st.Pending) != 0 {
		t.Fatalf("new store loads %d/%d/%d", len(st.Main), len(st.Side), len(st.Pending))
	}
	if _, err := s.BlockByHash(chain.Hash{1}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("BlockByHash(unknown): %v", err)
	}
}

// TestRoundTripAndReorg drives a real chain and pool through blocks, pending
// readings, a reorganisation of 100 blocks and back, checking the indexes
// and a close, reopen and Load at each stage.
func TestRoundTripAndReorg(t *testing.T) {
	f := smallFixture(t)
	n := newNode(t, mustOpen(t, filepath.Join(t.TempDir(), "chain")))
	t.Cleanup(func() { n.store.Close() })

	// Pending readings: submitted, then some mined in the main chain.
	pending := makeReadings(f.params, "pending", 3, 5) // 4 readings
	for _, r := range pending {
		n.submit(r)
	}
	for _, b := range f.main {
		n.add(b)
	}
	// The fork's blocks but the last are side blocks: no index changes.
	for _, b := range f.fork[:forkDepth] {
		if u := n.add(b); u.TipChanged {
			t.Fatalf("fork block %d changed the tip", b.Header.Height)
		}
	}
	n.checkIndexes(nil)
	n.checkLoad(reopen(t, n))

	// The fork's last block reorganises 100 blocks away.
	u := n.add(f.fork[forkDepth])
	if len(u.Disconnected) != forkDepth || len(u.Connected) != forkDepth+1 {
		t.Fatalf("reorg: disconnected %d, connected %d", len(u.Disconnected), len(u.Connected))
	}
	if n.pool.Len() != len(pending)+len(u.Returned) {
		t.Fatalf("pool has %d readings", n.pool.Len())
	}
	n.checkIndexes(u.Disconnected)
	n.checkLoad(reopen(t, n))

	// The old branch grows past the fork: it comes back.
	n.add(f.extra[0])
	u = n.add(f.extra[1])
	if len(u.Connected) != forkDepth+2 {
		t.Fatalf("reorg back: connected %d", len(u.Connected))
	}
	n.checkIndexes(u.Disconnected)
	n.checkLoad(reopen(t, n))

	// Pending removal.
	if err := n.store.RemovePending(pending[0].ID()); err != nil {
		t.Fatal(err)
	}
	n.pool.Remove(pending[0].ID())
	n.checkLoad(reopen(t, n))
}

func TestCommitAtomic(t *testing.T) {
	f := smallFixture(t)
	n := newNode(t, mustOpen(t, filepath.Join(t.TempDir(), "chain")))
	t.Cleanup(func() { n.store.Close() })
	for _, b := range f.main[:10] {
		n.add(b)
	}
	before, err := n.store.Load()
	if err != nil {
		t.Fatal(err)
	}

	// A block that cannot be encoded (subject too long), after a good one.
	good := f.main[10]
	bad := &chain.Block{Header: f.main[11].Header, Readings: []chain.Reading{{Subject: strings.Repeat("x", chain.MaxSubjectLen+1)}}}
	err = n.store.Commit(Commit{
		Blocks:     []*chain.Block{good, bad},
		Updates:    []*chain.Update{{Hash: good.Hash(), Height: 11, TipChanged: true, Connected: []*chain.Block{good}}},
		PendingAdd: makeReadings(f.params, "atomic", 2, 0),
	})
	if err == nil {
		t.Fatal("commit of an unencodable block succeeded")
	}
	// An update that does not follow the tip.
	err = n.store.Commit(Commit{
		Blocks:     []*chain.Block{f.main[12]},
		Updates:    []*chain.Update{{Hash: f.main[12].Hash(), Height: 13, TipChanged: true, Connected: []*chain.Block{f.main[12]}}},
		PendingAdd: makeReadings(f.params, "atomic", 2, 0),
	})
	if !errors.Is(err, ErrBadCommit) {
		t.Fatalf("commit off the tip: %v, want ErrBadCommit", err)
	}
	err = n.store.Commit(Commit{Updates: []*chain.Update{{Hash: f.main[3].Hash(), TipChanged: true, Disconnected: []*chain.Block{f.main[3]}}}})
	if !errors.Is(err, ErrBadCommit) {
		t.Fatalf("disconnecting a non-tip block: %v, want ErrBadCommit", err)
	}

	st := reopen(t, n)
	if !reflect.DeepEqual(st, before) {
		t.Fatal("a failed commit changed the store")
	}
	for _, b := range []*chain.Block{good, f.main[12]} {
		if _, err := n.store.BlockByHash(b.Hash()); !errors.Is(err, ErrNotFound) {
			t.Fatalf("block of a failed commit: %v", err)
		}
	}
	n.checkIndexes(nil)
}

func TestWrongNetwork(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chain")
	mustOpen(t, path).Close()
	_, err := Open(path, chain.TestParams("othernet"))
	if !errors.Is(err, ErrWrongNetwork) {
		t.Fatalf("Open for another network: %v, want ErrWrongNetwork", err)
	}
	if !strings.Contains(err.Error(), `"storetest"`) || !strings.Contains(err.Error(), `"othernet"`) {
		t.Fatalf("message does not name both networks: %v", err)
	}
	// The refused Open released the lock.
	mustOpen(t, path).Close()
}

func TestLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chain")
	s := mustOpen(t, path)
	start := time.Now()
	_, err := Open(path, testParams())
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if d := time.Since(start); d < LockTimeout/2 {
		t.Fatalf("gave up after %v, before the timeout", d)
	}
	if !strings.Contains(err.Error(), "another node seems to use this data directory") {
		t.Fatalf("message: %v", err)
	}
	s.Close()
	mustOpen(t, path).Close()
}

// TestLockedByProcess holds the store in a child process, as another node
// would.
func TestLockedByProcess(t *testing.T) {
	if path := os.Getenv("P2PCHAIN_STORE_HOLD"); path != "" {
		s, err := Open(path, testParams())
		if err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString("open\n")
		var buf [1]byte
		os.Stdin.Read(buf[:]) // until the parent closes the pipe
		s.Close()
		os.Exit(0)
	}
	path := filepath.Join(t.TempDir(), "chain")
	mustOpen(t, path).Close()
	stop := holdInChild(t, path)
	_, err := Open(path, testParams())
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("Open while another process holds it: %v, want ErrLocked", err)
	}
	stop()
	mustOpen(t, path).Close()
}

// TestPrefixLookups: blocks and readings by the start of their hash agree
// with a scan of everything stored, in order and up to the limit.
func TestPrefixLookups(t *testing.T) {
	path, _ := damaged(t) // a copy of the pristine store
	_, st := pristine(t)
	s := mustOpen(t, path)
	defer s.Close()

	blocks := []chain.Hash{testParams().Genesis().Hash()}
	var readings []chain.Hash
	for _, b := range st.Main {
		blocks = append(blocks, b.Hash())
		readings = append(readings, b.ReadingIDs()...)
	}
	for _, b := range st.Side {
		blocks = append(blocks, b.Hash())
	}
	for _, r := range st.Pending {
		readings = append(readings, r.ID())
	}
	check := func(what string, all []chain.Hash, lookup func(chain.HashPrefix, int) ([]chain.Hash, error)) {
		t.Helper()
		for i, h := range all {
			if i%7 != 0 {
				continue
			}
			for _, digits := range []int{4, 5, 9, 64} {
				p, err := chain.ParseHashPrefix(h.String()[:digits])
				if err != nil {
					t.Fatal(err)
				}
				var want []chain.Hash
				for _, x := range all {
					if p.Matches(x) {
						want = append(want, x)
					}
				}
				slices.SortFunc(want, func(a, b chain.Hash) int { return strings.Compare(a.String(), b.String()) })
				for _, limit := range []int{1, 3, 1000} {
					got, err := lookup(p, limit)
					if err != nil {
						t.Fatal(err)
					}
					if w := want[:min(limit, len(want))]; !slices.Equal(got, w) {
						t.Fatalf("%s with prefix %s, limit %d: got %d hashes, want %d", what, p, limit, len(got), len(w))
					}
				}
			}
		}
	}
	check("blocks", blocks, s.BlocksWithPrefix)
	check("readings", readings, s.ReadingsWithPrefix)
	if got, err := s.BlocksWithPrefix(mustPrefix(t, "ffffffff"), 10); err != nil || len(got) != 0 {
		t.Errorf("no block starts with ffffffff: %v, %v", got, err)
	}
}

func mustPrefix(t *testing.T, s string) chain.HashPrefix {
	t.Helper()
	p, err := chain.ParseHashPrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBloomFilters: every level's tables carry a Bloom filter, as the
// engine's options file records: most of the store's lookups are for keys
// it does not hold (a new reading in the reading index), and the filter
// answers those without a seek.
func TestBloomFilters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "chain")
	s := mustOpen(t, dir)
	s.Close()
	files, err := filepath.Glob(filepath.Join(dir, "OPTIONS-*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no options file in %s: %v", dir, err)
	}
	data, err := os.ReadFile(files[len(files)-1])
	if err != nil {
		t.Fatal(err)
	}
	levels := strings.Count(string(data), "[Level ")
	blooms := strings.Count(string(data), "filter_policy=rocksdb.BuiltinBloomFilter")
	if levels == 0 || blooms != levels {
		t.Fatalf("%d of %d levels have a Bloom filter:\n%s", blooms, levels, data)
	}
}

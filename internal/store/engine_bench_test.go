package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/bbolt"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// The comparison of the two candidate engines, bbolt and Pebble, that chose
// the store's engine (docs/STORAGE.md). Both get the same layout and the same
// work, with every transaction made durable (fsync) before it returns:
//
//	blocks:   block hash -> encoded block (all blocks)
//	heights:  main-chain height -> block hash
//	readings: reading id -> block hash (main chain)
//	meta:     "tip" -> tip hash
//
// Pebble is used only here, to keep the comparison reproducible:
//
//	go test -run '^$' -bench BenchmarkEngine -benchtime 1x ./internal/store  (see STORAGE.md)

// encBlock is a block with what an engine stores, computed in advance so the
// comparison measures the engines only.
type encBlock struct {
	hash   chain.Hash
	height uint64
	data   []byte
	ids    []chain.Hash
}

func encode(b *chain.Block) *encBlock {
	data, err := b.MarshalBinary()
	if err != nil {
		panic(err)
	}
	return &encBlock{hash: b.Hash(), height: b.Header.Height, data: data, ids: b.ReadingIDs()}
}

func encodeAll(bs []*chain.Block) []*encBlock {
	out := make([]*encBlock, len(bs))
	for i, b := range bs {
		out[i] = encode(b)
	}
	return out
}

// encFixture is the benchmark fixture, encoded.
type encFixture struct {
	main, extra, fork []*encBlock
	disconnect        []*encBlock // main blocks the fork disconnects, tip first
	undo              []*encBlock // fork blocks, tip first
}

var (
	encOnce sync.Once
	encFix  *encFixture
)

func encodedFixture(tb testing.TB) *encFixture {
	f := bigFixture(tb)
	encOnce.Do(func() {
		e := &encFixture{main: encodeAll(f.main), extra: encodeAll(f.extra), fork: encodeAll(f.fork)}
		for i := len(e.main) - 1; i >= len(e.main)-forkDepth; i-- {
			e.disconnect = append(e.disconnect, e.main[i])
		}
		for i := len(e.fork) - 1; i >= 0; i-- {
			e.undo = append(e.undo, e.fork[i])
		}
		encFix = e
	})
	return encFix
}

// engine is what the comparison needs of a key-value engine.
type engine interface {
	// commit stores put, removes the main-chain index entries of
	// disconnect, adds those of connect and records the tip, in one
	// durable transaction.
	commit(put, disconnect, connect []*encBlock) error
	byHash(h chain.Hash) ([]byte, error)
	atHeight(h uint64) ([]byte, error)
	// load decodes every block and returns the main chain in order.
	load(maxReadings int) ([]*chain.Block, error)
	close() error
}

type engineSpec struct {
	name string
	open func(path string) (engine, error)
}

var engines = []engineSpec{
	{"bbolt", openBoltEngine},
	{"bbolt-seq", openBoltSeqEngine},
	{"pebble", openPebbleEngine},
}

var errNotFound = errors.New("not found")

func heightKey(h uint64) []byte { return binary.BigEndian.AppendUint64(nil, h) }

// assemble orders the main chain from the height index entries.
func assemble(all map[chain.Hash]*chain.Block, hashes []chain.Hash) ([]*chain.Block, error) {
	main := make([]*chain.Block, 0, len(hashes))
	for _, h := range hashes {
		b, ok := all[h]
		if !ok {
			return nil, fmt.Errorf("main block %s missing", h.Short())
		}
		main = append(main, b)
	}
	return main, nil
}

// bbolt: one file, buckets as in the layout above.

type boltEngine struct{ db *bbolt.DB }

var (
	bBlocks   = []byte("blocks")
	bHeights  = []byte("heights")
	bReadings = []byte("readings")
	bMeta     = []byte("meta")
)

func openBoltEngine(path string) (engine, error) {
	db, err := bbolt.Open(filepath.Join(path, "chain.db"), 0o600, &bbolt.Options{
		Timeout:         time.Second,
		FreelistType:    bbolt.FreelistMapType,
		InitialMmapSize: 1 << 30,
	})
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, n := range [][]byte{bBlocks, bHeights, bReadings, bMeta} {
			if _, err := tx.CreateBucketIfNotExists(n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &boltEngine{db: db}, nil
}

func (e *boltEngine) commit(put, disconnect, connect []*encBlock) error {
	return e.db.Update(func(tx *bbolt.Tx) error {
		blocks, heights, readings := tx.Bucket(bBlocks), tx.Bucket(bHeights), tx.Bucket(bReadings)
		heights.FillPercent = 0.95 // appended in key order
		for _, b := range put {
			if err := blocks.Put(b.hash[:], b.data); err != nil {
				return err
			}
		}
		for _, b := range disconnect {
			if err := heights.Delete(heightKey(b.height)); err != nil {
				return err
			}
			for _, id := range b.ids {
				if err := readings.Delete(id[:]); err != nil {
					return err
				}
			}
		}
		var tip []byte
		for _, b := range connect {
			if err := heights.Put(heightKey(b.height), b.hash[:]); err != nil {
				return err
			}
			for _, id := range b.ids {
				if err := readings.Put(id[:], b.hash[:]); err != nil {
					return err
				}
			}
			tip = b.hash[:]
		}
		if tip != nil {
			return tx.Bucket(bMeta).Put([]byte("tip"), tip)
		}
		return nil
	})
}

func (e *boltEngine) byHash(h chain.Hash) (out []byte, err error) {
	err = e.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bBlocks).Get(h[:])
		if v == nil {
			return errNotFound
		}
		out = append([]byte(nil), v...)
		return nil
	})
	return out, err
}

func (e *boltEngine) atHeight(h uint64) (out []byte, err error) {
	err = e.db.View(func(tx *bbolt.Tx) error {
		hash := tx.Bucket(bHeights).Get(heightKey(h))
		if hash == nil {
			return errNotFound
		}
		v := tx.Bucket(bBlocks).Get(hash)
		if v == nil {
			return errNotFound
		}
		out = append([]byte(nil), v...)
		return nil
	})
	return out, err
}

func (e *boltEngine) load(maxReadings int) (main []*chain.Block, err error) {
	err = e.db.View(func(tx *bbolt.Tx) error {
		all := map[chain.Hash]*chain.Block{}
		err := tx.Bucket(bBlocks).ForEach(func(k, v []byte) error {
			b, err := chain.DecodeBlock(v, maxReadings)
			if err != nil {
				return err
			}
			all[chain.Hash(k)] = b
			return nil
		})
		if err != nil {
			return err
		}
		var hashes []chain.Hash
		if err := tx.Bucket(bHeights).ForEach(func(_, v []byte) error {
			hashes = append(hashes, chain.Hash(v))
			return nil
		}); err != nil {
			return err
		}
		main, err = assemble(all, hashes)
		return err
	})
	return main, err
}

func (e *boltEngine) close() error { return e.db.Close() }

// Pebble: a directory; the buckets become one-byte key prefixes.

type pebbleEngine struct{ db *pebble.DB }

const (
	pBlock   = 'b'
	pHeight  = 'h'
	pReading = 'r'
	pMeta    = 'm'
)

func pkey(prefix byte, k []byte) []byte { return append([]byte{prefix}, k...) }

func openPebbleEngine(path string) (engine, error) {
	db, err := pebble.Open(filepath.Join(path, "chain.pebble"), &pebble.Options{Logger: quietLogger{}})
	if err != nil {
		return nil, err
	}
	return &pebbleEngine{db: db}, nil
}

func (e *pebbleEngine) commit(put, disconnect, connect []*encBlock) error {
	batch := e.db.NewBatch()
	defer batch.Close()
	for _, b := range put {
		if err := batch.Set(pkey(pBlock, b.hash[:]), b.data, nil); err != nil {
			return err
		}
	}
	for _, b := range disconnect {
		if err := batch.Delete(pkey(pHeight, heightKey(b.height)), nil); err != nil {
			return err
		}
		for _, id := range b.ids {
			if err := batch.Delete(pkey(pReading, id[:]), nil); err != nil {
				return err
			}
		}
	}
	var tip []byte
	for _, b := range connect {
		if err := batch.Set(pkey(pHeight, heightKey(b.height)), b.hash[:], nil); err != nil {
			return err
		}
		for _, id := range b.ids {
			if err := batch.Set(pkey(pReading, id[:]), b.hash[:], nil); err != nil {
				return err
			}
		}
		tip = b.hash[:]
	}
	if tip != nil {
		if err := batch.Set([]byte{pMeta, 't'}, tip, nil); err != nil {
			return err
		}
	}
	return batch.Commit(pebble.Sync)
}

func (e *pebbleEngine) get(k []byte) ([]byte, error) {
	v, closer, err := e.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, err
	}
	out := append([]byte(nil), v...)
	return out, closer.Close()
}

func (e *pebbleEngine) byHash(h chain.Hash) ([]byte, error) { return e.get(pkey(pBlock, h[:])) }

func (e *pebbleEngine) atHeight(h uint64) ([]byte, error) {
	hash, err := e.get(pkey(pHeight, heightKey(h)))
	if err != nil {
		return nil, err
	}
	return e.get(pkey(pBlock, hash))
}

func (e *pebbleEngine) scan(prefix byte, fn func(k, v []byte) error) error {
	it, err := e.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefix}, UpperBound: []byte{prefix + 1}})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		if err := fn(it.Key()[1:], it.Value()); err != nil {
			it.Close()
			return err
		}
	}
	return it.Close()
}

func (e *pebbleEngine) load(maxReadings int) ([]*chain.Block, error) {
	all := map[chain.Hash]*chain.Block{}
	err := e.scan(pBlock, func(k, v []byte) error {
		b, err := chain.DecodeBlock(v, maxReadings)
		if err != nil {
			return err
		}
		all[chain.Hash(k)] = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	var hashes []chain.Hash
	if err := e.scan(pHeight, func(_, v []byte) error {
		hashes = append(hashes, chain.Hash(v))
		return nil
	}); err != nil {
		return nil, err
	}
	return assemble(all, hashes)
}

func (e *pebbleEngine) close() error { return e.db.Close() }

// Helpers of the benchmark.

// appendBatched appends blocks to e in transactions of batch blocks.
func appendBatched(e engine, blocks []*encBlock, batch int) error {
	for i := 0; i < len(blocks); i += batch {
		part := blocks[i:min(i+batch, len(blocks))]
		if err := e.commit(part, nil, part); err != nil {
			return err
		}
	}
	return nil
}

// dirSize returns the bytes of the files under dir.
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// copyTree copies the files of directory src into dst and syncs them, so
// that writing them back does not slow down what follows.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o700)
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		if err := out.Sync(); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

// BenchmarkEngine compares bbolt and Pebble on the store's workload at
// benchBlocks blocks. Every sub-benchmark works on its own copy of a store
// built once per engine.
func BenchmarkEngine(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a chain of 100k blocks")
	}
	fx := encodedFixture(b)
	maxReadings := testParams().MaxReadings
	for _, spec := range engines {
		var base string // a closed store of benchBlocks blocks
		baseStore := func(b *testing.B) string {
			if base != "" {
				return base
			}
			dir, err := os.MkdirTemp("", "p2pchain-enginebench-")
			if err != nil {
				b.Fatal(err)
			}
			e, err := spec.open(dir)
			if err != nil {
				b.Fatal(err)
			}
			if err := appendBatched(e, fx.main, 512); err != nil {
				b.Fatal(err)
			}
			if err := e.commit(fx.fork[:forkDepth], nil, nil); err != nil { // side blocks
				b.Fatal(err)
			}
			if err := e.close(); err != nil {
				b.Fatal(err)
			}
			base = dir
			return base
		}
		b.Cleanup(func() {
			if base != "" {
				os.RemoveAll(base)
			}
		})
		// open opens a private copy of the base store.
		open := func(b *testing.B) engine {
			dir := b.TempDir()
			if err := copyTree(baseStore(b), dir); err != nil {
				b.Fatal(err)
			}
			e, err := spec.open(dir)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { e.close() })
			return e
		}

		b.Run(spec.name+"/AppendBatch512", func(b *testing.B) {
			var size int64
			for b.Loop() {
				dir := b.TempDir()
				e, err := spec.open(dir)
				if err != nil {
					b.Fatal(err)
				}
				if err := appendBatched(e, fx.main, 512); err != nil {
					b.Fatal(err)
				}
				if err := e.close(); err != nil {
					b.Fatal(err)
				}
				size = dirSize(dir)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(fx.main)), "ns/block")
			b.ReportMetric(float64(size)/1e6, "MB")
		})
		b.Run(spec.name+"/AppendOne", func(b *testing.B) {
			e := open(b)
			for i := 0; b.Loop(); i++ {
				blk := fx.extra[i%len(fx.extra)] // past benchExtra: rewrites, same work
				if err := e.commit([]*encBlock{blk}, nil, []*encBlock{blk}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(spec.name+"/ByHeight", func(b *testing.B) {
			e := open(b)
			rng := rand.New(rand.NewPCG(1, 2))
			for b.Loop() {
				if _, err := e.atHeight(1 + rng.Uint64N(uint64(len(fx.main)))); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(spec.name+"/ByHash", func(b *testing.B) {
			e := open(b)
			rng := rand.New(rand.NewPCG(1, 2))
			for b.Loop() {
				if _, err := e.byHash(fx.main[rng.IntN(len(fx.main))].hash); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(spec.name+"/Reorg100", func(b *testing.B) {
			e := open(b)
			tip := fx.fork[forkDepth]
			for i := 0; b.Loop(); i++ {
				var err error
				if i%2 == 0 {
					err = e.commit([]*encBlock{tip}, fx.disconnect, fx.fork)
				} else {
					err = e.commit(nil, fx.undo, fx.main[len(fx.main)-forkDepth:])
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(spec.name+"/ReopenLoad", func(b *testing.B) {
			dir := b.TempDir()
			if err := copyTree(baseStore(b), dir); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				e, err := spec.open(dir)
				if err != nil {
					b.Fatal(err)
				}
				main, err := e.load(maxReadings)
				if err != nil {
					b.Fatal(err)
				}
				if len(main) != len(fx.main) {
					b.Fatalf("loaded %d main blocks, want %d", len(main), len(fx.main))
				}
				if err := e.close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// bbolt, second layout: blocks keyed by height and hash, so a growing chain
// appends at the end of the B+tree instead of at random places; a small
// hash -> height index; reading id -> height; no freelist written per
// transaction (rebuilt by a scan at open).

type boltSeqEngine struct{ db *bbolt.DB }

var bHashes = []byte("hashes")

func openBoltSeqEngine(path string) (engine, error) {
	db, err := bbolt.Open(filepath.Join(path, "chain.db"), 0o600, &bbolt.Options{
		Timeout:         time.Second,
		FreelistType:    bbolt.FreelistMapType,
		NoFreelistSync:  true,
		InitialMmapSize: 1 << 30,
	})
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, n := range [][]byte{bBlocks, bHashes, bHeights, bReadings, bMeta} {
			if _, err := tx.CreateBucketIfNotExists(n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &boltSeqEngine{db: db}, nil
}

func blockKey(height uint64, h chain.Hash) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 40), height), h[:]...)
}

func (e *boltSeqEngine) commit(put, disconnect, connect []*encBlock) error {
	return e.db.Update(func(tx *bbolt.Tx) error {
		blocks, hashes := tx.Bucket(bBlocks), tx.Bucket(bHashes)
		heights, readings := tx.Bucket(bHeights), tx.Bucket(bReadings)
		blocks.FillPercent, heights.FillPercent = 0.95, 0.95 // mostly appended in key order
		for _, b := range put {
			if err := blocks.Put(blockKey(b.height, b.hash), b.data); err != nil {
				return err
			}
			if err := hashes.Put(b.hash[:], heightKey(b.height)); err != nil {
				return err
			}
		}
		for _, b := range disconnect {
			if err := heights.Delete(heightKey(b.height)); err != nil {
				return err
			}
			for _, id := range b.ids {
				if err := readings.Delete(id[:]); err != nil {
					return err
				}
			}
		}
		var tip []byte
		for _, b := range connect {
			hk := heightKey(b.height)
			if err := heights.Put(hk, b.hash[:]); err != nil {
				return err
			}
			for _, id := range b.ids {
				if err := readings.Put(id[:], hk); err != nil {
					return err
				}
			}
			tip = b.hash[:]
		}
		if tip != nil {
			return tx.Bucket(bMeta).Put([]byte("tip"), tip)
		}
		return nil
	})
}

func (e *boltSeqEngine) byHash(h chain.Hash) (out []byte, err error) {
	err = e.db.View(func(tx *bbolt.Tx) error {
		hk := tx.Bucket(bHashes).Get(h[:])
		if hk == nil {
			return errNotFound
		}
		v := tx.Bucket(bBlocks).Get(blockKey(binary.BigEndian.Uint64(hk), h))
		if v == nil {
			return errNotFound
		}
		out = append([]byte(nil), v...)
		return nil
	})
	return out, err
}

func (e *boltSeqEngine) atHeight(h uint64) (out []byte, err error) {
	err = e.db.View(func(tx *bbolt.Tx) error {
		hash := tx.Bucket(bHeights).Get(heightKey(h))
		if hash == nil {
			return errNotFound
		}
		v := tx.Bucket(bBlocks).Get(blockKey(h, chain.Hash(hash)))
		if v == nil {
			return errNotFound
		}
		out = append([]byte(nil), v...)
		return nil
	})
	return out, err
}

func (e *boltSeqEngine) load(maxReadings int) (main []*chain.Block, err error) {
	err = e.db.View(func(tx *bbolt.Tx) error {
		all := map[chain.Hash]*chain.Block{}
		err := tx.Bucket(bBlocks).ForEach(func(k, v []byte) error {
			b, err := chain.DecodeBlock(v, maxReadings)
			if err != nil {
				return err
			}
			all[chain.Hash(k[8:])] = b
			return nil
		})
		if err != nil {
			return err
		}
		var hashes []chain.Hash
		if err := tx.Bucket(bHeights).ForEach(func(_, v []byte) error {
			hashes = append(hashes, chain.Hash(v))
			return nil
		}); err != nil {
			return err
		}
		main, err = assemble(all, hashes)
		return err
	})
	return main, err
}

func (e *boltSeqEngine) close() error { return e.db.Close() }

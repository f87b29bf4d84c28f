package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// The subject index: one key per main-chain reading, ordered by subject,
// then block height, then index in the block,
//
//	'j' + subject + 0x00 + height (8, BE) + index (2, BE)
//
// (a subject is printable ASCII, so the 0x00 ends it and subjects sort as
// strings)
// with the reading's BPM (2, BE), time (8, BE) and id (32) as the value.
// A subject's readings are then one key range: a page of them, newest
// first, is a reverse seek (O(log n + page)), and a subject's figures are
// computed from the values without decoding a block. Commits keep it with
// the height and reading indexes (the same connect and disconnect steps);
// a store written before it gets it at Open, once (buildSubjectIndex).
const subjectValueSize = 2 + 8 + chain.HashSize

func subjectPrefix(subject string) []byte {
	k := make([]byte, 0, 2+len(subject)+10)
	k = append(k, prefixSubject)
	k = append(k, subject...)
	return append(k, 0)
}

func keySubjectReading(subject string, height uint64, index int) []byte {
	k := binary.BigEndian.AppendUint64(subjectPrefix(subject), height)
	return binary.BigEndian.AppendUint16(k, uint16(index))
}

func subjectValue(r *chain.Reading, id chain.Hash) []byte {
	v := make([]byte, 0, subjectValueSize)
	v = binary.BigEndian.AppendUint16(v, r.BPM)
	v = binary.BigEndian.AppendUint64(v, uint64(r.Time))
	return append(v, id[:]...)
}

// The subject time index: the same readings ordered by subject, then the
// reading's own time, then its id,
//
//	'k' + subject + 0x00 + time (8, BE, sign bit flipped) + id (32)
//
// with the block height (8, BE) and index (2, BE) as the value. It answers a
// subject's readings in time order (FHIR's _sort=date and -date) with a
// seek and one step per reading, however the readings were spread over
// blocks (a back-filled import puts old readings in new blocks). The order
// is by the reading's fields alone, so a reading moved to another block by
// a reorganisation keeps its place, and pending readings sort alike.

// timeKey is the key of a subject's reading taken at ms with id id.
func timeKey(subject string, ms int64, id chain.Hash) []byte {
	return append(timeBound(subject, ms), id[:]...)
}

// timeBound is the first key of a subject's readings taken at ms or later.
func timeBound(subject string, ms int64) []byte {
	k := make([]byte, 0, 2+len(subject)+8+chain.HashSize)
	k = append(k, prefixByTime)
	k = append(k, subject...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, uint64(ms)^1<<63)
}

// timeEnd is the first key past every reading of subject in the time index.
func timeEnd(subject string) []byte {
	k := append([]byte{prefixByTime}, subject...)
	return append(k, 1)
}

// indexSubjects adds blk's readings to the subject index and the subject
// time index in b (connect) or removes them (disconnect).
func indexSubjects(b *pebble.Batch, blk *chain.Block, ids []chain.Hash, connect bool) {
	for i := range blk.Readings {
		r := &blk.Readings[i]
		k := keySubjectReading(r.Subject, blk.Header.Height, i)
		if connect {
			b.Set(k, subjectValue(r, ids[i]), nil)
		} else {
			b.Delete(k, nil)
		}
	}
	indexTimes(b, blk, ids, connect)
}

// indexTimes adds blk's readings to the subject time index in b (connect)
// or removes them (disconnect).
func indexTimes(b *pebble.Batch, blk *chain.Block, ids []chain.Hash, connect bool) {
	for i := range blk.Readings {
		r := &blk.Readings[i]
		k := timeKey(r.Subject, r.Time, ids[i])
		if connect {
			v := binary.BigEndian.AppendUint64(make([]byte, 0, 10), blk.Header.Height)
			b.Set(k, binary.BigEndian.AppendUint16(v, uint16(i)), nil)
		} else {
			b.Delete(k, nil)
		}
	}
}

// SubjectEntry is a main-chain reading as the subject index holds it.
type SubjectEntry struct {
	Height uint64 // of its block
	Index  int    // in its block
	BPM    uint16
	Time   int64 // Unix ms
	ID     chain.Hash
}

// SubjectPos is a position in a subject's readings, newest first: a page
// from it starts with the readings of block Height at indexes below Index.
type SubjectPos struct {
	Height uint64
	Index  int
}

// SubjectReading is a main-chain reading with where it is.
type SubjectReading struct {
	Reading chain.Reading
	Height  uint64
	Index   int
	Block   chain.Hash
}

// SubjectPage is a page of a subject's main-chain readings, newest first,
// read on one snapshot of the store.
type SubjectPage struct {
	Readings []SubjectReading
	Next     SubjectPos // where the next page starts, when More
	More     bool
	Tip      uint64 // main-chain height of the snapshot
}

// SubjectQuery asks SubjectReadingsIn for a page of a subject's readings.
type SubjectQuery struct {
	From  SubjectPos // the page starts strictly before it, newest first
	Limit int        // readings at most
	// Since and Until bound the readings' times, Unix ms: Since <= time <
	// Until (Until 0: no upper bound). The index holds every reading's
	// time, so readings outside cost no block read.
	Since, Until int64
	// MaxScan bounds the index entries examined (0: no bound); a page that
	// reaches it ends there, with More and Next.
	MaxScan int
}

// SubjectReadingsIn returns a page of subject's main-chain readings, newest
// first, strictly before q.From, within q's time window: a reverse seek in
// the subject index, then one block read per block the page's readings are
// in, all on one snapshot. Its cost is O(log n + entries examined + blocks
// read), whatever the chain's length and however rare the subject; MaxScan
// bounds the entries.
func (s *Store) SubjectReadingsIn(subject string, q SubjectQuery) (page SubjectPage, err error) {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.db == nil {
		return page, ErrClosed
	}
	defer s.recoverPanic(&err)
	snap := s.db.NewSnapshot()
	defer snap.Close()
	_, page.Tip, err = s.readTip(snap)
	if err != nil {
		return page, err
	}
	until := q.Until
	if until == 0 {
		until = math.MaxInt64
	}
	lower := subjectPrefix(subject)
	upper := keySubjectReading(subject, q.From.Height, max(0, min(q.From.Index, math.MaxUint16)))
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return page, s.readErr(err)
	}
	defer it.Close()
	var blk *chain.Block
	examined := 0
	for ok := it.Last(); ok; ok = it.Prev() {
		e, err := s.subjectEntry(lower, it.Key(), it.Value())
		if err != nil {
			return page, err
		}
		if len(page.Readings) == q.Limit || (q.MaxScan > 0 && examined == q.MaxScan) {
			page.More = true
			break
		}
		examined++
		page.Next = SubjectPos{Height: e.Height, Index: e.Index}
		if e.Time < q.Since || e.Time >= until {
			continue
		}
		if blk == nil || blk.Header.Height != e.Height {
			if blk, err = s.blockAt(snap, e.Height); err != nil {
				if errors.Is(err, ErrNotFound) {
					return page, corrupt(s.path, "subject index names height %d, which has no main-chain block", e.Height)
				}
				return page, err
			}
		}
		if e.Index >= len(blk.Readings) || blk.Readings[e.Index].Subject != subject {
			return page, corrupt(s.path, "subject index entry %q at %d.%d does not match its block", subject, e.Height, e.Index)
		}
		page.Readings = append(page.Readings, SubjectReading{Reading: blk.Readings[e.Index], Height: e.Height, Index: e.Index, Block: blk.Hash()})
	}
	return page, s.readErr(it.Error())
}

// TimePos is a place in a subject's readings ordered by time: a reading's
// time and id.
type TimePos struct {
	Time int64
	ID   chain.Hash
}

// TimeQuery asks ReadingsByTime for a page of a subject's readings in time
// order.
type TimeQuery struct {
	Newest bool     // newest first; oldest first when false
	After  *TimePos // the page starts strictly after it, in that order (nil: at the start)
	// Since and Until bound the readings' times, Unix ms: Since <= time <
	// Until (Until 0: no upper bound).
	Since, Until int64
	Limit        int // readings at most
}

// TimePage is a page of a subject's main-chain readings in time order, read
// on one snapshot of the store.
type TimePage struct {
	Readings []SubjectReading
	More     bool   // readings follow the last one
	Tip      uint64 // main-chain height of the snapshot
	// What the page cost: index entries read (its readings and at most
	// one more, for More) and blocks read (at most one a reading).
	Examined, Blocks int
}

// ReadingsByTime returns a page of subject's main-chain readings in the
// order of their times, ties by id (newest first: both descending), within
// q's window and after q.After: a seek in the subject time index, then one
// step and at most one block read per reading, on one snapshot. Its cost is
// O(log n + q.Limit) whatever the chain's length and the subject's number
// of readings.
func (s *Store) ReadingsByTime(subject string, q TimeQuery) (page TimePage, err error) {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.db == nil {
		return page, ErrClosed
	}
	defer s.recoverPanic(&err)
	if q.Limit <= 0 {
		return page, nil
	}
	snap := s.db.NewSnapshot()
	defer snap.Close()
	_, page.Tip, err = s.readTip(snap)
	if err != nil {
		return page, err
	}
	lower, upper := timeBound(subject, q.Since), timeEnd(subject)
	if q.Until != 0 && q.Until != math.MaxInt64 {
		upper = timeBound(subject, q.Until)
	}
	if q.After != nil {
		k := timeKey(subject, q.After.Time, q.After.ID)
		switch {
		case q.Newest && bytes.Compare(k, upper) < 0:
			upper = k
		case !q.Newest && bytes.Compare(k, lower) >= 0:
			lower = append(k, 0) // the first key after it
		}
	}
	if bytes.Compare(lower, upper) >= 0 {
		return page, nil
	}
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return page, s.readErr(err)
	}
	defer it.Close()
	first, step := it.First, it.Next
	if q.Newest {
		first, step = it.Last, it.Prev
	}
	prefix := len(timeEnd(subject))
	// One block kept, the last read: readings next in time are often in
	// one block, and a page never holds more than one block in memory.
	var blk *chain.Block
	for ok := first(); ok; ok = step() {
		page.Examined++
		if len(page.Readings) == q.Limit {
			page.More = true
			break
		}
		k, v := it.Key(), it.Value()
		if len(k) != prefix+8+chain.HashSize || len(v) != 10 {
			return page, corrupt(s.path, "subject time index entry of %d+%d bytes", len(k), len(v))
		}
		ms := int64(binary.BigEndian.Uint64(k[prefix:]) ^ 1<<63)
		height, index := binary.BigEndian.Uint64(v), int(binary.BigEndian.Uint16(v[8:]))
		if blk == nil || blk.Header.Height != height {
			page.Blocks++
			if blk, err = s.blockAt(snap, height); err != nil {
				if errors.Is(err, ErrNotFound) {
					return page, corrupt(s.path, "subject time index names height %d, which has no main-chain block", height)
				}
				return page, err
			}
		}
		if index >= len(blk.Readings) || blk.Readings[index].Subject != subject || blk.Readings[index].Time != ms {
			return page, corrupt(s.path, "subject time index entry %q at %d.%d does not match its block", subject, height, index)
		}
		page.Readings = append(page.Readings, SubjectReading{Reading: blk.Readings[index], Height: height, Index: index, Block: blk.Hash()})
	}
	return page, s.readErr(it.Error())
}

// subjectEntry decodes an index entry under prefix (the subject's).
func (s *Store) subjectEntry(prefix, k, v []byte) (SubjectEntry, error) {
	rest := k[len(prefix):]
	if len(rest) != 10 || len(v) != subjectValueSize {
		return SubjectEntry{}, corrupt(s.path, "subject index entry of %d+%d bytes", len(k), len(v))
	}
	return SubjectEntry{
		Height: binary.BigEndian.Uint64(rest),
		Index:  int(binary.BigEndian.Uint16(rest[8:])),
		BPM:    binary.BigEndian.Uint16(v),
		Time:   int64(binary.BigEndian.Uint64(v[2:])),
		ID:     chain.Hash(v[10:]),
	}, nil
}

// Mark is a main-chain block: its height and hash.
type Mark struct {
	Height uint64
	Hash   chain.Hash
}

// ErrMoved says that the main chain no longer holds the block a scan was
// to continue from: a reorganisation replaced it.
var ErrMoved = errors.New("the main chain moved: the block to continue from left it")

// ScanSubject calls fn for every main-chain reading of subject in blocks
// above since (all of them when since is the zero Mark), oldest block
// first, on one snapshot, and returns that snapshot's tip: a caller that
// keeps figures of a subject passes the tip it last saw and adds only what
// came after. When the main chain no longer holds since's block it returns
// ErrMoved having called fn for nothing. It stops at fn's first error.
func (s *Store) ScanSubject(subject string, since Mark, fn func(SubjectEntry) error) (tip Mark, err error) {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.db == nil {
		return tip, ErrClosed
	}
	defer s.recoverPanic(&err)
	snap := s.db.NewSnapshot()
	defer snap.Close()
	if tip.Hash, tip.Height, err = s.readTip(snap); err != nil {
		return tip, err
	}
	lower := subjectPrefix(subject)
	if !since.Hash.IsZero() {
		h, err := s.get(snap, keyHeight(since.Height))
		if err != nil && !errors.Is(err, ErrNotFound) {
			return tip, err
		}
		if !bytes.Equal(h, since.Hash[:]) {
			return tip, ErrMoved
		}
		lower = keySubjectReading(subject, since.Height+1, 0)
	}
	prefix := subjectPrefix(subject)
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: subjectEnd(subject)})
	if err != nil {
		return tip, s.readErr(err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		e, err := s.subjectEntry(prefix, it.Key(), it.Value())
		if err != nil {
			return tip, err
		}
		if err := fn(e); err != nil {
			return tip, err
		}
	}
	return tip, s.readErr(it.Error())
}

// HasSubject reports whether subject has a reading on the main chain.
func (s *Store) HasSubject(subject string) (ok bool, err error) {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.db == nil {
		return false, ErrClosed
	}
	defer s.recoverPanic(&err)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: subjectPrefix(subject), UpperBound: subjectEnd(subject)})
	if err != nil {
		return false, s.readErr(err)
	}
	ok = it.First()
	return ok, s.readErr(it.Close())
}

// subjectEnd is the first key past every reading of subject.
func subjectEnd(subject string) []byte {
	k := subjectPrefix(subject)
	k[len(k)-1] = 1
	return k
}

// Subjects calls fn for each subject with readings on the main chain, in
// byte order, starting after the subject after ("" for the first); it
// stops when fn returns false or an error. Each subject costs one seek,
// however many readings it has.
func (s *Store) Subjects(after string, fn func(subject string) (bool, error)) (err error) {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.db == nil {
		return ErrClosed
	}
	defer s.recoverPanic(&err)
	lower, upper := prefixBounds(prefixSubject)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return s.readErr(err)
	}
	defer it.Close()
	ok := it.First()
	if after != "" {
		ok = it.SeekGE(subjectEnd(after))
	}
	for ok {
		k := it.Key()
		end := bytes.IndexByte(k, 0)
		if end < 2 {
			return corrupt(s.path, "subject index key of %d bytes", len(k))
		}
		subject := string(k[1:end])
		more, err := fn(subject)
		if err != nil || !more {
			return err
		}
		ok = it.SeekGE(subjectEnd(subject))
	}
	return s.readErr(it.Error())
}

// buildSubjectIndex gives a store written before the subject index, or
// before the subject time index, what it lacks, once: it walks the main
// chain and writes every reading's entries, in batches of
// subjectBuildBytes, then the markers, logging progress. A crash before
// the markers makes the next Open start over (the entries are the same).
func (s *Store) buildSubjectIndex() error {
	bySubject, err := s.hasMarker(keySubjectIndex)
	if err != nil {
		return err
	}
	byTime, err := s.hasMarker(keyTimeIndex)
	switch {
	case err != nil:
		return err
	case !bySubject: // both: indexSubjects writes the time index too
		return s.buildIndex("by subject", indexSubjects, keySubjectIndex, keyTimeIndex)
	case !byTime:
		return s.buildIndex("by subject and time", indexTimes, keyTimeIndex)
	}
	return nil
}

// hasMarker reports whether the store holds meta record key.
func (s *Store) hasMarker(key []byte) (bool, error) {
	_, err := s.get(s.db, key)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// buildIndex walks the main chain calling index for each block (connect),
// then writes markers.
func (s *Store) buildIndex(what string, index func(*pebble.Batch, *chain.Block, []chain.Hash, bool), markers ...[]byte) error {
	target := s.Height()
	start, last := time.Now(), time.Now()
	s.log.Info("chain store: indexing readings "+what+", once (a store written by an older version)", "blocks", target)
	b := s.db.NewBatch()
	defer func() { b.Close() }()
	flush := func() error {
		if b.Empty() {
			return nil
		}
		// As every write: not into the reserve of a nearly full disk.
		if err := s.CheckSpace(); err != nil {
			return err
		}
		s.wmu.Lock()
		err := s.commitCounted(b)
		s.wmu.Unlock()
		if err != nil {
			return err
		}
		b.Close()
		b = s.db.NewBatch()
		return nil
	}
	n := 0
	err := s.Walk(1, func(blk *chain.Block) error {
		index(b, blk, blk.ReadingIDs(), true)
		n++
		if b.Len() >= subjectBuildBytes {
			if err := flush(); err != nil {
				return err
			}
		}
		if time.Since(last) >= 2*time.Second {
			last = time.Now()
			s.log.Info("chain store: indexing readings "+what, "progress", progress(uint64(n), target, time.Since(start)))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("chain store: indexing readings %s: %w", what, err)
	}
	for _, k := range markers {
		b.Set(k, nil, nil)
	}
	if err := flush(); err != nil {
		return fmt.Errorf("chain store: indexing readings %s: %w", what, err)
	}
	s.log.Info("chain store: readings indexed "+what, "blocks", n, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// subjectBuildBytes is the size of the batches buildIndex writes:
// bounded in bytes, whatever the blocks hold (4,096 full blocks of long
// subjects would be gigabytes).
const subjectBuildBytes = 32 << 20

// progress says done of target with the rate and the time left.
func progress(done, target uint64, took time.Duration) string {
	rate := float64(done) / max(took.Seconds(), 1e-3)
	left := time.Duration(float64(target-min(done, target)) / max(rate, 1e-9) * float64(time.Second))
	return fmt.Sprintf("%d/%d blocks, %.0f/s, %s left", done, target, rate, left.Round(time.Second))
}

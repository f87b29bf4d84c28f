package store

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// checkSubjects checks that the subject index holds exactly the main
// chain's readings: listing, scans and pages of every subject.
func (n *node) checkSubjects() {
	t := n.t
	t.Helper()
	s := n.store
	want := map[string][]SubjectEntry{}
	for _, b := range n.mainChain() {
		ids := b.ReadingIDs()
		for i, r := range b.Readings {
			want[r.Subject] = append(want[r.Subject], SubjectEntry{Height: b.Header.Height, Index: i, BPM: r.BPM, Time: r.Time, ID: ids[i]})
		}
	}
	subjects := make([]string, 0, len(want))
	for k := range want {
		subjects = append(subjects, k)
	}
	slices.Sort(subjects)
	var listed []string
	if err := s.Subjects("", func(sub string) (bool, error) { listed = append(listed, sub); return true, nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(listed, subjects) && !(len(listed) == 0 && len(subjects) == 0) {
		t.Fatalf("Subjects listed %d subjects %q, want %d", len(listed), listed, len(subjects))
	}
	if len(subjects) > 1 { // paging by after
		var rest []string
		err := s.Subjects(subjects[0], func(sub string) (bool, error) { rest = append(rest, sub); return len(rest) < 2, nil })
		if err != nil {
			t.Fatal(err)
		}
		if w := subjects[1:min(3, len(subjects))]; !slices.Equal(rest, w) {
			t.Fatalf("Subjects after %q gave %q, want %q", subjects[0], rest, w)
		}
	}
	for i, sub := range subjects {
		var got []SubjectEntry
		tip, err := s.ScanSubject(sub, Mark{}, func(e SubjectEntry) error { got = append(got, e); return nil })
		if err != nil {
			t.Fatal(err)
		}
		if tip.Hash != s.Tip() || tip.Height != s.Height() {
			t.Fatalf("ScanSubject's tip %d, want %d", tip.Height, s.Height())
		}
		if ok, err := s.HasSubject(sub); !ok || err != nil {
			t.Fatalf("HasSubject(%q) = %v, %v", sub, ok, err)
		}
		if !reflect.DeepEqual(got, want[sub]) {
			t.Fatalf("ScanSubject(%q): %d entries, want %d", sub, len(got), len(want[sub]))
		}
		if i > 2 {
			continue // pages of a few subjects are enough
		}
		// Pages of a third of them, newest first, until the end.
		size := max(1, len(want[sub])/3)
		var paged []SubjectEntry
		pos := SubjectPos{Height: s.Height() + 1}
		for {
			p, err := s.SubjectReadingsIn(sub, SubjectQuery{From: pos, Limit: size})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range p.Readings {
				if r.Reading.Subject != sub {
					t.Fatalf("page of %q holds a reading of %q", sub, r.Reading.Subject)
				}
				paged = append(paged, n.mainEntry(r))
			}
			if !p.More {
				break
			}
			if len(p.Readings) != size {
				t.Fatalf("a page with more after it holds %d readings", len(p.Readings))
			}
			pos = p.Next
		}
		slices.Reverse(paged)
		if !reflect.DeepEqual(paged, want[sub]) {
			t.Fatalf("pages of %q: %d readings, want %d in order", sub, len(paged), len(want[sub]))
		}
		n.checkByTime(sub, want[sub], size)
	}
}

// checkByTime checks the subject time index of sub against its readings
// want: pages of size, oldest first and newest first, give them all once,
// by time and id, each page costing its readings.
func (n *node) checkByTime(sub string, want []SubjectEntry, size int) {
	t := n.t
	t.Helper()
	byTime := slices.Clone(want)
	slices.SortFunc(byTime, compareByTime)
	for _, newest := range []bool{false, true} {
		var got []SubjectEntry
		var after *TimePos
		for pages := 0; ; pages++ {
			if pages > len(want)+1 {
				t.Fatalf("pages of %q by time do not end", sub)
			}
			p, err := n.store.ReadingsByTime(sub, TimeQuery{Newest: newest, After: after, Limit: size})
			if err != nil {
				t.Fatal(err)
			}
			if p.Examined > size+1 || p.Blocks > size {
				t.Fatalf("a page of %d readings by time examined %d entries and read %d blocks", size, p.Examined, p.Blocks)
			}
			for _, r := range p.Readings {
				got = append(got, n.mainEntry(r))
			}
			if !p.More {
				break
			}
			last := got[len(got)-1]
			after = &TimePos{Time: last.Time, ID: last.ID}
		}
		if newest {
			slices.Reverse(got)
		}
		if !reflect.DeepEqual(got, byTime) {
			t.Fatalf("pages of %q by time (newest first %v): %d readings, want %d in order", sub, newest, len(got), len(byTime))
		}
	}
}

// mainEntry checks that a page's reading r is the main chain's at its
// place and returns its index entry.
func (n *node) mainEntry(r SubjectReading) SubjectEntry {
	n.t.Helper()
	b, _ := n.chain.BlockAt(r.Height)
	if b.Hash() != r.Block || !reflect.DeepEqual(b.Readings[r.Index], r.Reading) {
		n.t.Fatalf("page entry %d.%d does not match the main chain", r.Height, r.Index)
	}
	return SubjectEntry{Height: r.Height, Index: r.Index, BPM: r.Reading.BPM, Time: r.Reading.Time, ID: r.Reading.ID()}
}

// compareByTime orders entries by time, then id.
func compareByTime(a, b SubjectEntry) int {
	if a.Time != b.Time {
		return cmp.Compare(a.Time, b.Time)
	}
	return bytes.Compare(a.ID[:], b.ID[:])
}

// A store written before the subject index gets it at Open, whole.
func TestSubjectIndexBuiltAtOpen(t *testing.T) {
	f := smallFixture(t)
	s := mustOpen(t, t.TempDir())
	n := newNode(t, s)
	for _, b := range f.main[:40] {
		n.add(b)
	}
	// Make it an older store: no index entries, no marker.
	b := s.db.NewBatch()
	for _, prefix := range []byte{prefixSubject, prefixByTime} {
		lower, upper := prefixBounds(prefix)
		if err := b.DeleteRange(lower, upper, nil); err != nil {
			t.Fatal(err)
		}
	}
	b.Delete(keySubjectIndex, nil)
	b.Delete(keyTimeIndex, nil)
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	b.Close()
	var none []string
	if err := s.Subjects("", func(sub string) (bool, error) { none = append(none, sub); return true, nil }); err != nil || len(none) > 0 {
		t.Fatalf("after deleting the index: %q, %v", none, err)
	}
	reopen(t, n)
	n.checkSubjects()
	for _, k := range [][]byte{keySubjectIndex, keyTimeIndex} {
		if _, err := n.store.get(n.store.db, k); err != nil {
			t.Fatalf("marker %s after the build: %v", k, err)
		}
	}
}

// A store written with the subject index but before the subject time
// index gets the time index at Open, whole.
func TestTimeIndexBuiltAtOpen(t *testing.T) {
	f := smallFixture(t)
	s := mustOpen(t, t.TempDir())
	n := newNode(t, s)
	for _, b := range f.main[:40] {
		n.add(b)
	}
	b := s.db.NewBatch()
	lower, upper := prefixBounds(prefixByTime)
	if err := b.DeleteRange(lower, upper, nil); err != nil {
		t.Fatal(err)
	}
	b.Delete(keyTimeIndex, nil)
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	b.Close()
	reopen(t, n)
	n.checkSubjects()
	if _, err := n.store.get(n.store.db, keyTimeIndex); err != nil {
		t.Fatalf("marker after the build: %v", err)
	}
}

// TestReadingsByTime: a subject's readings in the order of their own
// times, whatever blocks they are in (back-filled old readings in the
// newest blocks), equal times by id, within a window, each page costing
// its own readings however many the subject has.
func TestReadingsByTime(t *testing.T) {
	p := testParams()
	s := mustOpen(t, t.TempDir())
	defer s.Close()
	n := newNode(t, s)
	at := func(i int) int64 { return p.GenesisTime + 3_600_000 + int64(i)*1000 }
	// 30 blocks of 20 readings of "pat": the first blocks hold the
	// newest times, the last ones the oldest (a back-filled import), and
	// every time is taken by three readings (three keys).
	const blocks, per = 30, 20
	var all []SubjectEntry
	for h := 1; h <= blocks; h++ {
		var rs []chain.Reading
		for j := range per {
			k := (blocks-h)*per + j // older as h grows
			r, err := chain.NewReading(testKey(k%3), "pat", 60+k%100, time.UnixMilli(at(k/3)))
			if err != nil {
				t.Fatal(err)
			}
			rs = append(rs, r)
			all = append(all, SubjectEntry{Height: uint64(h), Index: j, BPM: r.BPM, Time: r.Time, ID: r.ID()})
		}
		b := n.chain.NewBlock(rs, time.UnixMilli(at(blocks*per)+int64(h)))
		if err := chain.Solve(context.Background(), &b.Header); err != nil {
			t.Fatal(err)
		}
		n.add(b)
	}
	n.checkSubjects()
	n.checkByTime("pat", all, 7) // pages that end inside a run of equal times

	// The newest reading: the first of the first block, not the last
	// block's.
	page, err := s.ReadingsByTime("pat", TimeQuery{Newest: true, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(all, compareByTime)
	if len(page.Readings) != 1 || page.Readings[0].Reading.ID() != all[len(all)-1].ID || page.Readings[0].Height != 1 || !page.More {
		t.Fatalf("newest: %+v, want %x in block 1", page.Readings, all[len(all)-1].ID)
	}
	if page.Examined != 2 || page.Blocks != 1 {
		t.Fatalf("the newest reading of %d cost %d entries and %d blocks, want 2 and 1", len(all), page.Examined, page.Blocks)
	}
	// A window [at(10), at(20)): 30 readings, oldest first, from a cursor
	// inside it.
	var want []SubjectEntry
	for _, e := range all {
		if e.Time >= at(10) && e.Time < at(20) {
			want = append(want, e)
		}
	}
	after := &TimePos{Time: want[4].Time, ID: want[4].ID}
	page, err = s.ReadingsByTime("pat", TimeQuery{After: after, Since: at(10), Until: at(20), Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Readings) != len(want)-5 || page.More || page.Readings[0].Reading.ID() != want[5].ID ||
		page.Readings[len(page.Readings)-1].Reading.ID() != want[len(want)-1].ID {
		t.Fatalf("window after a cursor: %d readings, more %v; want %d", len(page.Readings), page.More, len(want)-5)
	}
	// Newest first, before the same cursor: the window's first five.
	page, err = s.ReadingsByTime("pat", TimeQuery{Newest: true, After: after, Since: at(10), Until: at(20), Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Readings) != 4 || page.Readings[0].Reading.ID() != want[3].ID {
		t.Fatalf("window newest first before a cursor: %d readings, want 4", len(page.Readings))
	}
	// Another subject, and an empty window: nothing.
	for _, q := range []TimeQuery{{Since: at(20), Until: at(10), Limit: 5}, {Since: at(blocks * per), Limit: 5}} {
		if page, err := s.ReadingsByTime("pat", q); err != nil || len(page.Readings) != 0 || page.More {
			t.Fatalf("%+v: %+v, %v", q, page, err)
		}
	}
	if page, err := s.ReadingsByTime("pa", TimeQuery{Limit: 5}); err != nil || len(page.Readings) != 0 {
		t.Fatalf("subject pa: %+v, %v", page, err)
	}
}

// A subject that is a prefix of another is its own key range.
func TestSubjectPrefixes(t *testing.T) {
	p := testParams()
	s := mustOpen(t, t.TempDir())
	defer s.Close()
	n := newNode(t, s)
	key := testKey(1)
	for i, sub := range []string{"al", "alice", "al", "alicia", "b"} {
		at := p.GenesisTime + int64(i+1)*1000
		r, err := chain.NewReading(key, sub, 60+i, time.UnixMilli(at))
		if err != nil {
			t.Fatal(err)
		}
		b := n.chain.NewBlock([]chain.Reading{r}, time.UnixMilli(at+1))
		if err := chain.Solve(context.Background(), &b.Header); err != nil {
			t.Fatal(err)
		}
		n.add(b)
	}
	n.checkSubjects()
	var got []SubjectEntry
	if _, err := s.ScanSubject("al", Mark{}, func(e SubjectEntry) error { got = append(got, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Height != 1 || got[1].Height != 3 {
		t.Fatalf("ScanSubject(al) = %+v, want heights 1 and 3", got)
	}
	// Continuing from block 2 gives block 3's only.
	h2, _ := s.MainHash(2)
	got = nil
	if _, err := s.ScanSubject("al", Mark{Height: 2, Hash: h2}, func(e SubjectEntry) error { got = append(got, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Height != 3 {
		t.Fatalf("ScanSubject(al) after block 2 = %+v, want height 3", got)
	}
	// From a block the main chain does not hold: ErrMoved.
	if _, err := s.ScanSubject("al", Mark{Height: 2, Hash: chain.Hash{1}}, func(SubjectEntry) error { return nil }); !errors.Is(err, ErrMoved) {
		t.Fatalf("ScanSubject from a block off the main chain: %v, want ErrMoved", err)
	}
	// A time window: the index's times decide, MaxScan bounds the entries.
	t1, t3 := p.GenesisTime+1000, p.GenesisTime+3000
	pg, err := s.SubjectReadingsIn("al", SubjectQuery{From: SubjectPos{Height: 100}, Limit: 10, Since: t3})
	if err != nil || len(pg.Readings) != 1 || pg.Readings[0].Height != 3 || pg.More {
		t.Fatalf("since block 3's time: %+v, %v", pg, err)
	}
	pg, err = s.SubjectReadingsIn("al", SubjectQuery{From: SubjectPos{Height: 100}, Limit: 10, Until: t3, MaxScan: 1})
	if err != nil || len(pg.Readings) != 0 || !pg.More || pg.Next != (SubjectPos{Height: 3}) {
		t.Fatalf("until block 3's time, one entry examined: %+v, %v", pg, err)
	}
	pg, err = s.SubjectReadingsIn("al", SubjectQuery{From: pg.Next, Limit: 10, Since: t1, Until: t3, MaxScan: 1})
	if err != nil || len(pg.Readings) != 1 || pg.Readings[0].Height != 1 || pg.More {
		t.Fatalf("the page after: %+v, %v", pg, err)
	}
	if ok, err := s.HasSubject("alic"); ok || err != nil {
		t.Fatalf("HasSubject(alic) = %v, %v", ok, err)
	}
}

// BenchmarkCountSubjects measures one walk over every subject of the
// index (Subjects, a seek each), what a node's subject total costs when it
// recounts: 100,000 subjects, each with one reading, in 98 full blocks.
//
//	go test ./internal/store -run '^$' -bench CountSubjects -benchtime 5x
func BenchmarkCountSubjects(b *testing.B) {
	const subjects = 100_000
	n := newNode(b, mustOpen(b, b.TempDir()))
	defer n.store.Close()
	params := testParams()
	at := time.UnixMilli(params.GenesisTime)
	for done := 0; done < subjects; {
		rs := make([]chain.Reading, 0, params.MaxReadings)
		for ; len(rs) < params.MaxReadings && done < subjects; done++ {
			r, err := chain.NewReading(testKey(1), fmt.Sprintf("subject-%06d", done), 60, at)
			if err != nil {
				b.Fatal(err)
			}
			rs = append(rs, r)
		}
		at = at.Add(time.Second)
		blk := n.chain.NewBlock(rs, at)
		if err := chain.Solve(context.Background(), &blk.Header); err != nil {
			b.Fatal(err)
		}
		n.add(blk)
	}
	b.ResetTimer()
	for b.Loop() {
		count := 0
		if err := n.store.Subjects("", func(string) (bool, error) { count++; return true, nil }); err != nil {
			b.Fatal(err)
		}
		if count != subjects {
			b.Fatalf("%d subjects, want %d", count, subjects)
		}
	}
}

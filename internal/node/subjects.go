package node

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/p2pchain/p2pchain/internal/store"
)

// Subjects: who the ledger holds readings of, and each one's figures. A
// durable node answers from its store's subject index (store.ScanSubject)
// and keeps each subject's figures with the tip they were computed at, so
// that the next request adds only the readings of newer blocks; a
// reorganisation below that tip makes it count the subject again.

// SubjectSummary is what the ledger holds of one subject: its readings in
// main-chain blocks (Count, Min, Max, Sum, Latest) and its pending ones.
type SubjectSummary struct {
	Subject string
	Count   int
	Min     uint16
	Max     uint16
	Sum     uint64
	// Latest is the main-chain reading with the newest time (ties: the
	// later in the chain); meaningful when Count > 0.
	Latest store.SubjectEntry
	// Pending counts the subject's readings not yet in a block;
	// LastSeen is the newest time of all its readings, pending included
	// (Unix ms).
	Pending  int
	LastSeen int64
}

// Mean is the mean BPM of the main-chain readings (0 with none).
func (s SubjectSummary) Mean() float64 {
	if s.Count == 0 {
		return 0
	}
	return float64(s.Sum) / float64(s.Count)
}

func (s *SubjectSummary) add(e store.SubjectEntry) {
	if s.Count == 0 || e.BPM < s.Min {
		s.Min = e.BPM
	}
	if s.Count == 0 || e.BPM > s.Max {
		s.Max = e.BPM
	}
	if s.Count == 0 || e.Time >= s.Latest.Time {
		s.Latest = e
	}
	s.Count++
	s.Sum += uint64(e.BPM)
}

// SubjectList is a page of subjects, in byte order.
type SubjectList struct {
	Subjects []SubjectSummary
	More     bool // subjects follow the last one
	// Total is how many subjects the ledger holds, up to MaxSubjectsCounted
	// (those with pending readings only are counted while the pending set
	// holds at most maxPendingCounted subjects).
	Total int
}

// Bounds of Subjects.
const (
	// MaxSubjectsCounted bounds the count of SubjectList.Total: a count
	// costs one seek per subject.
	MaxSubjectsCounted = 100_000
	// maxCachedSubjects bounds the figures kept between requests.
	maxCachedSubjects = 10_000
	// maxPendingCounted bounds the subjects of the pending set that Total
	// looks up in the store (one seek each): past it, Total counts the
	// subjects with readings in blocks only.
	maxPendingCounted = 1_000
)

// ErrNoIndex says that a node without a store has no subject index.
var ErrNoIndex = errors.New("subjects are listed by durable nodes only (this node keeps no store)")

// subjectCache keeps subjects' figures with the tip they count up to.
type subjectCache struct {
	mu    sync.Mutex
	items map[string]cachedSubject
	total struct {
		at   store.Mark
		n    int
		when time.Time     // when it was counted
		took time.Duration // and how long that took
	}
}

// recountGap is how many times its own cost a full count of the store's
// subjects waits before the next: with many subjects (100,000 take 53 ms
// of seeks on the dev VM, store.BenchmarkCountSubjects, more when not in
// cache) a busy network's every new block would otherwise make each page
// of subjects recount them, and the total would cost more than the page.
// Small ledgers recount at every new tip.
const recountGap = 20

type cachedSubject struct {
	at  store.Mark
	sum SubjectSummary // main-chain figures only
}

// Subjects returns up to limit subjects after the subject after ("" for
// the first), in byte order, with their figures. Subjects with pending
// readings only are listed too. Its cost is one seek per subject listed
// plus, per subject, the readings of blocks added since its figures were
// last computed (all of them the first time), one entry per subject with
// pending readings, and each listed subject's pending readings.
func (n *Node) Subjects(after string, limit int) (SubjectList, error) {
	st := n.store
	if st == nil {
		return SubjectList{}, ErrNoIndex
	}
	pending := n.pendingSubjects()
	var names []string
	err := st.Subjects(after, func(s string) (bool, error) {
		names = append(names, s)
		return len(names) <= limit, nil
	})
	if err != nil {
		return SubjectList{}, err
	}
	// Subjects with pending readings only, up to the last name the page
	// can show. The store's listing holds every stored subject of that
	// range, so one it lacks has pending readings only; inStore keeps what
	// was found, for the count below.
	inStore, stored := map[string]bool{}, len(names)
	for s := range pending {
		if s <= after || (len(names) > limit && s > names[limit]) {
			continue
		}
		_, found := slices.BinarySearch(names[:stored], s)
		inStore[s] = found
		if !found {
			names = append(names, s)
		}
	}
	slices.Sort(names)
	var out SubjectList
	if len(names) > limit {
		names, out.More = names[:limit], true
	}
	for _, s := range names {
		sum, err := n.subjectFigures(st, s)
		if err != nil {
			return SubjectList{}, err
		}
		if pending[s] > 0 {
			p := n.pendingOfSubject(s)
			sum.Pending = p.count
			sum.LastSeen = max(sum.LastSeen, p.newest)
		}
		out.Subjects = append(out.Subjects, sum)
	}
	total, err := n.countSubjects(st, pending, inStore)
	if err != nil {
		return SubjectList{}, err
	}
	if after == "" && !out.More {
		total = max(total, len(out.Subjects)) // a total kept from before this page's new subjects
	}
	out.Total = total
	return out, nil
}

// Subject returns one subject's figures; ok is false when the ledger holds
// no reading of it.
func (n *Node) Subject(subject string) (SubjectSummary, bool, error) {
	st := n.store
	if st == nil {
		return SubjectSummary{}, false, ErrNoIndex
	}
	p := n.pendingOfSubject(subject)
	sum, err := n.subjectFigures(st, subject)
	if err != nil {
		return SubjectSummary{}, false, err
	}
	sum.Pending = p.count
	sum.LastSeen = max(sum.LastSeen, p.newest)
	return sum, sum.Count > 0 || sum.Pending > 0, nil
}

type pendingFigures struct {
	count  int
	newest int64
}

// pendingSubjects returns how many readings of each subject are pending:
// one entry per subject, not per reading, under the node's mutex.
func (n *Node) pendingSubjects() map[string]int {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := map[string]int{}
	n.pool.Subjects(func(subject string, count int) { out[subject] = count })
	return out
}

// pendingOfSubject returns one subject's pending figures: kept by the
// pending set, not counted here (a subject may hold the whole pending set,
// and a pass over it under n.mu at every request would hold up the node).
func (n *Node) pendingOfSubject(subject string) pendingFigures {
	n.mu.Lock()
	defer n.mu.Unlock()
	var p pendingFigures
	p.count, p.newest = n.pool.SubjectFigures(subject)
	return p
}

// subjectFigures returns a subject's main-chain figures, adding to those
// it kept only the readings of blocks above the tip they were computed at.
func (n *Node) subjectFigures(st Store, subject string) (SubjectSummary, error) {
	c := &n.subjectCache
	c.mu.Lock()
	cached, ok := c.items[subject]
	c.mu.Unlock()
	sum := cached.sum
	if !ok {
		sum = SubjectSummary{Subject: subject}
	}
	tip, err := st.ScanSubject(subject, cached.at, func(e store.SubjectEntry) error { sum.add(e); return nil })
	if errors.Is(err, store.ErrMoved) {
		sum = SubjectSummary{Subject: subject}
		tip, err = st.ScanSubject(subject, store.Mark{}, func(e store.SubjectEntry) error { sum.add(e); return nil })
	}
	if err != nil {
		return SubjectSummary{}, fmt.Errorf("subject %q: %w", subject, err)
	}
	if sum.Count == 0 {
		// Nothing to keep: a subject without readings costs one seek. A
		// reorganisation may have taken all of a kept subject's readings:
		// its entry goes, or every later call would scan twice.
		if ok {
			c.mu.Lock()
			delete(c.items, subject)
			c.mu.Unlock()
		}
		return sum, nil
	}
	sum.LastSeen = sum.Latest.Time
	c.mu.Lock()
	if c.items == nil {
		c.items = map[string]cachedSubject{}
	}
	if _, ok := c.items[subject]; !ok && len(c.items) >= maxCachedSubjects {
		for k := range c.items { // make room: one entry, any (map order)
			delete(c.items, k)
			break
		}
	}
	c.items[subject] = cachedSubject{at: tip, sum: sum}
	c.mu.Unlock()
	return sum, nil
}

// countSubjects counts the ledger's subjects (up to MaxSubjectsCounted),
// pending-only ones included (inStore: what Subjects already looked up of
// the pending subjects); the count of the store's is kept per chain tip
// (the store may be a commit behind the chain for a moment: the count then
// lags one block), and a count that took T is not redone before
// recountGap·T has passed.
func (n *Node) countSubjects(st Store, pending map[string]int, inStore map[string]bool) (int, error) {
	c := &n.subjectCache
	n.mu.Lock()
	tip := store.Mark{Height: n.chain.Height(), Hash: n.chain.TipHash()}
	n.mu.Unlock()
	now := time.Now()
	c.mu.Lock()
	stored, known := c.total.n, c.total.at == tip
	if !known && !c.total.when.IsZero() && now.Sub(c.total.when) < recountGap*c.total.took {
		known = true // counted too recently for the cost: the total lags a few blocks
	}
	c.mu.Unlock()
	if !known {
		stored = 0
		err := st.Subjects("", func(string) (bool, error) {
			stored++
			return stored < MaxSubjectsCounted, nil
		})
		if err != nil {
			return 0, err
		}
		c.mu.Lock()
		c.total.at, c.total.n, c.total.when, c.total.took = tip, stored, now, time.Since(now)
		c.mu.Unlock()
	}
	total := stored
	if len(pending) > maxPendingCounted {
		return total, nil // too many to look each up: Total counts the store's
	}
	for s := range pending {
		if total >= MaxSubjectsCounted {
			break
		}
		has, looked := inStore[s]
		if !looked {
			var err error
			if has, err = st.HasSubject(s); err != nil {
				return 0, err
			}
		}
		if !has {
			total++
		}
	}
	return min(total, MaxSubjectsCounted), nil
}

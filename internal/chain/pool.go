package chain

// Pool is the set of pending readings: submitted, valid, not yet in the main
// chain. It keeps them in arrival order so the oldest are mined first; a
// reading that leaves and comes back (a reorganisation) arrives anew. Like
// Chain, it is not safe for concurrent use.
type Pool struct {
	max      int
	seq      uint64 // arrivals so far
	items    map[Hash]pooled
	order    []slot                     // arrival order; may hold stale slots of removed readings
	firsts   []slot                     // the readings marked first, in marking order; may hold stale slots
	nfirst   int                        // pending readings marked first
	subjects map[string]*subjectPending // the pending readings of each subject
}

// subjectPending is what the pool keeps of one subject's pending readings,
// so that a look at one subject costs what is asked of it, not a pass over
// all its readings: an API client asks for a subject's figures and newest
// readings at will, and one subject may hold the whole pending set.
type subjectPending struct {
	n      int    // its pending readings
	order  []slot // their arrivals, oldest first; may hold stale slots
	newest int64  // the newest time among them, unless stale
	stale  bool   // newest left: recomputed when next asked for
}

type pooled struct {
	r     Reading
	seq   uint64 // the arrival that put r in; only its slot in order is live
	first bool   // marked first (MarkFirst)
}

type slot struct {
	id  Hash
	seq uint64
}

// NewPool returns an empty pool that accepts new readings up to max.
func NewPool(max int) *Pool {
	return &Pool{max: max, items: map[Hash]pooled{}, subjects: map[string]*subjectPending{}}
}

// live reports whether s is the current position of a pending reading.
func (p *Pool) live(s slot) bool {
	it, ok := p.items[s.id]
	return ok && it.seq == s.seq
}

// Len returns the number of pending readings.
func (p *Pool) Len() int { return len(p.items) }

// Has reports whether a reading is pending.
func (p *Pool) Has(id Hash) bool { _, ok := p.items[id]; return ok }

// Get returns a pending reading by id.
func (p *Pool) Get(id Hash) (Reading, bool) { it, ok := p.items[id]; return it.r, ok }

// Add puts a new reading in the pool. The caller has checked it (CheckReading)
// and that it is not in the main chain.
func (p *Pool) Add(r Reading) error {
	id := r.ID()
	if _, ok := p.items[id]; ok {
		return ruleErr(ErrKnownReading, "reading %s is already pending", id.Short())
	}
	if len(p.items) >= p.max {
		return ruleErr(ErrPoolFull, "%d readings pending; try again when blocks are mined", len(p.items))
	}
	p.put(id, r)
	return nil
}

func (p *Pool) put(id Hash, r Reading) {
	p.seq++
	p.items[id] = pooled{r: r, seq: p.seq}
	p.order = append(p.order, slot{id: id, seq: p.seq})
	sp := p.subjects[r.Subject]
	if sp == nil {
		sp = &subjectPending{newest: r.Time}
		p.subjects[r.Subject] = sp
	}
	sp.n++
	sp.order = append(sp.order, slot{id: id, seq: p.seq})
	sp.newest = max(sp.newest, r.Time)
}

// Remove drops a reading from the pool.
func (p *Pool) Remove(id Hash) {
	it, ok := p.items[id]
	if !ok {
		return
	}
	delete(p.items, id)
	if it.first {
		p.nfirst--
		if len(p.firsts) > 64 && len(p.firsts) > 2*p.nfirst {
			p.firsts = p.compacted(p.firsts)
		}
	}
	if sp := p.subjects[it.r.Subject]; sp.n <= 1 {
		delete(p.subjects, it.r.Subject)
	} else {
		sp.n--
		if it.r.Time >= sp.newest {
			sp.stale = true
		}
		if len(sp.order) > 64 && len(sp.order) > 2*sp.n {
			sp.order = p.compacted(sp.order)
		}
	}
	if len(p.order) > 64 && len(p.order) > 2*len(p.items) {
		p.order = p.compacted(p.order)
	}
}

// compacted returns slots without the stale ones, in place.
func (p *Pool) compacted(slots []slot) []slot {
	kept := slots[:0]
	for _, s := range slots {
		if p.live(s) {
			kept = append(kept, s)
		}
	}
	clear(slots[len(kept):])
	return kept
}

// MarkFirst marks a pending reading to be taken by TakeFirst before the
// others, after those marked before it: a reading submitted at this node,
// which an authority proposes before the readings its peers relayed. A
// reading not pending, or marked already, is left as it is; one that
// leaves the pool and comes back is no longer marked.
func (p *Pool) MarkFirst(id Hash) {
	it, ok := p.items[id]
	if !ok || it.first {
		return
	}
	it.first = true
	p.items[id] = it
	p.nfirst++
	p.firsts = append(p.firsts, slot{id: id, seq: it.seq})
}

// Take returns up to n pending readings, oldest first, without removing them.
func (p *Pool) Take(n int) []Reading {
	var out []Reading
	for _, s := range p.order {
		if len(out) == n {
			break
		}
		if p.live(s) {
			out = append(out, p.items[s.id].r)
		}
	}
	return out
}

// Marked calls fn for the pending readings marked first, in the order they
// were marked, until fn returns false. fn must not keep r or change the
// pool.
func (p *Pool) Marked(fn func(id Hash, r *Reading) bool) {
	for _, s := range p.firsts {
		if it, ok := p.items[s.id]; ok && it.seq == s.seq {
			if !fn(s.id, &it.r) {
				return
			}
		}
	}
}

// TakeFirst returns up to n pending readings without removing them: those
// marked first (MarkFirst), in the order they were marked, then the
// others, oldest first. It costs a pass over the readings it returns and
// the stale slots among them, not over the whole pool: a proposer calls it
// under its node's lock, with up to the pool's 100,000 readings pending
// and any number of them marked.
func (p *Pool) TakeFirst(n int) []Reading {
	if n <= 0 || len(p.items) == 0 {
		return nil // as Take
	}
	out := make([]Reading, 0, min(n, len(p.items)))
	for _, s := range p.firsts {
		if len(out) == n {
			return out
		}
		if p.live(s) {
			out = append(out, p.items[s.id].r)
		}
	}
	if len(out) == n || p.nfirst == len(p.items) {
		return out
	}
	// Then the others, oldest first; every marked one was taken above.
	for _, s := range p.order {
		if len(out) == n {
			break
		}
		if it, ok := p.items[s.id]; ok && it.seq == s.seq && !it.first {
			out = append(out, it.r)
		}
	}
	return out
}

// All returns every pending reading, oldest first.
func (p *Pool) All() []Reading { return p.Take(len(p.items)) }

// Subjects calls fn once for every subject with pending readings, with
// how many are pending, in no particular order: the cost is the number of
// such subjects, not of readings. fn must not change the pool.
func (p *Pool) Subjects(fn func(subject string, count int)) {
	for subject, sp := range p.subjects {
		fn(subject, sp.n)
	}
}

// OfSubject calls fn for every pending reading of subject, oldest arrival
// first, with its arrival number (a later arrival has a higher one): the
// cost is that subject's pending readings, not the pool's. fn must not keep
// r or change the pool.
func (p *Pool) OfSubject(subject string, fn func(r *Reading, arrival uint64)) {
	sp := p.subjects[subject]
	if sp == nil {
		return
	}
	for _, s := range sp.order {
		if it, ok := p.items[s.id]; ok && it.seq == s.seq {
			fn(&it.r, it.seq)
		}
	}
}

// NewestOf calls fn for the pending readings of subject, newest arrival
// first, until fn returns false: the cost is the readings fn is called for
// and the stale slots among them, not the subject's pending readings. fn
// must not keep r or change the pool.
func (p *Pool) NewestOf(subject string, fn func(r *Reading, arrival uint64) bool) {
	sp := p.subjects[subject]
	if sp == nil {
		return
	}
	for i := len(sp.order) - 1; i >= 0; i-- {
		s := sp.order[i]
		if it, ok := p.items[s.id]; ok && it.seq == s.seq && !fn(&it.r, it.seq) {
			return
		}
	}
}

// SubjectFigures returns how many readings of subject are pending and the
// newest time among them (0 if none). It costs a lookup, but for a pass
// over the subject's readings once after the one with the newest time left
// the pool (a block took it).
func (p *Pool) SubjectFigures(subject string) (count int, newest int64) {
	sp := p.subjects[subject]
	if sp == nil {
		return 0, 0
	}
	if sp.stale {
		sp.newest, sp.stale = 0, false
		first := true
		for _, s := range sp.order {
			if it, ok := p.items[s.id]; ok && it.seq == s.seq {
				if first || it.r.Time > sp.newest {
					sp.newest, first = it.r.Time, false
				}
			}
		}
	}
	return sp.n, sp.newest
}

// Apply brings the pool in step with a chain update: readings now in the main
// chain leave it, readings returned by a reorganisation come back (even past
// the pool's limit: an accepted reading is never dropped), and readings
// adopted from a tying branch join while there is room.
func (p *Pool) Apply(u *Update) {
	for _, b := range u.Connected {
		for i := range b.Readings {
			p.Remove(b.Readings[i].ID())
		}
	}
	for _, r := range u.Returned {
		if id := r.ID(); !p.Has(id) {
			p.put(id, r)
		}
	}
	for _, r := range u.Adopted {
		if id := r.ID(); !p.Has(id) && len(p.items) < p.max {
			p.put(id, r)
		}
	}
}

package api

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/fhir"
	"github.com/p2pchain/p2pchain/internal/node"
)

// The node's FHIR R4 interface, read-only: readings as Observations
// (docs/FHIR.md). Its errors are OperationOutcomes, not the API's error
// shape, since FHIR clients expect them.

// Bounds of one search Bundle: the subject index entries one page examines
// when a date filter skips most of them (the index holds each reading's
// time, so a skipped reading costs no block read), and the pages it reads;
// past either it ends early with a next link.
const (
	maxFHIRScan  = 10_000
	maxFHIRPages = 200
)

// fhirMetadata serves the CapabilityStatement: GET /fhir/metadata.
func (h *Handler) fhirMetadata(w http.ResponseWriter, r *http.Request) {
	if err := fhir.CheckFormat(r.URL.Query()); err != nil {
		fhir.WriteError(w, err)
		return
	}
	fhir.WriteJSON(w, http.StatusOK, fhir.Capability(fhir.BaseURL(r), h.cfg.version, h.started))
}

// fhirObservation reads one reading as an Observation:
// GET /fhir/Observation/{id}, id the reading id (64 hex digits).
func (h *Handler) fhirObservation(w http.ResponseWriter, r *http.Request) {
	if err := fhir.CheckFormat(r.URL.Query()); err != nil {
		fhir.WriteError(w, err)
		return
	}
	ref := r.PathValue("id")
	id, err := chain.ParseHash(ref)
	if err != nil {
		fhir.WriteError(w, fhir.NotFound(ref))
		return
	}
	info, ok, err := h.node.LocateReading(id) // with whether its block is final
	if err != nil {
		fhir.WriteError(w, h.fhirReadError(err))
		return
	}
	if !ok {
		fhir.WriteError(w, fhir.NotFound(ref))
		return
	}
	o, err := h.observationIn(info, info.Final, nil)
	if err != nil {
		fhir.WriteError(w, err)
		return
	}
	fhir.WriteJSON(w, http.StatusOK, o)
}

// observationIn is the Observation of a reading found by the node; final
// says whether its block was final then. times, if not nil, keeps the
// times of the blocks already looked up, so that a Bundle reads each block
// once.
func (h *Handler) observationIn(info node.ReadingInfo, final bool, times map[chain.Hash]int64) (fhir.Observation, error) {
	if info.Pending {
		return fhir.ObservationOf(&info.Reading, nil), nil
	}
	at, ok := times[info.Block]
	if !ok {
		hdr, found := h.node.Header(info.Block)
		if !found { // left the chain since the lookup
			return fhir.Observation{}, fhir.Errorf(http.StatusServiceUnavailable, "transient", "the reading's block changed while it was read; try again")
		}
		at = hdr.Time
		if times != nil {
			times[info.Block] = at
		}
	}
	place := &fhir.Place{Hash: info.Block, Height: info.Height, Time: at, Final: final}
	return fhir.ObservationOf(&info.Reading, place), nil
}

// fhirSearch finds a subject's readings: GET /fhir/Observation?subject=S
// [&date=geT&date=ltT][&_count=N][&_sort=-date]. Without _sort, Bundles
// list the subject's pending readings that match first (pendingPage: among
// its newest maxPending, the _cursor of a next link after the last one
// shown), then its main-chain readings by block, newest first (the _cursor
// of a position in the chain); with it, fhirSortedSearch.
func (h *Handler) fhirSearch(w http.ResponseWriter, r *http.Request) {
	s, err := fhir.ParseSearch(r.URL.Query())
	if err != nil {
		fhir.WriteError(w, err)
		return
	}
	if s.Sort != "" {
		h.fhirSortedSearch(w, r, s)
		return
	}
	start := node.StartAt(^uint64(0))
	var c pageCursor
	if s.Cursor != "" {
		var e *apiError
		if c, e = parseCursor(s.Cursor); e != nil { // a sorted search's "t" cursor included
			fhir.WriteError(w, fhir.Errorf(http.StatusBadRequest, "invalid", "_cursor=%s: follow the next link of the previous page", s.Cursor))
			return
		}
		start = c.pos
	}
	final := h.node.FinalHeight() // before the lookups: see block
	var obs []fhir.Observation
	if (s.Cursor == "" || c.pending) && !s.Empty() {
		var prev *pageCursor
		if c.pending {
			prev = &c
		}
		pending, more := h.pendingPage(s.Subject, prev, s.Count, s.Matches)
		for i := range pending {
			obs = append(obs, fhir.ObservationOf(&pending[i], nil))
		}
		if more {
			next := after(&pending[len(pending)-1]).String()
			fhir.WriteJSON(w, http.StatusOK, fhir.SearchBundle(fhir.BaseURL(r), s, obs, h.searchTotal(s), next, time.Now()))
			return
		}
		start = node.StartAt(^uint64(0))
	}
	// Each page asks for as many readings as the Bundle still lacks, so
	// it never stops inside a page: the page's Next is where the next
	// Bundle starts. A Bundle filled by pending readings alone links to
	// the main chain's first page.
	next, times := "", map[chain.Hash]int64{}
	if !s.Empty() && len(obs) == s.Count {
		// Filled by pending readings: link to the chain only if it holds
		// one to show (a link to an empty Bundle would be a page too many).
		p, err := h.node.SubjectReadingsBetween(s.Subject, start, 1, s.From, s.Before, maxFHIRScan)
		if err != nil {
			fhir.WriteError(w, h.fhirReadError(err))
			return
		}
		if len(p.Readings) > 0 || p.More {
			next = formatCursor(start)
		}
	}
	for pages := 0; !s.Empty() && len(obs) < s.Count; pages++ {
		// The index holds each reading's time: readings outside the
		// dates cost no block read, and each page examines a bounded
		// number of index entries.
		need := min(s.Count-len(obs), MaxLimit)
		page, err := h.node.SubjectReadingsBetween(s.Subject, start, need, s.From, s.Before, maxFHIRScan)
		if err != nil {
			fhir.WriteError(w, h.fhirReadError(err))
			return
		}
		for _, info := range page.Readings {
			if !s.Matches(info.Reading.Time) {
				continue
			}
			o, err := h.observationIn(info, info.Height <= final, times)
			if err != nil {
				fhir.WriteError(w, err)
				return
			}
			obs = append(obs, o)
		}
		if !page.More {
			break
		}
		start = page.Next
		// A page short of what the Bundle lacks examined maxFHIRScan
		// index entries (a filter that skips most readings), or is a
		// store-less node's: the Bundle ends early, with a next link.
		if len(obs) == s.Count || len(page.Readings) < need || pages+1 >= maxFHIRPages {
			next = formatCursor(start)
			break
		}
	}
	fhir.WriteJSON(w, http.StatusOK, fhir.SearchBundle(fhir.BaseURL(r), s, obs, h.searchTotal(s), next, time.Now()))
}

// fhirSortedSearch answers a search with _sort=date or -date: the
// subject's readings that match, pending ones and those in blocks alike,
// in the order of their own times, equal times by id (-date: both
// descending). A page is the first Count after the _cursor (the time and
// id of the last reading shown) of two lists merged: the subject's
// matching pending readings among its maxPending newest arrivals, and its
// readings in blocks from the store's subject time index (a seek, then one
// step and at most one block read per reading). So a page costs
// O(log n + Count) index entries and Count block reads, and memory for
// Count readings and maxPending pending ones, whatever the ledger's size
// and the subject's number of readings. A reading both pending and in a
// block (mined meanwhile) is listed once, as in its block.
func (h *Handler) fhirSortedSearch(w http.ResponseWriter, r *http.Request, s fhir.Search) {
	newest := s.Sort == fhir.SortDateDesc
	var after *node.TimePos
	if s.Cursor != "" {
		// "tTIME.ID": after that reading, read as a pending cursor is.
		rest, ok := strings.CutPrefix(s.Cursor, "t")
		c, e := parseCursor("p" + rest)
		if !ok || e != nil {
			fhir.WriteError(w, fhir.Errorf(http.StatusBadRequest, "invalid", "_cursor=%s: follow the next link of the previous page (a cursor of a search without _sort does not continue a sorted one)", s.Cursor))
			return
		}
		after = &node.TimePos{Time: c.time, ID: c.id}
	}
	if s.Empty() {
		fhir.WriteJSON(w, http.StatusOK, fhir.SearchBundle(fhir.BaseURL(r), s, nil, 0, "", time.Now()))
		return
	}
	final := h.node.FinalHeight() // before the lookups: see block
	page, err := h.node.SubjectReadingsByTime(s.Subject, node.TimeQuery{
		Newest: newest, After: after, Since: s.From, Until: s.Before, Limit: s.Count})
	switch {
	case errors.Is(err, node.ErrNoIndex):
		fhir.WriteError(w, fhir.Errorf(http.StatusBadRequest, "not-supported",
			"_sort needs the subject time index of a node with a store, which this node does not keep; search without _sort"))
		return
	case err != nil:
		fhir.WriteError(w, h.fhirReadError(err))
		return
	}
	// order compares a with b in the search's order (both keys descending
	// for -date): negative when a comes first.
	order := func(at int64, aid chain.Hash, bt int64, bid chain.Hash) int {
		c := cmp.Or(cmp.Compare(at, bt), bytes.Compare(aid[:], bid[:]))
		if newest {
			return -c
		}
		return c
	}
	type item struct {
		info node.ReadingInfo
		id   chain.Hash
	}
	var items []item
	mined := map[chain.Hash]bool{}
	for _, info := range page.Readings {
		id := info.Reading.ID()
		mined[id] = true
		items = append(items, item{info, id})
	}
	for _, rd := range h.node.PendingOf(s.Subject, maxPending) {
		id := rd.ID()
		if !s.Matches(rd.Time) || mined[id] || after != nil && order(after.Time, after.ID, rd.Time, id) >= 0 {
			continue
		}
		items = append(items, item{node.ReadingInfo{Reading: rd, Pending: true}, id})
	}
	slices.SortFunc(items, func(a, b item) int {
		return order(a.info.Reading.Time, a.id, b.info.Reading.Time, b.id)
	})
	next := ""
	if len(items) > s.Count || page.More {
		// The page's Count readings are the first of both lists merged:
		// each list gave its first Count (or all it has) after the cursor.
		items = items[:min(len(items), s.Count)]
		last := items[len(items)-1]
		next = fmt.Sprintf("t%d.%s", last.info.Reading.Time, last.id)
	}
	obs, times := make([]fhir.Observation, 0, len(items)), map[chain.Hash]int64{}
	for _, it := range items {
		o, err := h.observationIn(it.info, !it.info.Pending && it.info.Height <= final, times)
		if err != nil {
			fhir.WriteError(w, err)
			return
		}
		obs = append(obs, o)
	}
	fhir.WriteJSON(w, http.StatusOK, fhir.SearchBundle(fhir.BaseURL(r), s, obs, h.searchTotal(s), next, time.Now()))
}

// fhirReadError is readError as an OperationOutcome: 503 exception when
// the node's storage failed (it is stopping), else 500 exception, logged.
func (h *Handler) fhirReadError(err error) error {
	e := h.readError("reading the ledger", err)
	return fhir.Errorf(e.status, "exception", "%s", e.msg)
}

// searchTotal is the number of readings search s matches in all, or -1
// when the node does not know it: a date filter that some time can match,
// or a node without a subject index. A search that nothing can match (a
// code or category no reading has, dates no time fits) and a subject with
// no readings match 0. The total counts pending readings and readings in
// blocks once each, as the node holds them when it answers.
func (h *Handler) searchTotal(s fhir.Search) int {
	if s.Empty() {
		return 0
	}
	if s.From != math.MinInt64 || s.Before != math.MaxInt64 {
		return -1
	}
	sum, ok, err := h.node.Subject(s.Subject)
	switch {
	case err != nil:
		return -1
	case !ok:
		return 0
	}
	return sum.Count + sum.Pending
}

// fhirUnrouted answers other paths under /fhir/ with an OperationOutcome:
// 405 for another method on a FHIR path, 404 otherwise.
func (h *Handler) fhirUnrouted(w http.ResponseWriter, r *http.Request) {
	if allow := h.allowed(r); len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		fhir.WriteError(w, fhir.Errorf(http.StatusMethodNotAllowed, "not-supported",
			"%s is not allowed on %s: this FHIR interface is read-only (GET)", r.Method, r.URL.Path))
		return
	}
	fhir.WriteError(w, fhir.Errorf(http.StatusNotFound, "not-supported",
		"no such FHIR endpoint: %s %s; this server offers GET /fhir/metadata, GET /fhir/Observation?subject=S and GET /fhir/Observation/{id} (docs/FHIR.md)",
		r.Method, r.URL.Path))
}

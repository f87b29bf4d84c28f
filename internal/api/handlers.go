package api

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2pchain/p2pchain/internal/bft"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/netfile"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/readingsfile"
)

// exampleAddr shows what a good multiaddr looks like, in error messages.
const exampleAddr = "/ip4/127.0.0.1/tcp/10000/p2p/12D3KooWAbC... (the other node's banner and status list it under 'listening on')"

func (h *Handler) status(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, newStatusView(h.node, h.host))
}

// blocks lists main-chain blocks, newest first: GET /api/v1/blocks?from=H&limit=N.
func (h *Handler) blocks(w http.ResponseWriter, r *http.Request) {
	q, e := query(r)
	if e != nil {
		writeError(w, e)
		return
	}
	from, fromSet, e := uintParam(q, "from")
	if e != nil {
		writeError(w, e)
		return
	}
	limit, e := limitParam(q)
	if e != nil {
		writeError(w, e)
		return
	}
	if !fromSet {
		from = math.MaxUint64 // the tip
	}
	// The tip and final heights first: main-chain blocks at or below the
	// final height are final whatever happens to the chain meanwhile.
	tip, final := h.node.Status().Height, h.node.FinalHeight()
	headers, err := h.node.Headers(from, limit)
	if err != nil {
		writeError(w, h.readError("reading the blocks", err))
		return
	}
	if len(headers) > 0 {
		tip = max(tip, headers[0].Height)
	}
	v := blockListView{Height: tip, Limit: limit, Blocks: make([]blockSummary, 0, len(headers))}
	for i := range headers {
		v.Blocks = append(v.Blocks, newBlockSummary(&headers[i], tip, final))
	}
	if n := len(headers); n > 0 && headers[n-1].Height > 0 {
		v.Next = fmt.Sprintf("/api/v1/blocks?from=%d&limit=%d", headers[n-1].Height-1, limit)
	}
	writeJSON(w, http.StatusOK, v)
}

// block returns one block: GET /api/v1/blocks/{height, hash or hash prefix}.
// A whole number without leading zeros is a height; when no block has that
// height, a number of at least chain.MinPrefixDigits digits is tried as a
// hash prefix too (a prefix may be all digits).
//
// Here and for readings, the final height is read before a block or
// reading is looked up: a main-chain block at or below it is then final
// (final blocks never leave the main chain), whatever changed in between.
func (h *Handler) block(w http.ResponseWriter, r *http.Request) {
	ref := r.PathValue("ref")
	height, isHeight := parseHeight(ref)
	if isHeight {
		final := h.node.FinalHeight()
		b, ok, err := h.node.BlockByHeight(height)
		if err != nil {
			writeError(w, readFailed(err))
			return
		}
		if ok {
			writeJSON(w, http.StatusOK, newBlockView(b, final))
			return
		}
		if len(ref) < chain.MinPrefixDigits {
			writeError(w, notFound(h.syncing(), "no block at height %d", height))
			return
		}
	}
	p, err := chain.ParseHashPrefix(ref)
	if err != nil {
		writeError(w, newError(http.StatusBadRequest, CodeBadBlockRef,
			"%q is neither a block height (a whole number from 0, without leading zeros) nor a block hash or its first %d to 64 hex digits",
			ref, chain.MinPrefixDigits))
		return
	}
	hash, e := h.resolve(p, "block", h.node.BlocksWithPrefix)
	if e != nil && isHeight && (e.code == CodeNotFound || e.code == CodeSyncing) {
		e = notFound(h.syncing(), "no block at height %d, nor one whose hash starts with %s", height, p)
	}
	if e != nil {
		writeError(w, e)
		return
	}
	final := h.node.FinalHeight()
	b, ok, err := h.node.BlockByHash(hash)
	if err != nil {
		writeError(w, readFailed(err))
		return
	}
	if !ok { // gone since the lookup (a side branch pruned)
		writeError(w, notFound(h.syncing(), "no block %s", ref))
		return
	}
	writeJSON(w, http.StatusOK, newBlockView(b, final))
}

// readFailed answers a lookup that could not read the node's store (the
// store failed, and the node stops): not a 404, which would say the node
// does not hold what it holds.
func readFailed(err error) *apiError {
	return newError(http.StatusServiceUnavailable, CodeNodeFailed, "%v", err)
}

// readError answers a read of the node that failed: 503 node_failed when
// the node's storage failed (it is stopping; the error says to check the
// disk), else 500 internal, logged. what says what was being read.
func (h *Handler) readError(what string, err error) *apiError {
	if h.node.Err() != nil {
		return readFailed(fmt.Errorf("%s: %w", what, err))
	}
	h.cfg.log.Error(what, "err", err)
	return newError(http.StatusInternalServerError, CodeInternal, "%s: %v", what, err)
}

// parseHeight parses a block height: a whole number without leading zeros
// that fits 64 bits.
func parseHeight(s string) (uint64, bool) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}

// Candidates listed in an ambiguous error.
const maxCandidates = 5

// resolve returns the one hash that starts with p, found by lookup (the
// node's BlocksWithPrefix or ReadingsWithPrefix), or the error to answer:
// not found (or syncing), ambiguous with the first candidates, or the
// node's fault (its storage). what names the kind of thing looked up, for
// messages.
func (h *Handler) resolve(p chain.HashPrefix, what string, lookup func(chain.HashPrefix, int) (node.Matches, error)) (chain.Hash, *apiError) {
	if p.Len() == 2*chain.HashSize {
		return p.Low(), nil // a whole hash: its own lookup says whether it is known
	}
	m, err := lookup(p, maxCandidates)
	switch {
	case err != nil:
		return chain.Hash{}, h.readError(fmt.Sprintf("cannot look up %s %s", what, p), err)
	case m.Count == 0:
		return chain.Hash{}, notFound(h.syncing(), "no %s starts with %s", what, p)
	case m.Count == 1 && !m.More:
		return m.Hashes[0], nil
	}
	count := strconv.Itoa(m.Count)
	if m.More {
		count = "more than " + count
	}
	// Each shown to a few digits past the prefix.
	shorts := make([]string, len(m.Hashes))
	e := &apiError{status: http.StatusBadRequest, code: CodeAmbiguous}
	for i, c := range m.Hashes {
		shorts[i] = c.String()[:min(max(p.Len()+2, 10), 2*chain.HashSize)]
		e.candidates = append(e.candidates, c.String())
	}
	list := strings.Join(shorts, ", ")
	if len(m.Hashes) < m.Count || m.More {
		list += ", …"
	}
	e.msg = fmt.Sprintf("ambiguous: %s %ss start with %s (%s); give more digits", count, what, p, list)
	return chain.Hash{}, e
}

// readingID resolves the request's {id}: a reading id or its first
// chain.MinPrefixDigits or more digits.
func (h *Handler) readingID(r *http.Request) (chain.Hash, *apiError) {
	ref := r.PathValue("id")
	p, err := chain.ParseHashPrefix(ref)
	if err != nil {
		return chain.Hash{}, newError(http.StatusBadRequest, CodeBadReadingID,
			"%q is not a reading id: want its 64 hex digits, or its first %d or more", ref, chain.MinPrefixDigits)
	}
	return h.resolve(p, "reading", h.node.ReadingsWithPrefix)
}

// reading returns a reading and its status: GET /api/v1/readings/{id or
// id prefix}.
func (h *Handler) reading(w http.ResponseWriter, r *http.Request) {
	id, e := h.readingID(r)
	if e != nil {
		writeError(w, e)
		return
	}
	rd, ok, err := h.node.LocateReading(id) // with whether its block is final
	if err != nil {
		writeError(w, h.readError("reading "+id.String(), err))
		return
	}
	if !ok {
		writeError(w, notFound(h.syncing(), "no reading %s, pending or in the main chain", id))
		return
	}
	writeJSON(w, http.StatusOK, newReadingView(rd, rd.Final))
}

// subjectReadings pages through a subject's readings:
// GET /api/v1/subjects/{subject}/readings?from=H|cursor=C&limit=N
// [&since=MS][&until=MS]. The pages list its pending readings first
// (pendingPage), then its main-chain readings newest first, at most limit
// readings a page in all; from skips the pending ones. since and until
// keep the readings taken in [since, until) (Unix ms): the subject index
// holds each reading's time, so the others cost no block read, and a page
// examines at most maxFHIRScan index entries (a short page then links on).
func (h *Handler) subjectReadings(w http.ResponseWriter, r *http.Request) {
	subject := r.PathValue("subject")
	if err := chain.CheckSubject(subject); err != nil {
		writeError(w, newError(http.StatusBadRequest, CodeBadSubject, "subject %q: %s", subject, chain.RuleDetail(err)))
		return
	}
	q, e := query(r)
	var from uint64
	var fromSet bool
	if e == nil {
		from, fromSet, e = uintParam(q, "from")
	}
	if e == nil && q.Has("cursor") && fromSet {
		e = newError(http.StatusBadRequest, CodeBadParameter, "give from or cursor, not both")
	}
	var limit int
	if e == nil {
		limit, e = limitParam(q)
	}
	var c pageCursor
	if e == nil && q.Has("cursor") {
		c, e = parseCursor(q.Get("cursor"))
	}
	var since, until uint64
	var sinceSet, untilSet bool
	if e == nil {
		since, sinceSet, e = uintParam(q, "since")
	}
	if e == nil {
		until, untilSet, e = uintParam(q, "until")
	}
	if e == nil && (since > math.MaxInt64 || until > math.MaxInt64 || untilSet && until <= since) {
		e = newError(http.StatusBadRequest, CodeBadParameter, "since=%d, until=%d: want Unix milliseconds with since before until", since, until)
	}
	if e != nil {
		writeError(w, e)
		return
	}
	window := ""
	if sinceSet {
		window += fmt.Sprintf("&since=%d", since)
	}
	if untilSet {
		window += fmt.Sprintf("&until=%d", until)
	}
	// keep is the window as a filter of pending readings (nil: all).
	var keep func(int64) bool
	if window != "" {
		keep = func(t int64) bool { return t >= int64(since) && (!untilSet || t < int64(until)) }
	}
	link := func(c string) string {
		return fmt.Sprintf("/api/v1/subjects/%s/readings?cursor=%s&limit=%d%s", SubjectSegment(subject), c, limit, window)
	}
	final := h.node.FinalHeight() // before the lookup: see block
	v := subjectView{Subject: subject, Limit: limit, Pending: []chain.Reading{}, Readings: []readingView{}}
	start := node.StartAt(math.MaxUint64) // the tip
	switch {
	case fromSet:
		start = node.StartAt(from)
	case q.Has("cursor") && !c.pending:
		start = c.pos
	default: // the pending readings first
		var prev *pageCursor
		if q.Has("cursor") {
			prev = &c
		}
		pending, more := h.pendingPage(subject, prev, limit, keep)
		v.Pending = append(v.Pending, pending...)
		if more {
			v.Height = h.node.Status().Height
			v.Next = link(after(&pending[len(pending)-1]).String())
			writeJSON(w, http.StatusOK, v)
			return
		}
	}
	// The main chain fills the rest of the page. A page full of pending
	// readings asks for one, only to know whether to link to the chain.
	need := limit - len(v.Pending)
	var page node.SubjectPage
	var err error
	if window == "" {
		page, err = h.node.SubjectReadings(subject, start, max(need, 1))
	} else {
		page, err = h.node.SubjectReadingsBetween(subject, start, max(need, 1), int64(since), int64(until), maxFHIRScan)
	}
	if err != nil {
		writeError(w, h.readError("reading the subject index", err))
		return
	}
	v.Height = page.Tip
	if need == 0 {
		if len(page.Readings) > 0 || page.More {
			v.Next = link(formatCursor(start))
		}
		writeJSON(w, http.StatusOK, v)
		return
	}
	for _, ri := range page.Readings {
		v.Readings = append(v.Readings, newReadingView(ri, ri.Height <= final))
	}
	if page.More {
		v.Next = link(formatCursor(page.Next))
	}
	writeJSON(w, http.StatusOK, v)
}

func (h *Handler) peers(w http.ResponseWriter, _ *http.Request) {
	ps := h.host.Peers()
	v := peersView{Count: len(ps), Peers: make([]peerView, 0, len(ps)), Blocked: newBlockedView(h.host.Blocked()).Blocked}
	for _, p := range ps {
		v.Peers = append(v.Peers, newPeerView(p))
	}
	writeJSON(w, http.StatusOK, v)
}

// submitReading adds a reading: POST /api/v1/readings {"subject": "alice",
// "bpm": 72} with an optional "time" (Unix ms, or RFC 3339) when it was
// taken; without one the node's clock says now.
func (h *Handler) submitReading(w http.ResponseWriter, r *http.Request) {
	var body readingBody
	if e := decodeBody(w, r, &body, exampleReading); e != nil {
		writeError(w, e)
		return
	}
	sub, e := body.submission()
	if e != nil {
		writeError(w, e)
		return
	}
	var rd chain.Reading
	var err error
	if sub.Signed != nil {
		rd, err = *sub.Signed, h.node.SubmitReading(*sub.Signed)
	} else {
		rd, err = h.node.SubmitAt(sub.Subject, sub.BPM, sub.Time)
	}
	if err != nil {
		e := h.submitError(err)
		if e.status != http.StatusBadRequest && rd.Sig != ([64]byte{}) {
			// The reading was made (signed, or its signature checked):
			// its id says what to look up, or what a retry is.
			e.id = rd.ID().String()
		}
		writeError(w, e)
		return
	}
	id := rd.ID()
	w.Header().Set("Location", "/api/v1/readings/"+id.String())
	writeJSON(w, http.StatusAccepted, submitView{ID: id, Status: readingPending})
}

const exampleReading = `{"subject": "alice", "bpm": 72}`

// readingBody is a reading to submit, as POST /api/v1/readings and each
// item of POST /api/v1/readings/batch take it.
type readingBody struct {
	Subject *string         `json:"subject"`
	BPM     json.RawMessage `json:"bpm"`
	Time    json.RawMessage `json:"time"`
	// Author and Sig (hex): a reading its author signed elsewhere (an
	// export of another node), taken as it is once its signature checks,
	// with its own id; time is then required, to the millisecond signed.
	Author *string `json:"author"`
	Sig    *string `json:"sig"`
}

// submission checks the body's fields and returns what to sign.
func (b *readingBody) submission() (node.Submission, *apiError) {
	if b.Subject == nil {
		return node.Submission{}, newError(http.StatusBadRequest, CodeBadSubject, "subject is required, e.g. %s", exampleReading)
	}
	raw := string(b.BPM)
	if raw == "" || raw == "null" {
		return node.Submission{}, newError(http.StatusBadRequest, CodeBadBPM, "bpm is required, e.g. %s", exampleReading)
	}
	bpm, err := strconv.Atoi(raw)
	if err != nil {
		return node.Submission{}, newError(http.StatusBadRequest, CodeBadBPM, "bpm %s: want a whole number from %d to %d", raw, chain.MinBPM, chain.MaxBPM)
	}
	sub := node.Submission{Subject: *b.Subject, BPM: bpm}
	if t := string(b.Time); t != "" && t != "null" {
		if ms, err := strconv.ParseInt(t, 10, 64); err == nil && ms > 0 && readingsfile.LooksLikeSeconds(ms) {
			return node.Submission{}, newError(http.StatusBadRequest, CodeBadTime,
				"time %s looks like Unix seconds: want Unix milliseconds (%s000) or an RFC 3339 time (\"2026-06-01T08:00:00Z\")", t, t)
		}
		at, ok := parseReadingTime(t)
		if !ok {
			return node.Submission{}, newError(http.StatusBadRequest, CodeBadTime,
				"time %s: want Unix milliseconds (1780300800000) or an RFC 3339 time (\"2026-06-01T08:00:00Z\")", t)
		}
		sub.Time = at
	}
	if b.Author == nil && b.Sig == nil {
		return sub, nil
	}
	return signedSubmission(sub, b.Author, b.Sig)
}

// signedSubmission is sub as its author signed it: author and sig, both
// given, in hex; sub's time is the one signed.
func signedSubmission(sub node.Submission, author, sig *string) (node.Submission, *apiError) {
	const example = `{"subject": "alice", "bpm": 72, "time": 1780300800000, "author": "<64 hex digits>", "sig": "<128 hex digits>"}`
	if author == nil || sig == nil {
		return node.Submission{}, newError(http.StatusBadRequest, CodeBadSignature, "give author and sig together (a reading signed elsewhere), or neither (the node signs it), e.g. %s", example)
	}
	if sub.Time.IsZero() {
		return node.Submission{}, newError(http.StatusBadRequest, CodeBadTime, "a signed reading needs the time it was signed with, in Unix milliseconds, e.g. %s", example)
	}
	if sub.BPM < chain.MinBPM || sub.BPM > chain.MaxBPM {
		return node.Submission{}, newError(http.StatusBadRequest, CodeBadBPM, "bpm %d: want a whole number from %d to %d", sub.BPM, chain.MinBPM, chain.MaxBPM)
	}
	r := chain.Reading{Subject: sub.Subject, BPM: uint16(sub.BPM), Time: sub.Time.UnixMilli()}
	k, err := hex.DecodeString(*author)
	if err != nil || len(k) != len(r.Author) {
		return node.Submission{}, newError(http.StatusBadRequest, CodeBadSignature, "author %q: want the Ed25519 key, %d hex digits", *author, 2*len(r.Author))
	}
	copy(r.Author[:], k)
	sg, err := hex.DecodeString(*sig)
	if err != nil || len(sg) != len(r.Sig) {
		return node.Submission{}, newError(http.StatusBadRequest, CodeBadSignature, "sig %q: want the Ed25519 signature, %d hex digits", *sig, 2*len(r.Sig))
	}
	copy(r.Sig[:], sg)
	return node.Submission{Subject: sub.Subject, BPM: sub.BPM, Time: sub.Time, Signed: &r}, nil
}

// parseReadingTime parses a JSON time: a whole number of Unix milliseconds
// above 0, or an RFC 3339 string.
func parseReadingTime(raw string) (time.Time, bool) {
	if strings.HasPrefix(raw, `"`) {
		var s string
		if json.Unmarshal([]byte(raw), &s) != nil {
			return time.Time{}, false
		}
		t, err := readingsfile.ParseRFC3339(s)
		return t, err == nil && t.UnixMilli() > 0
	}
	ms, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}

// batchView is the body of POST /api/v1/readings/batch's answer: one
// result per reading, in order. An atomic batch that was refused answers
// 409 with error and code too (the shape of every error).
type batchView struct {
	Error    string        `json:"error,omitempty"`
	Code     string        `json:"code,omitempty"`
	Results  []batchResult `json:"results"`
	Accepted int           `json:"accepted"`
	Rejected int           `json:"rejected"`
}

// batchResult is one reading's answer: its id and status "pending", or
// the code and error it would get alone from POST /api/v1/readings, or
// status "not_added" (an atomic batch refused for another reading).
type batchResult struct {
	ID     *chain.Hash `json:"id,omitempty"`
	Status string      `json:"status,omitempty"`
	Code   string      `json:"code,omitempty"`
	Error  string      `json:"error,omitempty"`
}

// ReadingNotAdded is the status of a reading of an atomic batch that was
// refused for another of its readings: it can be sent again without them.
const ReadingNotAdded = "not_added"

// allPoolFull reports whether every answer is the pending set's refusal.
func allPoolFull(errs []error) bool {
	for _, err := range errs {
		if chain.CodeOf(err) != chain.ErrPoolFull {
			return false
		}
	}
	return true
}

// submitBatch adds up to node.MaxSubmitAll readings in one request:
// POST /api/v1/readings/batch {"readings": [{"subject": "alice", "bpm": 72,
// "time": 1780300800000}, ...], "atomic": false}. They share the group
// commit's syncs. With "atomic": true, one refused reading refuses them all
// (409); otherwise each is answered on its own (200).
func (h *Handler) submitBatch(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Readings []json.RawMessage `json:"readings"`
		Atomic   bool              `json:"atomic"`
	}
	const example = `{"readings": [{"subject": "alice", "bpm": 72}, {"subject": "bob", "bpm": 64, "time": 1780300800000}], "atomic": false}`
	if e := decodeBodyLimit(w, r, &body, example, MaxBatchBodyBytes); e != nil {
		writeError(w, e)
		return
	}
	switch n := len(body.Readings); {
	case n == 0:
		writeError(w, newError(http.StatusBadRequest, CodeBadJSON, "readings is empty or missing; want e.g. %s", example))
		return
	case n > node.MaxSubmitAll:
		writeError(w, newError(http.StatusRequestEntityTooLarge, CodeTooLarge, "%d readings: send at most %d a request", n, node.MaxSubmitAll))
		return
	}
	v := batchView{Results: make([]batchResult, len(body.Readings))}
	subs := make([]node.Submission, 0, len(body.Readings))
	at := make([]int, 0, len(body.Readings)) // index in the request of each submission
	for i, raw := range body.Readings {
		var rb readingBody
		var sub node.Submission
		e := decodeJSON(raw, &rb, fmt.Sprintf("reading %d", i), exampleReading)
		if e == nil {
			sub, e = rb.submission()
		}
		if e != nil {
			v.Results[i] = batchResult{Code: e.code, Error: e.msg}
			continue
		}
		subs, at = append(subs, sub), append(at, i)
	}
	refused := len(subs) < len(body.Readings)
	if refused && body.Atomic {
		for i := range v.Results {
			if v.Results[i].Code == "" {
				v.Results[i].Status = ReadingNotAdded
			}
		}
	} else {
		rs, errs := h.node.SubmitAll(subs, body.Atomic)
		if body.Atomic && len(errs) > 0 && allPoolFull(errs) {
			// No room for the whole batch: the request waits, as one
			// reading would (503 pending_full, Retry-After).
			writeError(w, h.submitError(errs[0]))
			return
		}
		for j, err := range errs {
			i := at[j]
			switch {
			case err == nil:
				id := rs[j].ID()
				v.Results[i] = batchResult{ID: &id, Status: readingPending}
			case errors.Is(err, node.ErrNotAdded):
				v.Results[i] = batchResult{Status: ReadingNotAdded}
			default:
				e := h.submitError(err)
				v.Results[i] = batchResult{Code: e.code, Error: e.msg}
			}
		}
	}
	for _, res := range v.Results {
		if res.ID != nil {
			v.Accepted++
		} else if res.Code != "" {
			v.Rejected++
		}
	}
	// Atomic and refused: nothing was added (409). A batch partly added
	// all the same (a refusal only the write could find) answers 200, its
	// results saying which went in.
	if body.Atomic && v.Accepted == 0 {
		v.Code = CodeBatchRefused
		v.Error = fmt.Sprintf("%d of %d readings refused; none of the batch was added (atomic): see results", v.Rejected, len(v.Results))
		writeJSON(w, http.StatusConflict, v)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// retrySame says how a retry behaves after 503 disk_slow: a reading's id is
// the hash of its subject, bpm, time and author (chain.Reading.ID), not of
// the request.
const retrySame = "a reading sent again with the same subject, bpm and time (or signed, with its author and sig) is the same reading: " +
	"409 reading_known if the first was stored, never stored twice; one sent without a time takes the node's clock at each try, " +
	"so it is a new reading, and may be stored twice"

// submitError maps an error of the node's Submit to a response.
func (h *Handler) submitError(err error) *apiError {
	switch chain.CodeOf(err) {
	case chain.ErrBadBPM:
		return newError(http.StatusBadRequest, CodeBadBPM, "bpm: %s", chain.RuleDetail(err))
	case chain.ErrBadSubject:
		return newError(http.StatusBadRequest, CodeBadSubject, "subject: %s", chain.RuleDetail(err))
	case chain.ErrBadReadingTime:
		return newError(http.StatusBadRequest, CodeBadTime, "time: %s", chain.RuleDetail(err))
	case chain.ErrBadSignature, chain.ErrBadKey:
		return newError(http.StatusBadRequest, CodeBadSignature, "%s: %s (author, sig and the reading's fields must be exactly as signed)", chain.CodeOf(err), chain.RuleDetail(err))
	case chain.ErrKnownReading:
		return newError(http.StatusConflict, CodeKnownReading, "%v", err)
	case chain.ErrPoolFull:
		e := newError(http.StatusServiceUnavailable, CodePendingFull, "%v", err)
		e.retryAfter = retryAfterPoolFull
		return e
	case 0:
		if errors.Is(err, node.ErrDiskSlow) {
			// The error says whether the reading may still be stored.
			e := newError(http.StatusServiceUnavailable, CodeDiskSlow, "%v; %s", err, retrySame)
			e.retryAfter = retryAfterDiskSlow
			return e
		}
		if errors.Is(err, node.ErrStoreFull) {
			// The error says how full and that the node resumes by
			// itself; the node logged it once.
			e := newError(http.StatusServiceUnavailable, CodeDiskFull, "%v", err)
			e.retryAfter = retryAfterDiskFull
			return e
		}
		// Not a rule error: the node's storage failed (it is stopping),
		// or something unforeseen.
		h.cfg.log.Error("submit reading", "err", err)
		return newError(http.StatusServiceUnavailable, CodeNodeFailed, "the reading was not stored: %v", err)
	}
	h.cfg.log.Error("submit reading", "err", err)
	return newError(http.StatusInternalServerError, CodeInternal, "the reading was not accepted: %v", err)
}

// connect dials a peer: POST /api/v1/peers {"addr": "<multiaddr>"}.
func (h *Handler) connect(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Addr *string `json:"addr"`
	}
	if e := decodeBody(w, r, &body, `{"addr": "`+exampleAddr+`"}`); e != nil {
		writeError(w, e)
		return
	}
	if body.Addr == nil || *body.Addr == "" {
		writeError(w, newError(http.StatusBadRequest, CodeBadMultiaddr, "addr is required: a full multiaddr such as %s", exampleAddr))
		return
	}
	addr := strings.TrimSpace(*body.Addr)
	m, err := ma.NewMultiaddr(addr)
	if err != nil {
		writeError(w, newError(http.StatusBadRequest, CodeBadMultiaddr, "%q is not a multiaddr (%v); want e.g. %s", addr, err, exampleAddr))
		return
	}
	info, err := peer.AddrInfoFromP2pAddr(m)
	if err != nil {
		writeError(w, newError(http.StatusBadRequest, CodeBadMultiaddr, "%q has no /p2p/<peer ID> part (%v); want e.g. %s", addr, err, exampleAddr))
		return
	}
	if info.ID == h.host.ID() {
		writeError(w, newError(http.StatusBadRequest, CodeBadMultiaddr, "%q is this node itself", addr))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.connectTimeout)
	defer cancel()
	if err := h.host.Connect(ctx, addr); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
			writeError(w, newError(http.StatusGatewayTimeout, CodePeerTimeout, "peer %s did not answer within %v: %v", info.ID, h.cfg.connectTimeout, err))
			return
		}
		writeError(w, newError(http.StatusBadGateway, CodePeerFailed, "%v", err))
		return
	}
	writeJSON(w, http.StatusOK, connectView{ID: info.ID.String(), Connected: true})
}

// blockPeers cuts the node off from peers until they are unblocked: POST
// /api/v1/peers/block {"peer_ids": ["12D3KooW...", ...]}.
func (h *Handler) blockPeers(w http.ResponseWriter, r *http.Request) {
	ids, e := h.peerIDs(w, r, "block")
	if e != nil {
		writeError(w, e)
		return
	}
	if err := h.host.Block(ids...); err != nil {
		writeError(w, newError(http.StatusConflict, CodeBlockedFull, "none blocked: %v", err))
		return
	}
	writeJSON(w, http.StatusOK, newBlockedView(h.host.Blocked()))
}

// unblockPeers lets blocked peers connect again: POST
// /api/v1/peers/unblock {"peer_ids": ["12D3KooW...", ...]}. It does not
// dial them.
func (h *Handler) unblockPeers(w http.ResponseWriter, r *http.Request) {
	ids, e := h.peerIDs(w, r, "unblock")
	if e != nil {
		writeError(w, e)
		return
	}
	h.host.Unblock(ids...)
	writeJSON(w, http.StatusOK, newBlockedView(h.host.Blocked()))
}

// peerIDs reads the body of block and unblock: one or more peer IDs, none
// of them this node's.
func (h *Handler) peerIDs(w http.ResponseWriter, r *http.Request, what string) ([]peer.ID, *apiError) {
	example := `{"peer_ids": ["12D3KooW..."]}`
	var body struct {
		PeerIDs []string `json:"peer_ids"`
	}
	if e := decodeBody(w, r, &body, example); e != nil {
		return nil, e
	}
	if len(body.PeerIDs) == 0 {
		return nil, newError(http.StatusBadRequest, CodeBadPeerID, "peer_ids is required: the peer IDs to %s, e.g. %s", what, example)
	}
	self := h.host.ID()
	ids := make([]peer.ID, 0, len(body.PeerIDs))
	for _, s := range body.PeerIDs {
		s = strings.TrimSpace(s)
		id, err := peer.Decode(s)
		if err != nil {
			return nil, newError(http.StatusBadRequest, CodeBadPeerID, "peer_ids: %q is not a peer ID (%v); a peer ID starts with 12D3KooW, as in GET /api/v1/peers; none was %sed", s, err, what)
		}
		if id == self {
			return nil, newError(http.StatusBadRequest, CodeBadPeerID, "peer_ids: %s is this node itself; none was %sed", s, what)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// shutdown asks the node to stop: POST /api/v1/shutdown with an empty body
// or {}. Like every write it must be Content-Type: application/json, which
// a web page cannot send cross-origin without the node's consent: no site a
// browser visits can stop the node. It answers 202 first and calls the
// shutdown function (WithShutdown) once the answer is on its way, without
// waiting for the node to stop.
func (h *Handler) shutdown(w http.ResponseWriter, r *http.Request) {
	if h.cfg.shutdown == nil {
		writeError(w, newError(http.StatusNotFound, CodeNotSupported, "this node cannot be stopped through its API; stop its process"))
		return
	}
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		writeError(w, newError(http.StatusUnsupportedMediaType, CodeMediaType,
			"content type %q: send the header Content-Type: application/json (the body may be empty)", ct))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, newError(http.StatusRequestEntityTooLarge, CodeTooLarge, "the body is over %d bytes", MaxBodyBytes))
		return
	case err != nil:
		writeError(w, newError(http.StatusBadRequest, CodeBadJSON, "cannot read the body: %v", err))
		return
	}
	if b := strings.TrimSpace(string(body)); b != "" && b != "{}" {
		writeError(w, newError(http.StatusBadRequest, CodeBadJSON, "send an empty body or {}"))
		return
	}
	writeJSON(w, http.StatusAccepted, shutdownView{Stopping: true})
	_ = http.NewResponseController(w).Flush()
	h.shutdownOnce.Do(func() { go h.cfg.shutdown() })
}

// consensus shows the consensus state: GET /api/v1/consensus.
func (h *Handler) consensus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, newConsensusView(h.node))
}

// approve records the operator's approval of a membership change of an
// authority network: POST /api/v1/authorities
// {"op": "add", "peer_id": "12D3KooW...", "height": 0}.
func (h *Handler) approve(w http.ResponseWriter, r *http.Request) {
	const example = `{"op": "add", "peer_id": "12D3KooW...", "height": 0}`
	var body struct {
		Op     *string `json:"op"`
		PeerID *string `json:"peer_id"`
		Height uint64  `json:"height"`
	}
	if e := decodeBody(w, r, &body, example); e != nil {
		writeError(w, e)
		return
	}
	if body.Op == nil || (*body.Op != OpAdd && *body.Op != OpRemove) {
		got := "none"
		if body.Op != nil {
			got = strconv.Quote(*body.Op)
		}
		writeError(w, newError(http.StatusBadRequest, CodeBadOp, `op %s: want "add" or "remove", e.g. %s`, got, example))
		return
	}
	if body.PeerID == nil || strings.TrimSpace(*body.PeerID) == "" {
		writeError(w, newError(http.StatusBadRequest, CodeBadPeerID, "peer_id is required: the peer ID of the authority, e.g. %s", example))
		return
	}
	id := strings.TrimSpace(*body.PeerID)
	key, err := netfile.KeyOf(id)
	if err != nil {
		writeError(w, newError(http.StatusBadRequest, CodeBadPeerID, "peer_id: %v", err))
		return
	}
	if kind := h.node.Params().Consensus; kind != chain.Authority {
		writeError(w, newError(http.StatusConflict, CodeNotAuthority,
			"this node's network runs %s consensus and has no authorities; membership changes need an authority network", kind))
		return
	}
	c := bft.Change{Op: bft.OpAdd, Height: body.Height, Key: key}
	if *body.Op == OpRemove {
		c.Op = bft.OpRemove
	}
	// The node refuses a change its authority schedule does not allow:
	// every error is a refusal.
	if err := h.node.Approve(c); err != nil {
		writeError(w, newError(http.StatusConflict, CodeChangeRefused, "%s %s: %v", *body.Op, id, err))
		return
	}
	writeJSON(w, http.StatusAccepted, approveView{changeView: changeView{Op: *body.Op, PeerID: keyPeerID(key), Height: c.Height}, Approved: true})
}

func (h *Handler) syncing() bool { return h.host.Sync().Syncing }

// uintParam parses an optional whole-number query parameter.
func uintParam(q url.Values, name string) (uint64, bool, *apiError) {
	if !q.Has(name) {
		return 0, false, nil
	}
	s := q.Get(name)
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false, newError(http.StatusBadRequest, CodeBadParameter, "%s=%q: want a whole number from 0", name, s)
	}
	return v, true, nil
}

// limitParam parses the page size: DefaultLimit if absent, at least 1,
// lowered to MaxLimit, however large (past 2^64 too). Its errors name the
// range a limit may have (not uintParam's "from 0": 0 is refused too).
func limitParam(q url.Values) (int, *apiError) {
	if !q.Has("limit") {
		return DefaultLimit, nil
	}
	v, err := strconv.ParseUint(q.Get("limit"), 10, 64)
	if errors.Is(err, strconv.ErrRange) { // digits only, past 2^64
		v, err = MaxLimit, nil
	}
	if err != nil || v == 0 {
		return 0, newError(http.StatusBadRequest, CodeBadParameter,
			"limit=%q: want a whole number from 1 to %d (a larger one is lowered to %d)", q.Get("limit"), MaxLimit, MaxLimit)
	}
	return int(min(v, MaxLimit)), nil
}

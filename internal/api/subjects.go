package api

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
)

// subjectListView is the body of GET /api/v1/subjects.
type subjectListView struct {
	Subjects []subjectSummaryView `json:"subjects"`
	Total    int                  `json:"total"` // subjects in the ledger, up to node.MaxSubjectsCounted
	Next     string               `json:"next,omitempty"`
}

// subjectSummaryView is one subject's figures: count, min, mean, max and latest
// over its readings in main-chain blocks; pending counts the others;
// last_seen is the newest time of all (Unix ms).
type subjectSummaryView struct {
	Subject  string             `json:"subject"`
	Count    int                `json:"count"`
	Min      *uint16            `json:"min"`
	Max      *uint16            `json:"max"`
	Mean     *float64           `json:"mean"`
	Latest   *subjectLatestView `json:"latest"`
	LastSeen int64              `json:"last_seen"`
	Pending  int                `json:"pending"`
}

type subjectLatestView struct {
	ID     chain.Hash `json:"id"`
	BPM    uint16     `json:"bpm"`
	Time   int64      `json:"time"`
	Height uint64     `json:"height"`
}

func newSubjectSummaryView(s node.SubjectSummary) subjectSummaryView {
	v := subjectSummaryView{Subject: s.Subject, Count: s.Count, LastSeen: s.LastSeen, Pending: s.Pending}
	if s.Count > 0 {
		mean := math.Round(s.Mean()*10) / 10
		v.Min, v.Max, v.Mean = &s.Min, &s.Max, &mean
		v.Latest = &subjectLatestView{ID: s.Latest.ID, BPM: s.Latest.BPM, Time: s.Latest.Time, Height: s.Latest.Height}
	}
	return v
}

// subjects lists the ledger's subjects in byte order with their figures:
// GET /api/v1/subjects?after=S&limit=N.
func (h *Handler) subjects(w http.ResponseWriter, r *http.Request) {
	var limit int
	q, e := query(r)
	if e == nil {
		limit, e = limitParam(q)
	}
	if e != nil {
		writeError(w, e)
		return
	}
	after := q.Get("after")
	if after != "" {
		if err := chain.CheckSubject(after); err != nil {
			writeError(w, newError(http.StatusBadRequest, CodeBadParameter, "after=%q: %s", after, chain.RuleDetail(err)))
			return
		}
	}
	list, err := h.node.Subjects(after, limit)
	if err != nil {
		writeError(w, h.subjectError(err))
		return
	}
	v := subjectListView{Subjects: make([]subjectSummaryView, 0, len(list.Subjects)), Total: list.Total}
	for _, s := range list.Subjects {
		v.Subjects = append(v.Subjects, newSubjectSummaryView(s))
	}
	if list.More && len(list.Subjects) > 0 {
		v.Next = fmt.Sprintf("/api/v1/subjects?after=%s&limit=%d", url.QueryEscape(list.Subjects[len(list.Subjects)-1].Subject), limit)
	}
	writeJSON(w, http.StatusOK, v)
}

// subject gives one subject's figures: GET /api/v1/subjects/{subject}.
func (h *Handler) subject(w http.ResponseWriter, r *http.Request) {
	subject := r.PathValue("subject")
	if err := chain.CheckSubject(subject); err != nil {
		writeError(w, newError(http.StatusBadRequest, CodeBadSubject, "subject: %s", chain.RuleDetail(err)))
		return
	}
	s, ok, err := h.node.Subject(subject)
	if err != nil {
		writeError(w, h.subjectError(err))
		return
	}
	if !ok {
		writeError(w, notFound(h.syncing(), "no readings of subject %q, pending or in the main chain", subject))
		return
	}
	writeJSON(w, http.StatusOK, newSubjectSummaryView(s))
}

func (h *Handler) subjectError(err error) *apiError {
	if errors.Is(err, node.ErrNoIndex) {
		return newError(http.StatusNotFound, CodeNotSupported, "%v", err)
	}
	return h.readError("reading the subject index failed", err)
}

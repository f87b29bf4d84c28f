package api

import (
	"bytes"
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
)

// maxPending is how many of a subject's pending readings its pages show:
// its newest arrivals. Older ones appear once mined.
const maxPending = 1_000

// query returns r's query parameters, refusing one given more than once:
// no parameter of the API takes several values, and taking the first (or
// the last) of two would answer a question the client may not have meant.
func query(r *http.Request) (url.Values, *apiError) {
	q := r.URL.Query()
	for name, vs := range q {
		if len(vs) > 1 {
			return nil, newError(http.StatusBadRequest, CodeBadParameter,
				"%s is given %d times (%s): give it once", name, len(vs), strings.Join(quoteAll(vs), ", "))
		}
	}
	return q, nil
}

func quoteAll(vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = strconv.Quote(v)
	}
	return out
}

// SubjectSegment is subject as one path segment (for clients too, such as
// the readings command). The subjects "." and ".."
// are valid, but as themselves they would be read as the current and parent
// directory: clients and Go's ServeMux clean them out of the path (a
// redirect to another endpoint). Percent-encoded they reach the handler
// as the subject.
func SubjectSegment(subject string) string {
	switch subject {
	case ".":
		return "%2E"
	case "..":
		return "%2E%2E"
	}
	return url.PathEscape(subject)
}

// pageCursor is where a page of a subject's readings starts. The pages list
// the subject's pending readings first, then its main-chain readings, so a
// cursor is either after a pending reading (the last one a page showed:
// its time and id, not its place in a list, so that readings mined or
// added meanwhile make the next page skip or repeat none of the others) or
// a position in the main chain.
type pageCursor struct {
	pending bool
	time    int64      // pending: the last reading shown's time
	id      chain.Hash // and id
	pos     node.ReadingPos
}

// String is the cursor as a next link carries it: "HEIGHT.INDEX" in the
// main chain, "pTIME.ID" after a pending reading.
func (c pageCursor) String() string {
	if c.pending {
		return fmt.Sprintf("p%d.%s", c.time, c.id)
	}
	return formatCursor(c.pos)
}

// after is the cursor of the page that follows pending reading rd.
func after(rd *chain.Reading) pageCursor {
	return pageCursor{pending: true, time: rd.Time, id: rd.ID()}
}

// parseCursor parses the cursor of a next link (see pageCursor.String).
func parseCursor(s string) (pageCursor, *apiError) {
	bad := newError(http.StatusBadRequest, CodeBadParameter, "cursor=%q: use the next link of the previous page", s)
	if rest, ok := strings.CutPrefix(s, "p"); ok {
		ts, ids, ok := strings.Cut(rest, ".")
		t, err1 := strconv.ParseInt(ts, 10, 64)
		id, err2 := chain.ParseHash(ids)
		if !ok || err1 != nil || err2 != nil {
			return pageCursor{}, bad
		}
		return pageCursor{pending: true, time: t, id: id}, nil
	}
	hs, is, ok := strings.Cut(s, ".")
	if !ok {
		return pageCursor{}, bad
	}
	height, err1 := strconv.ParseUint(hs, 10, 64)
	index, err2 := strconv.ParseUint(is, 10, 16)
	if err1 != nil || err2 != nil || index > chain.MaxReadingsLimit {
		return pageCursor{}, bad
	}
	return pageCursor{pos: node.ReadingPos{Height: height, Index: int(index)}}, nil
}

// formatCursor is the cursor of a next link that starts at p in the main
// chain, as parseCursor reads it.
func formatCursor(p node.ReadingPos) string { return fmt.Sprintf("%d.%d", p.Height, p.Index) }

// pendingPage returns up to n of the subject's pending readings (among its
// maxPending newest arrivals) that keep accepts (nil: all), newest time
// first and by id for equal times, after c (from the first when c is nil),
// and whether more follow. The order is by the readings' own fields, so it
// is the same at every request whatever arrived or was mined in between.
func (h *Handler) pendingPage(subject string, c *pageCursor, n int, keep func(int64) bool) ([]chain.Reading, bool) {
	type keyed struct {
		r  chain.Reading
		id chain.Hash
	}
	all := h.node.PendingOf(subject, maxPending)
	ks := make([]keyed, 0, len(all))
	for _, r := range all {
		if keep != nil && !keep(r.Time) {
			continue
		}
		id := r.ID()
		if c != nil && (r.Time > c.time || r.Time == c.time && bytes.Compare(id[:], c.id[:]) <= 0) {
			continue // on an earlier page
		}
		ks = append(ks, keyed{r, id})
	}
	slices.SortFunc(ks, func(a, b keyed) int {
		if a.r.Time != b.r.Time {
			return cmp.Compare(b.r.Time, a.r.Time)
		}
		return bytes.Compare(a.id[:], b.id[:])
	})
	out := make([]chain.Reading, 0, min(n, len(ks)))
	for _, k := range ks[:min(n, len(ks))] {
		out = append(out, k.r)
	}
	return out, len(ks) > n
}

package fhir

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Bundle is a FHIR Bundle of Observations.
type Bundle struct {
	ResourceType string  `json:"resourceType"`
	Type         string  `json:"type"`
	Timestamp    string  `json:"timestamp,omitempty"`
	Total        *int    `json:"total,omitempty"`
	Link         []Link  `json:"link,omitempty"`
	Entry        []Entry `json:"entry,omitempty"`
}

// Link is a link of a Bundle: self, next.
type Link struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

// Entry is an entry of a Bundle.
type Entry struct {
	FullURL  string       `json:"fullUrl,omitempty"`
	Resource *Observation `json:"resource"`
	Search   *EntrySearch `json:"search,omitempty"`
}

// EntrySearch says why an entry is in a searchset.
type EntrySearch struct {
	Mode string `json:"mode"`
}

// SearchBundle returns the searchset Bundle of one page of search s: the
// Observations obs, total matches in all (-1 when not known), and next, the
// cursor of the following page ("" for the last page). base is the
// server's FHIR base URL (BaseURL); now is the Bundle's timestamp.
func SearchBundle(base string, s Search, obs []Observation, total int, next string, now time.Time) Bundle {
	b := Bundle{ResourceType: "Bundle", Type: "searchset", Timestamp: Instant(now.UnixMilli())}
	if total >= 0 {
		b.Total = &total
	}
	b.Link = []Link{{Relation: "self", URL: s.URL(base)}}
	if next != "" {
		n := s
		n.Cursor = next
		b.Link = append(b.Link, Link{Relation: "next", URL: n.URL(base)})
	}
	for i := range obs {
		b.Entry = append(b.Entry, Entry{FullURL: base + "/Observation/" + obs[i].ID, Resource: &obs[i], Search: &EntrySearch{Mode: "match"}})
	}
	return b
}

// BaseURL returns the FHIR base URL of the server that r came to: its
// scheme and host, then /fhir, the URL a client follows links from (a
// Bundle's next link, each entry's fullUrl). Behind a reverse proxy that
// is the proxy's: a proxy's Forwarded (RFC 7239: its first element's proto
// and host), then X-Forwarded-Proto and X-Forwarded-Host (the first, the
// client's) over it, and X-Forwarded-Prefix (the path the proxy serves the
// node's root under) are believed. They name no more than where the client says it came from,
// and only links in the answer to that client change.
func BaseURL(r *http.Request) string {
	scheme, host, prefix := "http", r.Host, ""
	if r.TLS != nil {
		scheme = "https"
	}
	if p, h := forwarded(r.Header.Get("Forwarded")); p != "" || h != "" {
		scheme, host = cmp.Or(p, scheme), cmp.Or(h, host)
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
		scheme = p
	}
	if h := firstValue(r.Header.Get("X-Forwarded-Host")); validHost(h) {
		host = h
	}
	if p := strings.TrimRight(firstValue(r.Header.Get("X-Forwarded-Prefix")), "/"); validPrefix(p) {
		prefix = p
	}
	return scheme + "://" + host + prefix + "/fhir"
}

// forwarded returns the proto and host of a Forwarded header's first
// element (the proxy nearest the client), each "" if absent or not valid.
// Quoted values are read whole (a ; or , inside quotes ends nothing).
func forwarded(v string) (proto, host string) {
	for _, pair := range forwardedPairs(v) {
		k, val, _ := strings.Cut(pair, "=")
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			val = val[1 : len(val)-1]
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "proto":
			if val == "http" || val == "https" {
				proto = val
			}
		case "host":
			if validHost(val) {
				host = val
			}
		}
	}
	return proto, host
}

// forwardedPairs splits the first element of a Forwarded header into its
// name=value pairs, at the semicolons outside quotes.
func forwardedPairs(v string) []string {
	var pairs []string
	start, quoted := 0, false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"':
			quoted = !quoted
		case c == '\\' && quoted:
			i++ // an escaped character inside quotes
		case (c == ';' || c == ',') && !quoted:
			pairs = append(pairs, strings.TrimSpace(v[start:i]))
			if c == ',' {
				return pairs
			}
			start = i + 1
		}
	}
	return append(pairs, strings.TrimSpace(v[start:]))
}

// firstValue is the first of a comma-separated header's values, trimmed.
func firstValue(v string) string {
	first, _, _ := strings.Cut(v, ",")
	return strings.TrimSpace(first)
}

// validHost reports whether h is a host name, an IPv4 address or a
// bracketed IPv6 address, with an optional port: nothing a link could be
// bent with (quotes, angle brackets, a user, a path).
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	host, port := h, ""
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		host, port = h[:i], h[i+1:]
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return false
		}
	}
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		ip, err := netip.ParseAddr(host[1 : len(host)-1])
		return err == nil && ip.Is6() && !ip.Is4In6()
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// validPrefix reports whether p is a path prefix of plain segments, such
// as /ledger or /clinic/p2pchain.
func validPrefix(p string) bool {
	if !strings.HasPrefix(p, "/") || len(p) > 200 {
		return false
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for _, c := range seg {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-._~", c)) {
				return false
			}
		}
	}
	return true
}

// BundleWriter writes a Bundle entry by entry, so that a Bundle of any
// size never has to be in memory: NewBundleWriter writes its head, Add an
// entry, Close its tail.
type BundleWriter struct {
	w      io.Writer
	base   string
	typ    string
	n      int
	buf    bytes.Buffer
	enc    *json.Encoder
	err    error
	closed bool
}

// NewBundleWriter starts a Bundle of type typ ("collection" or
// "searchset") with timestamp now on w. With base (a FHIR base URL) each
// entry's fullUrl is base/Observation/ID; without, entries have none
// (allowed in a collection).
func NewBundleWriter(w io.Writer, typ, base string, now time.Time) (*BundleWriter, error) {
	if typ != "collection" && typ != "searchset" {
		return nil, errors.New("fhir: bundle type must be collection or searchset")
	}
	bw := &BundleWriter{w: w, base: strings.TrimRight(base, "/"), typ: typ}
	bw.enc = json.NewEncoder(&bw.buf)
	bw.enc.SetEscapeHTML(false)
	_, bw.err = io.WriteString(w, `{"resourceType":"Bundle","type":"`+typ+`","timestamp":"`+Instant(now.UnixMilli())+`"`)
	return bw, bw.err
}

// Add writes one entry.
func (bw *BundleWriter) Add(o *Observation) error {
	if bw.err != nil {
		return bw.err
	}
	e := Entry{Resource: o}
	if bw.base != "" {
		e.FullURL = bw.base + "/Observation/" + o.ID
	}
	if bw.typ == "searchset" {
		e.Search = &EntrySearch{Mode: "match"}
	}
	bw.buf.Reset()
	if bw.n == 0 {
		bw.buf.WriteString(",\"entry\":[\n")
	} else {
		bw.buf.WriteString(",\n")
	}
	if bw.err = bw.enc.Encode(e); bw.err != nil {
		return bw.err
	}
	bw.buf.Truncate(bw.buf.Len() - 1) // the encoder's newline
	_, bw.err = bw.w.Write(bw.buf.Bytes())
	bw.n++
	return bw.err
}

// Count returns the entries written.
func (bw *BundleWriter) Count() int { return bw.n }

// Close ends the Bundle; a searchset gets its total, the number of
// entries. It does not close the underlying writer.
func (bw *BundleWriter) Close() error {
	if bw.err != nil || bw.closed {
		return bw.err
	}
	bw.closed = true
	tail := ""
	if bw.n > 0 {
		tail = "\n]" // FHIR's JSON has no empty arrays: no "entry" without entries
	}
	if bw.typ == "searchset" {
		tail += `,"total":` + strconv.Itoa(bw.n)
	}
	tail += "}\n"
	_, bw.err = io.WriteString(bw.w, tail)
	return bw.err
}

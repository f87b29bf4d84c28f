package fhir

import (
	"errors"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// The page sizes of a search (_count).
const (
	DefaultCount = 20
	MaxCount     = 100
)

// The orders of a search (_sort).
const (
	SortDate     = "date"
	SortDateDesc = "-date"
)

// Search is a parsed search of Observations: GET /fhir/Observation?...
type Search struct {
	Subject string // the subject whose readings to find
	// From and Before bound the readings' times, in Unix milliseconds:
	// From <= time < Before. math.MinInt64 and math.MaxInt64 when unbounded.
	From, Before int64
	Count        int    // page size, 1 to MaxCount
	Cursor       string // where the page starts: the _cursor of a next link ("" for the first page)
	// Sort is the order of the readings: "" for the ledger's (pending
	// first, then by block, newest block first), SortDate (by time, oldest
	// first) or SortDateDesc (newest first); equal times by id.
	Sort string
	// None is set when a code or category parameter names something no
	// reading is (they are all heart rates, vital signs): nothing matches.
	None bool
	// Codes and Categories are the code and category parameters as given,
	// in order (unescaped as they came), so that the search's links
	// repeat them.
	Codes, Categories []string
	// beyond are the date parameters that no time can match (after the
	// year 9999), which From and Before cannot hold: links repeat them.
	beyond []string
}

// Matches reports whether a reading of the search's subject taken at ms
// (Unix milliseconds) matches the search's other criteria.
func (s *Search) Matches(ms int64) bool {
	return !s.None && ms >= s.From && ms < s.Before
}

// Empty reports whether no reading can match: None, or dates that leave no
// time a reading can have (an empty window, or one that ends by 1970:
// readings are taken after it). A server answers it with an empty Bundle
// without reading anything; the search's links still say what was asked.
func (s *Search) Empty() bool {
	return s.None || s.From >= s.Before || s.Before <= 1
}

// Query returns the search's parameters in a canonical form, as the links
// of a searchset Bundle carry them.
func (s *Search) Query() url.Values {
	q := url.Values{}
	subject := escapeValue(s.Subject)
	if strings.HasPrefix(subject, "Patient/") { // a subject named so: ParseSearch strips one
		subject = "Patient/" + subject
	}
	q.Set("subject", subject)
	if s.From != math.MinInt64 {
		q.Add("date", "ge"+Instant(s.From))
	}
	if s.Before != math.MaxInt64 {
		q.Add("date", "lt"+Instant(s.Before))
	}
	for _, d := range s.beyond {
		q.Add("date", d)
	}
	for _, c := range s.Codes {
		q.Add("code", c)
	}
	for _, c := range s.Categories {
		q.Add("category", c)
	}
	q.Set("_count", strconv.Itoa(s.Count))
	if s.Sort != "" {
		q.Set("_sort", s.Sort)
	}
	if s.Cursor != "" {
		q.Set("_cursor", s.Cursor)
	}
	return q
}

// URL returns the search's URL under the server's FHIR base URL (see
// BaseURL).
func (s *Search) URL(base string) string {
	return base + "/Observation?" + s.Query().Encode()
}

var (
	// A position in the main chain, or after a pending reading (its time
	// and id), or, for a sorted search, after a reading (its time and id).
	cursorRE = regexp.MustCompile(`^(?:[0-9]{1,20}\.[0-9]{1,10}|[pt]-?[0-9]{1,19}\.[0-9a-f]{64})$`)
	dateRE   = regexp.MustCompile(`^([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2})(?:T([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]+))?)?(Z|[+-][0-9]{2}:[0-9]{2}))?)?)?$`)
)

// ParseSearch parses the parameters of a search of Observations:
//
//	subject=S, subject=Patient/S, subject:identifier=[urn:p2pchain:subject|]S
//	                     the subject (required, once); patient=...,
//	                     patient:identifier=... are read alike
//	date=[eq|ge|gt|le|lt]VALUE
//	                     the reading's time, repeated for a range; VALUE is
//	                     a year, month, day, minute, second or fraction,
//	                     in UTC unless it gives its zone
//	code=[http://loinc.org|]8867-4, category=[...|]vital-signs
//	                     accepted; any other code or category matches nothing
//	_count=N             page size, default DefaultCount, lowered to MaxCount
//	_sort=date, -date    by the reading's time, oldest or newest first
//	_cursor=C            the page, from a next link
//	_format=json         (or application/json, application/fhir+json)
//
// Any other parameter, prefix, modifier or a comma (several values) is an
// *Error naming it: a server that ignored a filter it does not know would
// answer with readings that the client did not ask for. So is _count,
// _cursor, _sort or _format given twice: which one to take is the
// client's to say. A sort by anything but the date is refused too.
func ParseSearch(q url.Values) (Search, error) {
	s := Search{From: math.MinInt64, Before: math.MaxInt64, Count: DefaultCount}
	subjects := 0
	for name, values := range q {
		if err := once(name, values); err != nil {
			return s, err
		}
		for _, v := range values {
			var err error
			switch name {
			case "subject", "subject:Patient", "patient":
				subjects++
				s.Subject, err = parseSubject(name, v, strings.TrimPrefix(v, "Patient/"))
			case "subject:identifier", "patient:identifier":
				subjects++
				value := v
				if sys, val, ok := cutUnescaped(v, '|'); ok {
					if sys != SystemSubject && sys != "" {
						return s, Errorf(http.StatusBadRequest, "not-supported", "%s=%s: subjects are identified in system %s", name, v, SystemSubject)
					}
					value = val
				}
				s.Subject, err = parseSubject(name, v, value)
			case "date":
				err = s.parseDate(v)
			case "code", "category":
				// A comma is several values, one of which might match:
				// refused as FHIR's other lists are, not read as one
				// code that matches nothing.
				if _, _, several := cutUnescaped(v, ','); several {
					return s, Errorf(http.StatusBadRequest, "not-supported",
						"%s=%s: several values in one parameter (a comma) are not supported; give one (every reading is code %s|%s, category vital-signs)",
						name, v, SystemLOINC, LOINCHeartRate)
				}
				if name == "code" {
					s.None = s.None || !tokenIs(v, SystemLOINC, LOINCHeartRate)
					s.Codes = append(s.Codes, v)
				} else {
					s.None = s.None || !tokenIs(v, SystemObservationCategory, "vital-signs")
					s.Categories = append(s.Categories, v)
				}
			case "_count":
				n, cerr := strconv.ParseUint(v, 10, 64)
				if errors.Is(cerr, strconv.ErrRange) { // digits only, past 2^64: over MaxCount like 101
					n, cerr = MaxCount, nil
				}
				if cerr != nil || n < 1 {
					return s, Errorf(http.StatusBadRequest, "invalid", "_count=%s: want a whole number from 1 to %d (a larger one is lowered to %d)", v, MaxCount, MaxCount)
				}
				s.Count = int(min(n, MaxCount))
			case "_sort":
				s.Sort, err = parseSort(v)
			case "_cursor":
				if !cursorRE.MatchString(v) {
					return s, Errorf(http.StatusBadRequest, "invalid", "_cursor=%s: follow the next link of the previous page", v)
				}
				s.Cursor = v
			case "_format":
				err = checkFormat(v)
			default:
				if strings.HasPrefix(name, "_sort:") { // STU3's _sort:asc=date
					return s, Errorf(http.StatusBadRequest, "not-supported",
						"%s=%s: FHIR R4 writes a sort as _sort=date (oldest first) or _sort=-date (newest first)", name, v)
				}
				return s, Errorf(http.StatusBadRequest, "not-supported",
					"unknown search parameter %q: this server supports subject (or patient, alike), date, code, category, _count, _sort and _format on Observation", name)
			}
			if err != nil {
				return s, err
			}
		}
	}
	switch {
	case subjects == 0 && s.Sort != "":
		// Sorting the whole ledger would cost its size: the node sorts
		// one subject's readings, from its index by subject and time.
		return s, Errorf(http.StatusBadRequest, "required",
			"subject is required, also with _sort: this server sorts one subject's readings (Observation?subject=SUBJECT&_sort=%s)", s.Sort)
	case subjects == 0:
		return s, Errorf(http.StatusBadRequest, "required", "subject is required: Observation?subject=SUBJECT")
	case subjects > 1:
		return s, Errorf(http.StatusBadRequest, "not-supported", "give one subject: searching several at once is not supported")
	}
	return s, nil
}

// once refuses a search parameter that takes one value given several
// times.
func once(name string, values []string) error {
	switch name {
	case "_count", "_cursor", "_sort", "_format":
		if len(values) > 1 {
			return Errorf(http.StatusBadRequest, "invalid", "%s is given %d times (%s): give it once", name, len(values), strings.Join(values, ", "))
		}
	}
	return nil
}

// parseSort reads a _sort value: one key, date or -date.
func parseSort(v string) (string, error) {
	switch v {
	case SortDate, SortDateDesc:
		return v, nil
	}
	return "", Errorf(http.StatusBadRequest, "not-supported",
		"_sort=%s: this server sorts Observations by date only, by one key: _sort=date (oldest first) or _sort=-date (newest first)", v)
}

// CheckFormat checks the _format parameters of any FHIR request: JSON is
// all this server writes, so another format is 406, and _format given
// twice is 400.
func CheckFormat(q url.Values) error {
	vs := q["_format"]
	if err := once("_format", vs); err != nil {
		return err
	}
	for _, v := range vs {
		if err := checkFormat(v); err != nil {
			return err
		}
	}
	return nil
}

// checkFormat checks one _format value. The "+" of application/fhir+json
// typed without percent-encoding arrives as a space, and is understood.
func checkFormat(v string) error {
	switch strings.ReplaceAll(v, " ", "+") {
	case "json", "application/json", ContentType:
		return nil
	}
	return Errorf(http.StatusNotAcceptable, "not-supported", "_format=%s: this server speaks JSON only: give _format=json or application/fhir+json, or none", v)
}

// parseSubject checks the subject of parameter name=v, given as value
// (escaped).
func parseSubject(name, v, value string) (string, error) {
	if _, _, several := cutUnescaped(value, ','); several {
		return "", Errorf(http.StatusBadRequest, "not-supported", "%s=%s: several subjects (a comma) are not supported; escape a comma in a subject as \\,", name, v)
	}
	subject, ok := unescapeValue(value)
	if !ok {
		return "", Errorf(http.StatusBadRequest, "invalid", `%s=%s: a backslash escapes only \, \| \$ or \\ in a search value; write a backslash of the subject as \\`, name, v)
	}
	if err := chain.CheckSubject(subject); err != nil {
		return "", Errorf(http.StatusBadRequest, "invalid", "%s=%s: not a subject: %s", name, v, chain.RuleDetail(err))
	}
	return subject, nil
}

// tokenIs reports whether the token search value v ([system|]code) names
// code of system.
func tokenIs(v, system, code string) bool {
	if sys, c, ok := strings.Cut(v, "|"); ok {
		return (sys == "" || sys == system) && c == code
	}
	return v == code
}

// parseDate narrows s by one date parameter.
func (s *Search) parseDate(v string) error {
	bad := func(why string) error {
		return Errorf(http.StatusBadRequest, "invalid", "date=%s: %s", v, why)
	}
	prefix, value := "eq", v
	if len(v) >= 2 && v[0] >= 'a' && v[0] <= 'z' {
		prefix, value = v[:2], v[2:]
	}
	switch prefix {
	case "eq", "ge", "gt", "le", "lt":
	case "ne", "sa", "eb", "ap":
		return Errorf(http.StatusBadRequest, "not-supported", "date=%s: prefix %s is not supported (use eq, ge, gt, le or lt)", v, prefix)
	default:
		return bad("want [eq|ge|gt|le|lt] and a date such as 2026-06-01 or 2026-06-01T10:00:00Z")
	}
	if strings.Contains(value, ",") {
		return Errorf(http.StatusBadRequest, "not-supported", "date=%s: several values (a comma) are not supported; repeat date for a range", v)
	}
	// A "+" of a zone that was not percent-encoded arrives as a space.
	if i := strings.LastIndexByte(value, ' '); i > 0 && len(value)-i == 6 {
		value = value[:i] + "+" + value[i+1:]
	}
	lo, hi, err := dateRange(value)
	if err != nil {
		return bad(err.Error())
	}
	if hi == math.MaxInt64 && prefix == "gt" { // after the year 9999: nothing
		s.None = true
		s.beyond = append(s.beyond, "gt"+value)
		return nil
	}
	switch prefix {
	case "eq":
		s.From, s.Before = max(s.From, lo), min(s.Before, hi)
	case "ge":
		s.From = max(s.From, lo)
	case "gt":
		s.From = max(s.From, hi)
	case "le":
		s.Before = min(s.Before, hi)
	case "lt":
		s.Before = min(s.Before, lo)
	}
	return nil
}

// dateRange returns the times, in Unix milliseconds, that a FHIR date,
// dateTime or instant covers at its precision: [lo, hi).
func dateRange(v string) (lo, hi int64, err error) {
	m := dateRE.FindStringSubmatch(v)
	if m == nil {
		if noZoneRE.MatchString(v) {
			return 0, 0, errNoZone
		}
		return 0, 0, errBadDate
	}
	num := func(s string, def int) int {
		if s == "" {
			return def
		}
		n, _ := strconv.Atoi(s)
		return n
	}
	year, month, day := num(m[1], 0), num(m[2], 1), num(m[3], 1)
	hour, minute, sec := num(m[4], 0), num(m[5], 0), num(m[6], 0)
	if month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 59 {
		return 0, 0, errBadDate
	}
	loc := time.UTC
	if z := m[8]; z != "" && z != "Z" {
		zh, zm := num(z[1:3], 0), num(z[4:6], 0)
		// No zone is more than 14 hours off UTC: a larger offset is a
		// typing error, which would silently move the window by days.
		if zh > 14 || zm > 59 {
			return 0, 0, Errorf(http.StatusBadRequest, "invalid", "zone offset %s: want hours 00 to 14 and minutes 00 to 59, such as Z or +01:00", z)
		}
		off := zh*3600 + zm*60
		if z[0] == '-' {
			off = -off
		}
		loc = time.FixedZone(z, off)
	}
	ns := 0
	if frac := m[7]; frac != "" {
		ns = num((frac + "000000000")[:9], 0)
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, ns, loc)
	if t.Day() != day || t.UTC().Year() < 1 { // 2025-02-30; FHIR has no year 0
		return 0, 0, errBadDate
	}
	var end time.Time
	switch {
	case m[2] == "":
		end = t.AddDate(1, 0, 0)
	case m[3] == "":
		end = t.AddDate(0, 1, 0)
	case m[4] == "":
		end = t.AddDate(0, 0, 1)
	case m[6] == "":
		end = t.Add(time.Minute)
	case m[7] == "":
		end = t.Add(time.Second)
	default:
		step := time.Millisecond
		for i := len(m[7]); i < 3; i++ {
			step *= 10
		}
		t = t.Truncate(time.Millisecond)
		end = t.Add(step)
	}
	if end.Year() > 9999 { // past what FHIR's dates can write: unbounded
		return t.UnixMilli(), math.MaxInt64, nil
	}
	return t.UnixMilli(), end.UnixMilli(), nil
}

var (
	errBadDate = Errorf(http.StatusBadRequest, "invalid",
		"not a date: want YYYY, YYYY-MM, YYYY-MM-DD, or a time of day with its zone: YYYY-MM-DDThh:mm, YYYY-MM-DDThh:mm:ss or YYYY-MM-DDThh:mm:ss.fff followed by Z or +hh:mm (or -hh:mm)")
	errNoZone = Errorf(http.StatusBadRequest, "invalid",
		"a time of day needs its zone: add Z (UTC) or an offset such as +01:00 (2026-06-01T10:00:00Z)")
	// noZoneRE is a date with a time of day but no zone.
	noZoneRE = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?$`)
)

// cutUnescaped cuts s at the first sep not escaped with a backslash.
func cutUnescaped(s string, sep byte) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// unescapeValue undoes FHIR's escapes of search values: \, \| \$ \\. A
// backslash before anything else, or at the end, is no escape: false (it
// was dropped, and the search was for another subject than the one typed).
func unescapeValue(s string) (string, bool) {
	if !strings.Contains(s, `\`) {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			if i+1 == len(s) || !strings.ContainsRune(`,|$\`, rune(s[i+1])) {
				return "", false
			}
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String(), true
}

// escapeValue escapes the characters FHIR search values reserve.
func escapeValue(s string) string { return valueEscaper.Replace(s) }

var valueEscaper = strings.NewReplacer(`\`, `\\`, `,`, `\,`, `|`, `\|`, `$`, `\$`)

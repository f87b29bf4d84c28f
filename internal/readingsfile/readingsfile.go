// Package readingsfile reads files of readings to import: CSV
// (subject,bpm[,time]) or a FHIR Bundle of heart-rate Observations
// (package fhir). It checks each row as far as a client can without the
// chain (the subject, the BPM range, the time's form) and reports every bad
// row with its line or entry number, so that a file is fixed in one pass.
// It does no I/O but ReadFile's.
package readingsfile

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/fhir"
)

// Limits of a file to import.
const (
	MaxFileSize = fhir.MaxBundleSize    // bytes
	MaxRows     = fhir.MaxBundleEntries // rows or entries
)

// Format is the format of a file of readings.
type Format int

// The formats.
const (
	CSV Format = iota
	FHIR
)

func (f Format) String() string {
	if f == FHIR {
		return "FHIR Bundle"
	}
	return "CSV"
}

// Row is one reading to submit.
type Row struct {
	Where   string // "line 7" (CSV) or "entry 3" (FHIR), for messages
	Subject string
	BPM     int
	Time    time.Time // when it was taken; zero: when the node receives it
	// Author and Sig (hex), from a FHIR Bundle that carries them (an
	// export): the reading as its author signed it, submitted as it is so
	// that it keeps its id (fhir.Row).
	Author, Sig string
}

// RowError says why a row cannot be imported.
type RowError struct {
	Where string
	Msg   string
}

func (e RowError) Error() string { return e.Where + ": " + e.Msg }

// File is a parsed file: its good rows, in file order, and its bad ones.
type File struct {
	Format Format
	Rows   []Row
	Bad    []RowError
}

// Detect returns the format of a file named name holding data: by its
// extension (.json and .fhir are FHIR, .csv and .txt CSV), else by its
// content (a JSON object is FHIR).
func Detect(name string, data []byte) Format {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".json", ".fhir":
		return FHIR
	case ".csv", ".txt":
		return CSV
	}
	if t := bytes.TrimLeft(bytes.TrimPrefix(data, bom), " \t\r\n"); len(t) > 0 && t[0] == '{' {
		return FHIR
	}
	return CSV
}

var bom = []byte("\xef\xbb\xbf")

// ReadFile reads and parses the file at path, refusing one over
// MaxFileSize.
func ReadFile(path string) (File, error) {
	f, err := os.Open(path)
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	return Read(path, f)
}

// Read parses the file named name (for Detect) from r, refusing more than
// MaxFileSize bytes.
func Read(name string, r io.Reader) (File, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return File{}, err
	}
	if len(data) > MaxFileSize {
		return File{}, fmt.Errorf("%s: more than %d MiB: split it", name, MaxFileSize>>20)
	}
	return Parse(name, data)
}

// Parse parses data, the content of the file named name. The error is for
// a file that holds no rows it can read at all (not a Bundle, too many
// rows, empty); bad rows are in File.Bad.
func Parse(name string, data []byte) (File, error) {
	f := File{Format: Detect(name, data)}
	if f.Format == FHIR {
		rows, bad := fhir.ParseBundle(bytes.TrimPrefix(data, bom))
		if len(bad) == 1 && bad[0].Entry == 0 {
			return f, errors.New(bad[0].Error())
		}
		for _, r := range rows {
			f.Rows = append(f.Rows, Row{Where: fmt.Sprintf("entry %d", r.Entry), Subject: r.Subject, BPM: r.BPM, Time: r.Time,
				Author: r.Author, Sig: r.Sig})
		}
		for _, b := range bad {
			f.Bad = append(f.Bad, RowError{Where: fmt.Sprintf("entry %d", b.Entry), Msg: b.Msg})
		}
	} else {
		var err error
		if f.Rows, f.Bad, err = ParseCSV(data); err != nil {
			return f, err
		}
	}
	if len(f.Rows)+len(f.Bad) == 0 {
		return f, errors.New("no readings in the file")
	}
	return f, nil
}

// ParseCSV parses CSV rows subject,bpm[,time], with or without a header
// row (which may name the columns subject, bpm and time in any order);
// time is RFC 3339 or Unix milliseconds, and empty or absent for "when the
// node receives it". Blank lines are skipped. The error is for a file with
// more than MaxRows rows.
func ParseCSV(data []byte) ([]Row, []RowError, error) {
	cr := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, bom)))
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	var (
		rows  []Row
		bad   []RowError
		first = true
		cols  columns // from a header row, if any
	)
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if pe, ok := errors.AsType[*csv.ParseError](err); ok {
			bad = append(bad, RowError{Where: fmt.Sprintf("line %d", pe.Line), Msg: "not CSV: " + pe.Err.Error()})
			if len(bad) > MaxRows {
				return nil, nil, fmt.Errorf("more than %d bad rows", MaxRows)
			}
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		line, _ := cr.FieldPos(0)
		where := fmt.Sprintf("line %d", line)
		if first {
			first = false
			if c, ok, msg := headerColumns(rec); ok || msg != "" {
				if msg != "" {
					// Not a row of readings either: say what a header
					// must be, not "bpm is not a whole number".
					bad = append(bad, RowError{Where: where, Msg: msg})
					continue
				}
				if !slices.Equal(c, columns{0, 1, 2}) && !slices.Equal(c, columns{0, 1, -1}) {
					cols = c // in the file's order otherwise
				}
				continue
			}
		}
		if len(rows)+len(bad) >= MaxRows {
			return nil, nil, fmt.Errorf("more than %d rows: split the file", MaxRows)
		}
		if cols != nil {
			var msg string
			if rec, msg = cols.order(rec); msg != "" {
				bad = append(bad, RowError{Where: where, Msg: msg})
				continue
			}
		}
		r, msg := parseRecord(rec)
		if msg != "" {
			bad = append(bad, RowError{Where: where, Msg: msg})
			continue
		}
		r.Where = where
		rows = append(rows, r)
	}
	return rows, bad, nil
}

func norm(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// columns maps a header's columns to subject, bpm and time: the index of
// each in a record (time -1 if absent).
type columns []int

// order returns rec's fields as subject, bpm[, time]: a time column the
// row stops before is absent ("when the node receives it"); a row with
// more fields than the header names is refused.
func (c columns) order(rec []string) ([]string, string) {
	width := 0
	for _, i := range c {
		width = max(width, i+1)
	}
	if len(rec) > width {
		return nil, fmt.Sprintf("%d fields, and the header names %d", len(rec), width)
	}
	out := make([]string, 0, 3)
	for k, i := range c {
		switch {
		case i < 0, k == 2 && i >= len(rec):
			continue
		case i >= len(rec):
			return nil, fmt.Sprintf("%d fields: no %s", len(rec), [...]string{"subject", "bpm"}[k])
		}
		out = append(out, rec[i])
	}
	return out, ""
}

// headerColumns reads a first row as a header: the columns subject, bpm
// and optionally time, named in any order (ok). A first row whose fields
// hold no number at all is taken for a header with other names: msg says
// which names it wants. Otherwise it is a row of readings.
func headerColumns(rec []string) (c columns, ok bool, msg string) {
	c = columns{-1, -1, -1}
	named := true
	for i, f := range rec {
		switch norm(f) {
		case "subject":
			named = named && c[0] < 0
			c[0] = i
		case "bpm":
			named = named && c[1] < 0
			c[1] = i
		case "time":
			named = named && c[2] < 0
			c[2] = i
		default:
			named = false
		}
	}
	if named && c[0] >= 0 && c[1] >= 0 {
		return c, true, ""
	}
	for _, f := range rec {
		if _, err := strconv.ParseFloat(strings.TrimSpace(f), 64); err == nil {
			return nil, false, "" // a row of readings (parseRecord judges it: "72.5" is no bpm)
		}
	}
	return nil, false, fmt.Sprintf("header %q: want the columns subject, bpm and optionally time, named so, in any order", strings.Join(rec, ","))
}

// parseRecord reads one CSV record, or says what is wrong with it.
func parseRecord(rec []string) (Row, string) {
	var r Row
	if len(rec) < 2 || len(rec) > 3 {
		plural := "s"
		if len(rec) == 1 {
			plural = ""
		}
		return r, fmt.Sprintf("%d field%s, want subject,bpm[,time]", len(rec), plural)
	}
	r.Subject = strings.TrimSpace(rec[0])
	if err := chain.CheckSubject(r.Subject); err != nil {
		return r, fmt.Sprintf("subject %q: %s", r.Subject, chain.RuleDetail(err))
	}
	bpm := strings.TrimSpace(rec[1])
	n, err := strconv.Atoi(bpm)
	if err != nil {
		return r, fmt.Sprintf("bpm %q is not a whole number", bpm)
	}
	if n < chain.MinBPM || n > chain.MaxBPM {
		return r, fmt.Sprintf("bpm %d is outside %d-%d", n, chain.MinBPM, chain.MaxBPM)
	}
	r.BPM = n
	if len(rec) == 3 {
		t, msg := parseTime(strings.TrimSpace(rec[2]))
		if msg != "" {
			return r, msg
		}
		r.Time = t
	}
	return r, ""
}

// LooksLikeSeconds reports whether a time given as a whole number of Unix
// milliseconds is a client's Unix seconds: before 1973 in milliseconds
// (and so before any network's genesis), 1973 to 5138 in seconds. The API
// and the import both say so, with the value in milliseconds.
func LooksLikeSeconds(ms int64) bool { return ms < 100_000_000_000 }

// ParseRFC3339 parses an RFC 3339 time, with the forms its section 5.6
// allows beside the usual one: a lower-case t or z, and a space between
// the date and the time (2026-06-01 08:00:00z). The API and the import read
// times with it.
func ParseRFC3339(s string) (time.Time, error) {
	if len(s) > 10 && (s[10] == 't' || s[10] == ' ') {
		s = s[:10] + "T" + s[11:]
	}
	if strings.HasSuffix(s, "z") {
		s = s[:len(s)-1] + "Z"
	}
	return time.Parse(time.RFC3339Nano, s)
}

// parseTime reads a time: RFC 3339, or Unix milliseconds; "" is the zero
// time.
func parseTime(s string) (time.Time, string) {
	if s == "" {
		return time.Time{}, ""
	}
	if strings.Trim(s, "0123456789") == "" {
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Sprintf("time %s is too large for Unix milliseconds", s)
		}
		if LooksLikeSeconds(ms) {
			return time.Time{}, fmt.Sprintf("time %s looks like Unix seconds: want Unix milliseconds (%s000) or RFC 3339", s, s)
		}
		return time.UnixMilli(ms), ""
	}
	t, err := ParseRFC3339(s)
	if err != nil {
		return time.Time{}, fmt.Sprintf("time %q is neither RFC 3339 (2026-06-01T10:30:00Z) nor Unix milliseconds", s)
	}
	if t.UnixMilli() <= 0 { // the API reads a time of 0 as none given: it would stamp the reading now
		return time.Time{}, fmt.Sprintf("time %s is not after 1970-01-01T00:00:00Z", s)
	}
	return t, ""
}

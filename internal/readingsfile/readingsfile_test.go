package readingsfile

import (
	"strings"
	"testing"
	"time"
)

func TestParseCSV(t *testing.T) {
	data := "\xef\xbb\xbfsubject,bpm,time\n" + // a BOM and the header
		"alice,72,1764547200000\n" +
		"\n" +
		"bob, 60 ,2025-12-01T10:00:00+01:00\n" +
		"carol,55\n" +
		"dave,61,\n" +
		"bob,abc\n" +
		"a b,70\n" +
		"eve,500\n" +
		"eve,70,1764547200\n" +
		"eve,70,yesterday\n" +
		"eve,70,1,extra\n" +
		"eve\n" +
		"eve,70,1970-01-01T00:00:00Z\n" +
		`"unterminated,70` + "\n"
	rows, bad, err := ParseCSV([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	want := []Row{
		{Where: "line 2", Subject: "alice", BPM: 72, Time: time.UnixMilli(1764547200000)},
		{Where: "line 4", Subject: "bob", BPM: 60, Time: time.Date(2025, 12, 1, 9, 0, 0, 0, time.UTC)},
		{Where: "line 5", Subject: "carol", BPM: 55, Time: time.Time{}},
		{Where: "line 6", Subject: "dave", BPM: 61, Time: time.Time{}},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows %+v", rows)
	}
	for i := range want {
		if rows[i].Where != want[i].Where || rows[i].Subject != want[i].Subject || rows[i].BPM != want[i].BPM || !rows[i].Time.Equal(want[i].Time) {
			t.Errorf("row %d: %+v, want %+v", i, rows[i], want[i])
		}
	}
	wantBad := []string{
		`line 7: bpm "abc" is not a whole number`,
		`line 8: subject "a b": character ' ' at byte 1 is not printable ASCII without spaces`,
		`line 9: bpm 500 is outside 20-300`,
		`line 10: time 1764547200 looks like Unix seconds: want Unix milliseconds (1764547200000) or RFC 3339`,
		`line 11: time "yesterday" is neither RFC 3339 (2026-06-01T10:30:00Z) nor Unix milliseconds`,
		`line 12: 4 fields, want subject,bpm[,time]`,
		`line 13: 1 field, want subject,bpm[,time]`,
		`line 14: time 1970-01-01T00:00:00Z is not after 1970-01-01T00:00:00Z`,
		`line 15: not CSV:`,
	}
	if len(bad) != len(wantBad) {
		t.Fatalf("bad %q", bad)
	}
	for i, w := range wantBad {
		if !strings.HasPrefix(bad[i].Error(), w) {
			t.Errorf("bad %d: %q, want %q", i, bad[i].Error(), w)
		}
	}
}

func TestDetectAndParse(t *testing.T) {
	bundle := `{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Observation","status":"final",
		"code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/alice"},
		"effectiveDateTime":"2025-12-01T10:30:00Z","valueQuantity":{"value":72,"code":"/min"}}},{"resource":{"resourceType":"Patient"}}]}`
	for _, tc := range []struct {
		name, data string
		format     Format
	}{
		{"x.json", "alice,72", FHIR},
		{"x.CSV", "{", CSV},
		{"-", "  \n" + bundle, FHIR},
		{"readings", "alice,72", CSV},
	} {
		if got := Detect(tc.name, []byte(tc.data)); got != tc.format {
			t.Errorf("Detect(%q, %.10q) = %v, want %v", tc.name, tc.data, got, tc.format)
		}
	}
	f, err := Parse("-", []byte(bundle))
	if err != nil || f.Format != FHIR || len(f.Rows) != 1 || f.Rows[0].Where != "entry 1" || f.Rows[0].Subject != "alice" ||
		len(f.Bad) != 1 || f.Bad[0].Error() != `entry 2: resourceType is "Patient", want "Observation"` {
		t.Fatalf("%+v %v", f, err)
	}
	for _, tc := range []struct{ name, data, want string }{
		{"x.json", `{"resourceType":"Patient"}`, `bundle: resourceType is "Patient"`},
		{"x.csv", "\n\n", "no readings"},
		{"x.csv", "subject,bpm\n", "no readings"},
	} {
		if _, err := Parse(tc.name, []byte(tc.data)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %q: %v, want %q", tc.name, tc.data, err, tc.want)
		}
	}
	if _, err := Read("big.csv", strings.NewReader(strings.Repeat("a", MaxFileSize+1))); err == nil || !strings.Contains(err.Error(), "more than 64 MiB") {
		t.Errorf("a file over the limit: %v", err)
	}
}

// FuzzParse: any input parses without a panic, every row is valid, and
// every row and error names its line or entry.
func FuzzParse(f *testing.F) {
	f.Add("x.csv", "subject,bpm,time\nalice,72,1764547200000\nbob,abc\n")
	f.Add("x.json", `{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Observation"}}]}`)
	f.Fuzz(func(t *testing.T, name, data string) {
		file, err := Parse(name, []byte(data))
		if err != nil {
			return
		}
		for _, r := range file.Rows {
			if r.BPM < 20 || r.BPM > 300 || r.Subject == "" || r.Where == "" {
				t.Fatalf("bad row %+v", r)
			}
		}
		for _, b := range file.Bad {
			if !strings.HasPrefix(b.Where, "line ") && !strings.HasPrefix(b.Where, "entry ") {
				t.Fatalf("error without a place: %q", b.Error())
			}
		}
	})
}

// A header row names the columns in any order; a first row that names
// other columns says what it must name (it was read as a row whose bpm
// "rate" is not a number).
func TestParseCSVHeaderByName(t *testing.T) {
	rows, bad, err := ParseCSV([]byte("time,BPM,subject\n1764547200000,72,alice\n,60,bob\n"))
	if err != nil || len(bad) != 0 || len(rows) != 2 ||
		rows[0].Subject != "alice" || rows[0].BPM != 72 || rows[0].Time.UnixMilli() != 1764547200000 ||
		rows[1].Subject != "bob" || rows[1].BPM != 60 || !rows[1].Time.IsZero() {
		t.Fatalf("columns by name: %+v, %v, %v", rows, bad, err)
	}
	rows, bad, err = ParseCSV([]byte("bpm,subject\n70,bob\n"))
	if err != nil || len(bad) != 0 || len(rows) != 1 || rows[0].Subject != "bob" || rows[0].BPM != 70 {
		t.Fatalf("bpm before subject: %+v, %v, %v", rows, bad, err)
	}
	_, bad, err = ParseCSV([]byte("name,rate\nbob,70\n"))
	if err != nil || len(bad) != 1 || bad[0].Where != "line 1" ||
		bad[0].Msg != `header "name,rate": want the columns subject, bpm and optionally time, named so, in any order` {
		t.Fatalf("a header of other names: %v, %v", bad, err)
	}
	_, bad, _ = ParseCSV([]byte("subject,bpm,bpm\nbob,70,71\n"))
	if len(bad) == 0 {
		t.Fatal("a header naming bpm twice was taken")
	}
}

// Under a header naming the columns in another order, a row that stops
// before the time has none ("when the node receives it"), and a row with
// a field more than the header names is refused, not read in file order.
func TestHeaderReorderedRows(t *testing.T) {
	rows, bad, err := ParseCSV([]byte("bpm,subject,time\n72,alice\n"))
	if err != nil || len(bad) != 0 || len(rows) != 1 || rows[0].Subject != "alice" || rows[0].BPM != 72 || !rows[0].Time.IsZero() {
		t.Fatalf("time absent: rows %+v, bad %+v, %v", rows, bad, err)
	}
	_, bad, _ = ParseCSV([]byte("bpm,subject\n72,alice,\n"))
	if len(bad) != 1 || bad[0].Msg != "3 fields, and the header names 2" {
		t.Fatalf("a field more: %+v", bad)
	}
	_, bad, _ = ParseCSV([]byte("alice,72.5\n"))
	if len(bad) != 1 || bad[0].Msg != `bpm "72.5" is not a whole number` {
		t.Fatalf("a first row with a bpm of 72.5 (not a header): %+v", bad)
	}
}

// TestParseRFC3339: the forms RFC 3339 section 5.6 allows (a lower-case t
// or z, a space between date and time) are one instant with the usual
// form; anything else is refused.
func TestParseRFC3339(t *testing.T) {
	want := time.Date(2026, 6, 1, 8, 0, 0, 250_000_000, time.UTC)
	for _, s := range []string{
		"2026-06-01T08:00:00.25Z", "2026-06-01t08:00:00.25z", "2026-06-01 08:00:00.25Z",
		"2026-06-01 08:00:00.25z", "2026-06-01T10:00:00.25+02:00", "2026-06-01 10:00:00.25+02:00",
	} {
		got, err := ParseRFC3339(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q: %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"2026-06-01", "2026-06-01x08:00:00Z", "2026-06-01T08:00:00", "2026-06-01  08:00:00Z", "z", ""} {
		if got, err := ParseRFC3339(s); err == nil {
			t.Errorf("%q: %v, want an error", s, got)
		}
	}
}

package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/api"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/fhir"
	"github.com/p2pchain/p2pchain/internal/readingsfile"
)

// fakeNode answers POST /api/v1/readings/batch as the node's endpoint is
// specified: verdict decides each reading's result (a code, or "" to
// accept it); an atomic batch with a refusal adds nothing and answers 409.
type fakeNode struct {
	verdict  func(r batchReading) string
	have     map[batchReading]bool // readings added
	requests []batchRequest
}

func (f *fakeNode) post(_ context.Context, req batchRequest) (int, batchResponse, time.Duration, error) {
	f.requests = append(f.requests, req)
	if f.have == nil {
		f.have = map[batchReading]bool{}
	}
	var resp batchResponse
	codes := make([]string, len(req.Readings))
	for i, r := range req.Readings {
		switch {
		case r.Time != 0 && f.have[r]:
			codes[i] = codeKnown
		case f.verdict != nil:
			codes[i] = f.verdict(r)
		}
		if codes[i] != "" {
			resp.Rejected++
		}
	}
	status := http.StatusOK
	if req.Atomic && resp.Rejected > 0 {
		status = http.StatusConflict
	}
	for i, r := range req.Readings {
		switch {
		case codes[i] != "":
			resp.Results = append(resp.Results, batchResult{Code: codes[i], Error: "refused: " + codes[i]})
		case status == http.StatusConflict:
			resp.Results = append(resp.Results, batchResult{Status: api.ReadingNotAdded})
		default:
			f.have[r] = true
			resp.Accepted++
			resp.Results = append(resp.Results, batchResult{ID: fmt.Sprintf("%064x", len(f.have)), Status: "pending"})
		}
	}
	return status, resp, 0, nil
}

func testRows(n int) []readingsfile.Row {
	rows := make([]readingsfile.Row, n)
	for i := range rows {
		rows[i] = readingsfile.Row{Where: fmt.Sprintf("line %d", i+1), Subject: "alice", BPM: 60 + i%100,
			Time: time.UnixMilli(1764547200000 + int64(i)*1000)}
	}
	return rows
}

func newTestImporter(f *fakeNode, atomic bool, batch int, report *bytes.Buffer) *importer {
	return &importer{post: f.post, atomic: atomic, batch: batch, report: report, patient: time.Minute,
		sleep: func(context.Context, time.Duration) error { return nil }}
}

func TestImporterAllOrNothing(t *testing.T) {
	f := &fakeNode{}
	var report bytes.Buffer
	sum, err := newTestImporter(f, true, 4, &report).run(context.Background(), testRows(10))
	if err != nil || sum != (importSummary{Imported: 10}) || len(f.requests) != 3 || !f.requests[0].Atomic {
		t.Fatalf("%+v %v, %d requests", sum, err, len(f.requests))
	}
	// Again: every reading is there already, which is no failure, even in
	// an atomic batch.
	sum, err = newTestImporter(f, true, 4, &report).run(context.Background(), testRows(12))
	if err != nil || sum != (importSummary{Imported: 2, Present: 10}) {
		t.Fatalf("again: %+v %v", sum, err)
	}
	if report.Len() > 0 {
		t.Errorf("reported: %s", report.String())
	}
}

// TestImporterRefusedBatch: a refusal the client could not foresee stops an
// atomic import at its batch, and the message says the earlier batches
// are in.
func TestImporterRefusedBatch(t *testing.T) {
	f := &fakeNode{verdict: func(r batchReading) string {
		if r.BPM == 66 { // line 7
			return "bad_time"
		}
		return ""
	}}
	var report bytes.Buffer
	sum, err := newTestImporter(f, true, 4, &report).run(context.Background(), testRows(10))
	if sum != (importSummary{Imported: 4, Failed: 1, NotSent: 5}) || len(f.have) != 4 {
		t.Fatalf("%+v, node has %d", sum, len(f.have))
	}
	for _, want := range []string{"refused 1 reading of the batch line 5 to line 8", "nothing of that batch was imported",
		"the batches before it, line 1 to line 4 (4 rows), are in"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
	if got := report.String(); got != "line 7: refused by the node: refused: bad_time (bad_time)\n" {
		t.Errorf("report %q", got)
	}
}

// TestImporterInterrupted: an import interrupted after its first batch
// says the earlier batches are in and to import the file again; it said
// "the fixed file", though nothing was refused.
func TestImporterInterrupted(t *testing.T) {
	f := &fakeNode{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var report bytes.Buffer
	im := newTestImporter(f, true, 4, &report)
	im.done = func(int) { cancel() } // Ctrl-C once the first batch is in
	sum, err := im.run(ctx, testRows(10))
	if err == nil || sum.Imported != 4 {
		t.Fatalf("%+v %v", sum, err)
	}
	for _, want := range []string{"interrupted", "the batches before it, line 1 to line 4 (4 rows), are in", "importing the file again counts them"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "fixed") {
		t.Errorf("an interrupted import is told to fix the file: %v", err)
	}
}

// TestImporterNodeGone: an import whose node goes away after the first
// batch says the earlier batches are in and to import the file again; it
// said "the fixed file", though nothing was refused.
func TestImporterNodeGone(t *testing.T) {
	f := &fakeNode{}
	var report bytes.Buffer
	im := newTestImporter(f, true, 4, &report)
	im.post = func(ctx context.Context, req batchRequest) (int, batchResponse, time.Duration, error) {
		if len(f.requests) == 1 {
			return 0, batchResponse{}, 0, errors.New(`Post "http://127.0.0.1:5001/api/v1/readings/batch": EOF`)
		}
		return f.post(ctx, req)
	}
	sum, err := im.run(context.Background(), testRows(10))
	if err == nil || sum.Imported != 4 {
		t.Fatalf("%+v %v", sum, err)
	}
	if !strings.Contains(err.Error(), "importing the file again counts them") || strings.Contains(err.Error(), "fixed") {
		t.Errorf("error %v: want 'importing the file again', no fixing", err)
	}
}

// TestImporterSkipBad: without atomic batches the node's refusals are
// listed and counted, and the rest goes in.
func TestImporterSkipBad(t *testing.T) {
	f := &fakeNode{verdict: func(r batchReading) string {
		if r.BPM%3 == 0 {
			return "bad_time"
		}
		return ""
	}}
	var report bytes.Buffer
	sum, err := newTestImporter(f, false, 4, &report).run(context.Background(), testRows(10))
	if err != nil || sum != (importSummary{Imported: 6, Failed: 4}) || f.requests[0].Atomic {
		t.Fatalf("%+v %v", sum, err)
	}
	if n := strings.Count(report.String(), "refused by the node"); n != 4 {
		t.Errorf("%d lines for 4 refusals:\n%s", n, report.String())
	}
}

// TestImporterWaits: readings refused for now (pending set full) are sent
// again after a wait, and given up on after the importer's patience.
func TestImporterWaits(t *testing.T) {
	full := 2
	f := &fakeNode{verdict: func(r batchReading) string {
		if r.BPM == 61 && full > 0 {
			full--
			return "pending_full"
		}
		return ""
	}}
	var report bytes.Buffer
	var slept []time.Duration
	im := newTestImporter(f, true, 4, &report)
	im.sleep = func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }
	sum, err := im.run(context.Background(), testRows(4))
	if err != nil || sum != (importSummary{Imported: 4}) || len(slept) != 2 || slept[1] != 2*time.Second {
		t.Fatalf("%+v %v slept %v", sum, err, slept)
	}

	// A node that stays full stops the import at the first batch it
	// takes nothing of, in both modes: each next batch would only wait as
	// long again.
	for _, atomic := range []bool{true, false} {
		f = &fakeNode{verdict: func(r batchReading) string {
			if r.BPM >= 64 { // line 5 on
				return "pending_full"
			}
			return ""
		}}
		im = newTestImporter(f, atomic, 4, &report)
		waited := time.Duration(0)
		im.sleep = func(_ context.Context, d time.Duration) error { waited += d; return nil }
		sum, err = im.run(context.Background(), testRows(12))
		if sum != (importSummary{Imported: 4, Failed: 4, NotSent: 4}) || waited < im.patient || waited > im.patient+10*time.Second {
			t.Fatalf("atomic %v: %+v, waited %v", atomic, sum, waited)
		}
		tail := "the batches before it, line 1 to line 4 (4 rows), are in"
		if !atomic {
			tail = "4 readings of the rows up to line 8 went in"
		}
		for _, want := range []string{"took none of 4 readings from line 5 on for 1m0s", "import stopped", tail} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("atomic %v: error %v does not say %q", atomic, err, want)
			}
		}
	}
}

// TestImporterWaitsForRestart: a node that restarts during an import
// (nothing listens at its API address for a while) is waited for, as for
// a 503: the batch is sent again once it answers, and nothing is counted
// twice or lost. Before, the import stopped at the first refused
// connection.
func TestImporterWaitsForRestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := &client{base: "http://" + ln.Addr().String(), http: &http.Client{Timeout: 5 * time.Second}}
	ln.Close() // the node is down: a real dial, refused
	f := &fakeNode{}
	down, answered := 3, 0 // down for 3 requests once it answered 1
	var report bytes.Buffer
	im := newTestImporter(f, true, 4, &report)
	im.post = func(ctx context.Context, req batchRequest) (int, batchResponse, time.Duration, error) {
		if answered > 0 && down > 0 {
			down--
			return closed.postBatch(ctx, req)
		}
		answered++
		return f.post(ctx, req)
	}
	sum, err := im.run(context.Background(), testRows(8))
	if err != nil || sum != (importSummary{Imported: 8}) || len(f.requests) != 2 {
		t.Fatalf("%+v %v after %d requests; report %s", sum, err, len(f.requests), report.String())
	}
	if !strings.Contains(report.String(), "the node does not answer") {
		t.Errorf("the report does not say the node is down: %s", report.String())
	}

	// A node that answered, then stays down, stops the import after the
	// wait, saying so.
	down = 1 << 30
	sum, err = im.run(context.Background(), testRows(12))
	if err == nil || !strings.Contains(err.Error(), "does not answer") || sum != (importSummary{Failed: 4, NotSent: 8}) {
		t.Fatalf("a node that stays down: %+v %v", sum, err)
	}

	// A node that never answered (a wrong --api, a node not started) is
	// an error at once: no wait.
	slept := 0
	fresh := newTestImporter(&fakeNode{}, true, 4, &report)
	fresh.post = closed.postBatch
	fresh.sleep = func(context.Context, time.Duration) error { slept++; return nil }
	if _, err := fresh.run(context.Background(), testRows(4)); err == nil || slept != 0 {
		t.Fatalf("a node that never answered: %v after %d waits, want an error at once", err, slept)
	}
}

func TestBatchLen(t *testing.T) {
	rows := testRows(5000)
	if n := batchLen(rows, maxBatchReadings); n != maxBatchReadings {
		t.Errorf("batch of %d, want %d", n, maxBatchReadings)
	}
	long := strings.Repeat("<", 64) // escaped to \u003c: 384 bytes each, so the byte cap, not the count, ends the batch
	for i := range rows {
		rows[i].Subject = long
	}
	n := batchLen(rows, maxBatchReadings)
	body, _ := json.Marshal(batchRequest{Readings: func() []batchReading {
		var b []batchReading
		for _, r := range rows[:n] {
			b = append(b, toBatch(r))
		}
		return b
	}()})
	if n < 1 || len(body) > maxBatchBytes || n == maxBatchReadings && len(body) < maxBatchBytes/2 {
		t.Errorf("batch of %d readings, %d bytes", n, len(body))
	}
}

// TestImportReadingsCommand runs the command in this process: bad rows
// stop it before it connects; with --skip-bad the rest goes to the node
// (here a stand-in for its batch endpoint).
func TestImportReadingsCommand(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "readings.csv")
	csv := "subject,bpm,time\nalice,72,1764547200000\n\nbob,abc\ncarol,500,2025-12-01T10:00:00Z\ndave,61,2025-12-01T10:00:00Z\n"
	if err := os.WriteFile(file, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"import-readings", file, "--api", "http://127.0.0.1:1"}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{"line 4: bpm \"abc\" is not a whole number\n", "line 5: bpm 500 is outside 20-300\n",
		"2 of 4 rows are bad (listed above): nothing imported; fix them, or pass --skip-bad to import the other 2"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr.String())
		}
	}
	if strings.Contains(stderr.String(), "cannot reach") {
		t.Errorf("connected despite bad rows:\n%s", stderr.String())
	}

	f := &fakeNode{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/readings/batch" {
			http.NotFound(w, r)
			return
		}
		var req batchRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		status, resp, _, _ := f.post(r.Context(), req)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(resp)
	}))
	defer srv.Close()
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"import-readings", file, "--skip-bad", "--api", srv.URL}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	if !regexp.MustCompile(`^imported 2, already present 0, skipped 2, failed 0 in \S+ \(\S+ readings/s\)\n$`).MatchString(stdout.String()) ||
		len(f.requests) != 1 || f.requests[0].Atomic || f.requests[0].Readings[0] != (batchReading{Subject: "alice", BPM: 72, Time: 1764547200000}) {
		t.Errorf("stdout %q, requests %+v", stdout.String(), f.requests)
	}

	// A node without the batch endpoint.
	stdout.Reset()
	stderr.Reset()
	fcsv := filepath.Join(dir, "good.csv")
	if err := os.WriteFile(fcsv, []byte("alice,72\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := httptest.NewServer(http.NotFoundHandler())
	defer old.Close()
	if code := run([]string{"import-readings", fcsv, "--api", old.URL}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "no POST /api/v1/readings/batch") {
		t.Errorf("exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
}

// TestImportReadingsAllBad: a file whose every row is bad is not told to
// pass --skip-bad "to import the other 0", which would import nothing.
func TestImportReadingsAllBad(t *testing.T) {
	file := filepath.Join(t.TempDir(), "readings.csv")
	if err := os.WriteFile(file, []byte("subject,bpm\nalice,500\nbob,19\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"import-readings", file, "--api", "http://127.0.0.1:1"}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, stdout.String(), stderr.String())
	}
	if want := "2 of 2 rows are bad (listed above): nothing imported; fix them (no row is good: --skip-bad would import nothing)"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr does not say %q:\n%s", want, stderr.String())
	}
	if strings.Contains(stderr.String(), "--skip-bad to import") {
		t.Errorf("stderr suggests --skip-bad for a file with no good row:\n%s", stderr.String())
	}
}

// TestImportReadingsNode imports a file into a real node, again (nothing
// new), and one the node refuses a reading of (nothing of it goes in).
func TestImportReadingsNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real node process")
	}
	home := t.TempDir()
	n := startEnv(t, "node", []string{"P2PCHAIN_HOME=" + home, "P2PCHAIN_DATA="}, "node", "-l", "0", "--difficulty", "8")
	m := n.expect(`^explorer and API: (http://127\.0\.0\.1:\d+)/$`)
	now := time.Now().Add(-time.Minute).UnixMilli()
	file := filepath.Join(t.TempDir(), "readings.csv")
	var csv strings.Builder
	csv.WriteString("subject,bpm,time\n")
	for i := range 25 {
		fmt.Fprintf(&csv, "import-%d,%d,%d\n", i%3, 50+i, now+int64(i))
	}
	if err := os.WriteFile(file, []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := mustCLI(t, home, "import-readings", file, "--batch", "10")
	if !strings.Contains(out, "imported 25, already present 0, skipped 0, failed 0") {
		t.Fatalf("import:\n%s", out)
	}
	out = mustCLI(t, home, "import-readings", file)
	if !strings.Contains(out, "imported 0, already present 25, skipped 0, failed 0") {
		t.Fatalf("import again:\n%s", out)
	}
	if out := mustCLI(t, home, "readings", "--subject", "import-1"); !regexp.MustCompile(`(?m)^\S+ \S+\s+51\s`).MatchString(out) {
		t.Errorf("readings of import-1 lack the imported 51 bpm:\n%s", out)
	}

	// A FHIR export of readings another node signed (author and signature
	// in each Observation): submitted as signed, so each keeps its id and
	// author; imported again, all are present. Before, the importing node
	// signed them anew: new ids, and a file exported by one node of a
	// network and imported into another added every reading twice.
	seed := sha256.Sum256([]byte("another node"))
	other := ed25519.NewKeyFromSeed(seed[:])
	var entries []string
	var ids []chain.Hash
	for i := range 5 {
		r, err := chain.NewReading(other, "fhir-x", 60+i, time.UnixMilli(now+100+int64(i)))
		if err != nil {
			t.Fatal(err)
		}
		o, _ := json.Marshal(fhir.ObservationOf(&r, nil))
		entries, ids = append(entries, `{"resource":`+string(o)+`}`), append(ids, r.ID())
	}
	bundle := filepath.Join(t.TempDir(), "export.fhir.json")
	if err := os.WriteFile(bundle, []byte(`{"resourceType":"Bundle","type":"collection","entry":[`+strings.Join(entries, ",")+`]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := mustCLI(t, home, "import-readings", bundle); !strings.Contains(out, "imported 5, already present 0, skipped 0, failed 0") {
		t.Fatalf("import of a FHIR export:\n%s", out)
	}
	for _, id := range ids {
		resp, err := http.Get(m[1] + "/api/v1/readings/" + id.String())
		if err != nil {
			t.Fatal(err)
		}
		var got struct{ Reading struct{ Author string } }
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || got.Reading.Author != hex.EncodeToString(other.Public().(ed25519.PublicKey)) {
			t.Fatalf("reading %s after the import: %s, author %s, %v; want it, by the other node's key", id.Short(), resp.Status, got.Reading.Author, err)
		}
	}
	if out := mustCLI(t, home, "import-readings", bundle); !strings.Contains(out, "imported 0, already present 5, skipped 0, failed 0") {
		t.Fatalf("the FHIR export imported again:\n%s", out)
	}

	// A time in the future passes the client's checks, not the node's: the
	// atomic batch adds nothing.
	bad := filepath.Join(t.TempDir(), "future.csv")
	future := time.Now().Add(24 * time.Hour).UnixMilli()
	if err := os.WriteFile(bad, []byte(fmt.Sprintf("import-x,70,%d\nimport-x,71,%d\n", now, future)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, ok := cli(t, home, "import-readings", bad)
	if ok || !strings.Contains(out, "line 2: refused by the node") || !strings.Contains(out, "nothing of that batch was imported") {
		t.Fatalf("import of a future reading: ok=%v\n%s", ok, out)
	}
	out, ok = cli(t, home, "import-readings", bad, "--skip-bad")
	if ok || !strings.Contains(out, "imported 1, already present 0, skipped 0, failed 1") {
		t.Fatalf("--skip-bad after the refused batch (the first reading must not be in; a failed reading exits 1): ok=%v\n%s", ok, out)
	}

	// A receipt of a reading once mined, saved by the CLI and checked
	// offline; one altered byte and it fails.
	resp, err := http.Post(m[1]+"/api/v1/readings", "application/json", strings.NewReader(`{"subject": "receipt-1", "bpm": 77}`))
	if err != nil {
		t.Fatal(err)
	}
	var sub struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&sub); err != nil || sub.ID == "" {
		t.Fatalf("submit: %v %+v", err, sub)
	}
	resp.Body.Close()
	rfile := filepath.Join(t.TempDir(), "receipt.json")
	deadline := time.Now().Add(60 * time.Second)
	for {
		if out, ok := cli(t, home, "receipt", sub.ID[:10], "-o", rfile); ok {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("no receipt within a minute:\n%s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	out = mustCLI(t, home, "check-receipt", rfile)
	if !strings.Contains(out, "reading "+sub.ID) || !strings.Contains(out, "of subject receipt-1: 77 bpm") {
		t.Fatalf("check-receipt:\n%s", out)
	}
	data, err := os.ReadFile(rfile)
	if err != nil {
		t.Fatal(err)
	}
	altered := strings.Replace(string(data), `"bpm":77`, `"bpm":78`, 1)
	if altered == string(data) {
		t.Fatalf("no bpm to alter in %s", data)
	}
	if err := os.WriteFile(rfile, []byte(altered), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, ok := cli(t, home, "check-receipt", rfile); ok || !strings.Contains(out, "did not match") {
		t.Fatalf("check-receipt of an altered receipt: ok=%v\n%s", ok, out)
	}
	n.stop()
}

// TestImporterDiskSlow: a node whose disk is slow answers a batch with
// disk_slow for every reading although it stored them ("may still be
// stored"). The importer waits and sends the batch again, as the same
// readings: rows without a time carry the importer's clock from the first
// request on, so the node finds them known and stores nothing twice.
// Before, disk_slow was a refusal for good (the rows counted failed), and
// untimed rows took the node's clock at each try, so sending them again
// stored them twice.
func TestImporterDiskSlow(t *testing.T) {
	f := &fakeNode{}
	slow := true
	var report bytes.Buffer
	im := newTestImporter(f, false, 4, &report)
	im.post = func(ctx context.Context, req batchRequest) (int, batchResponse, time.Duration, error) {
		if !slow {
			return f.post(ctx, req)
		}
		slow = false
		f.requests = append(f.requests, req)
		var resp batchResponse
		for _, r := range req.Readings {
			if f.have == nil {
				f.have = map[batchReading]bool{}
			}
			f.have[r] = true // stored, though the answer came first
			resp.Rejected++
			resp.Results = append(resp.Results, batchResult{Code: api.CodeDiskSlow, Error: "reading not yet stored, and it may still be"})
		}
		return http.StatusOK, resp, 10 * time.Second, nil
	}
	rows := testRows(4)
	for i := range rows {
		rows[i].Time = time.Time{} // subject,bpm rows
	}
	sum, err := im.run(context.Background(), rows)
	if err != nil || sum != (importSummary{Present: 4}) {
		t.Fatalf("%+v %v; report %s", sum, err, report.String())
	}
	if len(f.requests) != 2 || len(f.have) != 4 {
		t.Fatalf("%d requests, %d readings stored: want 2 requests and the 4 readings once", len(f.requests), len(f.have))
	}
	for i, r := range f.requests[1].Readings {
		if first := f.requests[0].Readings[i]; r.Time == 0 || r != first {
			t.Errorf("row %d sent as %+v, then as %+v: want the same reading, with a time", i, first, r)
		}
	}
}

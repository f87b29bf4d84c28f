package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/p2pchain/p2pchain/internal/api"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/readingsfile"
)

// p2pchain import-readings submits the readings of a file (CSV
// subject,bpm[,time], or a FHIR Bundle of heart-rate Observations:
// package readingsfile) through a running node's API, in batches of
// POST /api/v1/readings/batch.
//
// All or nothing, as far as it can be: the file is parsed and every row
// checked client-side first (subject, BPM range, time), and without
// --skip-bad one bad row means nothing is sent. The batches are then sent
// with "atomic": true, so a batch the node refuses any reading of (a time
// before genesis or in the future: what only the node can check) adds
// nothing. Atomicity across batches is impossible, though: when a later
// batch is refused, the earlier ones are in, and the command says so
// (importing the fixed file again finds those as "already present", for
// rows with a time). With --skip-bad the bad rows are left out, the batches
// are not atomic, and each reading the node refuses is listed and counted.

// Limits of POST /api/v1/readings/batch: the node's.
const (
	maxBatchReadings = node.MaxSubmitAll
	maxBatchBytes    = api.MaxBatchBodyBytes
	// defaultBatch is the batch size of import-readings.
	defaultBatch = 500
	// importPatience is how long import-readings waits out a node that
	// refuses readings for now (pending set or disk full, syncing) without
	// any of them being accepted, before it gives up on them.
	importPatience = 2 * time.Minute
)

// codeKnown is the code of a reading the node has already (pending or in
// the chain).
const codeKnown = api.CodeKnownReading

// transientCodes are refusals that pass by themselves: wait and send again.
// A slow disk's refusal may come after the reading was queued ("may still
// be stored"): sent again, it is the same reading (send stamps untimed
// rows first), answered as known if it was stored.
var transientCodes = map[string]bool{api.CodePendingFull: true, api.CodeDiskFull: true, api.CodeSyncing: true,
	api.CodeDiskSlow: true}

func runImportReadings(args []string, stdout, stderr io.Writer) error {
	var (
		cf      clientFlags
		skipBad bool
		batch   = defaultBatch
	)
	fs := newClientFlags("import-readings", clientHelp(help{
		usage: "FILE [--skip-bad] [--batch N] [-l PORT | --data DIR | --api URL] [--json]",
		about: []string{"Submits the readings of FILE through the running node: CSV rows subject,bpm[,time]",
			"(a header may name the columns in any order; time in RFC 3339 or Unix milliseconds,",
			"empty: now) or a FHIR R4 Bundle of heart-rate Observations (LOINC 8867-4, /min), told",
			"apart by the extension (.csv, .json) or the content. FILE - reads standard input. A",
			"FHIR export of a node keeps each reading as its author signed it (same id, same author).",
			"",
			"Every row is checked first and each bad one listed. With a bad row nothing is imported",
			"unless --skip-bad is given. The node takes each batch whole or not at all; if it refuses",
			"a batch after earlier ones went in, the command says which rows are in. Readings the",
			"node holds already are counted as already present, so a file can be imported again.",
			"A node that takes none of a batch for 2 minutes (full, or syncing) stops the import."},
		examples: []string{"import-readings readings.csv", "import-readings export.fhir.json --skip-bad", "import-readings - --api http://127.0.0.1:8080 < readings.csv"},
	}), stdout, &cf)
	fs.BoolVar(&skipBad, "skip-bad", false, "import the good rows of a file with bad ones, and go on past readings the node refuses")
	fs.Func("batch", fmt.Sprintf("readings per request, `N` from 1 to %d (default %d)", maxBatchReadings, defaultBatch), func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxBatchReadings {
			return fmt.Errorf("want a whole number from 1 to %d", maxBatchReadings)
		}
		batch = n
		return nil
	})
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("import-readings", "want one FILE of readings (CSV or a FHIR Bundle), e.g. import-readings readings.csv")
	}
	file, err := readReadings(pos[0])
	if err != nil {
		return err
	}
	for _, b := range file.Bad {
		fmt.Fprintln(stderr, b.Error())
	}
	total := len(file.Rows) + len(file.Bad)
	if len(file.Bad) > 0 && !skipBad && len(file.Rows) == 0 {
		return fmt.Errorf("%d of %s %s bad (listed above): nothing imported; fix %s (no row is good: --skip-bad would import nothing)",
			len(file.Bad), countOf(total, "row"), isAre(len(file.Bad)), itThem(len(file.Bad)))
	}
	if len(file.Bad) > 0 && !skipBad {
		return fmt.Errorf("%d of %s %s bad (listed above): nothing imported; fix %s, or pass --skip-bad to import the other %d",
			len(file.Bad), countOf(total, "row"), isAre(len(file.Bad)), itThem(len(file.Bad)), len(file.Rows))
	}
	if len(file.Rows) == 0 {
		return fmt.Errorf("no good rows in %s: nothing to import", pos[0])
	}
	c, err := cf.connect()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	start := time.Now()
	bar := newProgress(stderr, "import-readings", uint64(len(file.Rows)))
	bar.unit, bar.eta = "readings", true
	im := &importer{
		post:    c.postBatch,
		atomic:  !skipBad,
		batch:   batch,
		report:  stderr,
		sleep:   sleepCtx,
		patient: importPatience,
		done:    func(n int) { bar.update(uint64(n), uint64(n)) },
	}
	sum, runErr := im.run(ctx, file.Rows)
	bar.finish(uint64(sum.sent()), uint64(sum.sent()))
	sum.Skipped = len(file.Bad)
	took := time.Since(start)
	if cf.json {
		if err := writeJSON(stdout, map[string]any{"format": file.Format.String(), "rows": total, "imported": sum.Imported,
			"already_present": sum.Present, "skipped": sum.Skipped, "failed": sum.Failed, "not_sent": sum.NotSent, "seconds": took.Seconds()}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "%s in %s (%s readings/s)\n", sum, roundDuration(took), perSecond(uint64(sum.sent()), took))
	}
	if runErr != nil {
		return runErr
	}
	if sum.Failed > 0 {
		return fmt.Errorf("the node refused %s (listed above)", countOf(sum.Failed, "reading"))
	}
	return nil
}

// readReadings reads the file of readings at path ("-": standard input).
func readReadings(path string) (readingsfile.File, error) {
	if path == "-" {
		return readingsfile.Read("-", os.Stdin)
	}
	return readingsfile.ReadFile(path)
}

// importSummary counts what became of the rows of a file.
type importSummary struct {
	Imported int // accepted by the node: new readings
	Present  int // the node had them already
	Skipped  int // bad rows, not sent (--skip-bad)
	Failed   int // refused by the node
	NotSent  int // not sent: the import stopped before them
}

func (s importSummary) sent() int { return s.Imported + s.Present + s.Failed }

func (s importSummary) String() string {
	line := fmt.Sprintf("imported %d, already present %d, skipped %d, failed %d", s.Imported, s.Present, s.Skipped, s.Failed)
	if s.NotSent > 0 {
		line += fmt.Sprintf(", not sent %d", s.NotSent)
	}
	return line
}

// batchReading is one reading of a batch request: with Author and Sig, a
// reading its author signed elsewhere, sent as it is (it keeps its id).
type batchReading struct {
	Subject string `json:"subject"`
	BPM     int    `json:"bpm"`
	Time    int64  `json:"time,omitempty"`
	Author  string `json:"author,omitempty"`
	Sig     string `json:"sig,omitempty"`
}

// batchRequest is the body of POST /api/v1/readings/batch.
type batchRequest struct {
	Readings []batchReading `json:"readings"`
	Atomic   bool           `json:"atomic"`
}

// batchResult is the node's verdict on one reading of a batch: an id, or
// a refusal's code and error.
type batchResult struct {
	ID     string `json:"id,omitempty"`
	Status string `json:"status,omitempty"`
	Code   string `json:"code,omitempty"`
	Error  string `json:"error,omitempty"`
}

// batchResponse is the answer of POST /api/v1/readings/batch (200, or
// 409 for an atomic batch with a refusal).
type batchResponse struct {
	Results  []batchResult `json:"results"`
	Accepted int           `json:"accepted"`
	Rejected int           `json:"rejected"`
}

// errNoBatchRoute: the node has no batch endpoint.
var errNoBatchRoute = errors.New("the node has no POST /api/v1/readings/batch: it runs an older p2pchain; upgrade it to import files")

// postBatch sends one batch. A 200 or 409 answer comes back as status and
// response; any other answer is an error, but for 503, which comes back
// as status with the Retry-After it asks for.
func (c *client) postBatch(ctx context.Context, req batchRequest) (int, batchResponse, time.Duration, error) {
	const path = "/api/v1/readings/batch"
	var resp batchResponse
	hr, data, err := c.roundTrip(ctx, http.MethodPost, path, req)
	if err != nil {
		return 0, resp, 0, err
	}
	switch hr.StatusCode {
	case http.StatusOK, http.StatusConflict:
		if err := json.Unmarshal(data, &resp); err != nil || len(resp.Results) != len(req.Readings) {
			return 0, resp, 0, fmt.Errorf("unexpected answer to POST /api/v1/readings/batch (%s): %d results for %d readings: %.200s",
				hr.Status, len(resp.Results), len(req.Readings), data)
		}
		return hr.StatusCode, resp, 0, nil
	case http.StatusServiceUnavailable:
		wait, _ := strconv.Atoi(hr.Header.Get("Retry-After"))
		return hr.StatusCode, resp, time.Duration(wait) * time.Second, nil
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		var e apiError
		if json.Unmarshal(data, &e) != nil || e.Code == api.CodeNotFound || e.Code == api.CodeMethod || e.Code == "" {
			return 0, resp, 0, errNoBatchRoute
		}
	}
	return 0, resp, 0, answerError(http.MethodPost, path, hr, data)
}

// importer sends rows in batches and counts the node's verdicts. Its I/O
// goes through post, sleep and done, so that tests give their own.
type importer struct {
	post     func(ctx context.Context, req batchRequest) (status int, resp batchResponse, retryAfter time.Duration, err error)
	atomic   bool      // all or nothing per batch; stop at the first refused batch
	batch    int       // readings per request, at most maxBatchReadings
	report   io.Writer // one line per refused reading
	sleep    func(ctx context.Context, d time.Duration) error
	patient  time.Duration // how long to wait out transient refusals without progress
	answered bool          // the node answered a batch: a refused connection later is a restart
	done     func(n int)   // readings settled so far, for the progress line
}

// run sends rows and returns the counts. The error is for a stop: an
// atomic batch refused, the node unreachable, an interrupt.
func (im *importer) run(ctx context.Context, rows []readingsfile.Row) (importSummary, error) {
	var sum importSummary
	for first := 0; first < len(rows); {
		n := batchLen(rows[first:], im.batch)
		part := rows[first : first+n]
		if err := im.send(ctx, part, &sum); err != nil {
			sum.NotSent = len(rows) - sum.sent()
			switch {
			case im.atomic && first > 0:
				// Refused by the node, the file needs fixing first; an
				// import interrupted, or cut off from its node, needs
				// nothing fixed.
				again := "importing the file again"
				if errors.Is(err, errBatchRefused) {
					again = "importing the fixed file again"
				}
				err = fmt.Errorf("%w\nthe batches before it, %s to %s (%s), are in: a batch is all or nothing, a file is not; "+
					"%s counts them as already present (rows without a time would be added again: "+
					"give those a time, or import only the rows after %s)",
					err, rows[0].Where, rows[first-1].Where, countOf(first, "row"), again, rows[first-1].Where)
			case !im.atomic && sum.Imported > 0:
				err = fmt.Errorf("%w\n%s of the rows up to %s went in (the counts below; refused rows are listed above); "+
					"importing the file again counts those as already present (rows without a time would be added again: "+
					"give those a time, or import only the rows from %s on)",
					err, countOf(sum.Imported, "reading"), part[len(part)-1].Where, part[0].Where)
			}
			return sum, err
		}
		first += n
		if im.done != nil {
			im.done(sum.sent())
		}
	}
	return sum, nil
}

// batchLen is how many of rows go in the next request: at most max, and
// no more than fit in maxBatchBytes.
func batchLen(rows []readingsfile.Row, max int) int {
	size := 64 // {"readings":[],"atomic":false}
	for i, r := range rows {
		b, _ := json.Marshal(toBatch(r))
		if size += len(b) + 1; i == max || size > maxBatchBytes {
			return i
		}
	}
	return len(rows)
}

func toBatch(r readingsfile.Row) batchReading {
	b := batchReading{Subject: r.Subject, BPM: r.BPM, Author: r.Author, Sig: r.Sig}
	if !r.Time.IsZero() {
		b.Time = r.Time.UnixMilli()
	}
	return b
}

// send sends one batch until every reading of it is settled: accepted,
// present, or refused for good. In atomic mode a refusal for good stops
// the import; in both modes so does a node that takes none of the
// batch's readings for im.patient.
//
// Rows without a time take the importer's clock once, before the first
// request: a batch sent again (after a 503, a restart, a slow disk's "may
// still be stored") then holds the same readings, which the node answers
// as known if it stored them, never twice. With the node's clock at each
// try, a batch it had stored without answering would be stored again.
func (im *importer) send(ctx context.Context, part []readingsfile.Row, sum *importSummary) error {
	now := time.Now()
	for i := range part {
		if part[i].Time.IsZero() && part[i].Sig == "" {
			part[i].Time = now
		}
	}
	left := part             // the readings not settled yet
	var waited time.Duration // waiting out refusals for now, since the last progress
	backoff := time.Second
	for len(left) > 0 {
		req := batchRequest{Atomic: im.atomic, Readings: make([]batchReading, len(left))}
		for i, r := range left {
			req.Readings[i] = toBatch(r)
		}
		status, resp, retryAfter, err := im.post(ctx, req)
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted: the batch %s to %s may be in or not", part[0].Where, part[len(part)-1].Where)
		}
		// Nothing listens where a node answered before in this import (it
		// restarts): the batch did not reach it, so it is sent again,
		// untimed rows too, as after a 503. A node that never answered
		// (a wrong --api, a node not started) is an error at once; a
		// connection cut after the request went out is not retried: the
		// node may have taken it.
		down := err != nil && im.answered && errors.Is(err, syscall.ECONNREFUSED)
		if err == nil {
			im.answered = true
		}
		if down {
			if waited == 0 {
				fmt.Fprintf(im.report, "the node does not answer (%v): trying again for up to %s\n", err, roundDuration(im.patient))
			}
			status, err = http.StatusServiceUnavailable, nil
		}
		if err != nil {
			return err
		}
		var again, refused []readingsfile.Row
		var why []string
		switch status {
		case http.StatusServiceUnavailable: // the whole batch, for now
			again = left
		default:
			for i, res := range resp.Results {
				switch {
				case res.Code == "" && res.ID != "": // in, whatever the status says of the others
					sum.Imported++
				case res.Status == api.ReadingNotAdded:
					again = append(again, left[i]) // refused with the others: send again without them
				case res.Code == codeKnown:
					sum.Present++
				case transientCodes[res.Code]:
					again = append(again, left[i])
				case res.Code == "":
					return fmt.Errorf("unexpected answer to POST /api/v1/readings/batch: result %d has neither id nor code", i)
				default:
					refused = append(refused, left[i])
					why = append(why, fmt.Sprintf("%s: refused by the node: %s (%s)", left[i].Where, res.Error, res.Code))
				}
			}
		}
		for _, w := range why {
			fmt.Fprintln(im.report, w)
		}
		if len(refused) > 0 && im.atomic {
			sum.Failed += len(refused)
			return fmt.Errorf("the node refused %s of the batch %s to %s (listed above): %w",
				countOf(len(refused), "reading"), part[0].Where, part[len(part)-1].Where, errBatchRefused)
		}
		sum.Failed += len(refused)
		if len(again) < len(left) {
			waited, backoff = 0, time.Second // progress
		}
		transient := status == http.StatusServiceUnavailable || hasTransient(resp)
		if len(again) == len(left) && !transient {
			return fmt.Errorf("unexpected answer to POST /api/v1/readings/batch (%d): no reading settled and none refused", status)
		}
		if len(again) > 0 && transient {
			if waited >= im.patient {
				// The node took nothing for that long: the next batches would
				// only wait as long each, so the import stops here.
				sum.Failed += len(again)
				why := "its pending set or disk is full, or it is syncing"
				if down {
					why = "it does not answer: nothing listens at its API address"
				}
				return fmt.Errorf("the node took none of %s from %s on for %s (%s): "+
					"import stopped; see the node's /api/v1/status, and import the file again when it takes readings (readings already in count as already present)",
					countOf(len(again), "reading"), again[0].Where, roundDuration(im.patient), why)
			}
			wait := backoff
			if retryAfter > 0 {
				wait = min(retryAfter, 30*time.Second)
			}
			backoff = min(2*backoff, 10*time.Second)
			waited += wait
			if err := im.sleep(ctx, wait); err != nil {
				return err
			}
		}
		left = again
	}
	return nil
}

// errBatchRefused ends the error of an atomic batch the node refused a
// reading of: the file needs fixing before it is imported again.
var errBatchRefused = errors.New("nothing of that batch was imported")

// hasTransient reports whether an answer refuses a reading for now: the
// batch is worth a wait before it is sent again.
func hasTransient(resp batchResponse) bool {
	for _, res := range resp.Results {
		if transientCodes[res.Code] {
			return true
		}
	}
	return false
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
}

// countOf writes "1 row", "3 rows".
func countOf(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// isAre and itThem agree with a count of n.
func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

func itThem(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/p2pchain/p2pchain/internal/api"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/p2p"
	"github.com/p2pchain/p2pchain/internal/readingsfile"
)

// The client commands: each parses its flags, asks the node's API, and
// prints a table (or the API's JSON with --json).

// query asks the API and prints either its JSON or, through show, a table.
func query(c *client, stdout io.Writer, path string, view any, show func(w *tabwriter.Writer)) error {
	var raw json.RawMessage
	if err := c.get(context.Background(), path, &raw); err != nil {
		return err
	}
	if c.json {
		return printJSON(stdout, raw)
	}
	if err := json.Unmarshal(raw, view); err != nil {
		return fmt.Errorf("unexpected answer from the node: %w", err)
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	show(w)
	return w.Flush()
}

// views decodes one JSON answer into each of its values.
type views []any

func (vs views) UnmarshalJSON(data []byte) error {
	for _, v := range vs {
		if err := json.Unmarshal(data, v); err != nil {
			return err
		}
	}
	return nil
}

// clientHelp adds to a client command's description how it finds the node.
func clientHelp(h help) help {
	h.about = append(h.about, "",
		"It talks to the running node found through the api file in its data directory:",
		"give -l PORT or --data DIR (as the node was started), or --api URL, when several run.")
	return h
}

func runStatus(args []string, stdout, stderr io.Writer) error {
	var cf clientFlags
	fs := newClientFlags("status", clientHelp(help{
		usage:    "[-l PORT | --data DIR | --api URL] [--json]",
		about:    []string{"Shows the running node's peer ID, network, height and tip, peers, sync state and pending readings."},
		examples: []string{"status", "status -l 10000", "status --json"},
	}), stdout, &cf)
	if err := fs.noArgs(args); err != nil {
		return err
	}
	c, err := cf.connect()
	if err != nil {
		return err
	}
	var s api.StatusView
	var stored struct { // storage.height, absent from a node too old to say
		Storage struct {
			Height *uint64 `json:"height"`
		} `json:"storage"`
	}
	return query(c, stdout, "/api/v1/status", &views{&s, &stored}, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "peer ID\t%s\n", s.PeerID)
		fmt.Fprintf(w, "network\t%s (difficulty %d, genesis %s)\n", s.Network, s.Difficulty, short(s.Genesis))
		fmt.Fprintf(w, "height\t%d", s.Height)
		if stored.Storage.Height != nil && s.Storage.Height < s.Height {
			// Not a count of blocks waiting: during a reorganisation the
			// block on disk is on the branch being left.
			fmt.Fprintf(w, " (on disk up to %d: the blocks above wait for the store's writer)", s.Storage.Height)
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "tip\t%s (%s)\n", s.Tip, age(s.TipTime))
		fmt.Fprintf(w, "final\t#%d %s (never leaves the chain)\n", s.FinalizedHeight, short(s.FinalizedHash))
		fmt.Fprintf(w, "consensus\t%s\n", consensusLine(s))
		fmt.Fprintf(w, "total work\t%s\n", s.TotalWork)
		fmt.Fprintf(w, "peers\t%d\n", s.Peers)
		fmt.Fprintf(w, "pending readings\t%d\n", s.Pending)
		fmt.Fprintf(w, "sync\t%s", s.Sync.State)
		if s.Sync.State == "syncing" || s.Sync.State == "behind" {
			fmt.Fprintf(w, " (%d of %d, %.0f%%)", s.Sync.Height, s.Sync.Target, 100*s.Sync.Progress)
		}
		fmt.Fprintln(w)
		if s.Storage.State != "" && s.Storage.State != api.StorageOK {
			fmt.Fprintf(w, "storage	%s: %s\n", s.Storage.State, s.Storage.Error)
		}
		for i, a := range s.Addrs {
			label := ""
			if i == 0 {
				label = "listening on"
			}
			fmt.Fprintf(w, "%s\t%s\n", label, a)
		}
	})
}

// consensusLine describes the consensus of a node's network in one line.
func consensusLine(s api.StatusView) string {
	a := s.Authority
	if a == nil {
		if s.Consensus == "" {
			return api.ConsensusPoW
		}
		return s.Consensus + " (final by depth and age)"
	}
	self := "follower"
	if a.Self >= 0 {
		self = fmt.Sprintf("this node #%d", a.Self)
	}
	var idle time.Time
	if a.IdleUntil > 0 {
		idle = time.UnixMilli(a.IdleUntil)
	}
	return fmt.Sprintf("authority: height %d round %d step %s, %s, %s%s", a.Height, a.Round, a.Step,
		countAuthorities(len(a.Authorities)), self, heardPhrase(a.Heard, a.Quorum, idle))
}

// heardPhrase says how many authorities a node hears at the height it
// decides against how many a decision needs, when it knows ("" if not):
// short of a quorum, nothing becomes final. Until idle (zero: not idle),
// when the next block of an idle network is due, the authorities send
// nothing, and hearing none of them is said so, not called trouble.
func heardPhrase(heard, quorum int, idle time.Time) string {
	if quorum == 0 {
		return ""
	}
	s := fmt.Sprintf(", hears %d (%d needed)", heard, quorum)
	switch {
	case heard >= quorum:
	case !idle.IsZero():
		s += fmt.Sprintf(": idle, the next block is due at %s or with the first reading", idle.Local().Format(time.TimeOnly))
	default:
		s += ": waiting for more authorities"
	}
	return s
}

// runAuthority approves a membership change of an authority network:
// POST /api/v1/authorities.
func runAuthority(args []string, stdout, stderr io.Writer) error {
	var cf clientFlags
	fs := newClientFlags("authority", clientHelp(help{
		usage: "add|remove PEERID [--height H] [-l PORT | --data DIR | --api URL] [--json]",
		about: []string{"Records that this node's operator approves adding or removing an authority of an",
			"authority network. The change takes effect once more than two thirds of the",
			"authorities approved it, from height H (default: the next height a proposer picks).",
			"Each authority's operator runs it on their own node."},
		examples: []string{"authority add 12D3KooW...", "authority remove 12D3KooW... --height 120 -l 10000"},
	}), stdout, &cf)
	var height uint64
	fs.Func("height", "first `HEIGHT` whose authority set reflects the change (default 0: the next one)", func(s string) error {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return errors.New("want a block height, 0 or more")
		}
		height = n
		return nil
	})
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 2 || (pos[0] != api.OpAdd && pos[0] != api.OpRemove) {
		return usagef("authority", "want add or remove and a peer ID, e.g. authority add 12D3KooW...")
	}
	c, err := cf.connect()
	if err != nil {
		return err
	}
	body := map[string]any{"op": pos[0], "peer_id": pos[1], "height": height}
	var raw json.RawMessage
	if err := c.post(context.Background(), "/api/v1/authorities", body, &raw); err != nil {
		return err
	}
	if c.json {
		return printJSON(stdout, raw)
	}
	when := "from the next height a proposer picks"
	if height > 0 {
		when = fmt.Sprintf("from height %d", height)
	}
	_, err = fmt.Fprintf(stdout, "approved: %s %s %s; it takes effect once more than two thirds of the authorities approved it\n", pos[0], pos[1], when)
	return err
}

func runPeers(args []string, stdout, stderr io.Writer) error {
	var cf clientFlags
	fs := newClientFlags("peers", clientHelp(help{
		usage:    "[-l PORT | --data DIR | --api URL] [--json]",
		about:    []string{"Lists the running node's connected peers: peer ID, address and the height each reported."},
		examples: []string{"peers", "peers -l 10001 --json"},
	}), stdout, &cf)
	if err := fs.noArgs(args); err != nil {
		return err
	}
	c, err := cf.connect()
	if err != nil {
		return err
	}
	var v peersView
	return query(c, stdout, "/api/v1/peers", &v, func(w *tabwriter.Writer) {
		if len(v.Peers) == 0 {
			fmt.Fprintf(w, "no peers (connect one with: %s connect MULTIADDR)\n", invocation())
			return
		}
		fmt.Fprintln(w, "PEER\tADDRESS\tHEIGHT")
		for _, p := range v.Peers {
			addr := ""
			if len(p.Addrs) > 0 {
				addr = p.Addrs[0]
			}
			fmt.Fprintf(w, "%s\t%s\t%d\n", p.ID, addr, p.Height)
		}
	})
}

// peersView is the answer of GET /api/v1/peers.
type peersView struct {
	Peers []struct {
		ID     string   `json:"id"`
		Addrs  []string `json:"addrs"`
		Height uint64   `json:"height"`
	} `json:"peers"`
}

// limitFlag adds --limit: a page size of 1 to api.MaxLimit. A larger one is
// lowered to api.MaxLimit, as the API does, and the command says so.
func limitFlag(fs *cmdFlags, what string) *int {
	limit := api.DefaultLimit
	fs.Func("limit", fmt.Sprintf("how many %s, `N` from 1 to %d (default %d)", what, api.MaxLimit, api.DefaultLimit), func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return fmt.Errorf("want a number of %s from 1 to %d", what, api.MaxLimit)
		}
		limit = n
		return nil
	})
	return &limit
}

// clampLimit lowers a page size to what the API serves, saying so on w
// and how to see more: more, for the command's flag or the API's link.
func clampLimit(limit int, more string, w io.Writer) int {
	if limit > api.MaxLimit {
		fmt.Fprintf(w, "note: --limit %d lowered to %d, the most one page holds (the API does the same); %s\n", limit, api.MaxLimit, more)
		return api.MaxLimit
	}
	return limit
}

func runBlocks(args []string, stdout, stderr io.Writer) error {
	var cf clientFlags
	fs := newClientFlags("blocks", clientHelp(help{
		usage: "[--from HEIGHT] [--limit N] [-l PORT | --data DIR | --api URL] [--json]",
		about: []string{"Lists main-chain blocks, newest first: height, hash, time and number of readings.",
			fmt.Sprintf("A page holds at most %d blocks; --from pages back from a height.", api.MaxLimit)},
		examples: []string{"blocks", "blocks --limit 5", "blocks --from 120 --limit 50"},
	}), stdout, &cf)
	from := int64(-1)
	fs.Func("from", "newest `HEIGHT` to list (default: the tip)", func(s string) error {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return errors.New("want a block height, 0 or more")
		}
		from = n
		return nil
	})
	limit := limitFlag(fs, "blocks")
	if err := fs.noArgs(args); err != nil {
		return err
	}
	c, err := cf.connect()
	if err != nil {
		return err
	}
	q := url.Values{"limit": {strconv.Itoa(clampLimit(*limit, "page back with --from", stderr))}}
	if from >= 0 {
		q.Set("from", strconv.FormatInt(from, 10))
	}
	var v struct {
		Blocks []struct {
			Height   uint64     `json:"height"`
			Hash     chain.Hash `json:"hash"`
			Time     int64      `json:"time"`
			Readings int        `json:"reading_count"`
		} `json:"blocks"`
	}
	return query(c, stdout, "/api/v1/blocks?"+q.Encode(), &v, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "HEIGHT\tHASH\tTIME (UTC)\tREADINGS")
		for _, b := range v.Blocks {
			t := "genesis"
			if b.Height > 0 {
				t = utcTime(b.Time)
			}
			fmt.Fprintf(w, "%d\t%s\t%s\t%d\n", b.Height, b.Hash, t, b.Readings)
		}
	})
}

func runBlock(args []string, stdout, stderr io.Writer) error {
	var cf clientFlags
	fs := newClientFlags("block", clientHelp(help{
		usage: "HEIGHT|HASH [-l PORT | --data DIR | --api URL] [--json]",
		about: []string{"Shows one block, by height (main chain) or by hash (or a unique prefix of one),",
			"with its header, whether it is on the main chain, and its readings."},
		examples: []string{"block 12", "block 00003c9155", "block 12 --json"},
	}), stdout, &cf)
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("block", "want one block height or hash")
	}
	ref := pos[0]
	c, err := cf.connect()
	if err != nil {
		return err
	}
	var v struct {
		Block         *chain.Block `json:"block"`
		Main          bool         `json:"main"`
		Confirmations uint64       `json:"confirmations"`
		Final         bool         `json:"final"`
	}
	return query(c, stdout, "/api/v1/blocks/"+url.PathEscape(ref), &v, func(w *tabwriter.Writer) {
		h := v.Block.Header
		fmt.Fprintf(w, "height\t%d\n", h.Height)
		fmt.Fprintf(w, "hash\t%s\n", v.Block.Hash())
		fmt.Fprintf(w, "parent\t%s\n", h.Parent)
		fmt.Fprintf(w, "time\t%s\n", time.UnixMilli(h.Time).UTC().Format(time.RFC3339Nano))
		fmt.Fprintf(w, "readings root\t%s\n", h.Root)
		fmt.Fprintf(w, "difficulty, nonce\t%d, %d\n", h.Difficulty, h.Nonce)
		if v.Main {
			fmt.Fprintf(w, "main chain\tyes, %s\n", confirmations(v.Confirmations, v.Final, false))
		} else {
			fmt.Fprintln(w, "main chain\tno (side branch)")
		}
		if len(v.Block.Readings) > 0 {
			fmt.Fprintln(w, "\nREADING\tSUBJECT\tBPM\tTIME (UTC)")
			for _, r := range v.Block.Readings {
				fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", r.ID(), r.Subject, r.BPM, utcTime(r.Time))
			}
		}
	})
}

func runReadings(args []string, stdout, stderr io.Writer) error {
	var cf clientFlags
	fs := newClientFlags("readings", clientHelp(help{
		usage: "SUBJECT [--limit N] [-l PORT | --data DIR | --api URL] [--json]",
		about: []string{"Lists a subject's readings, newest first, pending ones and those in blocks with",
			"their confirmations. Subjects are case-sensitive: alice and Alice are two subjects."},
		examples: []string{"readings alice", "readings --subject alice --limit 5", "readings alice --json"},
	}), stdout, &cf)
	subject := fs.String("subject", "", "the `SUBJECT` whose readings to list (or give it as the argument)")
	limit := limitFlag(fs, "readings")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 1:
		return usagef("readings", "unexpected argument %q: give one subject", pos[1])
	case len(pos) == 1 && *subject != "" && pos[0] != *subject:
		return usagef("readings", "two subjects given: %q and --subject %q", pos[0], *subject)
	case len(pos) == 1:
		*subject = pos[0]
	case *subject == "":
		return usagef("readings", "--subject is required (e.g. %s readings alice)", invocation())
	}
	if err := chain.CheckSubject(*subject); err != nil {
		return fmt.Errorf("subject %q: %v", *subject, err)
	}
	c, err := cf.connect()
	if err != nil {
		return err
	}
	var v struct {
		Pending  []chain.Reading `json:"pending"`
		Readings []struct {
			Reading       chain.Reading `json:"reading"`
			Height        uint64        `json:"height"`
			Confirmations uint64        `json:"confirmations"`
			Final         bool          `json:"final"`
		} `json:"readings"`
	}
	// readings has no --from: the API's next link pages on.
	path := fmt.Sprintf("/api/v1/subjects/%s/readings?limit=%d", api.SubjectSegment(*subject),
		clampLimit(*limit, "--json shows the link to the next page (next, docs/API.md)", stderr))
	return query(c, stdout, path, &v, func(w *tabwriter.Writer) {
		if len(v.Pending)+len(v.Readings) == 0 {
			fmt.Fprintf(w, "no readings of subject %q (subjects are case-sensitive)\n", *subject)
			return
		}
		fmt.Fprintln(w, "TIME (UTC)\tBPM\tWHERE\tREADING")
		for _, r := range v.Pending {
			fmt.Fprintf(w, "%s\t%d\tpending\t%s\n", utcTime(r.Time), r.BPM, r.ID())
		}
		for _, x := range v.Readings {
			fmt.Fprintf(w, "%s\t%d\tblock %d (%s)\t%s\n", utcTime(x.Reading.Time),
				x.Reading.BPM, x.Height, confirmations(x.Confirmations, x.Final, true), x.Reading.ID())
		}
	})
}

func runAdd(args []string, stdout, stderr io.Writer) error {
	var cf clientFlags
	fs := newClientFlags("add", clientHelp(help{
		usage: "BPM [SUBJECT] [--subject S] [--time T] [-l PORT | --data DIR | --api URL] [--json]",
		about: []string{"Adds a reading (a heart rate in beats per minute) through the running node, which",
			"signs it, keeps it pending and mines it into a block. Prints the reading's id: the receipt.",
			"The subject may come before or after the rate, as at the prompt (alice 72); it is",
			"case-sensitive. Without one, the reading is for subject demo.",
			"The reading's time is this machine's clock unless --time gives it. While the node's disk",
			"is slow or its pending set full, add sends the same reading again for up to 2 minutes:",
			"the same subject, rate and time make the same reading, stored once by that node (another",
			"node signs another reading). If it gives up, its error prints the command, with --time",
			"and the node, that sends the same reading later."},
		examples: []string{"add 72", "add alice 72", "add 72 alice", "add 72 --subject alice -l 10000",
			"add alice 72 --time 2026-06-01T08:00:00Z"},
	}), stdout, &cf)
	subject := fs.String("subject", "", "`SUBJECT` of the reading (default demo)")
	at := fs.String("time", "", "when the reading was taken, `T`: Unix milliseconds or RFC 3339 (default now, by this machine's clock)")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	in, err := addArgs(pos, *subject)
	if err != nil {
		return err
	}
	ms, own, err := addTime(*at, time.Now())
	if err != nil {
		return err
	}
	c, err := cf.connect()
	if err != nil {
		return err
	}
	c.flags = cf.nodeFlags(c)
	return c.add(context.Background(), in, ms, own, stdout, stderr)
}

// nodeFlags are the flags that name the node c talks to, for a command
// printed to be run again: the same reading sent to another node is
// another reading (its id is signed with that node's key). --api URL
// where it was given, else the data directory of the node found (by -l,
// --data, $P2PCHAIN_DATA or as the one running); --token-file as given.
func (cf *clientFlags) nodeFlags(c *client) string {
	var f []string
	if cf.api != "" {
		f = append(f, "--api", shellQuote(cf.api))
	}
	if c.dir != "" {
		f = append(f, "--data", shellQuote(c.dir))
	}
	if cf.tokenFile != "" {
		f = append(f, "--token-file", shellQuote(cf.tokenFile))
	}
	return strings.Join(f, " ")
}

// addTime is the time add sends, in Unix milliseconds: flag's (Unix
// milliseconds or RFC 3339), or now's when flag is empty (own: the
// client's clock, which the node may find ahead of its own).
func addTime(flag string, now time.Time) (ms int64, own bool, err error) {
	if flag == "" {
		return now.UnixMilli(), true, nil
	}
	if n, err := strconv.ParseInt(flag, 10, 64); err == nil {
		if n >= 100_000_000 && readingsfile.LooksLikeSeconds(n) { // 1973 to 5138 in seconds
			return 0, false, usagef("add", "--time %s looks like Unix seconds: want Unix milliseconds (%s000) or an RFC 3339 time (2026-06-01T08:00:00Z)", flag, flag)
		}
		if readingsfile.LooksLikeSeconds(n) { // 1973 or before in milliseconds or in seconds
			return 0, false, usagef("add", "--time %s is no time after any network's genesis: want Unix milliseconds (1780300800000) or an RFC 3339 time (2026-06-01T08:00:00Z)", flag)
		}
		return n, false, nil
	}
	t, err := readingsfile.ParseRFC3339(flag)
	if err != nil || t.UnixMilli() <= 0 {
		return 0, false, usagef("add", "--time %s: want Unix milliseconds (1780300800000) or an RFC 3339 time (2026-06-01T08:00:00Z)", flag)
	}
	return t.UnixMilli(), false, nil
}

// addRetryFor is how long add goes on sending a reading the node did not
// take for a passing reason (503 disk_slow or pending_full, or no answer
// in time); addWaitCap caps one wait between tries (the node's
// Retry-After, 10 s for those). Tests shorten them.
var (
	addRetryFor = 2 * time.Minute
	addWaitCap  = 30 * time.Second
)

// add sends a reading taken at ms. The same subject, bpm and time make the
// same reading (its id is their hash with the node's key), so sending it
// again after an answer that says it may still be stored, or after no
// answer, stores it at most once: a try after a stored one answers
// reading_known. own says ms is this machine's clock: if the node finds
// it out of range (this clock ahead of the node's by more than the
// allowed drift, or before genesis), the node's clock is used instead,
// with a warning; each try is then a new reading, so one the node may have
// stored (disk_slow, no answer) is not sent again.
func (c *client) add(ctx context.Context, in input, ms int64, own bool, stdout, stderr io.Writer) error {
	const path = "/api/v1/readings"
	body := map[string]any{"subject": in.subject, "bpm": in.bpm, "time": ms}
	began := time.Now()
	deadline := began.Add(addRetryFor)
	// No try outlasts the whole: one that hangs near the end is cut there.
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	// timed: the body carries the time, so a try sent again is the same
	// reading. Without it (the node's clock, after it refused this one's),
	// each try is a new reading, stamped as it arrives: one is sent again
	// only after an answer that says the last was not stored.
	timed := func() bool {
		_, ok := body["time"]
		return ok
	}
	again := func(why string, wait time.Duration) bool {
		if wait <= 0 {
			wait = time.Second
		}
		wait = min(wait, addWaitCap)
		if time.Now().Add(wait).After(deadline) {
			return false
		}
		what := "the same reading"
		if !timed() {
			what = "the reading" // at the node's clock: a new one
		}
		fmt.Fprintf(stderr, "%s; sending %s again in %s (Ctrl-C stops)\n", why, what, wait.Round(time.Second))
		time.Sleep(wait)
		return true
	}
	rerun := func() string {
		if !timed() {
			return ""
		}
		to := ""
		if c.flags != "" {
			to = " " + c.flags // the node it was sent to: another would sign another reading
		}
		// --subject=: a subject may start with a dash, or hold what a
		// shell reads (printable ASCII: bob's, $x, a;b).
		return fmt.Sprintf("; '%s add %d --subject=%s --time %d%s' sends the same reading, stored once", invocation(), in.bpm, shellQuote(in.subject), ms, to)
	}
	for {
		resp, data, err := c.roundTrip(ctx, http.MethodPost, path, body)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && timed() && again("the node did not answer in time", time.Second) {
				continue
			}
			return fmt.Errorf("%w%s", err, rerun())
		}
		if resp.StatusCode == http.StatusAccepted {
			if own && timed() {
				warnClockBehind(stderr, resp.Header.Get("Date"), ms, time.Since(began))
			}
			if c.json {
				return printJSON(stdout, data)
			}
			var v struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(data, &v); err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "reading %s: %s %d bpm, pending\n", v.ID, in.subject, in.bpm)
			return err
		}
		e := answerError(http.MethodPost, path, resp, data).(*apiError)
		switch {
		case e.Code == api.CodeKnownReading && e.ID != "":
			// Stored already: by an earlier try that got no answer in
			// time, or by an earlier run with this --time.
			return c.showKnown(ctx, e.ID, in, stdout)
		case e.Code == api.CodeKnownReading:
			// The same, from a node older than the id in error bodies:
			// its message names the reading in short.
			if c.json {
				return printJSON(stdout, data)
			}
			_, err := fmt.Fprintf(stdout, "%s %d bpm, stored already (%s)\n", in.subject, in.bpm, e.Message)
			return err
		case e.Code == api.CodeBadTime && own:
			fmt.Fprintf(stderr, "warning: the node refused this machine's time (%s): it takes the reading at its own clock; check this machine's clock\n", e.Message)
			delete(body, "time")
			own = false
			continue
		case e.Code == api.CodeDiskSlow || e.Code == api.CodePendingFull || e.Code == api.CodeTooManyConns:
			wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			why := "the node's disk is slow"
			switch e.Code {
			case api.CodePendingFull:
				why = "the node's pending set is full"
			case api.CodeTooManyConns:
				why = "the node's API has as many connections as it takes"
			}
			if e.ID != "" {
				why += " (reading " + e.ID + ")"
			}
			// pending_full: refused before its write; too_many_connections:
			// before its request was read. Neither was stored.
			if (timed() || e.Code != api.CodeDiskSlow) && again(why, time.Duration(wait)*time.Second) {
				continue
			}
			if !timed() && e.ID != "" && e.Code == api.CodeDiskSlow {
				e.Message += fmt.Sprintf("; not sent again, as it was taken at the node's clock: see whether it was stored with '%s receipt %s' before adding it again", invocation(), e.ID)
			}
		}
		if e.Status >= 500 || e.Status == http.StatusTooManyRequests {
			// Sending it again may store it; a refusal of the reading
			// itself (400) would only be repeated.
			e.Message += rerun()
		}
		return e
	}
}

// clockBehind is how far this machine's clock may be behind the node's
// before add warns: a reading it timed is then stored as taken that long
// ago (the node takes past times: readings are back-dated by imports).
// Tests shorten it.
var clockBehind = 2 * time.Minute

// warnClockBehind warns when the node's clock at its answer (the HTTP
// Date header, to the second) is more than clockBehind ahead of this
// machine's: ahead of ms, the time this machine gave the reading, by more
// than elapsed, the time add took since (its tries and waits: up to
// addRetryFor, as long as clockBehind).
func warnClockBehind(stderr io.Writer, date string, ms int64, elapsed time.Duration) {
	at, err := http.ParseTime(date)
	if err != nil {
		return
	}
	if age := at.Sub(time.UnixMilli(ms)); age-elapsed > clockBehind {
		fmt.Fprintf(stderr, "warning: this machine's clock is about %s behind the node's: the reading was stored with this machine's time, as taken %s ago; check this machine's clock, or give --time\n",
			(age - elapsed).Round(time.Second), age.Round(time.Second))
	}
}

// showKnown prints a reading that an earlier try or run stored.
func (c *client) showKnown(ctx context.Context, id string, in input, stdout io.Writer) error {
	// What the node says of it now; the reading is stored whatever this
	// look finds (a node that is syncing may answer 503 for a while).
	var v struct {
		Status string  `json:"status"`
		Height *uint64 `json:"height"`
	}
	where := ""
	if err := c.get(ctx, "/api/v1/readings/"+id, &v); err == nil {
		where = " (pending)"
		if v.Height != nil {
			where = fmt.Sprintf(" (in block %d)", *v.Height)
		}
	}
	if c.json {
		// The shape of a 202's answer, with what tells it apart.
		raw, err := json.Marshal(struct {
			ID            string `json:"id"`
			Status        string `json:"status,omitempty"`
			StoredAlready bool   `json:"stored_already"`
		}{id, v.Status, true})
		if err != nil {
			return err
		}
		return printJSON(stdout, raw)
	}
	_, err := fmt.Fprintf(stdout, "reading %s: %s %d bpm, stored already%s\n", id, in.subject, in.bpm, where)
	return err
}

// addArgs reads add's arguments: BPM, or a subject and BPM in either order
// (the prompt's "alice 72" and "72 alice"), with --subject as flag.
func addArgs(pos []string, flagSubject string) (input, error) {
	isRate := func(s string) bool { _, err := strconv.Atoi(s); return err == nil }
	var subject, rate string
	switch len(pos) {
	case 0:
		return input{}, usagef("add", "want a heart rate in beats per minute, e.g. %s add 72", invocation())
	case 1:
		rate = pos[0]
	case 2:
		subject, rate = pos[0], pos[1] // as at the prompt: alice 72
		if !isRate(rate) && isRate(subject) {
			subject, rate = rate, subject // 72 alice
		}
	default:
		return input{}, usagef("add", "want a heart rate and at most one subject, e.g. add alice 72; got %q", strings.Join(pos, " "))
	}
	switch {
	case subject != "" && flagSubject != "" && subject != flagSubject:
		return input{}, usagef("add", "two subjects given: %q and --subject %q", subject, flagSubject)
	case subject == "":
		subject = flagSubject
	}
	if subject == "" {
		subject = "demo"
	}
	// Mistakes on the command line, as usage errors (exit 2), worded for
	// it rather than for the prompt.
	if !isRate(rate) {
		return input{}, usagef("add", "not a heart rate: %q: want a whole number of beats per minute, e.g. add alice 72", rate)
	}
	in, err := parseInput(subject+" "+rate, subject)
	if err == nil && in.cmd != "" {
		err = fmt.Errorf("not a heart rate: %q", rate)
	}
	if err != nil {
		return in, usagef("add", "%v", err)
	}
	return in, nil
}

func runConnect(args []string, stdout, stderr io.Writer) error {
	var cf clientFlags
	fs := newClientFlags("connect", clientHelp(help{
		usage: "MULTIADDR [-l PORT | --data DIR | --api URL] [--json]",
		about: []string{"Makes the running node connect to a peer, given as a full multiaddr ending in",
			"/p2p/<peer ID> (the banner of the other node prints it). Fails, with the reason,",
			"unless the peer is connected when the command ends."},
		examples: []string{"connect /ip4/127.0.0.1/tcp/10001/p2p/12D3KooW...", "connect -l 10000 /ip4/127.0.0.1/tcp/10001/p2p/12D3KooW..."},
	}), stdout, &cf)
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("connect", "want a peer's full multiaddr, e.g. /ip4/127.0.0.1/tcp/10000/p2p/12D3KooW...")
	}
	addr := pos[0]
	// Checked here, before asking the node, so that a mistyped address is
	// a command-line mistake (status 2) and the advice names what the
	// other node's status and banner call the addresses.
	// A bare /p2p/ID is fine here, as the API takes it: the node then
	// dials the addresses it already knows for that peer.
	if _, err := p2p.ParsePeerAddr(addr); err != nil && !strings.HasPrefix(strings.TrimSpace(addr), "/p2p/") {
		hint := hostPortHint(addr)
		if hint == "" {
			hint = "; " + whereAddrs
		}
		return usagef("connect", "%v%s", err, hint)
	}
	id := peerIDOf(addr)
	c, err := cf.connect()
	if err != nil {
		return err
	}
	ctx := context.Background()
	// The node keeps one connection per peer: to one it is connected to
	// already, it dials nothing, whatever address it is given.
	var before peersView
	if err := c.get(ctx, "/api/v1/peers", &before); err != nil {
		return err
	}
	already := before.find(id)
	var raw json.RawMessage
	if err := c.post(ctx, "/api/v1/peers", map[string]string{"addr": addr}, &raw); err != nil {
		return err
	}
	var after peersView
	if err := c.get(ctx, "/api/v1/peers", &after); err != nil {
		return err
	}
	via := after.find(id)
	if via == nil {
		return fmt.Errorf("the node answered that it connected to %s, but the peer is not among its peers: "+
			"it closed the connection (another network, or refused); see the node's log", id)
	}
	if c.json {
		return printJSON(stdout, raw)
	}
	// The peers' addrs are their connections' addresses, without the
	// /p2p/ID that addr ends in.
	conn := strings.TrimSuffix(addr, "/p2p/"+id)
	switch {
	case already != nil && !slices.Contains(already, conn):
		_, err = fmt.Fprintf(stdout, "already connected to %s through %s; %s was not dialled (one connection per peer is enough)\n",
			id, strings.Join(already, ", "), addr)
	case already != nil:
		_, err = fmt.Fprintf(stdout, "already connected to %s through %s (one connection per peer is enough)\n", id, strings.Join(already, ", "))
	case conn == "": // a bare /p2p/ID: the node dialled the addresses it knew
		_, err = fmt.Fprintf(stdout, "connected to %s through %s (an address the node knew)\n", id, strings.Join(via, ", "))
	case !slices.Contains(via, conn):
		_, err = fmt.Fprintf(stdout, "connected to %s through %s (an address the node knew; %s did not answer first)\n",
			id, strings.Join(via, ", "), addr)
	default:
		_, err = fmt.Fprintf(stdout, "connected to %s\n", addr)
	}
	return err
}

// find returns the connection addresses of peer id, or nil if it is not
// connected.
func (v peersView) find(id string) []string {
	for _, p := range v.Peers {
		if p.ID == id && id != "" {
			return append([]string{}, p.Addrs...)
		}
	}
	return nil
}

// peerIDOf returns the peer ID at the end of a multiaddr ("" if none).
func peerIDOf(addr string) string {
	i := strings.LastIndex(addr, "/p2p/")
	if i < 0 {
		return ""
	}
	return strings.Trim(addr[i+len("/p2p/"):], "/")
}

func short(h string) string {
	if len(h) > 10 {
		return h[:10]
	}
	return h
}

func age(ms int64) string {
	if ms == 0 {
		return "no time"
	}
	d := time.Since(time.UnixMilli(ms)).Round(time.Second)
	return d.String() + " ago"
}

// confirmations says how settled a main-chain block is: its confirmations
// (1 for the tip, in the singular), and whether it is final.
func confirmations(n uint64, final, short bool) string {
	word := "confirmations"
	switch {
	case short:
		word = "conf."
	case n == 1:
		word = "confirmation"
	}
	s := fmt.Sprintf("%d %s", n, word)
	if final {
		s += ", final"
	}
	return s
}

// utcTime shows a time of Unix milliseconds in UTC, as the tables whose
// TIME column says (UTC) list it.
func utcTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.DateTime) }

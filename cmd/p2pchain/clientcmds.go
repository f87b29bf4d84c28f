package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/p2pchain/p2pchain/internal/api"
	"github.com/p2pchain/p2pchain/internal/chain"
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

func runStatus(args []string, stdout, stderr io.Writer) error {
	var cf clientFlags
	fs := newFlagSet("status", "[--json]", stderr, &cf)
	if err := parseNone(fs, args); err != nil {
		return err
	}
	c, err := cf.connect()
	if err != nil {
		return err
	}
	var s api.StatusView
	return query(c, stdout, "/api/v1/status", &s, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "peer ID\t%s\n", s.PeerID)
		fmt.Fprintf(w, "network\t%s (difficulty %d, genesis %s)\n", s.Network, s.Difficulty, short(s.Genesis))
		fmt.Fprintf(w, "height\t%d\n", s.Height)
		fmt.Fprintf(w, "tip\t%s (%s)\n", s.Tip, age(s.TipTime))
		fmt.Fprintf(w, "total work\t%s\n", s.TotalWork)
		fmt.Fprintf(w, "peers\t%d\n", s.Peers)
		fmt.Fprintf(w, "pending readings\t%d\n", s.Pending)
		fmt.Fprintf(w, "sync\t%s", s.Sync.State)
		if s.Sync.State == "syncing" || s.Sync.State == "behind" {
			fmt.Fprintf(w, " (%d of %d, %.0f%%)", s.Sync.Height, s.Sync.Target, 100*s.Sync.Progress)
		}
		fmt.Fprintln(w)
		for i, a := range s.Addrs {
			label := ""
			if i == 0 {
				label = "listening on"
			}
			fmt.Fprintf(w, "%s\t%s\n", label, a)
		}
	})
}

func runPeers(args []string, stdout, stderr io.Writer) error {
	var cf clientFlags
	fs := newFlagSet("peers", "[--json]", stderr, &cf)
	if err := parseNone(fs, args); err != nil {
		return err
	}
	c, err := cf.connect()
	if err != nil {
		return err
	}
	var v struct {
		Peers []struct {
			ID     string   `json:"id"`
			Addrs  []string `json:"addrs"`
			Height uint64   `json:"height"`
		} `json:"peers"`
	}
	return query(c, stdout, "/api/v1/peers", &v, func(w *tabwriter.Writer) {
		if len(v.Peers) == 0 {
			fmt.Fprintln(w, "no peers (connect one with: p2pchain connect MULTIADDR)")
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

func runBlocks(args []string, stdout, stderr io.Writer) error {
	var cf clientFlags
	fs := newFlagSet("blocks", "[--from HEIGHT] [--limit N] [--json]", stderr, &cf)
	from := fs.Int64("from", -1, "newest height to list (default: the tip)")
	limit := fs.Int("limit", 20, "how many blocks (at most 100)")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	c, err := cf.connect()
	if err != nil {
		return err
	}
	q := url.Values{"limit": {strconv.Itoa(*limit)}}
	if *from >= 0 {
		q.Set("from", strconv.FormatInt(*from, 10))
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
		fmt.Fprintln(w, "HEIGHT\tHASH\tTIME\tREADINGS")
		for _, b := range v.Blocks {
			t := "genesis"
			if b.Height > 0 {
				t = time.UnixMilli(b.Time).UTC().Format(time.DateTime)
			}
			fmt.Fprintf(w, "%d\t%s\t%s\t%d\n", b.Height, b.Hash, t, b.Readings)
		}
	})
}

func runBlock(args []string, stdout, stderr io.Writer) error {
	var cf clientFlags
	fs := newFlagSet("block", "HASH|HEIGHT [--json]", stderr, &cf)
	ref, err := parseOne(fs, args, "a block hash or height")
	if err != nil {
		return err
	}
	c, err := cf.connect()
	if err != nil {
		return err
	}
	var v struct {
		Block         *chain.Block `json:"block"`
		Main          bool         `json:"main"`
		Confirmations uint64       `json:"confirmations"`
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
			fmt.Fprintf(w, "main chain\tyes, %d confirmations\n", v.Confirmations)
		} else {
			fmt.Fprintln(w, "main chain\tno (side branch)")
		}
		if len(v.Block.Readings) > 0 {
			fmt.Fprintln(w, "\nREADING\tSUBJECT\tBPM\tTIME")
			for _, r := range v.Block.Readings {
				fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", r.ID(), r.Subject, r.BPM, time.UnixMilli(r.Time).UTC().Format(time.DateTime))
			}
		}
	})
}

func runReadings(args []string, stdout, stderr io.Writer) error {
	var cf clientFlags
	fs := newFlagSet("readings", "--subject S [--limit N] [--json]", stderr, &cf)
	subject := fs.String("subject", "", "the subject whose readings to list (required)")
	limit := fs.Int("limit", 20, "how many readings (at most 100)")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	if *subject == "" {
		return fmt.Errorf("--subject is required (e.g. p2pchain readings --subject alice)")
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
		} `json:"readings"`
	}
	path := fmt.Sprintf("/api/v1/subjects/%s/readings?limit=%d", url.PathEscape(*subject), *limit)
	return query(c, stdout, path, &v, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "TIME\tBPM\tWHERE\tREADING")
		for _, r := range v.Pending {
			fmt.Fprintf(w, "%s\t%d\tpending\t%s\n", time.UnixMilli(r.Time).UTC().Format(time.DateTime), r.BPM, r.ID())
		}
		for _, x := range v.Readings {
			fmt.Fprintf(w, "%s\t%d\tblock %d (%d conf.)\t%s\n", time.UnixMilli(x.Reading.Time).UTC().Format(time.DateTime),
				x.Reading.BPM, x.Height, x.Confirmations, x.Reading.ID())
		}
	})
}

func runAdd(args []string, stdout, stderr io.Writer) error {
	var cf clientFlags
	fs := newFlagSet("add", "BPM [--subject S] [--json]", stderr, &cf)
	subject := fs.String("subject", "demo", "subject of the reading")
	rate, err := parseOne(fs, args, "a heart rate in beats per minute, e.g. 72")
	if err != nil {
		return err
	}
	in, err := parseInput(*subject+" "+rate, *subject)
	if err != nil || in.cmd != "" {
		if err == nil {
			err = fmt.Errorf("not a heart rate: %q", rate)
		}
		return err
	}
	c, err := cf.connect()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.post(context.Background(), "/api/v1/readings", map[string]any{"subject": in.subject, "bpm": in.bpm}, &raw); err != nil {
		return err
	}
	if c.json {
		return printJSON(stdout, raw)
	}
	var v struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "reading %s: %s %d bpm, pending (mining)\n", v.ID, in.subject, in.bpm)
	return err
}

func runConnect(args []string, stdout, stderr io.Writer) error {
	var cf clientFlags
	fs := newFlagSet("connect", "MULTIADDR", stderr, &cf)
	addr, err := parseOne(fs, args, "a peer's full multiaddr, e.g. /ip4/127.0.0.1/tcp/10000/p2p/12D3KooW...")
	if err != nil {
		return err
	}
	c, err := cf.connect()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.post(context.Background(), "/api/v1/peers", map[string]string{"addr": addr}, &raw); err != nil {
		return err
	}
	if c.json {
		return printJSON(stdout, raw)
	}
	_, err = fmt.Fprintf(stdout, "connected to %s\n", addr)
	return err
}

func parseNone(fs interface {
	Parse([]string) error
	NArg() int
	Arg(int) string
}, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see -h)", fs.Arg(0))
	}
	return nil
}

// parseOne parses flags around exactly one positional argument.
func parseOne(fs interface {
	Parse([]string) error
	NArg() int
	Arg(int) string
	Args() []string
}, args []string, what string) (string, error) {
	// Accept flags after the argument too (p2pchain add 72 --subject alice).
	var pos []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return "", err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 1 {
		return "", fmt.Errorf("want %s (see -h)", what)
	}
	return pos[0], nil
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

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/p2pchain/p2pchain/internal/datadir"
)

// p2pchain stop asks a running node to stop through its API (POST
// /api/v1/shutdown) and waits until it is gone: its data directory released
// (the process has ended), or, when only --api names the node, its API no
// longer answering.

func runStop(args []string, stdout, stderr io.Writer) error {
	var cf clientFlags
	fs := newClientFlags("stop", clientHelp(help{
		usage: "[-l PORT | --data DIR | --api URL] [--timeout D] [--json]",
		about: []string{"Stops a running node cleanly, as Ctrl-C or quit at its prompt would, and waits",
			"until it has stopped (its data directory is free again). Fails if it has not",
			"stopped within --timeout."},
		examples: []string{"stop", "stop -l 10001", "stop --data /srv/p2pchain --timeout 1m"},
	}), stdout, &cf)
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the node to stop")
	if err := fs.noArgs(args); err != nil {
		return err
	}
	c, err := cf.connect()
	if err != nil {
		return err
	}
	ctx := context.Background()
	var st struct {
		PeerID string `json:"peer_id"`
	}
	if err := c.get(ctx, "/api/v1/status", &st); err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.post(ctx, "/api/v1/shutdown", struct{}{}, &raw); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
			return fmt.Errorf("the node at %s cannot be stopped through its API (an older version?): stop its process (Ctrl-C, or kill PID)", c.base)
		}
		return err
	}
	where := c.base
	if c.dir != "" {
		where = c.dir
	}
	if !c.json {
		fmt.Fprintf(stderr, "stopping node %s (%s)...\n", st.PeerID, where)
	}
	start := time.Now()
	deadline := start.Add(*timeout)
	for !c.gone() {
		if time.Now().After(deadline) {
			pid := "PID"
			if c.dir != "" {
				if p, _ := datadir.InUse(c.dir); p != "" {
					pid = p
				}
			}
			return fmt.Errorf("the node on %s was asked to stop but still runs after %s: wait, or end it with kill %s "+
				"(even kill -9 loses nothing acknowledged)", where, *timeout, pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if c.json {
		return writeJSON(stdout, map[string]any{"stopped": true, "peer_id": st.PeerID, "seconds": time.Since(start).Seconds()})
	}
	_, err = fmt.Fprintf(stdout, "stopped node %s in %s\n", st.PeerID, roundDuration(time.Since(start)))
	return err
}

// gone reports whether the node has stopped: its data directory is no longer
// held (the process has ended or is about to), or, with no directory known,
// its API does not answer.
func (c *client) gone() bool {
	if c.dir != "" {
		_, inUse := datadir.InUse(c.dir)
		return !inUse
	}
	probe := &client{base: c.base, http: probeHTTP}
	return probe.get(context.Background(), "/api/v1/status", nil) != nil
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/p2pchain/p2pchain/internal/datadir"
)

// client talks to a running node's HTTP API. The client commands find the
// node as target says: --api URL; else the api file of the data directory
// that --data DIR, $P2PCHAIN_DATA or -l PORT names; else the api files of
// every data directory under ~/.p2pchain (or $P2PCHAIN_HOME) whose node
// answers; several answering nodes are listed and the user picks one.
type client struct {
	base  string
	token string
	http  *http.Client
	json  bool   // print raw JSON instead of tables
	dir   string // the node's data directory, "" if only --api named it
	flags string // the flags that name this node, for a command printed to run again
}

// clientFlags are the flags every client command takes: how to find the node
// (-l, --data, --api) and --json.
type clientFlags struct {
	target
	json bool
}

func (c *clientFlags) register(fs *cmdFlags) {
	c.registerClient(fs)
	fs.jsonFlag(&c.json, "the API's answer")
}

// newClientFlags returns the flag set of a client command, with the common
// flags.
func newClientFlags(name string, h help, stdout io.Writer, cf *clientFlags) *cmdFlags {
	fs := newCmdFlags(name, h, stdout)
	cf.register(fs)
	return fs
}

func (c *clientFlags) connect() (*client, error) {
	cl, err := c.find()
	if err != nil {
		return nil, err
	}
	// --token-file always; $P2PCHAIN_TOKEN only for a node named by --api
	// alone: a data directory's own token must not be replaced by one
	// exported for another node (nor that one sent to this node).
	tok, ok, err := c.token(c.api != "" && cl.dir == "")
	if err != nil {
		return nil, err
	}
	if ok {
		cl.token = tok
	}
	return cl, nil
}

// find finds the node as the flags say (see client), with the token of
// its data directory where it has one.
func (c *clientFlags) find() (*client, error) {
	cl := &client{http: &http.Client{Timeout: 30 * time.Second}, json: c.json}
	if c.api != "" {
		cl.base = strings.TrimRight(c.api, "/")
		if !strings.Contains(cl.base, "://") {
			cl.base = "http://" + cl.base
		}
		if dir, ok, _ := c.explicit(); ok {
			cl.token, cl.dir = readToken(dir), dir
		}
		return cl, nil
	}
	dir, ok, err := c.explicit()
	if err != nil {
		return nil, err
	}
	if ok {
		url, err := readAPIFile(dir, c.startCommand(dir))
		if err != nil {
			return nil, err
		}
		cl.base, cl.token, cl.dir = url, readToken(dir), dir
		return cl, nil
	}
	root, err := datadir.Root()
	if err != nil {
		return nil, err
	}
	var live []string
	for _, dir := range listDataDirs(root) {
		if url, ok := liveAPI(dir); ok {
			cl.base, cl.token, cl.dir = url, readToken(dir), dir
			live = append(live, dir)
		}
	}
	switch len(live) {
	case 0:
		return nil, fmt.Errorf("no running node found under %s: start one with '%s node', or give --api URL, --data DIR or -l PORT",
			root, invocation())
	case 1:
		return cl, nil
	default:
		return nil, fmt.Errorf("%d nodes are running; choose one with --data DIR, -l PORT or --api URL:\n%s", len(live), listChoices(live))
	}
}

// probeHTTP asks a node whether it runs: it answers at once or not at all.
var probeHTTP = &http.Client{Timeout: 2 * time.Second}

// liveAPI returns the API URL of the node running on dir, if one answers.
func liveAPI(dir string) (string, bool) {
	url, err := readAPIFile(dir, "")
	if err != nil {
		return "", false
	}
	probe := &client{base: url, http: probeHTTP}
	return url, probe.get(context.Background(), "/api/v1/status", nil) == nil
}

// readAPIFile returns the API URL of the node running on dir. A node that
// crashed leaves its api file behind, and with the fixed default port
// another node may answer there now: the file counts only while a process
// holds the directory. start is the command that starts a node on dir, as
// the user named it ("": node --data DIR), for the error that says none
// runs there.
func readAPIFile(dir, start string) (string, error) {
	if start == "" {
		start = fmt.Sprintf("%s node --data %s", invocation(), dir)
	}
	b, err := os.ReadFile(filepath.Join(dir, datadir.APIFile))
	pid, inUse := datadir.InUse(dir)
	if err == nil && !inUse {
		err = os.ErrNotExist
	}
	if errors.Is(err, os.ErrNotExist) && inUse {
		// Running, but with no API to reach: "no node is running" sent
		// the user to start a node that runs already.
		return "", fmt.Errorf("%s is in use by process %s, which serves no API: a node started with -api off (or still starting), "+
			"or an offline tool (verify, export, import); the client commands need a node's API: start the node without -api off, "+
			"or use its prompt (Ctrl-C there, or kill -TERM %s, stops it)", dir, pid, pid)
	}
	if errors.Is(err, os.ErrNotExist) {
		if _, serr := os.Stat(dir); errors.Is(serr, os.ErrNotExist) {
			// No node ever ran there: one started with --data elsewhere
			// is named by that --data, not by its port.
			return "", fmt.Errorf("no node is running on %s, and none was ever started there: name a node by the --data DIR "+
				"it was started with, or start one with '%s'", dir, start)
		}
		return "", fmt.Errorf("no node is running on %s: start it with '%s' and the flags it ran with before "+
			"(-seed, -network, -difficulty, --network-file: without its -seed a node comes back with another peer ID)", dir, start)
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func readToken(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, datadir.TokenFile))
	return strings.TrimSpace(string(b))
}

// apiError is an error response of the API.
type apiError struct {
	Status  int
	Message string `json:"error"`
	Code    string `json:"code"`
	ID      string `json:"id"` // the reading a refused submission made, if any
}

func (e *apiError) Error() string { return e.Message }

// roundTrip sends a request with body as JSON (nil: none) and the token,
// and returns the answer with its body (at most 64 MiB), whatever its
// status.
func (c *client) roundTrip(ctx context.Context, method, path string, body any) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, nil, fmt.Errorf("API URL %q: %w", c.base, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	// A timeout after a connection was made is a node that took the
	// request and did not answer; one before is an address that did not
	// answer a connection (a host down, a firewall that drops).
	var connected atomic.Bool
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { connected.Store(true) }}))
	resp, err := c.http.Do(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && connected.Load() {
			return nil, nil, fmt.Errorf("the node at %s did not answer in time: %w (it may be overloaded, or its disk slow: see its log and '%s status')", c.base, err, invocation())
		}
		return nil, nil, fmt.Errorf("cannot reach the node at %s: %w (is the node running? give --api URL, --data DIR or -l PORT to pick another)", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, nil, err
	}
	return resp, data, nil
}

// answerError is the *apiError of a refusal (status 300 or more): the
// node's error object, or the status where it sent none.
func answerError(method, path string, resp *http.Response, data []byte) error {
	e := &apiError{Status: resp.StatusCode}
	if json.Unmarshal(data, e) != nil || e.Message == "" {
		e.Message = fmt.Sprintf("%s %s: %s", method, path, resp.Status)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		e.Message += " (give the node's data directory with --data so the client can read its API token, or, from another machine, a copy of its api.token with --token-file FILE or $" + envToken + ")"
	}
	return e
}

func (c *client) get(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, nil, out)
}

func (c *client) post(ctx context.Context, path string, body, out any) error {
	return c.do(ctx, http.MethodPost, path, body, out)
}

// do sends a request and decodes the JSON answer into out (a *json.RawMessage
// keeps it as it is).
func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	resp, data, err := c.roundTrip(ctx, method, path, body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return answerError(method, path, resp, data)
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*json.RawMessage); ok {
		*raw = data
		return nil
	}
	return json.Unmarshal(data, out)
}

// printJSON writes raw JSON indented.
func printJSON(w io.Writer, raw json.RawMessage) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

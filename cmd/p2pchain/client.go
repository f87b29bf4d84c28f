package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/p2pchain/p2pchain/internal/datadir"
)

// client talks to a running node's HTTP API. The client commands find the
// node by themselves: --api URL, else the api file of --data DIR (or
// $P2PCHAIN_DATA), else the api files of every data directory under
// ~/.p2pchain (or $P2PCHAIN_HOME) whose node answers; several answering
// nodes are listed and the user picks one.
type client struct {
	base  string
	token string
	http  *http.Client
	json  bool // print raw JSON instead of tables
}

// clientFlags adds the flags every client command takes.
type clientFlags struct {
	api, data string
	json      bool
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.api, "api", "", "URL of the node's API, e.g. http://127.0.0.1:5001 (default: found from the data directory)")
	fs.StringVar(&c.data, "data", "", "data directory of the node to talk to")
	fs.BoolVar(&c.json, "json", false, "print the API's JSON instead of a table")
}

// newFlagSet returns a flag set for a client command with the common flags.
func newFlagSet(name, usage string, stderr io.Writer, cf *clientFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("p2pchain "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: p2pchain %s %s\n\nFlags (one dash or two):\n", name, usage)
		fs.PrintDefaults()
	}
	return fs
}

func (c *clientFlags) connect() (*client, error) {
	cl := &client{http: &http.Client{Timeout: 30 * time.Second}, json: c.json}
	switch {
	case c.api != "":
		cl.base = strings.TrimRight(c.api, "/")
		if !strings.Contains(cl.base, "://") {
			cl.base = "http://" + cl.base
		}
		if c.data != "" {
			cl.token = readToken(c.data)
		}
		return cl, nil
	case c.data != "" || os.Getenv(envData) != "":
		dir := c.data
		if dir == "" {
			dir = os.Getenv(envData)
		}
		url, err := readAPIFile(dir)
		if err != nil {
			return nil, err
		}
		cl.base, cl.token = url, readToken(dir)
		return cl, nil
	}
	root, err := datadir.Root()
	if err != nil {
		return nil, err
	}
	files, _ := filepath.Glob(filepath.Join(root, "*", datadir.APIFile))
	var live []string
	for _, f := range files {
		dir := filepath.Dir(f)
		url, err := readAPIFile(dir)
		if err != nil {
			continue
		}
		probe := &client{base: url, http: &http.Client{Timeout: 2 * time.Second}}
		if probe.get(context.Background(), "/api/v1/status", nil) == nil {
			cl.base, cl.token = url, readToken(dir)
			live = append(live, fmt.Sprintf("  --data %s   (%s)", dir, url))
		}
	}
	switch len(live) {
	case 0:
		return nil, fmt.Errorf("no running node found under %s: start one with 'p2pchain node', or give --api URL or --data DIR", root)
	case 1:
		return cl, nil
	default:
		return nil, fmt.Errorf("%d nodes are running; choose one with --data or --api:\n%s", len(live), strings.Join(live, "\n"))
	}
}

func readAPIFile(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, datadir.APIFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("no node is running on %s (it has no %s file): start it with 'p2pchain node --data %s'", dir, datadir.APIFile, dir)
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
}

func (e *apiError) Error() string { return e.Message }

func (c *client) get(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, nil, out)
}

func (c *client) post(ctx context.Context, path string, body, out any) error {
	return c.do(ctx, http.MethodPost, path, body, out)
}

// do sends a request and decodes the JSON answer into out (a *json.RawMessage
// keeps it as it is).
func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("API URL %q: %w", c.base, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the node at %s: %w (is 'p2pchain node' running? give --api or --data to pick another)", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		e := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Message == "" {
			e.Message = fmt.Sprintf("%s %s: %s", method, path, resp.Status)
		}
		if resp.StatusCode == http.StatusUnauthorized {
			e.Message += " (give the node's data directory with --data so the client can read its API token)"
		}
		return e
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

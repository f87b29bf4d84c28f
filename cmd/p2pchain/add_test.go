package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/api"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/store"
	"github.com/p2pchain/p2pchain/internal/store/storetest"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// slowDiskNode starts a node with its API whose store's files go through
// fs: it counts the disk slow after 100 ms and answers a queued reading
// after 1 s. It returns the node and the API's URL.
func slowDiskNode(t *testing.T, fs *storetest.FS) (*node.Node, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	params := chain.TestParams("add-slow")
	st, err := store.Open(filepath.Join(t.TempDir(), "chain"), params, store.WithFS(fs), store.WithDiskSlow(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	p, err := testnet.Start(ctx, testnet.Config{Params: params, NoMiner: true, NodeOptions: []node.Option{
		node.WithStore(st, node.State{}), node.WithDiskSlow(100 * time.Millisecond), node.WithWriteWait(time.Second)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	h := api.New(p.Node, p.Host)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = h.Close() })
	return p.Node, srv.URL
}

// shortRetries makes add wait at most 100 ms between tries.
func shortRetries(t *testing.T) {
	retryFor, waitCap := addRetryFor, addWaitCap
	addRetryFor, addWaitCap = 30*time.Second, 100*time.Millisecond
	t.Cleanup(func() { addRetryFor, addWaitCap = retryFor, waitCap })
}

// TestAddSlowDisk: `p2pchain add` on a node whose disk stalls. The node
// answers the first try after its write wait with 503 disk_slow "may still
// be stored", and later tries with "not stored" while the disk is slow;
// add sends the same reading again until the disk answers, and then the
// node finds it stored by the first try (409 reading_known), so add
// reports it stored and the node holds it once. Before, add sent no time,
// so the node stamped each try anew, and add gave up at the first 503:
// the user's rerun stored the reading a second time.
func TestAddSlowDisk(t *testing.T) {
	shortRetries(t)
	fs := storetest.New()
	n, url := slowDiskNode(t, fs)

	defer fs.StallFor(storetest.Syncs, 2500*time.Millisecond).Release()
	var out, errOut testnet.LogBuffer
	err := runAdd([]string{"alice", "72", "--api", url}, &out, &errOut)
	if err != nil {
		t.Fatalf("add on a disk that stalls for 2.5 s: %v\nstderr:\n%s", err, errOut.String())
	}
	if !strings.Contains(errOut.String(), "disk is slow") || !strings.Contains(errOut.String(), "sending the same reading again") {
		t.Errorf("add did not say it waited for the disk:\n%s", errOut.String())
	}
	if !strings.Contains(out.String(), "stored already (pending)") {
		t.Errorf("add's answer once the disk answered: %q, want the reading stored by the first try", out.String())
	}
	if p := n.Pending(); p != 1 {
		t.Errorf("%d readings pending, want the one reading once", p)
	}

	// Run again with the time it was given, the reading is the same one:
	// it is not stored twice.
	var first testnet.LogBuffer
	at := "2026-06-01T08:00:00Z"
	if err := runAdd([]string{"bob", "61", "--time", at, "--api", url}, &first, &errOut); err != nil || !strings.Contains(first.String(), "pending") {
		t.Fatalf("add --time: %v %q", err, first.String())
	}
	var again testnet.LogBuffer
	if err := runAdd([]string{"bob", "61", "--time", "1780300800000", "--api", url}, &again, &errOut); err != nil {
		t.Fatalf("add --time again: %v", err)
	}
	id := strings.TrimSuffix(strings.Fields(first.String())[1], ":")
	if !strings.Contains(again.String(), id) || !strings.Contains(again.String(), "stored already") {
		t.Errorf("add --time run again: %q, want reading %s stored already", again.String(), id)
	}
	if p := n.Pending(); p != 2 {
		t.Errorf("%d readings pending, want 2", p)
	}
	// With --json, the shape of a first answer, saying it was stored
	// already.
	var asJSON testnet.LogBuffer
	if err := runAdd([]string{"bob", "61", "--time", at, "--api", url, "--json"}, &asJSON, &errOut); err != nil {
		t.Fatalf("add --time --json again: %v", err)
	}
	var v struct {
		ID            string `json:"id"`
		Status        string `json:"status"`
		StoredAlready bool   `json:"stored_already"`
	}
	if err := json.Unmarshal([]byte(asJSON.String()), &v); err != nil || v.ID != id || v.Status != "pending" || !v.StoredAlready {
		t.Errorf("add --json of a reading stored already: %s (%v)", asJSON.String(), err)
	}
}

// TestAddClockAhead: a client whose clock is ahead of the node's by more
// than the allowed drift gets the reading taken at the node's clock, with
// a warning, not a refusal. --time that the node refuses is refused.
func TestAddClockAhead(t *testing.T) {
	n, url := slowDiskNode(t, storetest.New())
	c := &client{base: url, http: probeHTTP}
	var out, errOut bytes.Buffer
	ahead := time.Now().Add(time.Hour).UnixMilli()
	if err := c.add(context.Background(), input{subject: "alice", bpm: 70}, ahead, true, &out, &errOut); err != nil {
		t.Fatalf("add with this clock an hour ahead: %v", err)
	}
	if !strings.Contains(errOut.String(), "check this machine's clock") || !strings.Contains(out.String(), "pending") {
		t.Errorf("add with the clock ahead: stdout %q, stderr %q", out.String(), errOut.String())
	}
	if p := n.Pending(); p != 1 {
		t.Errorf("%d pending, want 1", p)
	}
	err := c.add(context.Background(), input{subject: "alice", bpm: 70}, ahead, false, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "future") {
		t.Errorf("add --time an hour ahead: %v, want the node's refusal", err)
	}
	for _, bad := range []string{"1780300800", "yesterday", "-5"} {
		if _, _, err := addTime(bad, time.Now()); err == nil {
			t.Errorf("--time %s taken", bad)
		}
	}
}

// TestAddClockAheadSlowDisk: once the node refused this machine's time and
// add sent the reading without one, each try is a new reading, stamped by
// the node's clock as it arrives. A try answered 503 disk_slow "may still
// be stored" is then not sent again: that would store the reading twice
// once the disk answers. add says it may be stored and names it.
func TestAddClockAheadSlowDisk(t *testing.T) {
	shortRetries(t)
	fs := storetest.New()
	n, url := slowDiskNode(t, fs)
	defer fs.StallFor(storetest.Syncs, 2500*time.Millisecond).Release()

	c := &client{base: url, http: probeHTTP}
	var out, errOut testnet.LogBuffer
	err := c.add(context.Background(), input{subject: "alice", bpm: 70}, time.Now().Add(time.Hour).UnixMilli(), true, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "may still be") {
		t.Errorf("add with the clock ahead on a stalled disk: %v, stdout %q; want the disk_slow refusal", err, out.String())
	}
	for deadline := time.Now().Add(10 * time.Second); n.Pending() == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // any later try lands too
	if p := n.Pending(); p != 1 {
		t.Errorf("%d readings pending, want the one reading once\nstderr:\n%s", p, errOut.String())
	}
}

// TestAddOlderNode: a node older than the id in error bodies answers a try
// after one that stored the reading 409 reading_known without the id. The
// reading is stored, once: add says so and succeeds, as with a newer node.
func TestAddOlderNode(t *testing.T) {
	shortRetries(t)
	tries := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tries++
		w.Header().Set("Content-Type", "application/json")
		if tries == 1 {
			w.Header().Set("Retry-After", "10")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error": "reading 92437f46acaba714 not yet stored, and it may still be", "code": "disk_slow"}`)
			return
		}
		w.WriteHeader(http.StatusConflict)
		fmt.Fprint(w, `{"error": "reading already known: reading 92437f46ac is already pending", "code": "reading_known"}`)
	}))
	defer srv.Close()
	var out, errOut bytes.Buffer
	c := &client{base: srv.URL, http: probeHTTP}
	if err := c.add(context.Background(), input{subject: "alice", bpm: 72}, time.Now().UnixMilli(), true, &out, &errOut); err != nil {
		t.Fatalf("add, stored by its first try on an older node: %v", err)
	}
	if !strings.Contains(out.String(), "stored already") || !strings.Contains(out.String(), "92437f46ac") {
		t.Errorf("add's answer: %q, want the reading stored already", out.String())
	}
}

// TestAddRerunQuoted: the command that add's error offers for sending the
// same reading later is one a shell runs as it reads: a subject with a
// quote, a dollar, a semicolon or a leading dash (printable ASCII, all
// allowed) comes through as itself.
func TestAddRerunQuoted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"error": "the reading was not stored: store closed", "code": "node_failed"}`)
	}))
	defer srv.Close()
	c := &client{base: srv.URL, http: probeHTTP}
	offered := regexp.MustCompile(`; '.*? (add .*)' sends the same reading, stored once$`)
	for _, subject := range []string{"alice", "bob's", "$HOME", "-x", "a;b"} {
		var out, errOut bytes.Buffer
		err := c.add(context.Background(), input{subject: subject, bpm: 72}, 1780300800000, false, &out, &errOut)
		if err == nil {
			t.Fatal("add took a refused reading")
		}
		m := offered.FindStringSubmatch(err.Error())
		if m == nil {
			t.Fatalf("no command to send it again in %q", err)
		}
		// The words a shell makes of it, one a line.
		words, serr := shellWords(t, m[1])
		if serr != nil {
			t.Errorf("subject %q: the command offered, %s, fails in a shell: %v", subject, m[1], serr)
			continue
		}
		args := words[1:] // after "add"
		var subj, at string
		fs := newCmdFlags("add", help{}, io.Discard)
		fs.StringVar(&subj, "subject", "", "")
		fs.StringVar(&at, "time", "", "")
		pos, perr := fs.parse(args)
		if perr != nil {
			t.Errorf("subject %q: the command offered, %s, does not parse: %v", subject, m[1], perr)
			continue
		}
		in, aerr := addArgs(pos, subj)
		if aerr != nil || in.subject != subject || in.bpm != 72 || at != "1780300800000" {
			t.Errorf("subject %q: the command offered, %s, reads as subject %q bpm %d time %q (%v)", subject, m[1], in.subject, in.bpm, at, aerr)
		}
	}
}

// TestAddTimeTooSmall: --time 0, a negative number or a few thousand are
// not Unix seconds either: add says they are no time a network takes,
// where it suggested "Unix milliseconds (0000)" or "(-5000)" before.
func TestAddTimeTooSmall(t *testing.T) {
	for _, bad := range []string{"0", "-5", "1000", "99999999"} {
		_, _, err := addTime(bad, time.Now())
		if err == nil {
			t.Fatalf("--time %s taken", bad)
		}
		if strings.Contains(err.Error(), "("+bad+"000)") || strings.Contains(err.Error(), "Unix seconds") {
			t.Errorf("--time %s: %v, want no suggestion that it is Unix seconds", bad, err)
		}
	}
	if _, _, err := addTime("1780300800", time.Now()); err == nil || !strings.Contains(err.Error(), "(1780300800000)") {
		t.Errorf("--time in Unix seconds: %v, want the value in milliseconds suggested", err)
	}
}

// TestAddRerunCommand: when add gives up on a node that keeps its pending
// set full, the command its error prints sends the same reading (same
// subject, rate and time) to the same node: it names the node as add
// reached it (--api URL), since the same reading sent to another node is
// another reading. Before, the command had no --api, -l or --data: run as
// printed it reached no node or another one. A refusal of the reading
// itself (400) prints no such command: sending it again is refused again.
func TestAddRerunCommand(t *testing.T) {
	t.Setenv("P2PCHAIN_HOME", t.TempDir()) // no node running there
	t.Setenv(envData, "")
	retryFor, waitCap := addRetryFor, addWaitCap
	addRetryFor, addWaitCap = 300*time.Millisecond, 100*time.Millisecond
	t.Cleanup(func() { addRetryFor, addWaitCap = retryFor, waitCap })

	var mu sync.Mutex
	var bodies []string
	answer := `{"error": "pending set full", "code": "pending_full"}`
	status := http.StatusServiceUnavailable
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		bodies = append(bodies, string(b))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
	}))
	defer srv.Close()

	for _, args := range [][]string{{"alice", "72"}, {"72", "--subject", "-x"}, {"72", "--subject", "a$b"}} {
		mu.Lock()
		bodies, answer, status = nil, `{"error": "pending set full", "code": "pending_full"}`, http.StatusServiceUnavailable
		mu.Unlock()
		var out, errOut testnet.LogBuffer
		err := runAdd(append(args, "--api", srv.URL), &out, &errOut)
		if err == nil {
			t.Fatalf("add %q on a node that stays full: no error", args)
		}
		msg := err.Error()
		i, j := strings.Index(msg, " add "), strings.LastIndex(msg, "' sends the same reading")
		if i < 0 || j < i {
			t.Fatalf("add %q: error %q prints no command that sends the reading again", args, msg)
		}
		rerun, err := shellWords(t, msg[i+len(" add "):j])
		if err != nil {
			t.Fatalf("add %q: the printed command %q: %v", args, msg[i:j], err)
		}
		mu.Lock()
		first := bodies[0]
		bodies, answer, status = nil, `{"id": "`+strings.Repeat("ab", 32)+`"}`, http.StatusAccepted
		mu.Unlock()
		var out2 testnet.LogBuffer
		if err := runAdd(rerun, &out2, &errOut); err != nil {
			t.Fatalf("add %q: the command its error printed, %q: %v", args, rerun, err)
		}
		mu.Lock()
		if len(bodies) != 1 || bodies[0] != first {
			t.Errorf("add %q: the printed command %q sent %q to the node, want the same reading %q", args, rerun, bodies, first)
		}
		mu.Unlock()
	}

	// A time the node refuses: no command to send it again.
	mu.Lock()
	answer, status = `{"error": "time: reading time is in the future", "code": "bad_time"}`, http.StatusBadRequest
	mu.Unlock()
	var out, errOut testnet.LogBuffer
	err := runAdd([]string{"alice", "72", "--time", "2030-01-01T00:00:00Z", "--api", srv.URL}, &out, &errOut)
	if err == nil || strings.Contains(err.Error(), "sends the same reading") {
		t.Errorf("add --time the node refuses: %v, want the refusal without a command that repeats it", err)
	}
}

// shellWords returns the words sh makes of cmd.
func shellWords(t *testing.T, cmd string) ([]string, error) {
	t.Helper()
	out, err := exec.Command("sh", "-c", "printf '%s\\n' "+cmd).Output()
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n"), nil
}

// TestAddClockBehind: a reading timed by a clock an hour behind the
// node's is stored as taken an hour ago (the node takes past times), and
// add warns that this machine's clock is behind; a --time an hour ago
// (a reading taken then) gets no warning.
func TestAddClockBehind(t *testing.T) {
	n, url := slowDiskNode(t, storetest.New())
	c := &client{base: url, http: probeHTTP}
	behind := time.Now().Add(-time.Hour).UnixMilli()
	var out, errOut bytes.Buffer
	if err := c.add(context.Background(), input{subject: "alice", bpm: 70}, behind, true, &out, &errOut); err != nil {
		t.Fatalf("add with this clock an hour behind: %v", err)
	}
	if !strings.Contains(errOut.String(), "behind the node's") {
		t.Errorf("no warning with this clock an hour behind: stderr %q", errOut.String())
	}
	errOut.Reset()
	if err := c.add(context.Background(), input{subject: "alice", bpm: 71}, behind, false, &out, &errOut); err != nil {
		t.Fatalf("add --time an hour ago: %v", err)
	}
	if errOut.Len() != 0 {
		t.Errorf("add --time an hour ago warned: %q", errOut.String())
	}
	if p := n.Pending(); p != 2 {
		t.Errorf("%d pending, want 2", p)
	}
}

// TestClientTimeoutSaysSo: a node that takes the request and does not
// answer in time is said to be slow, not unreachable (before, the client
// asked whether the node was running).
func TestClientTimeoutSaysSo(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	c := &client{base: srv.URL, http: &http.Client{Timeout: 100 * time.Millisecond}}
	err := c.get(context.Background(), "/api/v1/status", nil)
	if err == nil || !strings.Contains(err.Error(), "did not answer in time") || strings.Contains(err.Error(), "is the node running") {
		t.Fatalf("a node that does not answer: %v", err)
	}
}

// TestAddClockNotBehindAfterRetries: a reading timed by a clock that is
// right, sent again while the node's pending set is full for longer than
// clockBehind, gets no warning that this clock is behind: the time add
// spent trying is not the clocks' difference. Before, the node's Date at
// the answer was compared with the reading's time alone, so the tries of
// up to addRetryFor (as long as clockBehind) made a warning of their own.
func TestAddClockNotBehindAfterRetries(t *testing.T) {
	retryFor, waitCap, behind := addRetryFor, addWaitCap, clockBehind
	addRetryFor, addWaitCap, clockBehind = 30*time.Second, time.Second, 1500*time.Millisecond
	t.Cleanup(func() { addRetryFor, addWaitCap, clockBehind = retryFor, waitCap, behind })
	var mu sync.Mutex
	tries := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		tries++
		w.Header().Set("Content-Type", "application/json")
		if tries <= 3 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"error": "pending set full", "code": "pending_full"}`)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"id": "00", "status": "pending"}`)
	}))
	defer srv.Close()
	c := &client{base: srv.URL, http: probeHTTP}
	var out, errOut bytes.Buffer
	if err := c.add(context.Background(), input{subject: "alice", bpm: 70}, time.Now().UnixMilli(), true, &out, &errOut); err != nil {
		t.Fatalf("add: %v", err)
	}
	if strings.Contains(errOut.String(), "behind the node's") {
		t.Errorf("a clock that is right was said to be behind after %d tries: stderr %q", tries, errOut.String())
	}
}

// TestClientDialTimeoutSaysUnreachable: an address that does not answer a
// connection in time (a host down, a firewall that drops) is said to be
// unreachable, not a slow node: no request reached a node. Before, every
// timeout was a node that "did not answer in time", overloaded or with
// a slow disk.
func TestClientDialTimeoutSaysUnreachable(t *testing.T) {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		<-ctx.Done() // a connection that is never answered
		return nil, ctx.Err()
	}}
	c := &client{base: "http://192.0.2.1:1", http: &http.Client{Timeout: 100 * time.Millisecond, Transport: tr}}
	err := c.get(context.Background(), "/api/v1/status", nil)
	if err == nil || !strings.Contains(err.Error(), "cannot reach") || strings.Contains(err.Error(), "did not answer in time") {
		t.Fatalf("an address that takes no connection: %v", err)
	}
}

// TestAddRetriesTooManyConnections: a node whose API has all its places
// taken answers 503 too_many_connections before reading the request; add
// sends the reading again once a place is free, and it is stored once.
func TestAddRetriesTooManyConnections(t *testing.T) {
	shortRetries(t)
	params := chain.TestParams("add-conns")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := testnet.Start(ctx, testnet.Config{Params: params, NoMiner: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	h := api.New(p.Node, p.Host, api.WithMaxConnections(1, 1))
	defer h.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- h.Serve(ctx, ln) }()
	defer func() { cancel(); <-served }()
	held, err := net.Dial("tcp", ln.Addr().String()) // the one place
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(500*time.Millisecond, func() { _ = held.Close() })
	var out, errOut testnet.LogBuffer
	if err := runAdd([]string{"alice", "72", "--api", "http://" + ln.Addr().String()}, &out, &errOut); err != nil {
		t.Fatalf("add while the API's places are taken for 0.5 s: %v\nstderr:\n%s", err, errOut.String())
	}
	if !strings.Contains(errOut.String(), "as many connections as it takes") || !strings.Contains(out.String(), "pending") {
		t.Errorf("add: stdout %q, stderr %q", out.String(), errOut.String())
	}
	if n := p.Node.Pending(); n != 1 {
		t.Errorf("%d pending, want 1", n)
	}
}

// TestAddBoundedByItsDeadline: a node that takes the request and never
// answers holds add for add's own limit (addRetryFor), not for the
// client's 30 s timeout past it; the error says the node did not answer.
func TestAddBoundedByItsDeadline(t *testing.T) {
	retryFor, waitCap := addRetryFor, addWaitCap
	addRetryFor, addWaitCap = 500*time.Millisecond, 100*time.Millisecond
	t.Cleanup(func() { addRetryFor, addWaitCap = retryFor, waitCap })
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	c := &client{base: srv.URL, http: &http.Client{Timeout: 30 * time.Second}}
	done := make(chan error, 1)
	go func() {
		var out, errOut bytes.Buffer
		done <- c.add(context.Background(), input{subject: "alice", bpm: 72}, time.Now().UnixMilli(), true, &out, &errOut)
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "did not answer in time") {
			t.Fatalf("add against a node that never answers: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("add still waits 15 s into a 0.5 s limit: a try outlasts add's limit")
	}
}

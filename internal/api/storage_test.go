package api_test

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/p2pchain/p2pchain/internal/api"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/store"
	"github.com/p2pchain/p2pchain/internal/store/storetest"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// A node on a disk that fills up, or fails: what its API answers.

// storedPeer starts a node with its API on a store in dir (opened with
// opts), looking for space every 20 ms.
func storedPeer(t *testing.T, dir string, cfg testnet.Config, opts ...store.Option) (*env, *store.Store) {
	t.Helper()
	if cfg.Params.Name == "" {
		cfg.Params = chain.TestParams("api-storage")
	}
	st, err := store.Open(filepath.Join(dir, "chain"), cfg.Params, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() }) // after the peer's Close: cleanups run last first
	cfg.NodeOptions = append(cfg.NodeOptions, node.WithStore(st, node.State{}), node.WithSpaceRetry(20*time.Millisecond))
	return start(t, cfg), st
}

func storageState(t *testing.T, e *env) api.StorageView {
	t.Helper()
	return decode[api.StatusView](t, e.get("/api/v1/status")).Storage
}

func waitStorage(t *testing.T, e *env, state string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		s := storageState(t, e)
		if s.State == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("storage state %q (%s), want %q", s.State, s.Error, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func metricLine(t *testing.T, e *env, name string) string {
	t.Helper()
	for _, l := range strings.Split(string(e.get("/metrics").body), "\n") {
		if strings.HasPrefix(l, name+" ") {
			return l
		}
	}
	t.Fatalf("no metric %s", name)
	return ""
}

const reading = `{"subject": "alice", "bpm": 72}`

// A full disk: POST readings answers 503 disk_full with Retry-After and a
// text that says how full and that the node resumes by itself; the status
// and the metrics say it; reads are served; once space returns the node
// takes readings again by itself.
func TestDiskFullAnswers(t *testing.T) {
	fs := storetest.New()
	e, _ := storedPeer(t, t.TempDir(), testnet.Config{NoMiner: true}, store.WithFS(fs), store.WithReserve(1<<20))
	want(t, "a reading", e.postJSON("/api/v1/readings", reading), 202, "")

	fs.SetFree(100 << 10)
	r := e.postJSON("/api/v1/readings", `{"subject": "alice", "bpm": 73}`)
	want(t, "a reading on a full disk", r, 503, api.CodeDiskFull)
	if r.header.Get("Retry-After") == "" {
		t.Error("503 disk_full without Retry-After")
	}
	body := string(r.body)
	for _, s := range []string{"0.10 MiB free", "free space", "by itself"} {
		if !strings.Contains(body, s) {
			t.Errorf("the disk_full body does not say %q: %s", s, body)
		}
	}
	if s := storageState(t, e); s.State != api.StorageFull || s.Error == "" || s.Since == 0 {
		t.Errorf("status storage on a full disk: %+v", s)
	}
	if l := metricLine(t, e, "p2pchain_storage_full"); l != "p2pchain_storage_full 1" {
		t.Errorf("metric on a full disk: %q", l)
	}
	want(t, "reads on a full disk", e.get("/api/v1/blocks"), 200, "")

	fs.RealFree()
	waitStorage(t, e, api.StorageOK)
	want(t, "a reading with space back", e.postJSON("/api/v1/readings", `{"subject": "alice", "bpm": 73}`), 202, "")
	if l := metricLine(t, e, "p2pchain_storage_full"); l != "p2pchain_storage_full 0" {
		t.Errorf("metric with space back: %q", l)
	}
}

// A failing disk: the node fails; POST readings answers 503 node_failed,
// and the status and metrics say so.
func TestDiskFailingAnswers(t *testing.T) {
	fs := storetest.New()
	e, _ := storedPeer(t, t.TempDir(), testnet.Config{NoMiner: true}, store.WithFS(fs))
	fs.Fail(storetest.LogSyncs, storetest.EIO, -1)
	r := e.postJSON("/api/v1/readings", reading)
	want(t, "a reading on a failing disk", r, 503, api.CodeNodeFailed)
	want(t, "a reading on a failed node", e.postJSON("/api/v1/readings", `{"subject": "bob", "bpm": 60}`), 503, api.CodeNodeFailed)
	s := storageState(t, e)
	if s.State != api.StorageFailed || !strings.Contains(s.Error, "check the disk") {
		t.Errorf("status storage on a failing disk: %+v", s)
	}
	if l := metricLine(t, e, "p2pchain_storage_failed"); l != "p2pchain_storage_failed 1" {
		t.Errorf("metric on a failing disk: %q", l)
	}
	fs.Clear()
}

// A full pending set answers 503 pending_full with Retry-After.
func TestPendingFullAnswers(t *testing.T) {
	e := start(t, testnet.Config{NoMiner: true, NodeOptions: []node.Option{node.WithPoolSize(1)}})
	want(t, "a reading", e.postJSON("/api/v1/readings", reading), 202, "")
	r := e.postJSON("/api/v1/readings", `{"subject": "bob", "bpm": 60}`)
	want(t, "a reading over the pool", r, 503, api.CodePendingFull)
	if r.header.Get("Retry-After") == "" {
		t.Error("503 pending_full without Retry-After")
	}
}

// mountTmpfs mounts a tmpfs of size bytes on a new temp directory, or
// skips the test where it cannot (not root, no mount).
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a size-limited tmpfs (run the tests as root to fill a real disk)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s): skipping the real full-disk test", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file at path until the file system is full, and returns
// its size.
func fill(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4<<10)
	var size int64
	for {
		n, err := f.Write(buf)
		size += int64(n)
		if err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			return size
		}
	}
}

// syncBuffer is a log sink safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// A real 48 MiB file system fills up while readings arrive and blocks are
// mined, first by another program, then, with some room given back, by the
// node's own writes: every reading acknowledged is stored; new
// readings get 503 disk_full; the store is not reported damaged, and the
// node does not fail; once the filler file is deleted the node takes
// readings again by itself; its store closes without panicking and holds a
// valid chain.
func TestRealDiskFills(t *testing.T) {
	dir := mountTmpfs(t, 48<<20) // room for the engine's files beside the 10 MiB given back below
	params := chain.TestParams("tmpfs")
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// The store's defaults: a reserve of 4 MiB, a 2 MiB ballast.
	e, st := storedPeer(t, dir, testnet.Config{Params: params, Log: log}, store.WithLogger(log))

	var (
		mu    sync.Mutex
		acked []chain.Hash
		codes = map[string]int{}
	)
	post := func(i int) (status int) {
		r := e.postJSON("/api/v1/readings", fmt.Sprintf(`{"subject": "s%d", "bpm": %d}`, i%1000, 40+i%100))
		mu.Lock()
		defer mu.Unlock()
		switch r.status {
		case 202:
			v := decode[struct {
				ID string `json:"id"`
			}](t, r)
			id, err := chain.ParseHash(v.ID)
			if err != nil {
				t.Errorf("receipt %q: %v", v.ID, err)
			}
			acked = append(acked, id)
		default:
			codes[decode[struct {
				Code string `json:"code"`
			}](t, r).Code]++
		}
		return r.status
	}
	refused := func() int {
		mu.Lock()
		defer mu.Unlock()
		return codes[api.CodeDiskFull]
	}
	waitRefused := func(n int) {
		deadline := time.Now().Add(60 * time.Second)
		for refused() < n {
			if time.Now().After(deadline) {
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("not %d disk_full answers after the disk filled (answers %v)", n, codes)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	// Readings from 4 clients throughout.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; ; i += 4 {
				select {
				case <-stop:
					return
				default:
				}
				if post(i) != 202 {
					time.Sleep(5 * time.Millisecond)
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond) // some readings and blocks first

	// 1. Another program takes the whole disk.
	filler := filepath.Join(dir, "filler")
	size := fill(t, filler)
	waitRefused(20)
	if s := storageState(t, e); s.State != api.StorageFull {
		t.Fatalf("status storage on a full disk: %+v", s)
	}

	// 2. It gives back 10 MiB, 4 more than the store keeps free with its
	// ballast (4 + 2 MiB): the node resumes by itself, and fills them with
	// readings and blocks until it refuses readings again.
	before := len(acked)
	if size < 12<<20 {
		t.Fatalf("the filler took only %d bytes: the node's files took most of the file system before it", size)
	}
	if err := os.Truncate(filler, size-10<<20); err != nil {
		t.Fatal(err)
	}
	waitStorage(t, e, api.StorageOK)
	waitRefused(refused() + 20)
	close(stop)
	wg.Wait()
	mu.Lock()
	t.Logf("%d readings acknowledged (%d with the room given back), answers %v", len(acked), len(acked)-before, codes)
	if len(acked)-before < 100 {
		t.Errorf("only %d readings acknowledged in the 3 MiB given back", len(acked)-before)
	}
	for code, n := range codes {
		if code != api.CodeDiskFull {
			t.Errorf("%d answers %q on a full disk, want only %q", n, code, api.CodeDiskFull)
		}
	}
	mu.Unlock()
	if err := e.peer.Node.Err(); err != nil {
		t.Fatalf("the node failed on a full disk: %v", err)
	}

	// 3. The filler goes: the node resumes by itself.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitStorage(t, e, api.StorageOK)
	for i := range 20 {
		r := e.postJSON("/api/v1/readings", fmt.Sprintf(`{"subject": "back", "bpm": %d}`, 50+i))
		want(t, "a reading with space back", r, 202, "")
		if r.status == 202 {
			acked = append(acked, decodeID(t, r))
		}
	}
	out := logs.String()
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") || strings.Contains(l, "disk space is back") {
			t.Log(l)
		}
	}
	if n := strings.Count(out, "disk full: refusing"); n < 2 {
		t.Errorf("the log says %d times that the disk is full, want once per time it filled (2 or more):\n%s", n, out)
	}
	if !strings.Contains(out, "disk space is back") {
		t.Errorf("the log does not say that the node resumed:\n%s", out)
	}
	if strings.Contains(out, "damaged") {
		t.Errorf("the log calls the store damaged:\n%s", out)
	}

	// A restart finds every acknowledged reading, on a valid chain.
	if err := e.peer.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("close the store: %v", err)
	}
	st2, err := store.Open(st.Path(), params)
	if err != nil {
		t.Fatalf("reopen the store: %v", err)
	}
	defer st2.Close()
	state, err := st2.Load()
	if err != nil {
		t.Fatalf("load the store: %v", err)
	}
	have := map[chain.Hash]bool{}
	for _, r := range state.Pending {
		have[r.ID()] = true
	}
	c, err := chain.New(params)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range state.Main {
		if _, err := c.Process(b, time.Now(), 0); err != nil {
			t.Fatalf("stored block at height %d does not validate: %v", b.Header.Height, err)
		}
		for i := range b.Readings {
			have[b.Readings[i].ID()] = true
		}
	}
	if c.TipHash() != st2.Tip() {
		t.Fatalf("the stored blocks lead to %s, the store's tip is %s", c.TipHash().Short(), st2.Tip().Short())
	}
	missing := 0
	for _, id := range acked {
		if !have[id] {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged readings are not in the store after a restart", missing, len(acked))
	}
	t.Logf("after a restart: height %d, %d pending, all %d acknowledged readings stored", len(state.Main), len(state.Pending), len(acked))
}

func decodeID(t *testing.T, r response) chain.Hash {
	t.Helper()
	v := decode[struct {
		ID string `json:"id"`
	}](t, r)
	id, err := chain.ParseHash(v.ID)
	if err != nil {
		t.Fatalf("receipt %q: %v", v.ID, err)
	}
	return id
}

// TestReadFailureIsNot404: a block or reading the node holds but cannot
// read back from its store (the disk fails) is answered 503 node_failed,
// saying to check the disk, not 404 "no such block": that would tell a
// client the ledger does not hold it. Nor is a list answered short: a
// subject's readings, its FHIR search, a receipt and the blocks list are
// whole or 503 (a subject's page fell back to a scan of the chain whose
// block reads failed too, and answered 200 with no readings: a patient's
// history shown short, as if complete; short hashes answered 404).
func TestReadFailureIsNot404(t *testing.T) {
	e, blocks := failingDisk(t, "api-read-failure")
	failed, asked := 0, 0
	for _, b := range blocks[:250] {
		r := b.Readings[0]
		id, hash := r.ID().String(), b.Hash().String()
		// Each path, and what its answer must hold when it is 200 (from
		// the engine's cache).
		for path, want := range map[string]string{
			fmt.Sprintf("/api/v1/blocks/%d", b.Header.Height):               hash,
			"/api/v1/blocks/" + hash:                                        hash,
			"/api/v1/blocks/" + hash[:12]:                                   hash,
			"/api/v1/readings/" + id:                                        id,
			"/api/v1/readings/" + id[:12]:                                   id,
			"/fhir/Observation/" + id:                                       id,
			fmt.Sprintf("/api/v1/subjects/%s/readings?limit=10", r.Subject): id,
			"/fhir/Observation?subject=" + r.Subject:                        id,
			"/api/v1/readings/" + id + "/receipt":                           id,
			fmt.Sprintf("/api/v1/blocks?from=%d&limit=1", b.Header.Height):  hash,
		} {
			asked++
			switch resp := e.get(path); resp.status {
			case 200:
				if !strings.Contains(string(resp.body), want) {
					t.Fatalf("%s: 200 without %s: %s", path, want[:10], resp.body)
				}
			case 503:
				if failed++; !strings.Contains(string(resp.body), "check the disk") {
					t.Errorf("%s: %s", path, resp.body)
				}
			default:
				t.Fatalf("%s: %d %s; want the whole answer or 503, never as if the ledger did not hold it", path, resp.status, resp.body)
			}
		}
	}
	if failed == 0 {
		t.Fatal("no read met the failing disk")
	}
	t.Logf("%d of %d reads answered 503", failed, asked)
}

// failingDisk starts a node on a store of 300 blocks (one reading each, of
// subject bench-i) whose table reads then fail with EIO: the final
// blocks' bodies and readings, and the indexes, are only in the store's
// tables (whatever the engine holds in its cache may still be served).
func failingDisk(t *testing.T, network string) (*env, []*chain.Block) {
	t.Helper()
	dir := t.TempDir()
	params := chain.TestParams(network)
	blocks, err := testnet.BuildDataDir(t.Context(), dir, params, 300, nil)
	if err != nil {
		t.Fatal(err)
	}
	fs := storetest.New()
	st, err := store.Open(filepath.Join(dir, "chain"), params, store.WithFS(fs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	state, err := st.LoadRecent()
	if err != nil {
		t.Fatal(err)
	}
	e := start(t, testnet.Config{Params: params, NodeOptions: []node.Option{node.WithStore(st, *state)}})
	fs.Fail(func(op errorfs.Op) bool {
		return (op.Kind == errorfs.OpFileRead || op.Kind == errorfs.OpFileReadAt) && strings.HasSuffix(op.Path, ".sst")
	}, storetest.EIO, -1)
	return e, blocks
}

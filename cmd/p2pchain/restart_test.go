package main

// Restarts of real node processes (issue 3): a node keeps its identity, chain
// and pending readings; default data directories per port; one node per data
// directory; a damaged store is refused with a clear message.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/datadir"
	"github.com/p2pchain/p2pchain/internal/store"
)

// nodeEnv is the environment of a node whose default data directories live
// under a private home; P2PCHAIN_DATA is cleared in case the user set it.
func nodeEnv(home string) []string {
	return []string{datadir.EnvHome + "=" + home, envData + "="}
}

func TestRestartKeepsIdentityAndChain(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real node processes")
	}
	t.Parallel()
	data := filepath.Join(t.TempDir(), "node")
	env := nodeEnv(t.TempDir())
	args := []string{"--data", data, "-l", "0", "-difficulty", "6"} // no -seed: the identity comes from the directory

	n := startEnv(t, "first run", env, args...)
	first := readBanner(t, n)
	if first.height != 0 {
		t.Fatalf("a new data directory starts at height %d", first.height)
	}
	for _, r := range []string{"70", "alice 80", "bob 90"} {
		n.type_(r)
	}
	waitAcks(t, n, 3)
	before := waitStatus(t, n, "the readings to be mined", func(s nodeStatus) bool { return s.pending == 0 && s.height >= 1 })
	n.stop()

	info, err := os.Stat(filepath.Join(data, datadir.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("identity key has mode %v, want 0600", perm)
	}

	n = startEnv(t, "restarted", env, args...)
	again := readBanner(t, n)
	if again.id != first.id {
		t.Errorf("peer ID changed over a restart: %s, then %s", first.id, again.id)
	}
	if again.height != before.height || again.tip != before.tip {
		t.Errorf("restarted at height %d tip %s; stopped at height %d tip %s", again.height, again.tip, before.height, before.tip)
	}
	// The restarted node mines again where it stopped.
	n.type_("60")
	waitStatus(t, n, "a new block on the old tip", func(s nodeStatus) bool { return s.pending == 0 && s.height > before.height })
	n.stop()
	checkNoPanic(t, n)
}

// TestRestartKeepsPendingReadings: at a difficulty no block can be mined at,
// the readings stay pending, and a restart (clean or kill -9) keeps them,
// in order.
func TestRestartKeepsPendingReadings(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real node processes")
	}
	t.Parallel()
	const difficulty = 40
	data := filepath.Join(t.TempDir(), "node")
	env := nodeEnv(t.TempDir())
	args := []string{"--data", data, "-l", "0", "-difficulty", strconv.Itoa(difficulty)}

	n := startEnv(t, "first run", env, args...)
	first := readBanner(t, n)
	for _, r := range []string{"70", "alice 80", "bob 90"} {
		n.type_(r)
	}
	ids := waitAcks(t, n, 3)
	if st := askStatus(t, n); st.pending != 3 || st.height != 0 {
		t.Fatalf("status after three readings: height %d, %d pending; want 0 and 3", st.height, st.pending)
	}
	n.stop()

	n = startEnv(t, "restarted", env, args...)
	if again := readBanner(t, n); again.id != first.id {
		t.Errorf("peer ID changed over a restart: %s, then %s", first.id, again.id)
	}
	if st := askStatus(t, n); st.pending != 3 || st.height != 0 {
		t.Errorf("after a restart: height %d, %d pending; want 0 and 3", st.height, st.pending)
	}
	n.type_("100")
	ids = append(ids, waitAcks(t, n, 1)...)
	kill9(t, n)

	n = startEnv(t, "restarted after kill -9", env, args...)
	readBanner(t, n)
	if st := askStatus(t, n); st.pending != 4 {
		t.Errorf("after kill -9: %d pending, want 4", st.pending)
	}
	n.stop()
	checkNoPanic(t, n)

	// The store holds exactly those readings, oldest first.
	params := chain.DefaultParams()
	params.Difficulty = difficulty
	s, err := store.Open(filepath.Join(data, datadir.StoreDir), params)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range st.Pending {
		got = append(got, r.ID().String())
	}
	if !slices.Equal(got, ids) {
		t.Errorf("stored pending readings %v, want the acknowledged %v in that order", got, ids)
	}
}

// TestDefaultDataDirPerPort: nodes started with different -l ports and no
// --data get directories of their own, which the same command lines find
// again after a restart.
func TestDefaultDataDirPerPort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real node processes")
	}
	t.Parallel()
	home := t.TempDir()
	env := nodeEnv(home)
	p1, p2 := freePort(t), freePort(t)
	for p2 == p1 {
		p2 = freePort(t)
	}
	cmd1 := []string{"-l", strconv.Itoa(p1), "-difficulty", "6"}
	cmd2 := []string{"-l", strconv.Itoa(p2), "-difficulty", "6"}

	n1, n2 := startEnv(t, "node 1", env, cmd1...), startEnv(t, "node 2", env, cmd2...)
	b1, b2 := readBanner(t, n1), readBanner(t, n2)
	for _, c := range []struct {
		b    nodeBanner
		port int
	}{{b1, p1}, {b2, p2}} {
		if want := filepath.Join(home, fmt.Sprintf("node-%d", c.port)); c.b.data != want {
			t.Errorf("node on port %d uses %s, want %s", c.port, c.b.data, want)
		}
	}
	if b1.id == b2.id {
		t.Errorf("both nodes have peer ID %s", b1.id)
	}
	n1.type_("70")
	s1 := waitStatus(t, n1, "the reading to be mined", func(s nodeStatus) bool { return s.height == 1 && s.pending == 0 })
	n1.stop()
	n2.stop()

	n1, n2 = startEnv(t, "node 1 restarted", env, cmd1...), startEnv(t, "node 2 restarted", env, cmd2...)
	r1, r2 := readBanner(t, n1), readBanner(t, n2)
	if r1.data != b1.data || r1.id != b1.id || r1.height != 1 || r1.tip != s1.tip {
		t.Errorf("node 1 restarted with %+v; before: %+v at height 1 tip %s", r1, b1, s1.tip)
	}
	if r2.data != b2.data || r2.id != b2.id || r2.height != 0 {
		t.Errorf("node 2 restarted with %+v; before: %+v", r2, b2)
	}
	n1.stop()
	n2.stop()
}

// TestSameDataDirRefused: a second node on a data directory in use fails at
// once with a message naming the directory, and the first keeps running.
func TestSameDataDirRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real node processes")
	}
	t.Parallel()
	home := t.TempDir()
	env := nodeEnv(home)
	data := filepath.Join(t.TempDir(), "shared")
	port := freePort(t)
	n1 := startEnv(t, "node on --data", env, "--data", data, "-l", "0")
	readBanner(t, n1)
	n2 := startEnv(t, "node on -l", env, "-l", strconv.Itoa(port))
	readBanner(t, n2)

	for _, tc := range []struct {
		name string
		args []string
		dir  string
	}{
		{"same --data", []string{"--data", data, "-l", "0"}, data},
		{"same -l port, default directory", []string{"-l", strconv.Itoa(port)}, filepath.Join(home, fmt.Sprintf("node-%d", port))},
	} {
		out, err := runToExit(t, env, tc.args...)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Errorf("%s: second node ended with %v, want a non-zero exit; output:\n%s", tc.name, err, out)
			continue
		}
		if !strings.Contains(out, tc.dir) || !strings.Contains(out, "in use") {
			t.Errorf("%s: the message does not say that %s is in use:\n%s", tc.name, tc.dir, out)
		}
		if l := panicIn(out); l != "" {
			t.Errorf("%s: panic or goroutine dump (%s):\n%s", tc.name, l, out)
		}
	}
	for _, n := range []*proc{n1, n2} {
		askStatus(t, n)
		n.stop()
	}
}

// runToExit runs p2pchain until it exits (30 s at most) and returns its
// combined output and exit error.
func runToExit(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("p2pchain %v still ran after 30 s; output:\n%s", args, out)
	}
	return string(out), err
}

// corruptFixture is a data directory of a node that was stopped, and what a
// node restarted on an undamaged copy of it must show.
type corruptFixture struct {
	name string
	dir  string
	want nodeStatus
	// crashed: the node was killed, so its last commits are only in the
	// store's write-ahead log, the newest *.log file.
	crashed bool
}

// makeCorruptFixtures runs a node for three sessions stopped cleanly (so the
// store has several tables and a manifest with history) and a fourth ended
// by kill -9 after its readings were mined, and returns both states.
func makeCorruptFixtures(t *testing.T) []corruptFixture {
	t.Helper()
	root := t.TempDir()
	data := filepath.Join(root, "work")
	env := nodeEnv(t.TempDir())
	var out []corruptFixture
	for session := 1; session <= 4; session++ {
		n := startEnv(t, fmt.Sprintf("fixture session %d", session), env, "--data", data, "-l", "0", "-difficulty", "6")
		readBanner(t, n)
		for i := 0; i < 3; i++ {
			n.type_(fmt.Sprintf("s%d %d", session, 60+i))
		}
		waitAcks(t, n, 3)
		// Mined and on disk: a block still being written when the node is
		// killed was never announced, and the store may lose it (its
		// commit count is written after the engine's sync), so it is not
		// part of the state the damaged copies are held to.
		st := waitStatus(t, n, "the readings to be mined and stored", func(s nodeStatus) bool {
			return s.pending == 0 && s.height >= uint64(session) && s.stored == s.height
		})
		name := "clean"
		if session < 4 {
			n.stop()
		} else {
			kill9(t, n)
			name = "crashed"
		}
		if session >= 3 {
			dir := filepath.Join(root, name)
			if err := copyDataDir(data, dir); err != nil {
				t.Fatal(err)
			}
			out = append(out, corruptFixture{name: name, dir: dir, want: st, crashed: session == 4})
		}
	}
	return out
}

// copyDataDir copies a data directory: its files and its chain store.
func copyDataDir(src, dst string) error {
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		from, to := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		if e.IsDir() {
			err = copyFlatDir(from, to)
		} else {
			err = copyFile(from, to)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// storeDamage is one way to damage a file.
type storeDamage struct {
	name string
	do   func(path string) error
}

var storeDamages = []storeDamage{
	{"emptied", func(p string) error { return os.Truncate(p, 0) }},
	{"truncated to half", func(p string) error { return truncateBy(p, func(n int64) int64 { return n / 2 }) }},
	{"last byte cut", func(p string) error { return truncateBy(p, func(n int64) int64 { return max(n-1, 0) }) }},
	{"16 bytes overwritten in the middle", overwriteMiddle},
	{"deleted", os.Remove},
}

func truncateBy(path string, size func(int64) int64) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.Truncate(path, size(info.Size()))
}

func overwriteMiddle(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if len(data) == 0 {
		return os.WriteFile(path, []byte("\xde\xad\xbe\xef"), 0o600)
	}
	for i := len(data) / 2; i < min(len(data)/2+16, len(data)); i++ {
		data[i] ^= 0xa5
	}
	return os.WriteFile(path, data, 0o600)
}

// TestCorruptStoreRefused damages each file of the chain store of a real
// node (stopped cleanly, and killed) in several ways and starts a node on
// it. Either the node refuses to start, with a non-zero exit, no panic, and
// a message naming the store directory and the way out (p2pchain verify, or
// move the store away and re-sync), or the damage did not matter and the
// node starts with exactly the chain it had. A node that starts with a
// shorter or different chain is a failure: that includes damage to the
// newest log of a crashed store, which the store catches through its
// commits file. The summary of every case is logged
// at the end (go test -v -run TestCorruptStoreRefused ./cmd/p2pchain).
func TestCorruptStoreRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real node processes")
	}
	t.Parallel()
	var (
		mu       sync.Mutex
		outcomes []string
	)
	t.Cleanup(func() { // after every case has run
		sort.Strings(outcomes)
		t.Logf("outcomes:\n%s", strings.Join(outcomes, "\n"))
	})
	for _, f := range makeCorruptFixtures(t) {
		entries, err := os.ReadDir(filepath.Join(f.dir, datadir.StoreDir))
		if err != nil {
			t.Fatal(err)
		}
		var files []string
		for _, e := range entries {
			if e.Name() != "LOCK" {
				files = append(files, e.Name())
			}
		}
		// An undamaged copy starts with the chain it had: the control.
		cases := []struct{ file, damage string }{{"", "none"}}
		for _, file := range files {
			for _, d := range storeDamages {
				cases = append(cases, struct{ file, damage string }{file, d.name})
			}
		}
		for _, c := range cases {
			t.Run(f.name+"/"+c.file+"/"+c.damage, func(t *testing.T) {
				t.Parallel()
				outcome := tryDamagedStore(t, f, c.file, c.damage)
				mu.Lock()
				outcomes = append(outcomes, fmt.Sprintf("  %-8s %-40s %-35s %s", f.name, c.file, c.damage, outcome))
				mu.Unlock()
			})
		}
	}
}

// tryDamagedStore applies one damage to a copy of fixture f, starts a node on
// it and returns what happened: "refused" or "same chain".
func tryDamagedStore(t *testing.T, f corruptFixture, file, damage string) string {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	if err := copyDataDir(f.dir, data); err != nil {
		t.Fatal(err)
	}
	chainDir := filepath.Join(data, datadir.StoreDir)
	for _, d := range storeDamages {
		if d.name == damage {
			if err := d.do(filepath.Join(chainDir, file)); err != nil {
				t.Fatal(err)
			}
		}
	}
	what := fmt.Sprintf("%s store, %s %s", f.name, file, damage)
	repro := fmt.Sprintf("reproduce: stop a node with --data DIR -difficulty 6 (%s), damage DIR/chain/%s (%s), start it again", f.name, file, damage)

	n := startEnv(t, what, nodeEnv(t.TempDir()), "--data", data, "-l", "0", "-difficulty", "6")
	started, err := startedOrExited(n)
	out := n.output()
	if l := panicIn(out); l != "" {
		t.Errorf("%s: panic or goroutine dump (%s):\n%s", what, l, out)
	}
	if !started {
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Errorf("%s: the node ended with %v, want a non-zero exit; output:\n%s", what, err, out)
		}
		for _, want := range []string{chainDir, "p2pchain verify --data " + data, "re-sync"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: the message does not mention %q:\n%s", what, want, out)
			}
		}
		if strings.Contains(out, "<corruption detail carrier>") {
			// Pebble's corruption errors carry a second error whose text is
			// this placeholder; the store should name the damaged file
			// instead (pebble.ExtractDataCorruptionInfo). See the report.
			t.Logf("UNCLEAR MESSAGE: %s: %q in the error", what, "<corruption detail carrier>")
		}
		if damage == "none" {
			t.Fatalf("%s: the undamaged copy does not start:\n%s", what, out)
		}
		// The way out the message names finds the damage too.
		vout, verr := runToExit(t, nodeEnv(t.TempDir()), "verify", "--data", data)
		if !errors.As(verr, &ee) || ee.ExitCode() == 0 {
			t.Errorf("%s: p2pchain verify --data %s ended with %v, want a non-zero exit:\n%s", what, data, verr, vout)
		}
		if l := panicIn(vout); l != "" {
			t.Errorf("%s: p2pchain verify: panic or goroutine dump (%s):\n%s", what, l, vout)
		}
		return "refused: " + errorLine(out, data)
	}
	ban := readBanner(t, n)
	st := askStatus(t, n)
	n.stop()
	if ban.height == f.want.height && ban.tip == f.want.tip && st.pending == f.want.pending {
		return "same chain"
	}
	msg := fmt.Sprintf("%s: the node started silently with height %d tip %s and %d pending; the store had height %d tip %s and %d pending",
		what, ban.height, ban.tip, st.pending, f.want.height, f.want.tip, f.want.pending)
	t.Errorf("%s (%s)", msg, repro)
	return "SILENTLY CHANGED"
}

// startedOrExited waits until n shows its banner (true) or exits (false and
// its exit error).
func startedOrExited(n *proc) (bool, error) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-n.exit:
			drainOutput(n)
			return false, err
		case <-time.After(10 * time.Millisecond):
		}
		if n.count(bannerData.String()) > 0 {
			return true, nil
		}
	}
	n.t.Fatalf("%s neither started nor exited within 30 s", n.name)
	return false, nil
}

// errorLine returns the node's error line from out, with the data directory
// shortened to DATA, for the summary.
func errorLine(out, data string) string {
	line := lastLine(out)
	for _, l := range strings.Split(out, "\n") {
		if failLine.MatchString(l) {
			line = l
			break
		}
	}
	line = strings.ReplaceAll(line, data, "DATA")
	if len(line) > 150 {
		line = line[:150] + "..."
	}
	return line
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

package main

// The crash test of issue 3: kill -9 of a real node process while it mines
// readings and receives blocks, repeated.
//
// CI runs 3 rounds, the long mode (P2PCHAIN_LONG=1, docs/RELIABILITY.md)
// 200; P2PCHAIN_KILL_ROUNDS sets any positive number, and a failing run is
// repeated with the seed it logged:
//
//	P2PCHAIN_LONG=1 go test -run TestKillNine -v -timeout 2h ./cmd/p2pchain
//	P2PCHAIN_KILL_ROUNDS=20 go test -race -run TestKillNine -v ./cmd/p2pchain
//	P2PCHAIN_KILL_ROUNDS=20 P2PCHAIN_KILL_SEED=12345 go test -run TestKillNine -v ./cmd/p2pchain
//
// The seed fixes the test's own choices (how long each round runs, how many
// readings are typed, when the kill comes); the timing of the processes
// still varies from run to run.

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/store"
)

// crashDifficulty makes mining real but short work (about 2^14 hashes, 2 ms, a
// block), so blocks are mined and received all the time.
const crashDifficulty = 14

// killRounds returns how many times TestKillNineWhileMining kills the node:
// $P2PCHAIN_KILL_ROUNDS, else 200 in the long mode ($P2PCHAIN_LONG), else 3.
func killRounds(t *testing.T) int {
	s := os.Getenv("P2PCHAIN_KILL_ROUNDS")
	if s == "" {
		if os.Getenv("P2PCHAIN_LONG") != "" {
			return 200
		}
		return 3
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("P2PCHAIN_KILL_ROUNDS=%q: want a positive number of rounds", s)
	}
	return n
}

// killSeed returns $P2PCHAIN_KILL_SEED, or a new seed.
func killSeed(t *testing.T) uint64 {
	s := os.Getenv("P2PCHAIN_KILL_SEED")
	if s == "" {
		return uint64(time.Now().UnixNano())
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("P2PCHAIN_KILL_SEED=%q: want a number", s)
	}
	return n
}

// TestKillNineWhileMining kills a node process with SIGKILL at a random
// moment while it mines readings typed at its prompt and receives the blocks
// of a peer, again and again on the same data directory, and checks after
// every kill that
//
//   - the store the process left behind opens and loads;
//   - its chain verifies: a copy of the crashed store is opened in this test
//     and every stored block (main chain and side branches) is replayed
//     through chain.AddBlock, which checks every rule (proof of work, links,
//     Merkle roots, signatures), and the replay ends on the stored tip;
//   - every reading the node acknowledged ("reading <id>: ... pending") is
//     in the stored main chain or pending, and the chain never got shorter;
//   - the node restarts on the same directory without error (the store
//     opens and passes the start-up check) and catches up with the peer.
//
// The crashed store is checked on a copy so that the restarted node, not
// this test, is the first to recover the store's write-ahead log. After the
// last round the node is restarted once more, stopped cleanly, and its store
// must hold every reading acknowledged in any round.
//
// kill -9 ends the process, not the machine: what the process wrote is in
// the kernel's page cache and survives. Power loss is not simulated.
func TestKillNineWhileMining(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills real node processes")
	}
	rounds, seed := killRounds(t), killSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0x6b696c6c))
	t.Logf("%d rounds, seed %d (repeat with P2PCHAIN_KILL_SEED=%d P2PCHAIN_KILL_ROUNDS=%d)", rounds, seed, seed, rounds)

	params := chain.DefaultParams()
	params.Difficulty = crashDifficulty
	diff := strconv.Itoa(crashDifficulty)

	// B: the peer that keeps producing blocks, from readings typed at it.
	peer := start(t, "B", "-l", "0", "-difficulty", diff, "-subject", "peer")
	addrB := peer.expect(`^  p2pchain node -l \d+ -d (/ip4/\S+)(?: -network \S+)?(?: -difficulty \d+)?$`)[1]
	stopFeed := feedReadings(peer, seed)
	defer stopFeed()

	// A: the node that is killed, always on the same data directory.
	data := filepath.Join(t.TempDir(), "A")
	env := []string{"P2PCHAIN_HOME=" + t.TempDir(), "P2PCHAIN_DATA="}
	args := []string{"--data", data, "-l", "0", "-difficulty", diff, "-d", addrB, "-subject", "crash"}

	acked := map[string]int{} // acknowledged reading id -> round
	var last storeSummary     // the store left by the last kill
	begin := time.Now()
	for round := 1; round <= rounds; round++ {
		a := startEnv(t, fmt.Sprintf("A (round %d)", round), env, args...)
		ban := readBanner(t, a)
		if ban.height < last.height {
			t.Fatalf("round %d: the node restarted at height %d, below the height %d of the store it crashed with",
				round, ban.height, last.height)
		}
		target := catchUp(t, a, peer)

		// Type readings at A at random moments for a random while, then a
		// burst right before the kill, so that some are being stored or
		// mined when it comes.
		window := 200*time.Millisecond + randDur(rng, 1200*time.Millisecond)
		typed := 0
		typeOne := func() {
			a.type_(fmt.Sprintf("r%d %d", round, 40+typed))
			typed++
		}
		for end := time.Now().Add(window); time.Now().Before(end) && typed < 200; {
			typeOne()
			time.Sleep(randDur(rng, 120*time.Millisecond))
		}
		// The kill comes either a random 0-20 ms after the burst, or as
		// soon as the first reading of the burst is acknowledged: the
		// moment when that reading is stored as pending but most likely
		// not yet in a mined block.
		burst := 1 + rng.IntN(4)
		ackedBefore := len(acknowledged(a))
		for i := 0; i < burst; i++ {
			typeOne()
		}
		when := "on the first acknowledgement of the burst"
		if rng.IntN(2) == 0 {
			wait := randDur(rng, 20*time.Millisecond)
			when = fmt.Sprintf("%v after the burst", wait.Round(time.Millisecond))
			time.Sleep(wait)
		} else {
			for end := time.Now().Add(5 * time.Second); len(acknowledged(a)) == ackedBefore && time.Now().Before(end); {
				time.Sleep(time.Millisecond)
			}
		}
		kill9(t, a)
		checkNoPanic(t, a)

		ids := acknowledged(a)
		for _, id := range ids {
			if r, dup := acked[id]; dup {
				t.Fatalf("round %d: reading %s was acknowledged in round %d too", round, id, r)
			}
			acked[id] = round
		}
		sum := checkStoreCopy(t, filepath.Join(data, "chain"), params, acked)
		if sum.height < last.height {
			t.Fatalf("round %d: the store is at height %d after the kill, it was at %d after the previous one",
				round, sum.height, last.height)
		}
		t.Logf("round %d: caught up to height %d, typed %d readings in %v (the last %d in a burst), killed %s; "+
			"%d acknowledged; store after the kill: height %d tip %s, %d pending, %d side blocks",
			round, target, typed, window.Round(time.Millisecond), burst, when,
			len(ids), sum.height, sum.tip, sum.pending, sum.side)
		last = sum
	}

	// A last restart, this time stopped cleanly: the store it leaves must
	// hold every reading acknowledged in any round.
	a := startEnv(t, "A (last restart)", env, args...)
	if ban := readBanner(t, a); ban.height < last.height {
		t.Fatalf("last restart at height %d, below the crashed store's %d", ban.height, last.height)
	}
	catchUp(t, a, peer)
	a.stop()
	checkNoPanic(t, a)
	sum := checkStore(t, filepath.Join(data, "chain"), params, acked)
	t.Logf("%d kills in %v; %d readings acknowledged, all in the final store (height %d, %d pending)",
		rounds, time.Since(begin).Round(time.Millisecond), len(acked), sum.height, sum.pending)
}

// feedReadings types readings at p every 30 to 100 ms until the returned
// function is called, so p keeps mining and relaying blocks.
func feedReadings(p *proc, seed uint64) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		rng := rand.New(rand.NewPCG(seed, 0x66656564))
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-time.After(30*time.Millisecond + randDur(rng, 70*time.Millisecond)):
			}
			// Errors are ignored: the test ends the process at its end.
			_, _ = fmt.Fprintf(p.stdin, "f%d %d\n", i/200, 40+i%200)
		}
	}()
	return func() {
		close(done)
		select {
		case <-finished:
		case <-time.After(5 * time.Second):
			// A write blocked on a node that stopped reading: it ends
			// when the test's cleanup kills the node.
		}
	}
}

// catchUp waits until a has at least the height b has now, and returns it.
func catchUp(t *testing.T, a, b *proc) uint64 {
	t.Helper()
	target := askStatus(t, b).height
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := askStatus(t, a)
		if st.height >= target {
			return target
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: at height %d after 30 s, its peer was at %d", a.name, st.height, target)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kill9 kills p with SIGKILL and waits until it is gone and its output read.
func kill9(t *testing.T, p *proc) {
	t.Helper()
	select {
	case err := <-p.exit:
		drainOutput(p)
		t.Fatalf("%s exited by itself before the kill: %v", p.name, err)
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("%s: kill: %v", p.name, err)
	}
	select {
	case err := <-p.exit:
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("%s: after SIGKILL: %v", p.name, err)
		}
		if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			drainOutput(p)
			t.Fatalf("%s ended with %v, not by the SIGKILL", p.name, err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("%s still runs 15 s after SIGKILL", p.name)
	}
	drainOutput(p)
}

// drainOutput waits, after p has exited, until its last output lines are
// collected: the collecting goroutine has read every byte by then and needs
// only to split the last ones into lines.
func drainOutput(p *proc) {
	n, stable := outLen(p), 0
	for deadline := time.Now().Add(3 * time.Second); stable < 10 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		if m := outLen(p); m != n {
			n, stable = m, 0
		} else {
			stable++
		}
	}
}

var ackLine = regexp.MustCompile(`^reading ([0-9a-f]{64}): \S+ \d+ bpm, pending`)

// acknowledged returns the ids of the readings p acknowledged.
func acknowledged(p *proc) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []string
	for _, l := range p.lines {
		if m := ackLine.FindStringSubmatch(l); m != nil {
			ids = append(ids, m[1])
		}
	}
	return ids
}

// storeSummary describes a checked store.
type storeSummary struct {
	height        uint64
	tip           string // short hash, as the node prints it
	pending, side int
}

// checkStoreCopy checks a copy of the store in dir, leaving dir untouched
// (opening a store recovers its write-ahead log).
func checkStoreCopy(t *testing.T, dir string, params chain.Params, acked map[string]int) storeSummary {
	t.Helper()
	cp := filepath.Join(t.TempDir(), "chain")
	if err := copyFlatDir(dir, cp); err != nil {
		t.Fatal(err)
	}
	return checkStore(t, cp, params, acked)
}

// checkStore opens the store in dir, verifies its whole chain by replaying
// every block through chain.AddBlock, and checks that every acknowledged
// reading (by id) is in the main chain or pending.
func checkStore(t *testing.T, dir string, params chain.Params, acked map[string]int) storeSummary {
	t.Helper()
	s, err := store.Open(dir, params)
	if err != nil {
		t.Fatalf("the store does not open: %v", err)
	}
	defer s.Close()
	st, err := s.Load()
	if err != nil {
		t.Fatalf("the store does not load: %v", err)
	}
	c, err := chain.New(params)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	where := map[string]string{}
	for _, b := range st.Main {
		u, err := c.AddBlock(b, now)
		if err != nil {
			t.Fatalf("stored main block %s at height %d does not verify: %v", b.Hash().Short(), b.Header.Height, err)
		}
		if !u.TipChanged || c.TipHash() != b.Hash() {
			t.Fatalf("stored main block at height %d does not extend the main chain", b.Header.Height)
		}
		for _, r := range b.Readings {
			id := r.ID()
			where[id.String()] = fmt.Sprintf("block %d", b.Header.Height)
		}
	}
	for _, b := range st.Side {
		if _, err := c.AddBlock(b, now); err != nil {
			t.Fatalf("stored side block %s at height %d does not verify: %v", b.Hash().Short(), b.Header.Height, err)
		}
	}
	if c.TipHash() != s.Tip() || c.Height() != s.Height() {
		t.Fatalf("replaying the store ends on %s at height %d; its tip record is %s at %d",
			c.TipHash().Short(), c.Height(), s.Tip().Short(), s.Height())
	}
	for _, r := range st.Pending {
		if err := chain.CheckReading(&r, params, now.UnixMilli(), nil); err != nil {
			t.Fatalf("stored pending reading does not verify: %v", err)
		}
		id := r.ID()
		if w, dup := where[id.String()]; dup {
			t.Fatalf("reading %s is pending and in %s", id.Short(), w)
		}
		where[id.String()] = "pending"
	}
	var lost []string
	for id, round := range acked {
		if _, ok := where[id]; !ok {
			lost = append(lost, fmt.Sprintf("%s (round %d)", id, round))
		}
	}
	if len(lost) > 0 {
		sort.Strings(lost)
		t.Fatalf("%d acknowledged reading(s) neither in the main chain nor pending: %s", len(lost), strings.Join(lost, ", "))
	}
	return storeSummary{height: s.Height(), tip: s.Tip().Short(), pending: len(st.Pending), side: len(st.Side)}
}

// copyFlatDir copies the regular files of directory src (a Pebble store has
// no subdirectories) into a new directory dst.
func copyFlatDir(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			return fmt.Errorf("copy %s: %s is not a regular file", src, e.Name())
		}
		if err := copyFile(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// The helpers below read a node's output from a given line on, so that a
// question typed at the prompt finds its own answer, not an earlier one.

func outLen(p *proc) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lines)
}

// failLine matches what a node prints when it fails or crashes: the
// command's error line, or a Go panic.
var failLine = regexp.MustCompile(`^p2pchain node: |^panic: |^fatal error: `)

// expectFrom waits up to 30 s for a line matching re at index from or later
// and returns its submatches. It fails at once if the node reports an error.
func expectFrom(t *testing.T, p *proc, from int, re string) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(30 * time.Second)
	for {
		p.mu.Lock()
		for i := from; i < len(p.lines); i++ {
			if m := rx.FindStringSubmatch(p.lines[i]); m != nil {
				p.mu.Unlock()
				return m
			}
			if failLine.MatchString(p.lines[i]) {
				line := p.lines[i]
				p.mu.Unlock()
				t.Fatalf("%s failed while we waited for %q: %s", p.name, re, line)
			}
		}
		p.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("%s: no output line matches %q", p.name, re)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// nodeBanner is what a node prints when it has started.
type nodeBanner struct {
	id, data string
	height   uint64
	tip      string
}

var bannerData = regexp.MustCompile(`^data (.+), height (\d+), tip (\w+)$`)

func readBanner(t *testing.T, p *proc) nodeBanner {
	t.Helper()
	id := expectFrom(t, p, 0, `^p2pchain node (12D3\w+)$`)[1]
	m := expectFrom(t, p, 0, bannerData.String())
	h, _ := strconv.ParseUint(m[2], 10, 64)
	return nodeBanner{id: id, data: m[1], height: h, tip: m[3]}
}

// nodeStatus is the answer to the prompt's status command.
type nodeStatus struct {
	height  uint64
	tip     string
	pending int
	stored  uint64 // the height on disk: height, unless the status says less
}

var storedLine = regexp.MustCompile(`^on disk up to height (\d+):`)

func askStatus(t *testing.T, p *proc) nodeStatus {
	t.Helper()
	from := outLen(p)
	p.type_("status")
	m := expectFrom(t, p, from, `^height (\d+), tip (\w+), work`)
	pm := expectFrom(t, p, from, `, pending readings (\d+)$`)
	h, _ := strconv.ParseUint(m[1], 10, 64)
	n, _ := strconv.Atoi(pm[1])
	st := nodeStatus{height: h, tip: m[2], pending: n, stored: h}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lines[from:] { // printed before the pending line
		if sm := storedLine.FindStringSubmatch(l); sm != nil {
			st.stored, _ = strconv.ParseUint(sm[1], 10, 64)
		}
	}
	return st
}

// waitStatus asks for status every 50 ms until ok holds (30 s at most).
func waitStatus(t *testing.T, p *proc, what string, ok func(nodeStatus) bool) nodeStatus {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := askStatus(t, p)
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: waited 30 s for %s; status: height %d, tip %s, %d pending", p.name, what, st.height, st.tip, st.pending)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitAcks waits until p has acknowledged n readings and returns their ids.
func waitAcks(t *testing.T, p *proc, n int) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ids := acknowledged(p)
		if len(ids) >= n {
			return ids
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s acknowledged %d readings, want %d", p.name, len(ids), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// panicLine matches a Go panic or goroutine dump in a node's output.
var panicLine = regexp.MustCompile(`^panic: |^fatal error: |^goroutine \d+ \[|^runtime\.|SIGSEGV`)

func checkNoPanic(t *testing.T, p *proc) {
	t.Helper()
	if l := panicIn(p.output()); l != "" {
		t.Fatalf("%s printed a panic or goroutine dump: %s", p.name, l)
	}
}

// panicIn returns the first line of out that shows a panic or goroutine
// dump, or "".
func panicIn(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if panicLine.MatchString(l) {
			return l
		}
	}
	return ""
}

// randDur returns a random duration in [0, d).
func randDur(rng *rand.Rand, d time.Duration) time.Duration {
	return time.Duration(rng.Int64N(int64(d)))
}

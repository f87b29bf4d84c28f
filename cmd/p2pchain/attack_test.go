package main

// The cost test of the issue "Hold against hostile peers": whatever a peer
// sends, a real node process spends at most a few times the CPU its
// attacker spends, and its memory stays bounded.
//
// The test process is the attacker. It speaks the protocols with go-libp2p
// directly (internal/testnet's attacker toolkit) and pays for everything it
// sends; its whole CPU time (getrusage of this process) is set against the
// victim's (utime + stime of the node process, from /proc). Each attack runs
// for P2PCHAIN_ATTACK_SECONDS (default 3); run them longer for the figures
// of the docs:
//
//	go test -run TestAttackCostRatio -v ./cmd/p2pchain
//	P2PCHAIN_ATTACK_SECONDS=20 go test -run TestAttackCostRatio -v -timeout 30m ./cmd/p2pchain

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-msgio"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/p2p"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

const (
	// attackRatio and attackSlack bound the victim's CPU time per attack:
	// at most attackRatio times the attacker's, plus attackSlack for the
	// node's idle background work over the attack.
	attackRatio = 4
	attackSlack = 500 * time.Millisecond
	// attackMaxRSS bounds the victim's peak resident memory (VmHWM).
	attackMaxRSS = 256 << 20
	// attackLowDifficulty makes proof of work nearly free, so the attacker
	// pays for signatures and bytes only; the attacks run again at the
	// default difficulty, where each block costs its maker about 2^18
	// hashes.
	attackLowDifficulty = 8
	// gossipRate is how many blocks a second the attacks that gossip
	// copies and deep forks publish: within the victim's gossip budget
	// (p2p.GossipBlocksPerSecond, burst 200), so every one is decoded.
	gossipRate = 150
	// validLead is how many of its valid blocks the attacker lets the
	// victim have unprocessed before it waits.
	validLead = 4
)

// attackDuration returns how long each attack runs: $P2PCHAIN_ATTACK_SECONDS,
// or 3 s.
func attackDuration(t *testing.T) time.Duration {
	s := os.Getenv("P2PCHAIN_ATTACK_SECONDS")
	if s == "" {
		return 3 * time.Second
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 || f > 3600 {
		t.Fatalf("P2PCHAIN_ATTACK_SECONDS=%q: want a number of seconds above 0, at most 3600", s)
	}
	return time.Duration(f * float64(time.Second))
}

// TestAttackCostRatio runs each attack against a real node process for a
// bounded time and checks the victim's CPU time against the attacker's, and
// the victim's peak RSS. The attacks, on a victim at difficulty 8 and one at
// the default difficulty 18:
//
//   - 1: valid new blocks on the victim's tip, each with MaxReadings freshly
//     signed readings: the most verification an honest-looking peer can
//     cause per block. They give the victim the chain the others use;
//   - 2: the same with the last signature wrong (the header commits to it):
//     the victim refuses the identity, and the attacker comes back with a
//     new one for every block;
//   - 3a: copies of a known block with other signature bytes (the header
//     unchanged);
//   - 4: the sync liar: a status claiming a huge chain, and blocks requests
//     answered with blocks the victim has, from a new identity each time;
//   - 3b: blocks that fork below the victim's final height. A block is final
//     only once it has been on the main chain for FinalAge (one minute), so
//     this attack waits for that;
//   - 5: a flood of blocks requests for the whole chain from several
//     identities, each replaced when its byte allowance runs out. It runs
//     after the wait too, when the victim reads the final blocks it serves
//     back from its store.
func TestAttackCostRatio(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real node processes and attacks them for a minute")
	}
	d := attackDuration(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute+20*d)
	defer cancel()
	begin := time.Now()

	var results []attackResult
	record := func(r attackResult) {
		t.Logf("%s", r.row())
		results = append(results, r)
	}
	var victims []*attackVictim
	for _, diff := range []int{attackLowDifficulty, chain.DefaultDifficulty} {
		victims = append(victims, startAttackVictim(t, diff, d))
	}
	for _, v := range victims {
		record(v.measure(ctx, "1 valid full blocks", v.validBlocks))
	}
	for _, v := range victims {
		record(v.measure(ctx, "2 bad last signature", v.badSignature))
		record(v.measure(ctx, "3a known block, other sigs", v.knownCopies))
		record(v.measure(ctx, "4 sync liar", v.syncLiar))
	}
	// Once blocks are final the victim serves their bodies from its store,
	// not from memory: the flood of requests runs then too.
	for _, v := range victims {
		v.waitFinal(ctx)
		record(v.measure(ctx, "3b forks below final", v.deepForks))
		record(v.measure(ctx, "5 blocks request flood", v.requestFlood))
	}

	var table strings.Builder
	fmt.Fprintf(&table, "attacks of %v each, %v in all (victim CPU bound: %d x attacker + %v; VmHWM bound %d MB):\n",
		d, time.Since(begin).Round(time.Second), attackRatio, attackSlack, attackMaxRSS>>20)
	fmt.Fprintf(&table, "%-4s  %-28s  %7s  %12s  %10s  %5s  %9s  %s\n",
		"diff", "attack", "wall s", "attacker s", "victim s", "ratio", "VmHWM MB", "achieved")
	for _, r := range results {
		fmt.Fprintln(&table, r.row())
	}
	t.Log(table.String())

	for _, r := range results {
		if limit := attackRatio*r.attacker + attackSlack; r.victim > limit {
			t.Errorf("difficulty %d, attack %q: the victim spent %.2f s of CPU, over %d x the attacker's %.2f s + %v = %.2f s",
				r.diff, r.attack, r.victim.Seconds(), attackRatio, r.attacker.Seconds(), attackSlack, limit.Seconds())
		}
	}
	for _, v := range victims {
		if hwm := v.vmHWM(); hwm >= attackMaxRSS {
			t.Errorf("difficulty %d: the victim's peak RSS (VmHWM) is %d MB, want under %d MB", v.params.Difficulty, hwm>>20, attackMaxRSS>>20)
		}
		select {
		case err := <-v.p.exit:
			t.Errorf("difficulty %d: the victim exited during the attacks: %v", v.params.Difficulty, err)
		default:
		}
		checkNoPanic(t, v.p)
	}
}

// attackResult is one row of the table.
type attackResult struct {
	diff             uint32
	attack           string
	wall             time.Duration
	attacker, victim time.Duration // CPU time
	hwm              int64         // the victim's VmHWM at the end, bytes
	achieved         string
}

func (r attackResult) row() string {
	ratio := "-"
	if r.attacker > 0 {
		ratio = fmt.Sprintf("%.2f", r.victim.Seconds()/r.attacker.Seconds())
	}
	return fmt.Sprintf("%-4d  %-28s  %7.1f  %12.2f  %10.2f  %5s  %9d  %s",
		r.diff, r.attack, r.wall.Seconds(), r.attacker.Seconds(), r.victim.Seconds(), ratio, r.hwm>>20, r.achieved)
}

// attackVictim is a node process under attack and what the attacker knows
// of it.
type attackVictim struct {
	t      *testing.T
	p      *proc
	pid    int
	params chain.Params
	target peer.AddrInfo
	api    string        // base URL of its HTTP API
	d      time.Duration // how long each attack runs

	forger *testnet.Forger
	mu     sync.Mutex
	blocks []*chain.Block // the victim's main chain as the attacker made it; [0] is genesis
	index  map[chain.Hash]int
	final  time.Time // when the victim is sure to hold final blocks
}

func startAttackVictim(t *testing.T, difficulty int, d time.Duration) *attackVictim {
	t.Helper()
	p := start(t, fmt.Sprintf("victim (difficulty %d)", difficulty),
		"-l", "0", "-api", "127.0.0.1:0", "-difficulty", strconv.Itoa(difficulty))
	ban := readBanner(t, p)
	addr := expectFrom(t, p, 0, `^  (/ip4/127\.0\.0\.1/tcp/\d+/p2p/\w+)$`)[1] // under "listening on:"
	api := expectFrom(t, p, 0, `^explorer and API: (http://\S+)/$`)[1]
	params := chain.DefaultParams()
	params.Difficulty = uint32(difficulty)
	genesis := params.Genesis()
	if ban.height != 0 || ban.tip != genesis.Hash().Short() {
		t.Fatalf("%s starts at height %d tip %s, want a new chain on genesis %s", p.name, ban.height, ban.tip, genesis.Hash().Short())
	}
	info, err := p2p.ParsePeerAddr(addr)
	if err != nil {
		t.Fatal(err)
	}
	forger, err := testnet.NewForger(params)
	if err != nil {
		t.Fatal(err)
	}
	return &attackVictim{
		t: t, p: p, pid: p.cmd.Process.Pid, d: d, params: params, target: *info, api: api, forger: forger,
		blocks: []*chain.Block{genesis}, index: map[chain.Hash]int{genesis.Hash(): 0},
	}
}

// measure runs one attack between two idle points of the victim and
// returns its costs. The attack returns what it achieved.
func (v *attackVictim) measure(ctx context.Context, name string, attack func(context.Context) string) attackResult {
	v.t.Helper()
	v.settle()
	runtime.GC() // the garbage of earlier attacks is not this one's cost
	logs := v.p.count(`"msg":"refusing peer"`)
	before := v.metrics()
	begin, vBefore, aBefore := time.Now(), v.cpu(), selfCPU(v.t)

	actx, cancel := context.WithTimeout(ctx, 2*v.d+60*time.Second)
	achieved := attack(actx)
	cancel()
	v.settle()

	r := attackResult{diff: v.params.Difficulty, attack: name, wall: time.Since(begin),
		attacker: selfCPU(v.t) - aBefore, victim: v.cpu() - vBefore, hwm: v.vmHWM()}
	after := v.metrics()
	var effects []string
	if h := after["p2pchain_chain_height"]; h != before["p2pchain_chain_height"] {
		effects = append(effects, fmt.Sprintf("height %.0f -> %.0f", before["p2pchain_chain_height"], h))
	}
	var rejected []string
	for k, val := range after {
		if reason, ok := strings.CutPrefix(k, "p2pchain_blocks_rejected_total"); ok && val != before[k] {
			rejected = append(rejected, fmt.Sprintf("rejected %s +%.0f", reason, val-before[k]))
		}
	}
	sort.Strings(rejected)
	effects = append(effects, rejected...)
	for _, m := range []struct{ key, what string }{
		{`p2pchain_gossip_bytes_total{direction="in"}`, "gossip in"},
		{`p2pchain_sync_bytes_total{direction="in"}`, "sync in"},
		{`p2pchain_sync_bytes_total{direction="out"}`, "sync out"},
	} {
		if delta := after[m.key] - before[m.key]; delta > 0 {
			effects = append(effects, fmt.Sprintf("%s %.1f MB", m.what, delta/(1<<20)))
		}
	}
	if n := v.p.count(`"msg":"refusing peer"`) - logs; n > 0 {
		effects = append(effects, fmt.Sprintf("%d identities refused", n))
	}
	effects = append(effects, fmt.Sprintf("heap in use %.0f MB", after["go_memstats_heap_inuse_bytes"]/(1<<20)))
	r.achieved = achieved + "; victim: " + strings.Join(effects, ", ")
	return r
}

// settle waits until the victim is idle: at most one clock tick (or 5 ms)
// of CPU time over 300 ms, for at most 15 s.
func (v *attackVictim) settle() {
	prev := v.cpu()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		time.Sleep(300 * time.Millisecond)
		now := v.cpu()
		if now-prev <= 10*time.Millisecond { // a clock tick of /proc/<pid>/stat
			return
		}
		prev = now
	}
	v.t.Logf("%s did not go idle within 15 s", v.p.name)
}

// cpu returns the victim's CPU time so far (every thread's).
func (v *attackVictim) cpu() time.Duration {
	v.t.Helper()
	d, err := testnet.ProcessCPUTime(v.pid)
	if err != nil {
		v.t.Fatalf("read the victim's CPU time: %v", err)
	}
	return d
}

// vmHWM returns the victim's peak resident set size in bytes.
func (v *attackVictim) vmHWM() int64 {
	v.t.Helper()
	_, peak, err := testnet.ProcessMemory(v.pid)
	if err != nil || peak == 0 {
		v.t.Fatalf("read the victim's peak memory: %d bytes, %v", peak, err)
	}
	return int64(peak)
}

// selfCPU returns the CPU time of this process, the attacker, so far.
func selfCPU(t *testing.T) time.Duration {
	d, ok := testnet.SelfCPUTime()
	if !ok {
		t.Fatal("this process's CPU time cannot be read here")
	}
	return d
}

var metricLine = regexp.MustCompile(`^(p2pchain_[^ {]+(?:\{[^}]*\})?|go_memstats_heap_inuse_bytes) (\S+)$`)

// metrics scrapes the victim's p2pchain_* metrics and its Go heap in use
// (outside the measured windows: a scrape costs the victim a little).
func (v *attackVictim) metrics() map[string]float64 {
	v.t.Helper()
	out := map[string]float64{}
	resp, err := http.Get(v.api + "/metrics")
	if err != nil {
		v.t.Fatalf("scrape the victim's metrics: %v", err)
	}
	defer resp.Body.Close()
	s := bufio.NewScanner(resp.Body)
	for s.Scan() {
		if m := metricLine.FindStringSubmatch(s.Text()); m != nil {
			f, _ := strconv.ParseFloat(m[2], 64)
			out[m[1]] = f
		}
	}
	return out
}

// finalHeight asks the victim's API for its final height.
func (v *attackVictim) finalHeight() uint64 {
	v.t.Helper()
	resp, err := http.Get(v.api + "/api/v1/status")
	if err != nil {
		v.t.Fatalf("ask the victim's status: %v", err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	m := regexp.MustCompile(`"finalized_height":(\d+)`).FindSubmatch(body.Bytes())
	if m == nil {
		v.t.Fatalf("the victim's status has no finalized_height: %s", body.String())
	}
	h, _ := strconv.ParseUint(string(m[1]), 10, 64)
	return h
}

// waitFinal waits (unmeasured) until the victim holds a final block above
// genesis.
func (v *attackVictim) waitFinal(ctx context.Context) {
	v.t.Helper()
	if len(v.blocks) <= int(v.params.MaxReorgDepth)+1 {
		v.t.Fatalf("%s has %d blocks: too few for any to be final", v.p.name, len(v.blocks)-1)
	}
	if wait := time.Until(v.final); wait > 0 {
		v.t.Logf("waiting %v for the blocks of %s to be final", wait.Round(time.Second), v.p.name)
	}
	for v.finalHeight() == 0 {
		select {
		case <-ctx.Done():
			v.t.Fatalf("%s holds no final block: %v", v.p.name, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// tip returns the victim's tip as the attacker made it.
func (v *attackVictim) tip() *chain.Block {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.blocks[len(v.blocks)-1]
}

func (v *attackVictim) extend(b *chain.Block) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.index[b.Hash()] = len(v.blocks)
	v.blocks = append(v.blocks, b)
}

// serveChain answers a blocks request honestly from the attacker's copy of
// the victim's chain: the victim asks when it missed a gossiped block.
func (v *attackVictim) serveChain(req p2p.BlocksRequest, w msgio.Writer) {
	v.mu.Lock()
	start, ok := -1, false
	for _, h := range req.Locator {
		if start, ok = v.index[h]; ok {
			break
		}
	}
	var send []*chain.Block
	if ok {
		send = v.blocks[start+1 : min(len(v.blocks), start+1+min(int(req.Max), p2p.MaxBatch))]
	}
	v.mu.Unlock()
	total := 0
	for i, b := range send {
		data, err := b.MarshalBinary()
		if err != nil || (i > 0 && total+len(data) > 8<<20) {
			return
		}
		total += len(data)
		if w.WriteMsg(data) != nil {
			return
		}
	}
}

func (v *attackVictim) attacker(ctx context.Context, cfg testnet.AttackerConfig) (*testnet.Attacker, error) {
	cfg.Params, cfg.Target = v.params, v.target
	setup, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return testnet.NewAttacker(setup, cfg)
}

func encodeBlock(t *testing.T, b *chain.Block) []byte {
	data, err := b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// validBlocks (attack 1) gossips valid blocks of MaxReadings new readings on
// the victim's tip for v.d, keeping at most validLead ahead of the victim, and
// then waits until the victim has them all. The attacker looks honest: it
// answers status and blocks requests truthfully, so a block the victim
// missed reaches it by a sync.
func (v *attackVictim) validBlocks(ctx context.Context) string {
	t := v.t
	a, err := v.attacker(ctx, testnet.AttackerConfig{Gossip: true,
		Status: func(chain.Status) chain.Status { return testnet.ChainStatus(v.params, v.tip()) },
		Blocks: v.serveChain})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	// Our polls claim only genesis: never better, so the victim does not
	// sync from us while the blocks are on their way by gossip.
	modest := testnet.ChainStatus(v.params, v.params.Genesis())
	var victimHeight uint64
	var lastPoll time.Time
	poll := func() {
		// Keep within the victim's status limit (10 a second).
		time.Sleep(time.Until(lastPoll.Add(110 * time.Millisecond)))
		lastPoll = time.Now()
		st, err := a.ExchangeStatus(ctx, modest)
		if err != nil {
			t.Fatalf("attack 1: ask the victim's status: %v", err)
		}
		victimHeight = st.Height
	}
	sent := 0
	// At least enough blocks for some to become final (attacks 3b and 5
	// need them), however slow the machine (or the race detector) is.
	least := int(v.params.MaxReorgDepth) + 4
	for end := time.Now().Add(v.d); (time.Now().Before(end) || sent < least) && ctx.Err() == nil; {
		if v.tip().Header.Height >= victimHeight+validLead {
			poll()
			continue
		}
		now := time.Now()
		rs, err := v.forger.Readings(v.params.MaxReadings, now)
		if err != nil {
			t.Fatal(err)
		}
		b, err := v.forger.Block(ctx, v.tip(), rs, now)
		if err != nil {
			t.Fatal(err)
		}
		v.extend(b)
		if err := a.Publish(ctx, encodeBlock(t, b)); err != nil {
			t.Fatalf("attack 1: publish: %v", err)
		}
		sent++
	}
	for deadline := time.Now().Add(30 * time.Second); victimHeight < v.tip().Header.Height; {
		if time.Now().After(deadline) {
			t.Errorf("attack 1: the victim reached height %d of the %d blocks sent in 30 s", victimHeight, v.tip().Header.Height)
			break
		}
		poll()
	}
	// A block is final once MaxReorgDepth blocks are on it and it has been
	// on the main chain for FinalAge.
	v.final = time.Now().Add(v.params.FinalAge + time.Second)
	return fmt.Sprintf("%d valid blocks of %d new readings sent by 1 identity", sent, v.params.MaxReadings)
}

// badSignature (attack 2) gossips blocks of MaxReadings new readings on the
// victim's tip whose last signature is wrong, the header committing to it,
// one block per identity: the victim verifies every signature, refuses the
// identity, and the attacker comes back with a new one.
func (v *attackVictim) badSignature(ctx context.Context) string {
	t := v.t
	sent, refused, identities := 0, 0, 0
	for end := time.Now().Add(v.d); time.Now().Before(end) && ctx.Err() == nil; {
		a, err := v.attacker(ctx, testnet.AttackerConfig{Gossip: true})
		if err != nil {
			t.Fatalf("attack 2, identity %d: %v", identities+1, err)
		}
		identities++
		now := time.Now()
		rs, err := v.forger.Readings(v.params.MaxReadings, now)
		if err != nil {
			t.Fatal(err)
		}
		rs[len(rs)-1].Sig[0] ^= 1
		b, err := v.forger.Block(ctx, v.tip(), rs, now)
		if err != nil {
			t.Fatal(err)
		}
		// The first message of a new identity can go out before the
		// victim's side of the topic is ready: publish again, as a new
		// block (another nonce), until the victim refuses us.
		for try := 0; try < 3; try++ {
			if err := a.Publish(ctx, encodeBlock(t, b)); err != nil {
				t.Fatalf("attack 2: publish: %v", err)
			}
			sent++
			wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := a.WaitRefused(wctx)
			cancel()
			if err == nil {
				refused++
				break
			}
			if err := v.forger.Reseal(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		a.Close()
	}
	if refused == 0 {
		t.Errorf("attack 2: no identity was refused for a block with a bad signature")
	}
	return fmt.Sprintf("%d blocks with a bad last signature sent by %d identities, %d of them cut off", sent, identities, refused)
}

// knownCopies (attack 3a) gossips copies of the victim's tip block, each
// with other bytes in its last signature and the header unchanged.
func (v *attackVictim) knownCopies(ctx context.Context) string {
	t := v.t
	a, err := v.attacker(ctx, testnet.AttackerConfig{Gossip: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	known := encodeBlock(t, v.tip())
	sent := 0
	every := time.NewTicker(time.Second / gossipRate)
	defer every.Stop()
	for end := time.Now().Add(v.d); time.Now().Before(end) && ctx.Err() == nil; <-every.C {
		data := bytes.Clone(known) // pubsub keeps the slice until it is sent
		sent++
		data[len(data)-64] ^= byte(sent)
		data[len(data)-63] ^= byte(sent >> 8)
		data[len(data)-62] ^= byte(sent >> 16)
		if err := a.Publish(ctx, data); err != nil {
			t.Fatalf("attack 3a: publish: %v", err)
		}
	}
	kept := "kept"
	if !a.Connected() {
		kept = "cut off"
		t.Errorf("attack 3a: the victim cut off a peer for copies of a known block")
	}
	return fmt.Sprintf("%d copies of block %d with other signature bytes sent; identity %s", sent, v.tip().Header.Height, kept)
}

// deepForks (attack 3b) gossips blocks on genesis, below the victim's final
// height: valid, each a new hash (another nonce), all carrying one set of
// MaxReadings readings signed once.
func (v *attackVictim) deepForks(ctx context.Context) string {
	t := v.t
	a, err := v.attacker(ctx, testnet.AttackerConfig{Gossip: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	now := time.Now()
	rs, err := v.forger.Readings(v.params.MaxReadings, now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := v.forger.Block(ctx, v.params.Genesis(), rs, now)
	if err != nil {
		t.Fatal(err)
	}
	sent := 0
	every := time.NewTicker(time.Second / gossipRate)
	defer every.Stop()
	for end := time.Now().Add(v.d); time.Now().Before(end) && ctx.Err() == nil; <-every.C {
		if sent > 0 {
			b.Header.Nonce++
			if err := chain.Solve(ctx, &b.Header); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.Publish(ctx, encodeBlock(t, b)); err != nil {
			t.Fatalf("attack 3b: publish: %v", err)
		}
		sent++
	}
	kept := "kept"
	if !a.Connected() {
		kept = "cut off"
		t.Errorf("attack 3b: the victim cut off a peer for valid blocks below its final height")
	}
	return fmt.Sprintf("%d valid blocks on genesis (final height %d) sent; identity %s", sent, v.finalHeight(), kept)
}

// syncLiar (attack 4) connects identity after identity, each claiming a
// huge chain and answering the victim's blocks request with up to 8 MiB of
// blocks the victim has: each costs the victim one batch and earns a strike.
func (v *attackVictim) syncLiar(ctx context.Context) string {
	t := v.t
	var known [][]byte
	total := 0
	for _, b := range v.blocks[1:] {
		data := encodeBlock(t, b)
		if total+len(data) > 8<<20 {
			break
		}
		total += len(data)
		known = append(known, data)
	}
	lie := func(theirs chain.Status) chain.Status {
		var tip chain.Hash
		_, _ = rand.Read(tip[:])
		return chain.Status{Genesis: theirs.Genesis, Tip: tip, Height: 1 << 40, Work: new(big.Int).Lsh(big.NewInt(1), 200)}
	}
	var identities, served atomic.Int64
	end := time.Now().Add(v.d)
	worker := func() {
		for time.Now().Before(end) && ctx.Err() == nil {
			done := make(chan struct{}, 1)
			a, err := v.attacker(ctx, testnet.AttackerConfig{Status: lie, Blocks: func(req p2p.BlocksRequest, w msgio.Writer) {
				for _, data := range known[:min(len(known), int(req.Max))] {
					if w.WriteMsg(data) != nil {
						break
					}
				}
				served.Add(1)
				select {
				case done <- struct{}{}:
				default:
				}
			}})
			if err != nil {
				t.Errorf("attack 4: %v", err)
				return
			}
			identities.Add(1)
			select {
			case <-done:
				time.Sleep(200 * time.Millisecond) // let the response arrive before we go
			case <-time.After(time.Until(end)):
			case <-ctx.Done():
			}
			a.Close()
		}
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); worker() }()
	}
	wg.Wait()
	if served.Load() == 0 {
		t.Errorf("attack 4: the victim never asked a liar for blocks")
	}
	return fmt.Sprintf("%d liars connected, %d batches of %d known blocks (%.1f MB) served", identities.Load(), served.Load(), len(known), float64(total)/(1<<20))
}

// requestFlood (attack 5) sends blocks requests for the whole chain (67
// bytes: max 512, a locator of an unknown hash and genesis) from several
// identities at once, reading every response; an identity whose byte
// allowance has run out (its request reset) is replaced by a new one.
func (v *attackVictim) requestFlood(ctx context.Context) string {
	t := v.t
	var unknown chain.Hash
	_, _ = rand.Read(unknown[:])
	req := p2p.BlocksRequest{Max: p2p.MaxBatch, Locator: []chain.Hash{unknown, v.params.Genesis().Hash()}}
	var identities, requests, resets, received atomic.Int64
	end := time.Now().Add(v.d)
	worker := func() {
		for time.Now().Before(end) && ctx.Err() == nil {
			a, err := v.attacker(ctx, testnet.AttackerConfig{})
			if err != nil {
				t.Errorf("attack 5: %v", err)
				return
			}
			identities.Add(1)
			for time.Now().Before(end) {
				rctx, cancel := context.WithDeadline(ctx, end.Add(10*time.Second))
				n, err := a.RequestBlocks(rctx, req)
				cancel()
				requests.Add(1)
				received.Add(n)
				if err != nil {
					resets.Add(1)
					break
				}
			}
			a.Close()
		}
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); worker() }()
	}
	wg.Wait()
	return fmt.Sprintf("%d requests from %d identities, %d reset, %.1f MB received",
		requests.Load(), identities.Load(), resets.Load(), float64(received.Load())/(1<<20))
}

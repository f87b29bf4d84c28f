package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/p2pchain/p2pchain/internal/bft"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/datadir"
	"github.com/p2pchain/p2pchain/internal/netfile"
	"github.com/p2pchain/p2pchain/internal/store"
)

// p2pchain verify re-checks a data directory's whole stored chain offline.
// This file also holds what the offline tools (verify, export, import) share:
// their flags, how they find and lock a data directory, the chain replay and
// the progress display.

func runVerify(args []string, stdout, stderr io.Writer) error {
	var asJSON bool
	t, err := parseToolFlags("verify", args, stdout, func(fs *cmdFlags) { fs.jsonFlag(&asJSON, "the summary") }, help{
		usage: "[--data DIR | -l PORT] [--network NAME --difficulty BITS | --network-file FILE] [--json]",
		about: []string{"Re-checks the whole stored chain of a data directory offline: every block's hash,",
			"link, height, proof of work and readings root, every reading's signature (on all",
			"cores), no reading twice; on an authority network every block's seal (the commit",
			"of more than two thirds of its authorities) and membership changes; then the",
			"store's indexes, side branches and pending readings. The node must be stopped.",
			"Exits non-zero on any fault, naming the height and why. Without --data or -l it",
			"checks the only data directory there is."},
		examples: []string{"verify", "verify -l 10000", "verify --data /srv/p2pchain --json"},
	})
	if err != nil {
		return err
	}
	if len(t.args) > 0 {
		return usagef("verify", "unexpected argument %q", t.args[0])
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	dir, params, st, err := t.openChain()
	if err != nil {
		return err
	}
	defer dir.Close()
	defer st.Close()

	start := time.Now()
	tipHash, tipHeight := st.Tip(), st.Height()
	fmt.Fprintf(stderr, "verifying %s: network %q, %s, %d blocks\n", dir.Path(), params.Name, rulesText(params, t.nw, ""), tipHeight)
	r, err := newReplay(params, t.nw, farFuture)
	if err != nil {
		return err
	}
	bar := newProgress(stderr, "verify", tipHeight)
	err = walkChecked(ctx, st, params, r.sigs, func(b *chain.Block) error {
		if err := r.extend(b); err != nil {
			return err
		}
		bar.update(r.blocks, r.blocks)
		return nil
	})
	bar.finish(r.blocks, r.blocks)
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: blocks up to height %d are valid", r.c.Height())
	}
	if err != nil {
		return r.fault(dir, err)
	}
	if r.c.Height() != tipHeight || r.c.TipHash() != tipHash {
		return &verifyFault{dir: dir.Path(), height: r.c.Height() + 1, valid: r.c.Height(),
			err: fmt.Errorf("the store records its tip as #%d %s, but its main chain ends at #%d %s",
				tipHeight, tipHash.Short(), r.c.Height(), r.c.TipHash().Short())}
	}

	// The rest of the store, as a node reads it at start: the indexes, the
	// side branches (replayed too) and the pending readings.
	state, err := st.Load()
	if err != nil {
		return storeFault(dir, err, "")
	}
	for _, b := range state.Side {
		if err := r.addSide(b); err != nil {
			return &verifyFault{dir: dir.Path(), height: b.Header.Height, hash: b.Hash(), side: true, valid: tipHeight, err: err}
		}
	}
	if r.c.TipHash() != tipHash {
		return &verifyFault{dir: dir.Path(), height: r.c.Height(), hash: r.c.TipHash(), side: true, valid: tipHeight,
			err: fmt.Errorf("a side branch has more work than the recorded main chain (tip #%d %s)", tipHeight, tipHash.Short())}
	}

	took := time.Since(start)
	if asJSON {
		v := map[string]any{"ok": true, "data": dir.Path(), "network": params.Name, "difficulty": params.Difficulty,
			"consensus": params.Consensus.String(), "blocks": r.blocks, "readings": r.readings, "height": tipHeight, "tip": tipHash.String(),
			"side_blocks": len(state.Side), "pending": len(state.Pending), "seconds": took.Seconds()}
		if r.sched != nil {
			v["commits"] = r.commits
		}
		return writeJSON(stdout, v)
	}
	fmt.Fprintf(stdout, "chain OK: %d blocks, %d readings, network %q, %s\n", r.blocks, r.readings, params.Name, rulesText(params, t.nw, ""))
	if r.sched != nil {
		fmt.Fprintf(stdout, "checked %d commits (the seal of every block) and %d membership changes\n", r.commits, r.changes)
	}
	fmt.Fprintf(stdout, "tip #%d %s\n", tipHeight, tipHash)
	fmt.Fprintf(stdout, "also %d side-branch blocks and %d pending readings\n", len(state.Side), len(state.Pending))
	fmt.Fprintf(stdout, "checked in %s: %s blocks/s, %s readings/s\n", roundDuration(took), perSecond(r.blocks, took), perSecond(r.readings, took))
	return nil
}

// farFuture is the clock verify passes to the chain: blocks were checked
// against the node's clock when they arrived, so the rule that a block may
// not be from the future must not fire now.
var farFuture = time.UnixMilli(math.MaxInt64 / 2)

// verifyFault is a block of the stored chain that breaks a rule, or damage
// met at a height.
type verifyFault struct {
	dir    string // the data directory
	height uint64
	hash   chain.Hash // zero if unknown
	side   bool       // the block is on a side branch
	valid  uint64     // the main chain is valid up to this height
	err    error
}

func (f *verifyFault) Error() string {
	var sb strings.Builder
	where := "the main chain"
	if f.side {
		where = "a side branch"
	}
	fmt.Fprintf(&sb, "FAULT at height %d of %s", f.height, where)
	if !f.hash.IsZero() {
		fmt.Fprintf(&sb, " (block %s)", f.hash.Short())
	}
	fmt.Fprintf(&sb, ": %v\n", f.err)
	fmt.Fprintf(&sb, "  blocks up to height %d are valid; ", f.valid)
	sb.WriteString(recovery(f.dir))
	return sb.String()
}

func (f *verifyFault) Unwrap() error { return f.err }

// recovery says how to get a good chain again.
func recovery(dir string) string {
	s := filepath.Join(dir, datadir.StoreDir)
	return fmt.Sprintf("to recover, move the store away (mv %s %s.bad) and start the node again:\n"+
		"  it syncs the chain from its peers (or import an export of a good copy with p2pchain import)", s, s)
}

// storeFault reports an error of opening or reading the store: damage the
// same way as a fault, anything else as it is.
func storeFault(dir *datadir.Dir, err error, where string) error {
	var ce *store.CorruptError
	if !errors.As(err, &ce) {
		return err
	}
	return fmt.Errorf("FAULT%s: the store %s is damaged: %v\n  %s", where, ce.Path, ce.Err, recovery(dir.Path()))
}

// replay re-checks blocks by adding them, parents first, to a fresh chain:
// the same rules a node applies to a block from a peer. On an authority
// network it checks each block's seal against the authority schedule first,
// as the node does before it passes a block to the chain.
type replay struct {
	c        *chain.Chain
	sigs     *chain.SigCache // signatures checked ahead, on all cores
	now      time.Time
	blocks   uint64 // blocks added
	readings uint64 // readings in them

	sched   *bft.Schedule // authority networks: the schedule as of the tip
	network chain.Hash    // the genesis hash, which every vote signs
	commits uint64        // seals checked
	changes uint64        // membership changes applied
}

// newReplay returns a replay on params; nw is the network file of an
// authority network, nil for a proof-of-work one.
func newReplay(params chain.Params, nw *netfile.Network, now time.Time) (*replay, error) {
	c, err := chain.New(params)
	if err != nil {
		return nil, err
	}
	sigs := chain.NewSigCache(1 << 18)
	c.SetSigCache(sigs)
	r := &replay{c: c, sigs: sigs, now: now}
	if params.Consensus == chain.Authority {
		if nw == nil {
			return nil, errors.New("an authority network needs its network file (--network-file FILE)")
		}
		r.sched, r.network = bft.NewSchedule(nw.Set), c.Genesis()
	}
	return r, nil
}

// extend adds b, which must be the child of the tip.
func (r *replay) extend(b *chain.Block) error {
	if b.Header.Height != r.c.Height()+1 {
		return fmt.Errorf("block at height %d follows height %d", b.Header.Height, r.c.Height())
	}
	var flags chain.Flags
	var changes []bft.Change
	if r.sched != nil {
		var err error
		if _, changes, err = bft.CheckSeal(r.network, r.sched, b); err != nil {
			return fmt.Errorf("bad seal: %w", err)
		}
		flags = chain.Sealed
	}
	u, err := r.c.Process(b, r.now, flags)
	if err != nil {
		return err
	}
	if u.TipChanged && len(u.Disconnected) == 0 && len(u.Connected) == 1 {
		if r.sched != nil {
			if err := r.sched.Apply(b.Header.Height, changes...); err != nil {
				return fmt.Errorf("membership changes: %w", err)
			}
			r.commits++
			r.changes += uint64(len(changes))
		}
		r.blocks++
		r.readings += uint64(len(b.Readings))
		return nil
	}
	return fmt.Errorf("block %s did not extend the tip", u.Hash.Short())
}

// addSide adds b, a block of a side branch. On an authority network its seal
// is checked against the schedule as of the tip, which holds the sets of
// every height up to it.
func (r *replay) addSide(b *chain.Block) error {
	var flags chain.Flags
	if r.sched != nil {
		if _, _, err := bft.CheckSeal(r.network, r.sched, b); err != nil {
			return fmt.Errorf("bad seal: %w", err)
		}
		flags = chain.Sealed
	}
	_, err := r.c.Process(b, r.now, flags)
	return err
}

// fault turns an error met while walking the stored main chain into the
// fault at the next height.
func (r *replay) fault(dir *datadir.Dir, err error) error {
	var w *walkError
	if !errors.As(err, &w) {
		return storeFault(dir, err, fmt.Sprintf(" at height %d", r.c.Height()+1))
	}
	return &verifyFault{dir: dir.Path(), height: w.b.Header.Height, hash: w.b.Hash(), valid: r.c.Height(), err: w.err}
}

// walkError is an error of the function walkBlocks calls, with its block.
type walkError struct {
	b   *chain.Block
	err error
}

func (e *walkError) Error() string { return e.err.Error() }
func (e *walkError) Unwrap() error { return e.err }

// walkBlocks calls fn for each main-chain block from height from, in order.
// The store is read and decoded on another goroutine, ahead of fn. An error
// of fn comes back as a *walkError; errors of the store as they are.
func walkBlocks(ctx context.Context, st *store.Store, from uint64, fn func(*chain.Block) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	blocks := make(chan *chain.Block, 256)
	walked := make(chan error, 1)
	go func() {
		defer close(blocks)
		walked <- st.Walk(from, func(b *chain.Block) error {
			select {
			case blocks <- b:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	for b := range blocks {
		if err := fn(b); err != nil {
			cancel()
			for range blocks { // let the walk end
			}
			return &walkError{b: b, err: err}
		}
	}
	if err := <-walked; err != nil {
		return err
	}
	return ctx.Err()
}

// walkChecked is walkBlocks with the signatures (the costly, context-free
// rule) verified on all cores into sigs ahead of fn, so that fn, which
// adds the block to a chain using sigs, finds them checked. The verdict
// stays fn's, in the chain's rule order.
func walkChecked(ctx context.Context, st *store.Store, params chain.Params, sigs *chain.SigCache, fn func(*chain.Block) error) error {
	type item struct {
		b    *chain.Block
		done chan error // closed once the signatures were looked at
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan item, 1024)  // to the checkers, in any order
	order := make(chan item, 1024) // to fn, in chain order
	for range runtime.NumCPU() {
		go func() {
			for it := range work {
				if chain.CheckHeader(&it.b.Header, params) == nil {
					if ids, err := chain.CheckBody(it.b, params); err == nil {
						_ = chain.CheckSignatures(it.b, ids, sigs)
					}
				}
				it.done <- nil
			}
		}()
	}
	walked := make(chan error, 1)
	go func() {
		defer close(order)
		defer close(work)
		walked <- st.Walk(1, func(b *chain.Block) error {
			it := item{b, make(chan error, 1)}
			select {
			case order <- it:
			case <-ctx.Done():
				return ctx.Err()
			}
			work <- it
			return nil
		})
	}()
	for it := range order {
		err := <-it.done
		if err == nil {
			err = fn(it.b)
		}
		if err != nil {
			cancel()
			for rest := range order { // let the walk and the checkers end
				<-rest.done
			}
			return &walkError{b: it.b, err: err}
		}
	}
	if err := <-walked; err != nil {
		return err
	}
	return ctx.Err()
}

// toolFlags are the flags of the offline tools.
type toolFlags struct {
	target                  // --data and -l
	cfg    nodeConfig       // --network, --difficulty and --network-file, over the defaults
	nw     *netfile.Network // the network file's network, once openChain found one
	f      nodeFlags        // which flags were given
	args   []string         // arguments that are not flags
	fs     *cmdFlags        // the flag set, for its name
}

// parseToolFlags parses the flags common to the offline tools, and extra
// ones that add defines. Flags may come before or after other arguments.
func parseToolFlags(name string, args []string, stdout io.Writer, add func(*cmdFlags), h help) (*toolFlags, error) {
	t := &toolFlags{cfg: defaultNodeConfig(), f: nodeFlags{set: map[string]bool{}}}
	fs := newCmdFlags(name, h, stdout)
	t.fs = fs
	t.registerDir(fs)
	fs.Func("network", "`NAME` of the network (default: the data directory's config file, or $P2PCHAIN_NETWORK)", func(s string) error {
		t.cfg.Network = s
		return nil
	})
	fs.Func("difficulty", "proof-of-work difficulty in `BITS` (default: the config file, or $P2PCHAIN_DIFFICULTY)", func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > chain.MaxDifficulty {
			return fmt.Errorf("want a whole number from 0 to %d", chain.MaxDifficulty)
		}
		t.cfg.Difficulty = n
		return nil
	})
	fs.Func("network-file", "network `FILE` of an authority network (default: the config file's network_file, or $P2PCHAIN_NETWORK_FILE)", func(s string) error {
		if s == "" {
			return errNoNetworkFile
		}
		t.cfg.NetworkFile = s
		return nil
	})
	if add != nil {
		add(fs)
	}
	pos, err := fs.parse(args)
	if err != nil {
		return nil, err
	}
	t.args = pos
	fs.Visit(func(fl *flag.Flag) { t.f.set[fl.Name] = true })
	if err := conflictingFlags(name, t.f.set); err != nil {
		return nil, err
	}
	t.cfg.Port = t.port
	return t, nil
}

// open locks the data directory at path, with a message for the tools when
// a node holds it.
func (t *toolFlags) open(path string) (*datadir.Dir, error) {
	dir, err := datadir.Open(path)
	if errors.Is(err, datadir.ErrLocked) {
		pid := "unknown"
		if b, rerr := os.ReadFile(filepath.Join(path, datadir.LockFile)); rerr == nil && len(strings.TrimSpace(string(b))) > 0 {
			pid = strings.TrimSpace(string(b))
		}
		return nil, fmt.Errorf("%s is in use by a running node (pid %s): stop the node first (%s stop --data %s); "+
			"the offline tools need the data directory to themselves", path, pid, invocation(), path)
	}
	return dir, err
}

// openExisting locks the data directory of a node, which must hold a chain
// store, and returns its settings: those of its config file (which it does
// not write), overridden by the environment and --network and --difficulty
// as for the node.
func (t *toolFlags) openExisting() (*datadir.Dir, nodeSettings, error) {
	path, err := t.existingDir(nil)
	if err != nil {
		return nil, nodeSettings{}, err
	}
	if _, err := os.Stat(filepath.Join(path, datadir.StoreDir)); err != nil {
		if _, derr := os.Stat(path); derr != nil {
			return nil, nodeSettings{}, fmt.Errorf("no data directory %s (give the node's --data DIR or -l PORT)", path)
		}
		return nil, nodeSettings{}, fmt.Errorf("%s holds no chain (no %s): is it a node's data directory?", path, datadir.StoreDir)
	}
	dir, err := t.open(path)
	if err != nil {
		return nil, nodeSettings{}, err
	}
	set, err := t.settings(dir)
	if err != nil {
		dir.Close()
		return nil, nodeSettings{}, err
	}
	return dir, set, nil
}

// settings reads the data directory's config file, the environment and the
// flags into the tool's settings, as the node does.
func (t *toolFlags) settings(dir *datadir.Dir) (nodeSettings, error) {
	file, cf, err := readConfig(dir)
	if err != nil {
		return nodeSettings{}, err
	}
	if err := applyEnv(&file, os.Getenv); err != nil {
		return nodeSettings{}, err
	}
	set := nodeSettings{cfg: t.f.merge(file, t.cfg), file: cf, flags: t.f}
	if err := set.resolveNetworkFile(dir.Path()); err != nil {
		return set, err
	}
	for _, key := range []string{"network", "difficulty"} {
		if err := set.cfg.checkKey(key); err != nil {
			return set, fmt.Errorf("%w (from %s)", err, set.from(key))
		}
	}
	return set, nil
}

// openChain opens the data directory (openExisting) and its chain store,
// for the tools that read a stopped node's chain.
func (t *toolFlags) openChain() (*datadir.Dir, chain.Params, *store.Store, error) {
	dir, set, err := t.openExisting()
	if err != nil {
		return nil, chain.Params{}, nil, err
	}
	params, nw, err := set.network()
	if err != nil {
		dir.Close()
		return nil, chain.Params{}, nil, err
	}
	t.nw = nw
	st, err := openToolStore(dir, params)
	if err != nil {
		if errors.Is(err, store.ErrWrongNetwork) {
			err = set.wrongNetwork(err)
		} else {
			err = storeFault(dir, err, "")
		}
		dir.Close()
		return nil, chain.Params{}, nil, err
	}
	return dir, params, st, nil
}

// openToolStore opens the chain store of dir.
func openToolStore(dir *datadir.Dir, params chain.Params) (*store.Store, error) {
	st, err := store.Open(dir.File(datadir.StoreDir), params)
	switch {
	case errors.Is(err, store.ErrLocked):
		return nil, fmt.Errorf("%w: stop the node that uses %s first", err, dir.Path())
	}
	return st, err
}

// progress shows how far a long task is on stderr: a bar redrawn in place
// when stderr is a terminal, otherwise a line every few seconds (nothing for
// a task shorter than that).
type progress struct {
	w     io.Writer
	tty   bool
	what  string
	total uint64 // in the unit of pos; 0 if unknown
	start time.Time
	next  time.Time
	every time.Duration
	drawn bool
	unit  string // what pos and blocks count ("": blocks)
	eta   bool   // say the time left in lines too, not only in the bar
}

func newProgress(w io.Writer, what string, total uint64) *progress {
	p := &progress{w: w, tty: isTerminal(w), what: what, total: total, start: time.Now(), every: 5 * time.Second}
	if p.tty {
		p.every = 100 * time.Millisecond
	}
	p.next = p.start.Add(p.every)
	return p
}

// update reports blocks done, and pos of total (blocks, or bytes of input).
func (p *progress) update(blocks, pos uint64) {
	if now := time.Now(); !now.Before(p.next) {
		p.next = now.Add(p.every)
		p.draw(blocks, pos, now)
	}
}

// finish draws the final state if anything was drawn, and ends the line.
func (p *progress) finish(blocks, pos uint64) {
	if p.drawn && p.tty {
		p.draw(blocks, pos, time.Now())
		fmt.Fprintln(p.w)
	}
}

func (p *progress) draw(blocks, pos uint64, now time.Time) {
	p.drawn = true
	el := now.Sub(p.start)
	unit := p.unit
	if unit == "" {
		unit = "blocks"
	}
	speed := fmt.Sprintf("%d %s, %s %s/s", blocks, unit, perSecond(blocks, el), unit)
	if !p.tty {
		if p.total > 0 {
			left := ""
			if frac := float64(min(pos, p.total)) / float64(p.total); p.eta && frac > 0 && frac < 1 {
				left = ", " + max(time.Second, time.Duration(float64(el)*(1-frac)/frac)).Round(time.Second).String() + " left"
			}
			fmt.Fprintf(p.w, "%s: %.0f%%, %s%s\n", p.what, 100*float64(min(pos, p.total))/float64(p.total), speed, left)
		} else {
			fmt.Fprintf(p.w, "%s: %s\n", p.what, speed)
		}
		return
	}
	if p.total == 0 {
		fmt.Fprintf(p.w, "\r%s  %s\x1b[K", p.what, speed)
		return
	}
	const width = 30
	frac := float64(min(pos, p.total)) / float64(p.total)
	filled := int(frac * width)
	left := ""
	if frac > 0 && frac < 1 {
		left = ", " + max(time.Second, time.Duration(float64(el)*(1-frac)/frac)).Round(time.Second).String() + " left"
	}
	fmt.Fprintf(p.w, "\r%s [%s%s] %3.0f%%  %s%s\x1b[K", p.what,
		strings.Repeat("#", filled), strings.Repeat(".", width-filled), 100*frac, speed, left)
}

// perSecond formats n per second over d.
func perSecond(n uint64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", float64(n)/d.Seconds())
}

// roundDuration shortens a duration for people.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/datadir"
	"github.com/p2pchain/p2pchain/internal/netfile"
	"github.com/p2pchain/p2pchain/internal/store"
)

// p2pchain import reads a chain written by p2pchain export (JSON lines, line
// N holding the block at height N) into a new data directory. Every block is
// checked as a node checks a block from a peer, against this machine's clock,
// before anything is stored. The store is built under another name and
// renamed into place when complete, so a failed, interrupted or crashed import
// never leaves a partial chain where a node would use it; what a failed
// import created is removed.

// Commit a batch of imported blocks to the store when it holds this many
// blocks or bytes.
const (
	importBatchBlocks = 1000
	importBatchBytes  = 8 << 20
)

// maxImportLine bounds a line of an import file: the JSON form of the largest
// block any network allows (a reading takes under 1 KiB), with room for
// spaces.
const maxImportLine = 64<<10 + chain.MaxReadingsLimit<<10

func runImport(args []string, stdout, stderr io.Writer) (err error) {
	var asJSON bool
	t, err := parseToolFlags("import", args, stdout, func(fs *cmdFlags) { fs.jsonFlag(&asJSON, "the summary") }, help{
		usage: "[--data NEWDIR | -l PORT] [--network NAME] [--difficulty BITS | --network-file FILE] [--json] FILE|-",
		about: []string{"Loads a chain written by p2pchain export (JSON lines; - reads standard input) into a",
			"new data directory, checking every block as a node does, and writes the directory's",
			"config file so that p2pchain node --data NEWDIR runs on that chain. The network name",
			"defaults to p2pchain, the difficulty to that of the file's first block; the chain of",
			"an authority network needs its --network-file, and every block's seal is checked. A",
			"directory that already holds a chain is refused; a failed import leaves nothing behind."},
		examples: []string{"import --data /srv/p2pchain/new --network p2pchain chain.jsonl", "import -l 10005 - < chain.jsonl"},
	})
	if err != nil {
		return err
	}
	if len(t.args) != 1 {
		return usagef("import", "give the file to import, or - for standard input")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	in, size, err := openImportInput(t.args[0], stderr)
	if err != nil {
		return err
	}
	defer in.Close()

	path, err := t.newDir()
	if err != nil {
		return err
	}
	nd, err := newDataDir(t, path)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			nd.undo()
			err = importFailed(err)
		}
	}()

	counted := &countReader{r: in}
	lines := bufio.NewScanner(counted)
	lines.Buffer(make([]byte, 64<<10), maxImportLine)
	var lineNo uint64
	next := func() ([]byte, bool, error) {
		if !lines.Scan() {
			if errors.Is(lines.Err(), bufio.ErrTooLong) {
				return nil, false, fmt.Errorf("line %d: longer than %d bytes, more than any block can take", lineNo+1, maxImportLine)
			}
			return nil, false, lines.Err()
		}
		lineNo++
		return lines.Bytes(), true, nil
	}

	// The first block tells the difficulty when neither the flags nor a
	// config file do.
	var first *chain.Block
	data, ok, err := next()
	if err != nil {
		return err
	}
	if ok {
		if first, err = decodeLine(lineNo, data); err != nil {
			return err
		}
	}
	cfg, note, err := nd.config(t, first)
	if err != nil {
		return err
	}
	params, nw, err := nd.network(t, cfg)
	if err != nil {
		return err
	}
	if nw != nil { // what the config file written at the end says
		cfg.Network, cfg.Difficulty = params.Name, 0
	}
	rules := rulesText(params, nw, "")
	fmt.Fprintf(stderr, "importing into %s: network %q, %s%s\n", path, params.Name, rules, note)

	start := time.Now()
	st, err := nd.openStore(params)
	if err != nil {
		return err
	}
	r, err := newReplay(params, nw, time.Now())
	if err != nil {
		return err
	}
	genesis := r.c.Genesis()
	var (
		batch      store.Commit
		batchBytes int
	)
	flush := func() error {
		if len(batch.Blocks) == 0 {
			return nil
		}
		if err := st.Commit(batch); err != nil {
			return err
		}
		batch, batchBytes = store.Commit{}, 0
		return nil
	}
	bar := newProgress(stderr, "import", uint64(size))
	for b := first; b != nil; {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted at line %d", lineNo)
		}
		if b.Header.Height != lineNo {
			return fmt.Errorf("line %d: block at height %d; line N must hold the block at height N "+
				"(the main chain from height 1 up, in order, as p2pchain export writes it)", lineNo, b.Header.Height)
		}
		if lineNo == 1 && b.Header.Parent != genesis {
			if nw != nil {
				return fmt.Errorf("line 1: the block's parent %s is not the genesis block %s of network %q of network file %s: "+
					"give the --network-file of the chain the file was exported from",
					b.Header.Parent.Short(), genesis.Short(), params.Name, cfg.NetworkFile)
			}
			return fmt.Errorf("line 1: the block's parent %s is not the genesis block %s of network %q with difficulty %d: "+
				"give the --network and --difficulty of the chain the file was exported from",
				b.Header.Parent.Short(), genesis.Short(), params.Name, params.Difficulty)
		}
		if err := r.extend(b); err != nil {
			return fmt.Errorf("line %d: block %s at height %d is invalid: %w", lineNo, b.Hash().Short(), b.Header.Height, err)
		}
		batch.Blocks = append(batch.Blocks, b)
		batch.Updates = append(batch.Updates, &chain.Update{Hash: b.Hash(), Height: b.Header.Height, TipChanged: true, Connected: []*chain.Block{b}})
		if batchBytes += b.EncodedSize(); len(batch.Blocks) >= importBatchBlocks || batchBytes >= importBatchBytes {
			if err := flush(); err != nil {
				return err
			}
		}
		bar.update(r.blocks, counted.n)

		data, ok, err := next()
		if err != nil {
			return err
		}
		b = nil
		if ok {
			if b, err = decodeLine(lineNo, data); err != nil {
				return err
			}
		}
	}
	bar.finish(r.blocks, counted.n)
	if err := flush(); err != nil {
		return err
	}
	if err := nd.finish(cfg); err != nil {
		return err
	}

	took := time.Since(start)
	if asJSON {
		v := map[string]any{"data": path, "network": params.Name, "difficulty": params.Difficulty, "consensus": params.Consensus.String(),
			"blocks": r.blocks, "readings": r.readings, "height": r.c.Height(), "tip": r.c.TipHash().String(), "seconds": took.Seconds()}
		if r.sched != nil {
			v["commits"] = r.commits
		}
		return writeJSON(stdout, v)
	}
	fmt.Fprintf(stdout, "imported %d blocks (%d readings) into %s: network %q, %s\n",
		r.blocks, r.readings, path, params.Name, rules)
	if r.sched != nil {
		fmt.Fprintf(stdout, "checked %d commits (the seal of every block)\n", r.commits)
	}
	fmt.Fprintf(stdout, "tip #%d %s\n", r.c.Height(), r.c.TipHash())
	fmt.Fprintf(stdout, "checked and stored in %s: %s blocks/s\n", roundDuration(took), perSecond(r.blocks, took))
	fmt.Fprintf(stdout, "start a node on it with: %s node --data %s\n", invocation(), path)
	return nil
}

// importFailed is the error of an import that failed, its store removed.
// A full disk is said in the words of an import: the store's own text
// is a node's, which waits for space and writes again by itself.
func importFailed(err error) error {
	var full *store.FullError
	if !errors.As(err, &full) {
		return err
	}
	return fmt.Errorf("the disk of %s is full: %s; nothing was imported (what the import wrote is removed): "+
		"free space on that file system, or import into a data directory on another, and run the import again",
		full.Path, full.Space())
}

// decodeLine decodes line lineNo of an import file.
func decodeLine(lineNo uint64, data []byte) (*chain.Block, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("line %d: empty line (each line must hold one block)", lineNo)
	}
	b := new(chain.Block)
	if err := b.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("line %d: %w", lineNo, err)
	}
	return b, nil
}

// openImportInput opens the file to import (- for standard input) and
// returns its size if it is a regular file, for the progress display.
func openImportInput(name string, stderr io.Writer) (io.ReadCloser, int64, error) {
	if name == "-" {
		if isTerminal(os.Stdin) {
			fmt.Fprintln(stderr, "reading blocks from the terminal, one JSON line each; end with Ctrl-D")
		}
		return io.NopCloser(os.Stdin), 0, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, 0, err
	}
	var size int64
	if info, err := f.Stat(); err == nil && info.Mode().IsRegular() {
		size = info.Size()
	}
	return f, size, nil
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n uint64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += uint64(n)
	return n, err
}

// importDir is the data directory an import fills, and what the import
// created in it, so that a failed import can remove exactly that.
type importDir struct {
	path      string
	dir       *datadir.Dir
	existed   bool // the directory was there before
	hadLock   bool
	hadConfig bool
	tmp       string       // the store being built
	st        *store.Store // open while building
	placed    bool         // the store was renamed into place
}

// newDataDir locks the data directory at path, creating it if needed, and
// refuses one that holds a chain already.
func newDataDir(t *toolFlags, path string) (*importDir, error) {
	nd := &importDir{path: path}
	if info, err := os.Stat(path); err == nil {
		if !info.IsDir() {
			return nil, fmt.Errorf("%s is a file, not a data directory", path)
		}
		nd.existed = true
		nd.hadLock = pathExists(filepath.Join(path, datadir.LockFile))
		nd.hadConfig = pathExists(filepath.Join(path, datadir.ConfigFile))
	}
	if err := refuseChain(path); err != nil {
		return nil, err
	}
	dir, err := t.open(path)
	if err != nil {
		return nil, err
	}
	nd.dir = dir
	// Again under the lock: a node may have started there meanwhile.
	if err := refuseChain(path); err != nil {
		nd.undo()
		return nil, err
	}
	nd.tmp = dir.File(datadir.StoreDir + ".import")
	return nd, nil
}

func refuseChain(path string) error {
	if s := filepath.Join(path, datadir.StoreDir); pathExists(s) {
		return fmt.Errorf("%s already holds a chain (%s): import only into a new data directory, "+
			"or move that chain away first", path, s)
	}
	return nil
}

func pathExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// config returns the settings the imported chain will run with. With a
// config file in the directory, they are the file's, and the environment and
// flags must agree with it (a node started there later reads the file).
// Otherwise they are the defaults, overridden by the environment and the
// flags, with the difficulty of the first block unless one of those sets it.
// note says where the settings came from.
func (nd *importDir) config(t *toolFlags, first *chain.Block) (cfg nodeConfig, note string, err error) {
	base := defaultNodeConfig()
	base.Port = t.cfg.Port
	if nd.hadConfig {
		if base, err = loadConfig(nd.dir, base); err != nil {
			return cfg, "", err
		}
		note = " (from " + nd.dir.File(datadir.ConfigFile) + ")"
	}
	cfg = base
	if err := applyEnv(&cfg, os.Getenv); err != nil {
		return cfg, "", err
	}
	cfg = t.f.merge(cfg, t.cfg)
	resolved := nodeSettings{cfg: cfg, flags: t.f}
	if err := resolved.resolveNetworkFile(nd.path); err != nil {
		return cfg, "", err
	}
	cfg = resolved.cfg
	if base.NetworkFile != "" && !filepath.IsAbs(base.NetworkFile) {
		base.NetworkFile = filepath.Join(nd.path, base.NetworkFile)
	}
	if nd.hadConfig {
		if cfg.NetworkFile != base.NetworkFile {
			return cfg, "", fmt.Errorf("the config file %s names network file %q, the flags or environment say %q: "+
				"make them agree, or import into a new directory", nd.dir.File(datadir.ConfigFile), base.NetworkFile, cfg.NetworkFile)
		}
		if cfg.Network != base.Network || cfg.Difficulty != base.Difficulty {
			return cfg, "", fmt.Errorf("the config file %s is for network %q with difficulty %d, the flags or environment say %q with %d: "+
				"make them agree, or import into a new directory", nd.dir.File(datadir.ConfigFile),
				base.Network, base.Difficulty, cfg.Network, cfg.Difficulty)
		}
		return cfg, note, nil
	}
	if first != nil && cfg.NetworkFile == "" && !t.f.set["difficulty"] && os.Getenv("P2PCHAIN_DIFFICULTY") == "" {
		cfg.Difficulty = int(first.Header.Difficulty)
		note = " (the difficulty of the file's first block)"
	}
	if cfg.Difficulty < 0 || cfg.Difficulty > chain.MaxDifficulty {
		return cfg, "", fmt.Errorf("difficulty %d: must be 0 to %d", cfg.Difficulty, chain.MaxDifficulty)
	}
	return cfg, note, nil
}

// network returns the network of the import's settings cfg (nodeSettings.network).
func (nd *importDir) network(t *toolFlags, cfg nodeConfig) (chain.Params, *netfile.Network, error) {
	cf := configFile{path: nd.dir.File(datadir.ConfigFile), missing: !nd.hadConfig, lines: map[string]int{}}
	if nd.hadConfig {
		if _, f, err := readConfig(nd.dir); err == nil {
			cf = f
		}
	}
	return nodeSettings{cfg: cfg, file: cf, flags: t.f}.network()
}

// openStore creates the store the import builds, under a temporary name.
func (nd *importDir) openStore(params chain.Params) (*store.Store, error) {
	if err := os.RemoveAll(nd.tmp); err != nil { // left by an import that crashed
		return nil, err
	}
	st, err := store.Open(nd.tmp, params)
	if err != nil {
		return nil, err
	}
	nd.st = st
	return st, nil
}

// finish closes the complete store, renames it into place and writes the
// config file if there was none, so a node can run on the directory.
func (nd *importDir) finish(cfg nodeConfig) error {
	st := nd.st
	nd.st = nil
	if err := st.Close(); err != nil {
		return err
	}
	if err := os.Rename(nd.tmp, nd.dir.File(datadir.StoreDir)); err != nil {
		return err
	}
	nd.placed = true
	if !nd.hadConfig {
		if _, err := loadConfig(nd.dir, cfg); err != nil {
			return err
		}
	}
	if err := syncDir(nd.path); err != nil {
		return err
	}
	return nd.dir.Close()
}

// undo removes what the import created, leaving the directory as it was.
func (nd *importDir) undo() {
	if nd.st != nil {
		_ = nd.st.Close()
	}
	if nd.dir == nil {
		return
	}
	_ = os.RemoveAll(nd.tmp)
	if nd.placed {
		_ = os.RemoveAll(nd.dir.File(datadir.StoreDir))
	}
	if !nd.hadConfig {
		_ = os.Remove(nd.dir.File(datadir.ConfigFile))
	}
	_ = nd.dir.Close()
	if !nd.hadLock {
		_ = os.Remove(filepath.Join(nd.path, datadir.LockFile))
	}
	if !nd.existed {
		_ = os.Remove(nd.path) // only if empty
	}
}

// syncDir makes the renames in directory path durable.
func syncDir(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

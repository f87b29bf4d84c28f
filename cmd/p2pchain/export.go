package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// p2pchain export writes a data directory's main chain as JSON lines: one
// block per line in the JSON form of package chain, from height 1 up to the
// tip, so line N holds the block at height N. The genesis block is left out:
// it follows from the network's parameters, which p2pchain import is given.

func runExport(args []string, stdout, stderr io.Writer) error {
	var out string
	t, err := parseToolFlags("export", args, stdout, func(fs *cmdFlags) {
		fs.StringVar(&out, "out", "", "write to `FILE` instead of standard output (replaced only when complete)")
	}, help{
		usage: "[--data DIR | -l PORT] [--network-file FILE] [--out FILE]",
		about: []string{"Writes the main chain as JSON lines, one block per line from height 1 to the tip",
			"(line N is the block at height N; genesis follows from the network and is left out).",
			"The node must be stopped. p2pchain import reads the file back. Without --data or -l",
			"it exports the only data directory there is."},
		examples: []string{"export --out chain.jsonl", "export -l 10000 --out chain.jsonl", "export --data /srv/p2pchain | gzip > chain.jsonl.gz"},
	})
	if err != nil {
		return err
	}
	if len(t.args) > 0 {
		return usagef("export", "unexpected argument %q (write to a file with --out FILE)", t.args[0])
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
	w := stdout
	var file *os.File
	if out != "" {
		// Write beside the target and rename when complete: a failed or
		// interrupted export leaves no partial file.
		file, err = os.CreateTemp(filepath.Dir(out), filepath.Base(out)+".tmp*")
		if err != nil {
			return err
		}
		defer os.Remove(file.Name())
		defer file.Close()
		w = file
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	var blocks, readings uint64
	tip := st.Height()
	bar := newProgress(stderr, "export", tip)
	err = walkBlocks(ctx, st, 1, func(b *chain.Block) error {
		if err := enc.Encode(b); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		blocks++
		readings += uint64(len(b.Readings))
		bar.update(blocks, blocks)
		return nil
	})
	bar.finish(blocks, blocks)
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted after %d blocks", blocks)
	}
	if err != nil {
		return storeFault(dir, err, fmt.Sprintf(" at height %d", blocks+1))
	}
	if blocks != tip {
		return fmt.Errorf("the store's main chain ends at height %d, its tip record says %d: run p2pchain verify", blocks, tip)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}

	summary := stderr
	if file != nil {
		if err := file.Sync(); err != nil {
			return err
		}
		if err := file.Close(); err != nil {
			return err
		}
		if err := os.Rename(file.Name(), out); err != nil {
			return err
		}
		summary = stdout
	}
	dest := out
	if dest == "" {
		dest = "standard output"
	}
	took := time.Since(start)
	fmt.Fprintf(summary, "exported %d blocks (%d readings) of network %q, %s, to %s\n",
		blocks, readings, params.Name, rulesText(params, t.nw, ""), dest)
	fmt.Fprintf(summary, "tip #%d %s, in %s (%s blocks/s)\n", tip, st.Tip(), roundDuration(took), perSecond(blocks, took))
	return nil
}

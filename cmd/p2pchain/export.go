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
	"github.com/p2pchain/p2pchain/internal/datadir"
	"github.com/p2pchain/p2pchain/internal/fhir"
)

// p2pchain export writes a data directory's main chain as JSON lines: one
// block per line in the JSON form of package chain, from height 1 up to the
// tip, so line N holds the block at height N. The genesis block is left out:
// it follows from the network's parameters, which p2pchain import is given.
//
// With --format fhir it writes one FHIR R4 Bundle (type collection) of
// every main-chain reading as an Observation with its block's provenance
// (package fhir, docs/FHIR.md), streamed entry by entry.

func runExport(args []string, stdout, stderr io.Writer) error {
	var out, format string
	t, err := parseToolFlags("export", args, stdout, func(fs *cmdFlags) {
		fs.StringVar(&out, "out", "", "write to `FILE` instead of standard output (replaced only when complete)")
		fs.StringVar(&format, "format", "jsonl", "`FORMAT` of the file: jsonl (blocks, for p2pchain import) or fhir (readings as a FHIR R4 Bundle)")
	}, help{
		usage: "[--data DIR | -l PORT] [--network-file FILE] [--format jsonl|fhir] [--out FILE]",
		about: []string{"Writes the main chain as JSON lines, one block per line from height 1 to the tip",
			"(line N is the block at height N; genesis follows from the network and is left out).",
			"The node must be stopped. p2pchain import reads the file back. Without --data or -l",
			"it exports the only data directory there is.",
			"",
			"With --format fhir it writes every reading of the main chain as an HL7 FHIR R4",
			"Observation, in one Bundle of type collection, each with its block's hash and height",
			"and status final (in a final block) or preliminary (docs/FHIR.md)."},
		examples: []string{"export --out chain.jsonl", "export -l 10000 --out chain.jsonl", "export --data /srv/p2pchain | gzip > chain.jsonl.gz",
			"export --format fhir --out readings.fhir.json"},
	})
	if err != nil {
		return err
	}
	if format != "jsonl" && format != "fhir" {
		return usagef("export", "--format %q: want jsonl or fhir", format)
	}
	if len(t.args) > 0 {
		return usagef("export", "unexpected argument %q (write to a file with --out FILE)", t.args[0])
	}
	if out != "" {
		if err := datadir.CheckFileTarget(out); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
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
	write := func(b *chain.Block) error { return enc.Encode(b) }
	var bundle *fhir.BundleWriter
	if format == "fhir" {
		if bundle, err = fhir.NewBundleWriter(bw, "collection", "", start); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		write = fhirBlockWriter(bundle, exportFinalHeight(params, tip))
	}
	bar := newProgress(stderr, "export", tip)
	err = walkBlocks(ctx, st, 1, func(b *chain.Block) error {
		if err := write(b); err != nil {
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
	if bundle != nil {
		if err := bundle.Close(); err != nil {
			return fmt.Errorf("write: %w", err)
		}
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
	if bundle != nil {
		fmt.Fprintf(summary, "exported %d readings of %d blocks of network %q, %s, as a FHIR Bundle to %s\n",
			readings, blocks, params.Name, rulesText(params, t.nw, ""), dest)
	} else {
		fmt.Fprintf(summary, "exported %d blocks (%d readings) of network %q, %s, to %s\n",
			blocks, readings, params.Name, rulesText(params, t.nw, ""), dest)
	}
	fmt.Fprintf(summary, "tip #%d %s, in %s (%s blocks/s)\n", tip, st.Tip(), roundDuration(took), perSecond(blocks, took))
	return nil
}

// fhirBlockWriter returns what writes a block's readings to a FHIR
// Bundle: one Observation each, final at or below the final height.
func fhirBlockWriter(bundle *fhir.BundleWriter, final uint64) func(*chain.Block) error {
	return func(b *chain.Block) error {
		in := &fhir.Place{Hash: b.Hash(), Height: b.Header.Height, Time: b.Header.Time, Final: b.Header.Height <= final}
		for i := range b.Readings {
			o := fhir.ObservationOf(&b.Readings[i], in)
			if err := bundle.Add(&o); err != nil {
				return err
			}
		}
		return nil
	}
}

// exportFinalHeight is the final height of a stopped node's main chain of
// height tip, as the export reports it: on an authority network every
// block is final; on a proof-of-work network a block is final with
// MaxReorgDepth blocks on top of it (the depth rule; its age on the main
// chain, the rule's other half, is taken as passed, since the node that
// stopped is not there to watch it). The store keeps the height the node
// last recorded, but reads it only with LoadRecent, which loads the whole
// chain into memory for a store that never recorded one (one made by p2pchain
// import): the export must not.
func exportFinalHeight(p chain.Params, tip uint64) uint64 { return p.DepthFinal(tip) }

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	"github.com/p2pchain/p2pchain/internal/bft"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/datadir"
	"github.com/p2pchain/p2pchain/internal/netfile"
	"github.com/p2pchain/p2pchain/internal/receipt"
)

// The receipt commands (docs/RECEIPTS.md): receipt fetches a reading's
// receipt from the running node; check-receipt checks one offline.

// Examples in the help: a reading id and a block hash.
const (
	exampleID    = "7a3e0c5d2b9f41e8a6c3d0f7b2e9a4c1d8f5b2e9c6a3d0f7b4e1a8c5d2f9b6e3"
	exampleBlock = "00003c9155e2b7a0d4f8c1e6b9a2d5f0c3e8b1a4d7f2c5e0b3a6d9f4c7e2b5a8"
)

func runReceipt(args []string, stdout, stderr io.Writer) error {
	var cf clientFlags
	fs := newClientFlags("receipt", clientHelp(help{
		usage: "ID [-o FILE] [-l PORT | --data DIR | --api URL]",
		about: []string{"Fetches the receipt of a reading from the running node: a JSON file that anyone can",
			"check offline with check-receipt, proving the reading is in a block of the chain and",
			"unchanged (its signature, its Merkle proof, the headers from its block up to the tip",
			"and, on an authority network, the authorities' commit). It is written to standard",
			"output, or to FILE with -o; the node's receipt is checked before it is written.",
			"ID is the reading's id (64 hex digits, as add and readings print it) or a unique prefix.",
			"A reading still waiting for a block has no receipt yet: try again once it is in one."},
		examples: []string{"receipt " + exampleID + " -o alice-72.json", "receipt 7a3e0c5d2b -o alice-72.json --api 127.0.0.1:8080"},
	}), stdout, &cf)
	var out string
	fs.StringVar(&out, "o", "", "write the receipt to `FILE` instead of standard output")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("receipt", "want one reading id (its 64 hex digits as add or readings print it, or a unique prefix)")
	}
	ref := pos[0]
	if _, err := chain.ParseHashPrefix(ref); err != nil {
		return usagef("receipt", "reading id: %v", err)
	}
	c, err := cf.connect()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.get(context.Background(), "/api/v1/readings/"+url.PathEscape(ref)+"/receipt", &raw); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusConflict {
			return fmt.Errorf("reading %s is not yet in a block: its receipt exists once a block holds it; try again in a moment", ref)
		}
		return err
	}
	r, err := receipt.Parse(raw)
	if err != nil {
		return fmt.Errorf("the node's answer: %w", err)
	}
	res, err := receipt.Check(r, nil)
	if err != nil {
		return fmt.Errorf("the node's receipt does not check: %w", err)
	}
	data := append([]byte(raw), '\n')
	if out == "" {
		_, err := stdout.Write(data)
		return err
	}
	if err := datadir.WriteFileAtomic(out, data, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %s: %s\n", out, res.Proves())
	return nil
}

// checkOutput is check-receipt's --json answer (the shape of the
// JavaScript checker's).
type checkOutput struct {
	OK     bool            `json:"ok"`
	Proves string          `json:"proves,omitempty"`
	Result *receipt.Result `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// errReceiptFailed is check-receipt's error once it has said why.
var errReceiptFailed = errors.New("the receipt did not check")

func runCheckReceipt(args []string, stdout, stderr io.Writer) error {
	var (
		trustHex string
		asJSON   bool
	)
	fs := newCmdFlags("check-receipt", help{
		usage: "FILE [--trust BLOCKHASH] [--json]",
		about: []string{"Checks a reading's receipt offline, with no node and no network: the reading's",
			"signature and id, its Merkle proof against its block's header, every header's link",
			"and proof of work up to the last one and, on an authority network, the commit of",
			"more than two thirds of the authorities the receipt lists. Prints what it proves and",
			"exits 0, or names what did not match and exits 1. FILE - reads standard input.",
			"",
			"A receipt is only as good as the chain it reaches: give --trust with a block hash you",
			"trust from elsewhere (your own node, a colleague, a printout) and the check requires",
			"that block among the receipt's headers. Without it, compare the tip hash it prints."},
		examples: []string{"check-receipt alice-72.json", "check-receipt alice-72.json --trust " + exampleBlock, "check-receipt alice-72.json --json"},
	}, stdout)
	fs.StringVar(&trustHex, "trust", "", "a block hash `BLOCKHASH` you trust: it must be the reading's block or one above it in the receipt")
	fs.jsonFlag(&asJSON, "the result")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("check-receipt", "want one receipt FILE (- for standard input)")
	}
	var trust *chain.Hash
	if trustHex != "" {
		h, err := chain.ParseHash(trustHex)
		if err != nil {
			return usagef("check-receipt", "--trust: %v", err)
		}
		trust = &h
	}
	var data []byte
	if pos[0] == "-" {
		data, err = io.ReadAll(io.LimitReader(os.Stdin, receipt.MaxSize+1))
	} else {
		data, err = readLimited(pos[0], receipt.MaxSize+1)
	}
	if err != nil {
		return err
	}
	r, err := receipt.Parse(data)
	var res receipt.Result
	if err == nil {
		res, err = receipt.Check(r, trust)
	}
	// The check names what did not match; a trusted hash that is not in
	// the receipt is no mismatch but a hash the receipt does not reach.
	// The trust is checked last: the receipt passed every other check, so
	// it is consistent in itself; but nothing ties it to the chain the
	// user trusts, and a consistent receipt can be made up.
	var re *receipt.Error
	unreached := errors.As(err, &re) && errors.Is(err, receipt.ErrTrust)
	if unreached {
		err = explained(err, fmt.Sprintf("the trusted block is not in the receipt: %s; the receipt is consistent in itself (every other check passed), "+
			"but nothing ties it to the chain you trust, and it may have been made up: --trust must be the reading's block or one above it in the receipt "+
			"(a block trusted since the receipt was made: fetch a newer receipt with %s receipt ID; years later: a block hash recorded when the receipt was made)",
			re.Detail, invocation()))
	}
	if asJSON {
		out := checkOutput{OK: err == nil}
		if err != nil {
			out.Error = err.Error()
		} else {
			out.Proves, out.Result = res.Proves(), &res
		}
		if werr := writeJSON(stdout, out); werr != nil {
			return werr
		}
		if err != nil {
			return errReceiptFailed
		}
		return nil
	}
	if unreached {
		return fmt.Errorf("NOT PROVEN: %w", err)
	}
	if err != nil {
		return fmt.Errorf("FAILED: %w", err)
	}
	fmt.Fprintf(stdout, "OK: %s\n\n", res.Proves())
	switch {
	case res.Final:
		fmt.Fprintf(stdout, "Commit: %d of these %d authorities signed block #%d for network %s\n",
			res.Signers, res.Authorities, res.CommitHeight, res.Network)
		fmt.Fprintf(stdout, "(set hash %s).\n", res.SetHash)
		fmt.Fprintf(stdout, "The receipt lists the keys itself: compare them with your network file\n")
		fmt.Fprintf(stdout, "(p2pchain network show FILE), or give a block hash you trust with --trust.\n")
		for i, k := range res.Keys {
			id, err := netfile.PeerIDOf(bft.Key(k))
			if err != nil {
				id = k.String()
			}
			fmt.Fprintf(stdout, "  #%-3d %s\n", i, id)
		}
	case res.Difficulty == 0:
		fmt.Fprintf(stdout, "Proof of work: none (difficulty 0). Anyone can make such headers: the receipt\n")
		fmt.Fprintf(stdout, "proves something only through a block hash you trust.\n")
	default:
		fmt.Fprintf(stdout, "Proof of work: every one of the %d headers has a hash of %d leading zero bits\n", res.Depth, res.Difficulty)
		fmt.Fprintf(stdout, "(about 2^%d hashes each).\n", res.Difficulty)
	}
	if res.Trusted {
		fmt.Fprintf(stdout, "Trusted block #%d %s is in the receipt: the reading's block is that block or one of its ancestors.\n", res.TrustedHeight, res.TrustedHash)
		return nil
	}
	fmt.Fprintf(stdout, "The receipt reaches block #%d %s.\n", res.TipHeight, res.Tip)
	fmt.Fprintf(stdout, "Compare that hash with one you trust from elsewhere (a node of your own, the clinic's\n")
	fmt.Fprintf(stdout, "explorer), or run again with --trust BLOCKHASH.\n")
	return nil
}

// readLimited reads up to max bytes of a file.
func readLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, max))
}

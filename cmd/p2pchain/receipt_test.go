package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/receipt"
)

// receiptFile mines a short chain at a low difficulty and writes the
// receipt of a reading of its second block; it returns the file, the
// receipt and the chain's blocks.
func receiptFile(t *testing.T) (string, *receipt.Receipt, []*chain.Block) {
	t.Helper()
	p := chain.TestParams("receipts")
	p.Difficulty = 6
	c, err := chain.New(p)
	if err != nil {
		t.Fatal(err)
	}
	seed := sha256.Sum256([]byte("receipt cli"))
	key := ed25519.NewKeyFromSeed(seed[:])
	var blocks []*chain.Block
	for i := 1; i <= 4; i++ {
		at := time.UnixMilli(p.GenesisTime).Add(time.Duration(i) * time.Minute)
		var rs []chain.Reading
		for j := 0; j < 3; j++ {
			r, err := chain.NewReading(key, "alice", 70+i+j, at)
			if err != nil {
				t.Fatal(err)
			}
			rs = append(rs, r)
		}
		b := c.NewBlock(rs, at)
		if err := chain.Solve(context.Background(), &b.Header); err != nil {
			t.Fatal(err)
		}
		if _, err := c.AddBlock(b, at); err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, b)
	}
	var above []chain.Header
	for _, b := range blocks[2:] {
		above = append(above, b.Header)
	}
	r, err := receipt.Build(blocks[1], 2, above, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "receipt.json")
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, r, blocks
}

func runHere(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// check-receipt prints what a good receipt proves and exits 0, with or
// without a trusted block among its headers; a tampered copy, or a trusted
// hash the receipt does not reach, exits 1 naming what did not match.
func TestCheckReceiptCommand(t *testing.T) {
	path, r, blocks := receiptFile(t)
	res, err := receipt.Check(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runHere("check-receipt", path)
	if code != 0 || !strings.HasPrefix(out, "OK: "+res.Proves()+"\n") ||
		!strings.Contains(out, "The receipt reaches block #4 "+blocks[3].Hash().String()) ||
		!strings.Contains(out, "--trust BLOCKHASH") || !strings.Contains(out, "6 leading zero bits") {
		t.Fatalf("check-receipt: %d\n%s%s", code, out, errOut)
	}

	for _, b := range blocks[1:] {
		code, out, errOut = runHere("check-receipt", path, "--trust", b.Hash().String())
		if code != 0 || !strings.Contains(out, ", reaching trusted block "+b.Hash().String()+"\n") {
			t.Fatalf("check-receipt --trust block %d: %d\n%s%s", b.Header.Height, code, out, errOut)
		}
	}
	code, out, errOut = runHere("check-receipt", path, "--trust", blocks[0].Hash().String())
	if code != 1 || !strings.Contains(errOut, "NOT PROVEN: the trusted block is not in the receipt: "+blocks[0].Hash().String()+" is none of the") ||
		!strings.Contains(errOut, "nothing ties it to the chain you trust") || strings.Contains(errOut, "FAILED") ||
		!strings.Contains(errOut, "--trust must be the reading's block or one above it") || strings.Contains(errOut, "did not match") || strings.Contains(out, "OK") {
		t.Fatalf("check-receipt --trust a block below: %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut = runHere("check-receipt", path, "--trust", "abc"); code != 2 {
		t.Fatalf("check-receipt --trust abc: %d %s", code, errOut)
	}

	code, out, _ = runHere("check-receipt", path, "--json")
	var v struct {
		OK     bool
		Proves string
		Result struct {
			Block chain.Hash
			Depth uint64
		}
	}
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil || !v.OK || v.Proves != res.Proves() ||
		v.Result.Block != blocks[1].Hash() || v.Result.Depth != 3 {
		t.Fatalf("check-receipt --json: %d %v\n%s", code, err, out)
	}

	data, _ := os.ReadFile(path)
	for _, c := range []struct{ name, from, to, want string }{
		{"bpm", `"bpm":74`, `"bpm":75`, "reading id did not match"},
		{"proof index", `"index":2`, `"index":1`, "merkle proof did not match"},
		{"nonce", `"nonce":`, `"nonce":1`, "header 2 hash did not match"},
		{"version", `"format":"p2pchain-receipt/1"`, `"format":"p2pchain-receipt/9"`, "format did not match"},
		{"not JSON", `{`, `[`, "malformed receipt"},
	} {
		if !bytes.Contains(data, []byte(c.from)) {
			t.Fatalf("%s: %s is not in the receipt", c.name, c.from)
		}
		bad := filepath.Join(t.TempDir(), "tampered.json")
		if err := os.WriteFile(bad, bytes.Replace(data, []byte(c.from), []byte(c.to), 1), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runHere("check-receipt", bad)
		if code != 1 || !strings.Contains(errOut, "FAILED: ") || !strings.Contains(errOut, c.want) || out != "" {
			t.Errorf("%s: %d\n%s%s", c.name, code, out, errOut)
		}
		code, out, _ = runHere("check-receipt", bad, "--json")
		var v struct {
			OK    bool
			Error string
		}
		if err := json.Unmarshal([]byte(out), &v); code != 1 || err != nil || v.OK || !strings.Contains(v.Error, c.want) {
			t.Errorf("%s --json: %d %v\n%s", c.name, code, err, out)
		}
	}
	if code, _, errOut := runHere("check-receipt", filepath.Join(t.TempDir(), "missing.json")); code != 1 || !strings.Contains(errOut, "no such file") {
		t.Errorf("missing file: %d %s", code, errOut)
	}
}

// receipt fetches a receipt from the node's API, checks it and writes it;
// a reading still pending gets a clear message. (The real route is tested
// with the API; this server stands in for it.)
func TestReceiptCommand(t *testing.T) {
	path, r, _ := receiptFile(t)
	good, _ := os.ReadFile(path)
	id := r.Reading.ID.String()
	tampered := bytes.Replace(good, []byte(`"index":2`), []byte(`"index":1`), 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/readings/{id}/receipt", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch req.PathValue("id") {
		case id, id[:10]:
			w.Write(bytes.TrimSpace(good))
		case "feed":
			w.Write(tampered)
		default:
			w.WriteHeader(http.StatusConflict)
			w.Write([]byte(`{"error":"reading waits for a block","code":"reading_pending"}`))
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	out := filepath.Join(t.TempDir(), "fetched.json")
	code, stdout, stderr := runHere("receipt", id[:10], "--api", srv.URL, "-o", out)
	got, _ := os.ReadFile(out)
	if code != 0 || !bytes.Equal(got, good) || !strings.Contains(stderr, "wrote "+out+": reading "+id) {
		t.Fatalf("receipt -o: %d\n%s%s\n%s", code, stdout, stderr, got)
	}
	if code, stdout, stderr = runHere("receipt", id, "--api", srv.URL); code != 0 || stdout != string(good) {
		t.Fatalf("receipt to stdout: %d\n%s%s", code, stdout, stderr)
	}
	if code, _, stderr = runHere("receipt", "beef", "--api", srv.URL); code != 1 || !strings.Contains(stderr, "not yet in a block") {
		t.Fatalf("pending: %d %s", code, stderr)
	}
	if code, _, stderr = runHere("receipt", "feed", "--api", srv.URL, "-o", out); code != 1 || !strings.Contains(stderr, "merkle proof did not match") {
		t.Fatalf("a bad receipt from the node: %d %s", code, stderr)
	}
	if code, _, _ = runHere("receipt", "xyz", "--api", srv.URL); code != 2 {
		t.Fatalf("receipt xyz: %d", code)
	}
}

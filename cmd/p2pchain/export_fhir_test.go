package main

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/fhir"
)

// TestExportFHIR: export --format fhir writes one collection Bundle of
// every main-chain reading, final below the depth of MaxReorgDepth, that
// imports back as the same readings.
func TestExportFHIR(t *testing.T) {
	t.Parallel()
	p := toolParams(2)
	blocks := buildChain(t, p, 10, 2, tamper{})
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	writeDataDir(t, src, p, blocks)

	file := filepath.Join(tmp, "readings.fhir.json")
	wantOK(t, runTool(t, nil, nil, "export", "--data", src, "--format", "fhir", "--out", file),
		`(?m)^exported 20 readings of 10 blocks of network "tools-test", difficulty 2, as a FHIR Bundle to `)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var b struct {
		ResourceType string `json:"resourceType"`
		Type         string `json:"type"`
		Entry        []struct {
			Resource fhir.Observation `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatalf("%v\n%.500s", err, data)
	}
	if b.ResourceType != "Bundle" || b.Type != "collection" || len(b.Entry) != 20 {
		t.Fatalf("%s bundle of type %s with %d entries", b.ResourceType, b.Type, len(b.Entry))
	}
	final := uint64(10 - p.MaxReorgDepth)
	for i, e := range b.Entry {
		blk := blocks[i/2]
		r := &blk.Readings[i%2]
		want := fhir.ObservationOf(r, &fhir.Place{Hash: blk.Hash(), Height: blk.Header.Height, Time: blk.Header.Time,
			Final: blk.Header.Height <= final})
		got, _ := json.Marshal(e.Resource)
		wantJSON, _ := json.Marshal(want)
		if string(got) != string(wantJSON) {
			t.Fatalf("entry %d:\n%s\nwant\n%s", i+1, got, wantJSON)
		}
	}
	rows, bad := fhir.ParseBundle(data)
	if len(bad) > 0 || len(rows) != 20 || rows[19].Subject != blocks[9].Readings[1].Subject {
		t.Fatalf("import of the export: %d rows, %v", len(rows), bad)
	}
	// Each row is the reading as its author signed it: import submits it
	// as it is, and it keeps its id.
	for i, row := range rows {
		r := &blocks[i/2].Readings[i%2]
		if row.Author != hex.EncodeToString(r.Author[:]) || row.Sig != hex.EncodeToString(r.Sig[:]) || row.Time.UnixMilli() != r.Time {
			t.Fatalf("row %d: author %s, sig %s, time %d; want the reading's %x, %x, %d", i+1, row.Author, row.Sig, row.Time.UnixMilli(), r.Author, r.Sig, r.Time)
		}
	}

	if r := runTool(t, nil, nil, "export", "--data", src, "--format", "xml"); r.code != 2 {
		t.Errorf("--format xml:\n%s", r)
	}
	if got := exportFinalHeight(chain.Params{Consensus: chain.Authority}, 9); got != 9 {
		t.Errorf("authority network: final %d, want the tip", got)
	}
	if got := exportFinalHeight(chain.Params{MaxReorgDepth: 6}, 4); got != 0 {
		t.Errorf("short chain: final %d, want 0", got)
	}
}

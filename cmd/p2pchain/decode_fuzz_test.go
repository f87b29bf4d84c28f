package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/datadir"
	"github.com/p2pchain/p2pchain/internal/p2p"
)

// Fuzz targets for the files the binary reads: the config file of a data
// directory and the import file (p2pchain import). Neither format is
// canonical (TOML, JSON lines), so the rule is: whatever is accepted
// encodes to a form that is accepted as the same value, and encoding that
// value again gives the same bytes.

// FuzzConfigFile reads arbitrary config files as a node does (readConfig:
// decode over the defaults, then check every key the file sets).
func FuzzConfigFile(f *testing.F) {
	f.Add([]byte(fmt.Sprintf(defaultConfigFile, "p2pchain", 18, "", 10000)))
	f.Add([]byte(fmt.Sprintf(defaultConfigFile, "ward \"7\"", 0, "clinic.toml", 0)))
	f.Add([]byte("peers = [\"/ip4/127.0.0.1/tcp/1/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo\"]\nport = 65535\n"))
	f.Add([]byte("checkpoint = \"1:" + strings.Repeat("ab", 32) + "\"\nlog_level = \"debug\"\n"))
	f.Add([]byte("difficulty = 65\n"))
	f.Add([]byte("prot = 1\n"))
	f.Add([]byte("port = \"1\"\n"))
	f.Add([]byte("[x]\ny = 1\n"))
	f.Add([]byte{})
	dir, err := datadir.Open(filepath.Join(f.TempDir(), "node"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = dir.Close() })
	read := func(t *testing.T, data []byte) (nodeConfig, error) {
		if err := os.WriteFile(dir.File(datadir.ConfigFile), data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, _, err := readConfig(dir)
		return cfg, err
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := read(t, data)
		if err != nil {
			return
		}
		enc, err := toml.Marshal(cfg)
		if err != nil {
			t.Fatalf("a config read does not encode: %v", err)
		}
		again, err := read(t, enc)
		if err != nil {
			t.Fatalf("the encoding of a config read is refused: %v\n%s", err, enc)
		}
		if len(cfg.Peers) == 0 && len(again.Peers) == 0 {
			cfg.Peers, again.Peers = nil, nil // no peers: written [], read back empty
		}
		if !reflect.DeepEqual(again, cfg) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v\n%s", cfg, again, enc)
		}
		if enc2, _ := toml.Marshal(again); !bytes.Equal(enc2, enc) {
			t.Fatalf("encoding not stable:\n%s\n%s", enc, enc2)
		}
	})
}

// FuzzImportFile reads arbitrary import files as p2pchain import does:
// lines of at most maxImportLine bytes, each decoded by decodeLine, and the
// blocks replayed on a chain of the network (no store). A line that decodes
// encodes, as p2pchain export writes it, to a line that decodes to the same
// block; replaying never panics.
func FuzzImportFile(f *testing.F) {
	params := chain.TestParams("import-fuzz")
	params.MaxReadings = 4
	c, err := chain.New(params)
	if err != nil {
		f.Fatal(err)
	}
	key := p2p.KeyFromSeed(7)
	now := time.UnixMilli(params.GenesisTime).Add(time.Hour)
	var file bytes.Buffer
	for i := range 3 {
		var rs []chain.Reading
		for j := range i {
			r, err := chain.NewReading(key, fmt.Sprintf("s%d-%d", i, j), 60+j, now)
			if err != nil {
				f.Fatal(err)
			}
			rs = append(rs, r)
		}
		b := c.NewBlock(rs, now)
		if _, err := c.AddBlock(b, now); err != nil {
			f.Fatal(err)
		}
		line := exportLine(f, b)
		f.Add(line)
		file.Write(line)
	}
	f.Add(file.Bytes())
	f.Add(bytes.ReplaceAll(file.Bytes(), []byte("\n"), []byte("\r\n")))
	f.Add([]byte("\n\n"))
	f.Add([]byte(`{"height":1}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := newReplay(params, nil, now)
		if err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(bytes.NewReader(data))
		lines.Buffer(make([]byte, 0, 4<<10), maxImportLine)
		for n := uint64(1); lines.Scan(); n++ {
			b, err := decodeLine(n, lines.Bytes())
			if err != nil {
				return // import stops at the first bad line
			}
			line := exportLine(t, b)
			again, err := decodeLine(n, bytes.TrimSuffix(line, []byte("\n")))
			if err != nil {
				t.Fatalf("line %d: the export of a decoded block does not decode: %v\n%s", n, err, line)
			}
			if !reflect.DeepEqual(again, b) {
				t.Fatalf("line %d: round trip changed the block:\n%+v\n%+v", n, b, again)
			}
			if line2 := exportLine(t, again); !bytes.Equal(line2, line) {
				t.Fatalf("line %d: export not stable:\n%s\n%s", n, line, line2)
			}
			if r.extend(b) != nil {
				return
			}
		}
	})
}

// exportLine is b as p2pchain export writes it: one JSON line.
func exportLine(tb testing.TB, b *chain.Block) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(b); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

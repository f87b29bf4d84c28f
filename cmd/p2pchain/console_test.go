package main

import (
	"io"
	"strings"
	"testing"

	"github.com/p2pchain/p2pchain/internal/p2p"
)

func TestParseInput(t *testing.T) {
	tests := []struct {
		line    string
		want    input
		wantErr string // substring of the error, "" for none
	}{
		{line: "70", want: input{subject: "demo", bpm: 70}},
		{line: "  72  ", want: input{subject: "demo", bpm: 72}},
		{line: "alice 72", want: input{subject: "alice", bpm: 72}},
		{line: "20", want: input{subject: "demo", bpm: 20}},
		{line: "300", want: input{subject: "demo", bpm: 300}},
		{line: "help", want: input{cmd: "help"}},
		{line: "?", want: input{cmd: "help"}},
		{line: "STATUS", want: input{cmd: "status"}},
		{line: "peers", want: input{cmd: "peers"}},
		{line: "chain", want: input{cmd: "chain", arg: 10}},
		{line: "chain 3", want: input{cmd: "chain", arg: 3}},
		{line: "exit", want: input{cmd: "quit"}},
		{line: "approve add 12D3KooWX", want: input{cmd: "approve", op: "add", peer: "12D3KooWX"}},
		{line: "approve remove 12D3KooWX 40", want: input{cmd: "approve", op: "remove", peer: "12D3KooWX", height: 40}},
		{line: "approve 72", want: input{subject: "approve", bpm: 72}},
		{line: "approve add", wantErr: "usage: approve"},
		{line: "approve add 12D3KooWX soon", wantErr: "block height"},
		{line: "", wantErr: "empty line"},
		{line: "   ", wantErr: "empty line"},
		{line: "abc", wantErr: "not a heart rate"},
		{line: "-5", wantErr: "not a plausible heart rate"},
		{line: "19", wantErr: "not a plausible heart rate"},
		{line: "301", wantErr: "not a plausible heart rate"},
		{line: "100000", wantErr: "not a plausible heart rate"},
		{line: "72.5", wantErr: "not a heart rate"},
		{line: "alice bob", wantErr: "not a heart rate"},
		{line: "a b c", wantErr: "not a reading"},
		{line: strings.Repeat("x", 65) + " 70", wantErr: "subject"},
		{line: "chain 0", wantErr: "positive"},
		{line: "chain x", wantErr: "positive"},
		{line: "status now", wantErr: "no arguments"},
	}
	for _, tt := range tests {
		got, err := parseInput(tt.line, "demo")
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseInput(%q) error = %v, want one containing %q", tt.line, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseInput(%q) = %+v, %v; want %+v", tt.line, got, err, tt.want)
		}
	}
}

// TestConfigPrecedence: the file sets, the environment overrides the file,
// flags override both.
func TestConfigPrecedence(t *testing.T) {
	key, err := p2p.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	id, err := p2p.PeerID(key)
	if err != nil {
		t.Fatal(err)
	}
	// Peers are checked, whatever sets them: whole multiaddrs.
	a, b, c := "/ip4/127.0.0.1/tcp/4001/p2p/"+id.String(), "/ip4/127.0.0.1/tcp/4002/p2p/"+id.String(), "/ip4/127.0.0.1/tcp/4003/p2p/"+id.String()
	file := defaultNodeConfig()
	file.Port, file.Subject, file.Peers = 9000, "from-file", []string{"/file"}
	env := map[string]string{"P2PCHAIN_PORT": "9001", "P2PCHAIN_DHT": "true", "P2PCHAIN_PEERS": a + ", " + b}
	if err := applyEnv(&file, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if file.Port != 9001 || !file.DHT || file.Subject != "from-file" || len(file.Peers) != 2 || file.Peers[1] != b {
		t.Fatalf("after env: %+v", file)
	}
	flags, f, err := parseNodeFlags([]string{"-l", "9002", "--subject", "from-flag", "-peer", c}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg := f.merge(file, flags)
	if cfg.Port != 9002 || cfg.Subject != "from-flag" || !cfg.DHT || cfg.Network != "p2pchain" {
		t.Fatalf("after flags: %+v", cfg)
	}
	if got := strings.Join(cfg.Peers, " "); got != a+" "+b+" "+c {
		t.Fatalf("peers %q: flags add to the configured list", got)
	}
	for k, v := range map[string]string{"P2PCHAIN_PORT": "x", "P2PCHAIN_MDNS": "maybe"} {
		c := defaultNodeConfig()
		if err := applyEnv(&c, func(n string) string {
			if n == k {
				return v
			}
			return ""
		}); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: error %v, want one naming the variable", k, v, err)
		}
	}
}

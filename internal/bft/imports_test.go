package bft

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps the consensus engine pure: the standard library and
// internal/chain only, and nothing that reaches the network, the disk, a
// logger or a source of randomness.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p != "github.com/p2pchain/p2pchain/internal/bft" && p != "github.com/p2pchain/p2pchain/internal/chain" {
			t.Errorf("internal/bft depends on %s; it may import the standard library and internal/chain only", p)
		}
	}
	out, err = exec.Command("go", "list", "-f", "{{join .Imports \" \"}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	banned := map[string]bool{"net": true, "net/http": true, "os": true, "os/exec": true, "io/fs": true, "sync": true,
		"syscall": true, "log": true, "log/slog": true, "database/sql": true, "math/rand": true, "math/rand/v2": true, "crypto/rand": true}
	for _, p := range strings.Fields(string(out)) {
		if banned[p] {
			t.Errorf("internal/bft imports %s: the engine does no I/O, starts no goroutine and is deterministic", p)
		}
	}
}

package chain

import (
	"os/exec"
	"strings"
	"testing"
)

// TestStandardLibraryOnly keeps the consensus core free of networking,
// storage and every other dependency: it may import the standard library only.
func TestStandardLibraryOnly(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p != "github.com/p2pchain/p2pchain/internal/chain" {
			t.Errorf("internal/chain depends on %s; the core may import the standard library only", p)
		}
	}
	// Direct imports: nothing that reaches the network, the disk or a logger.
	out, err = exec.Command("go", "list", "-f", "{{join .Imports \" \"}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	banned := map[string]bool{"net": true, "net/http": true, "os": true, "os/exec": true, "io/fs": true,
		"syscall": true, "log": true, "log/slog": true, "database/sql": true, "math/rand": true, "math/rand/v2": true}
	for _, p := range strings.Fields(string(out)) {
		if banned[p] {
			t.Errorf("internal/chain imports %s: the core does no I/O and is deterministic", p)
		}
	}
}

package fhir

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps the package to the standard library and package chain,
// and away from the disk and the network but for writing answers.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p != "github.com/p2pchain/p2pchain/internal/fhir" && p != "github.com/p2pchain/p2pchain/internal/chain" {
			t.Errorf("internal/fhir depends on %s; it may import the standard library and internal/chain only", p)
		}
	}
	out, err = exec.Command("go", "list", "-f", "{{join .Imports \" \"}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p == "os" || p == "os/exec" || p == "net" || p == "log" || p == "log/slog" {
			t.Errorf("internal/fhir imports %s: it does no I/O of its own", p)
		}
	}
}

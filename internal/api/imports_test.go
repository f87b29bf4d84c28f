package api_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsPointOneWay: package api reads the node and its host (node,
// p2p) directly, never the other way round, and never imports the store.
func TestImportsPointOneWay(t *testing.T) {
	const mod = "github.com/p2pchain/p2pchain/internal/"
	for _, pkg := range []string{"chain", "node", "p2p", "store"} {
		out, err := exec.Command("go", "list", "-deps", "../"+pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == mod+"api" {
				t.Errorf("internal/%s depends on internal/api", pkg)
			}
		}
	}
	// The node owns its store: api reads stored data through the node
	// (whose methods may use the store's types), never opens or imports
	// the store itself.
	out, err := exec.Command("go", "list", "-f", "{{join .Imports \" \"}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == mod+"store" {
			t.Error("internal/api imports internal/store")
		}
	}
}

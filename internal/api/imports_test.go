package api_test

import (
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportsPointOneWay: package api uses node and p2p in its NodeService
// adapter only, never the other way round, and never reaches the store.
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
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == mod+"store" {
			t.Error("internal/api depends on internal/store")
		}
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || f == "nodeservice.go" {
			continue
		}
		file, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range file.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == mod+"node" || p == mod+"p2p" {
				t.Errorf("%s imports %s: only the adapter (nodeservice.go) may", f, p)
			}
		}
	}
}

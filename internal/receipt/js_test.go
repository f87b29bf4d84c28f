package receipt_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/receipt"
)

// jsChecker is the browser's checker, which the explorer serves.
const jsChecker = "../explorer/static/receipt-check.js"

// jsRunner loads the checker into Node.js, checks each case of the JSON
// array on standard input and prints the answers as a JSON array.
const jsRunner = `
const fs = require("fs");
const P2PReceipt = require(process.argv[2]);
(async () => {
  const cases = JSON.parse(fs.readFileSync(0, "utf8"));
  const out = [];
  for (const c of cases) out.push(await P2PReceipt.check(c.asObject ? JSON.parse(c.text) : c.text, c.trust));
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
`

type jsCase struct {
	Name     string `json:"-"`
	Text     string `json:"text"`
	Trust    string `json:"trust,omitempty"`
	AsObject bool   `json:"asObject,omitempty"`
}

type jsAnswer struct {
	OK     bool           `json:"ok"`
	Proves string         `json:"proves"`
	Error  string         `json:"error"`
	What   string         `json:"what"`
	Result map[string]any `json:"result"`
}

// The JavaScript checker agrees with Check: on good receipts it proves the
// same sentence, and it refuses every tampered receipt Check refuses,
// naming the same thing.
func TestJavaScriptChecker(t *testing.T) {
	nodeJS, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("node (Node.js 20 or later) is not installed, and in CI the JavaScript receipt checker must be tested (.ci/run installs it)")
		}
		t.Skip("node (Node.js 20 or later) is not installed: the JavaScript receipt checker is not tested")
	}
	checker, err := filepath.Abs(jsChecker)
	if err != nil {
		t.Fatal(err)
	}
	pow, blocks := powReceipt(t)
	auth := authorityReceipt(t)

	var cases []jsCase
	add := func(name string, r *receipt.Receipt, trust string) {
		data, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, jsCase{Name: name, Text: string(data), Trust: trust})
	}
	add("pow", pow, "")
	add("pow trusting its tip", pow, blocks[8].Hash().String())
	add("pow trusting its block", pow, blocks[4].Hash().String())
	add("pow trusting a block below", pow, blocks[3].Hash().String())
	add("authority", auth, "")
	for _, set := range []struct {
		base *receipt.Receipt
		ms   []mutation
	}{{pow, powMutations()}, {auth, authorityMutations()}} {
		data, _ := json.Marshal(set.base)
		for _, m := range set.ms {
			r, _ := receipt.Parse(data)
			m.mut(r)
			add(m.name, r, "")
		}
		for i := 0; i < len(data); i += 3 {
			bad := bytes.Clone(data)
			bad[i] ^= 1
			cases = append(cases, jsCase{Name: "byte flip", Text: string(bad)})
		}
	}
	// A parsed object works too while its numbers are exact.
	cases = append(cases, jsCase{Name: "pow as an object", Text: cases[0].Text, AsObject: true})
	// A nonce above 2^53 (on the last header of a chain without proof of
	// work, so the receipt stays good) is read exactly from the text.
	big := *auth
	big.Headers = append([]receipt.Header(nil), auth.Headers...)
	last := &big.Headers[len(big.Headers)-1]
	last.Nonce = 1<<63 + 12345
	last.Hash = receipt.Bytes32(chainHeader(last).Hash())
	add("nonce above 2^53", &big, "")
	if _, err := receipt.Check(&big, nil); err != nil {
		t.Fatal(err)
	}
	// JSON.parse would round it: the checker says so rather than fail on
	// the header hash.
	cases = append(cases, jsCase{Name: "nonce above 2^53 as an object", Text: cases[len(cases)-1].Text, AsObject: true})

	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	runner := filepath.Join(t.TempDir(), "runner.js")
	if err := os.WriteFile(runner, []byte(jsRunner), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nodeJS, runner, checker)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.Bytes())
	}
	var answers []jsAnswer
	if err := json.Unmarshal(out, &answers); err != nil || len(answers) != len(cases) {
		t.Fatalf("node answered %d of %d cases: %v", len(answers), len(cases), err)
	}

	for i, c := range cases {
		js := answers[i]
		if c.Name == "nonce above 2^53 as an object" {
			if js.OK || js.What != "malformed receipt" {
				t.Errorf("%s: %+v", c.Name, js)
			}
			continue
		}
		var trust *chain.Hash
		if c.Trust != "" {
			h, _ := chain.ParseHash(c.Trust)
			trust = &h
		}
		r, err := receipt.Parse([]byte(c.Text))
		var res receipt.Result
		if err == nil {
			res, err = receipt.Check(r, trust)
		}
		switch {
		case err == nil && !js.OK:
			t.Errorf("%s: Go proves %q, JavaScript fails: %s", c.Name, res.Proves(), js.Error)
		case err == nil && js.Proves != res.Proves():
			t.Errorf("%s: Go proves\n%s\nJavaScript\n%s", c.Name, res.Proves(), js.Proves)
		case err == nil:
			// The results' fields too, as `check-receipt --json` and the
			// JavaScript checker give them.
			data, err := json.Marshal(res)
			if err != nil {
				t.Fatal(err)
			}
			var goResult map[string]any
			if err := json.Unmarshal(data, &goResult); err != nil {
				t.Fatal(err)
			}
			for k, v := range js.Result {
				if !reflect.DeepEqual(goResult[k], v) {
					t.Errorf("%s: result field %s: Go %v, JavaScript %v", c.Name, k, goResult[k], v)
				}
			}
			for k := range goResult {
				if _, ok := js.Result[k]; !ok {
					t.Errorf("%s: result field %s: Go has it, JavaScript not", c.Name, k)
				}
			}
		case err != nil && js.OK:
			t.Errorf("%s: Go fails (%v), JavaScript proves %q", c.Name, err, js.Proves)
		case err != nil:
			var ce *receipt.Error
			want := "malformed receipt"
			if errors.As(err, &ce) {
				want = ce.What
			}
			if js.What != want {
				t.Errorf("%s: Go: %v\nJavaScript: %s", c.Name, err, js.Error)
			}
		}
	}
	if a := answers[4]; !a.OK || a.Result["final"] != true || a.Result["signers"] != float64(3) {
		t.Errorf("authority receipt in JavaScript: %+v", a)
	}
	t.Logf("%d cases agree", len(cases))
}

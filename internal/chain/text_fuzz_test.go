package chain_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// FuzzReadingJSON decodes arbitrary bytes as the JSON form of a reading
// (the API's and the import file's): it must never panic, must refuse with
// a rule error, and whatever it accepts encodes to JSON that decodes to the
// same reading, the same JSON again.
func FuzzReadingJSON(f *testing.F) {
	for _, enc := range fuzzReadings(f) {
		var r chain.Reading
		if err := r.UnmarshalBinary(enc); err != nil {
			f.Fatal(err)
		}
		data, err := json.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add([]byte(strings.Replace(string(data), `"bpm":`, `"bpm":1`, 1)))
		f.Add([]byte(strings.ToUpper(string(data))))
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"subject":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r chain.Reading
		if err := r.UnmarshalJSON(data); err != nil {
			requireRuleError(t, err)
			return
		}
		enc, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("a decoded reading does not encode: %v", err)
		}
		var again chain.Reading
		if err := again.UnmarshalJSON(enc); err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("round trip changed the reading (%v):\n%s", err, enc)
		}
		if enc2, _ := json.Marshal(again); string(enc2) != string(enc) {
			t.Fatalf("JSON not stable:\n%s\n%s", enc, enc2)
		}
	})
}

// FuzzParseHashPrefix parses arbitrary text as a hash prefix (the API's
// block and reading references): the prefix it accepts prints as the same
// digits in lower case and parses back to itself.
func FuzzParseHashPrefix(f *testing.F) {
	g := chain.DefaultParams().Genesis().Hash()
	for _, s := range []string{g.String(), g.Short(), strings.ToUpper(g.String()[:7]), "abc", "abcg", g.String() + "0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := chain.ParseHashPrefix(s)
		if err != nil {
			return
		}
		if p.String() != strings.ToLower(s) || p.Len() != len(s) {
			t.Fatalf("%q parsed as %q (%d digits)", s, p.String(), p.Len())
		}
		again, err := chain.ParseHashPrefix(p.String())
		if err != nil || again != p {
			t.Fatalf("%q does not parse back (%v)", p.String(), err)
		}
		if !p.Matches(p.Low()) {
			t.Fatalf("%q does not match its own low hash", s)
		}
	})
}

package api

import (
	"testing"
)

// TestDecodeJSONShapes: decodeJSON refuses a key in another case and a
// repeated key at any depth, in structs, slices and map values, and takes
// the shapes encoding/json takes: an embedded struct's promoted fields, an
// embedded struct with a name of its own, a field named "-".
func TestDecodeJSONShapes(t *testing.T) {
	type inner struct {
		X int `json:"x"`
	}
	type Promoted struct {
		P int `json:"p"`
	}
	type body struct {
		Promoted
		Named inner            `json:"named"`
		Dash  int              `json:"-,"`
		Skip  int              `json:"-"`
		List  []inner          `json:"list"`
		Map   map[string]inner `json:"map"`
	}
	for _, tc := range []struct {
		json string
		ok   bool
	}{
		{`{"p": 1, "named": {"x": 1}, "-": 2, "list": [{"x": 1}], "map": {"k": {"x": 1}}}`, true},
		{`{"P": 1}`, false},                     // another case
		{`{"p": 1, "p": 2}`, false},             // twice
		{`{"named": {"X": 1}}`, false},          // another case, nested
		{`{"list": [{"x": 1, "x": 2}]}`, false}, // twice, in a slice
		{`{"map": {"k": {"X": 1}}}`, false},     // another case, in a map value
		{`{"map": {"k": {}, "k": {}}}`, false},  // a map key twice
		{`{"Skip": 1}`, false},                  // json:"-" is no field
	} {
		var v body
		e := decodeJSON([]byte(tc.json), &v, "the body", "{}")
		if (e == nil) != tc.ok {
			t.Errorf("%s: error %v, want ok %v", tc.json, e, tc.ok)
		}
	}
}

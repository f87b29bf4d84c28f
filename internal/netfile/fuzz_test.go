package netfile

import (
	"bytes"
	"crypto/ed25519"
	"reflect"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// FuzzParse decodes arbitrary network files. TOML is not canonical, so the
// rule is: a file that parses encodes (Encode) to a file that parses to the
// same network, and encoding that network again gives the same bytes.
func FuzzParse(f *testing.F) {
	var ids []string
	for i := range 3 {
		seed := make([]byte, ed25519.SeedSize)
		seed[0] = byte(i + 1)
		priv, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed))
		if err != nil {
			f.Fatal(err)
		}
		id, err := peer.IDFromPrivateKey(priv)
		if err != nil {
			f.Fatal(err)
		}
		ids = append(ids, id.String())
	}
	for _, name := range []string{"clinic", "a \"quoted\" name\twith\\escapes", "ünïcödé"} {
		file, err := New(name, ids)
		if err != nil {
			f.Fatal(err)
		}
		file.GenesisTime = "2026-01-01T00:00:00.123Z"
		enc := file.Encode()
		f.Add(enc)
		f.Add(bytes.ReplaceAll(enc, []byte("\n#"), []byte("\n")))
		f.Add(enc[:len(enc)/2])
	}
	f.Add([]byte(`name = "x"`))
	f.Add([]byte("name = 'x'\nconsensus = \"authority\"\n[timeouts]\npropose = \"1ms\"\n"))
	f.Add([]byte(strings.Repeat("[", 1000)))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := Parse(data)
		if err != nil {
			return
		}
		enc := n.File.Encode()
		again, err := Parse(enc)
		if err != nil {
			t.Fatalf("the encoding of a parsed file does not parse: %v\n%s", err, enc)
		}
		if !reflect.DeepEqual(again.File, n.File) || again.Params != n.Params || again.Interval != n.Interval ||
			again.Timeouts != n.Timeouts || !reflect.DeepEqual(again.Set, n.Set) {
			t.Fatalf("round trip changed the network:\n%+v\n%+v", n, again)
		}
		if enc2 := again.File.Encode(); !bytes.Equal(enc2, enc) {
			t.Fatalf("encoding not stable:\n%s\n%s", enc, enc2)
		}
	})
}

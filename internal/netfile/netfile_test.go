package netfile

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// peerIDs returns n Ed25519 peer IDs derived from seeds.
func peerIDs(t *testing.T, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		seed := make([]byte, ed25519.SeedSize)
		seed[0] = byte(i + 1)
		priv, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed))
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromPrivateKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id.String())
	}
	return ids
}

func newFile(t *testing.T) *File {
	t.Helper()
	f, err := New("clinic", peerIDs(t, 4))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func parse(t *testing.T, data []byte) *Network {
	t.Helper()
	n, err := Parse(data)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	return n
}

func TestRoundTrip(t *testing.T) {
	f := newFile(t)
	n := parse(t, f.Encode())
	if n.File.Name != f.Name || n.File.GenesisTime != f.GenesisTime || len(n.File.Authorities) != 4 || n.File.Timeouts != f.Timeouts {
		t.Errorf("file changed: %+v, want %+v", n.File, *f)
	}
	p := n.Params
	if p.Consensus != chain.Authority || p.Difficulty != 0 || p.MaxReorgDepth != 1 || p.FinalAge != 0 || p.Commitment.IsZero() {
		t.Errorf("params %+v", p)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if n.Set.Len() != 4 || n.Interval != DefaultBlockInterval {
		t.Errorf("set of %d, interval %v", n.Set.Len(), n.Interval)
	}
	for i, id := range f.Authorities {
		k, err := KeyOf(id)
		if err != nil {
			t.Fatal(err)
		}
		if n.Set.Key(i) != k {
			t.Errorf("authority %d out of order", i)
		}
		if back, _ := PeerIDOf(k); back != id {
			t.Errorf("PeerIDOf(KeyOf(%s)) = %s", id, back)
		}
		if j, ok := n.Index(id); !ok || j != i {
			t.Errorf("Index(%s) = %d, %v", id, j, ok)
		}
	}
	again := parse(t, n.File.Encode())
	if again.Params != p || again.Params.Genesis().Hash() != p.Genesis().Hash() {
		t.Error("parse(encode(parse(f))) gives another network")
	}
	a := n.Authority()
	if a.Set != n.Set || a.Interval != n.Interval || a.Timeouts != n.Timeouts {
		t.Errorf("Authority() = %+v", a)
	}
}

// TestGenesisChanges: every parameter changes the genesis; comments, key
// order and spacing do not.
func TestGenesisChanges(t *testing.T) {
	base := newFile(t)
	genesis := parse(t, base.Encode()).Params.Genesis().Hash()
	ids := peerIDs(t, 5)
	for name, change := range map[string]func(f *File){
		"name":             func(f *File) { f.Name = "clinic2" },
		"genesis_time":     func(f *File) { f.GenesisTime = "2020-01-01T00:00:00Z" },
		"block_interval":   func(f *File) { f.BlockInterval = "4s" },
		"max_readings":     func(f *File) { f.MaxReadings = 100 },
		"max_future_drift": func(f *File) { f.MaxFutureDrift = "1m" },
		"authority order":  func(f *File) { f.Authorities[0], f.Authorities[1] = f.Authorities[1], f.Authorities[0] },
		"one more":         func(f *File) { f.Authorities = append(f.Authorities, ids[4]) },
		"one less":         func(f *File) { f.Authorities = f.Authorities[1:] },
		"propose":          func(f *File) { f.Timeouts.Propose = "2s" },
		"propose_delta":    func(f *File) { f.Timeouts.ProposeDelta = "1s" },
		"prevote":          func(f *File) { f.Timeouts.Prevote = "1s" },
		"prevote_delta":    func(f *File) { f.Timeouts.PrevoteDelta = "1s" },
		"precommit":        func(f *File) { f.Timeouts.Precommit = "1s" },
		"precommit_delta":  func(f *File) { f.Timeouts.PrecommitDelta = "1s" },
	} {
		f := *base
		f.Authorities = append([]string(nil), base.Authorities...)
		change(&f)
		if parse(t, f.Encode()).Params.Genesis().Hash() == genesis {
			t.Errorf("changing %s leaves the genesis", name)
		}
	}

	// The same values, written otherwise.
	var b strings.Builder
	b.WriteString("# another layout\n[timeouts]\n")
	for _, kv := range [][2]string{{"precommit_delta", base.Timeouts.PrecommitDelta}, {"precommit", base.Timeouts.Precommit},
		{"prevote_delta", base.Timeouts.PrevoteDelta}, {"prevote", base.Timeouts.Prevote},
		{"propose_delta", base.Timeouts.ProposeDelta}, {"propose", base.Timeouts.Propose}} {
		b.WriteString(kv[0] + "='" + kv[1] + "'\n")
	}
	// Top-level keys after a table need dotted... write them in a table-free
	// document instead: the root keys first, reordered.
	other := "authorities=['" + strings.Join(base.Authorities, "','") + "']\n" +
		"max_future_drift = \"" + base.MaxFutureDrift + "\"   # drift\n" +
		"max_readings=" + "1024" + "\n" +
		"consensus = 'authority'\nname='clinic'\ngenesis_time = \"" + base.GenesisTime + "\"\n" +
		"block_interval=\"5000ms\"\n\n" + b.String()
	if got := parse(t, []byte(other)).Params.Genesis().Hash(); got != genesis {
		t.Errorf("layout changed the genesis:\n%s", other)
	}
}

func TestBadFiles(t *testing.T) {
	good := string(newFile(t).Encode())
	ids := peerIDs(t, 2)
	// An RSA key's peer ID is a hash (Qm...); a secp256k1 one inlines the key.
	rsaKey, _, err := crypto.GenerateRSAKeyPair(2048, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaID, _ := peer.IDFromPrivateKey(rsaKey)
	secpKey, _, _ := crypto.GenerateSecp256k1Key(rand.Reader)
	secpID, _ := peer.IDFromPrivateKey(secpKey)

	replace := func(old, new string) string {
		if !strings.Contains(good, old) {
			t.Fatalf("the file has no %q", old)
		}
		return strings.Replace(good, old, new, 1)
	}
	authorities := func(list ...string) string {
		i := strings.Index(good, "authorities = [")
		j := strings.Index(good[i:], "]") + i
		return good[:i] + "authorities = [" + strings.Join(list, ", ") + good[j:]
	}
	for _, tt := range []struct {
		name, file, want string
	}{
		{"unknown key", replace("max_readings", "colour = 3\nmax_readings"), `unknown key "colour"`},
		{"unknown timeout", replace("propose = ", "proposal = \"1s\"\npropose = "), `unknown key "timeouts.proposal"`},
		{"missing key", replace("max_readings = 1024\n", ""), "max_readings: missing"},
		{"missing timeout", replace("prevote_delta = \"250ms\"\n", ""), "timeouts.prevote_delta: missing"},
		{"wrong type", replace("max_readings = 1024", `max_readings = "many"`), "max_readings"},
		{"consensus", replace(`consensus = "authority"`, `consensus = "pow"`), `consensus: "pow" is not known`},
		{"empty name", replace(`name = "clinic"`, `name = ""`), "name:"},
		{"long name", replace(`name = "clinic"`, `name = "`+strings.Repeat("x", 65)+`"`), "name:"},
		{"genesis time", replace("genesis_time = \"", "genesis_time = \"yesterday"), "genesis_time:"},
		{"bad duration", replace(`block_interval = "5s"`, `block_interval = "5 seconds"`), `block_interval: "5 seconds" is not a duration`},
		{"zero interval", replace(`block_interval = "5s"`, `block_interval = "0s"`), "block_interval:"},
		{"sub-millisecond", replace(`block_interval = "5s"`, `block_interval = "1.5ms"`), "block_interval:"},
		{"max readings", replace("max_readings = 1024", "max_readings = 0"), "max_readings: 0 is out of range"},
		{"drift", replace(`max_future_drift = "2m"`, `max_future_drift = "-1s"`), "max_future_drift:"},
		{"timeout", replace(`propose = "1s"`, `propose = "0s"`), "timeouts.propose:"},
		{"timeout too long", replace(`precommit_delta = "250ms"`, `precommit_delta = "11m"`), "timeouts.precommit_delta:"},
		{"no authorities", authorities(), "authorities: 0 peer IDs"},
		{"bad peer ID", authorities(`"12D3KooWnope"`), "authorities[0]: \"12D3KooWnope\" is not a peer ID"},
		{"RSA peer ID", authorities(`"`+ids[0]+`"`, `"`+rsaID.String()+`"`), "authorities[1]: " + `"` + rsaID.String() + `" is the peer ID of a key too large`},
		{"secp256k1 peer ID", authorities(`"` + secpID.String() + `"`), "authorities[0]: " + `"` + secpID.String() + `" is the peer ID of a Secp256k1 key`},
		{"duplicate", authorities(`"`+ids[0]+`"`, `"`+ids[1]+`"`, `"`+ids[0]+`"`), "authorities[2]: " + ids[0] + " is authorities[0] already"},
		{"not TOML", good + "\n= 3\n", "not valid TOML"},
	} {
		_, err := Parse([]byte(tt.file))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one saying %q", tt.name, err, tt.want)
		}
	}
	if _, err := Load("/nonexistent/clinic.toml"); err == nil || !strings.Contains(err.Error(), "/nonexistent/clinic.toml") {
		t.Errorf("Load of a missing file: %v", err)
	}
}

func TestEncodeIsDocumented(t *testing.T) {
	text := string(newFile(t).Encode())
	for _, want := range []string{"p2pchain node --network-file FILE", "must use this same", "genesis"} {
		if !strings.Contains(text, want) {
			t.Errorf("the file does not say %q:\n%s", want, text)
		}
	}
	// A comment above every key.
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if i > 0 && strings.Contains(l, " = ") && !strings.HasPrefix(l, " ") && !strings.HasPrefix(l, "#") &&
			!strings.HasPrefix(lines[i-1], "#") {
			t.Errorf("line %d %q has no comment above it", i+1, l)
		}
	}
	if _, err := New("bad\xff", nil); err == nil {
		t.Error("New took a name that is not UTF-8")
	}
	f, _ := New("we \"quote\"\tand\\", peerIDs(t, 1))
	if n := parse(t, f.Encode()); n.File.Name != f.Name {
		t.Errorf("name %q came back as %q", f.Name, n.File.Name)
	}
}

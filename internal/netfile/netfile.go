package netfile

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pelletier/go-toml/v2"

	"github.com/p2pchain/p2pchain/internal/bft"
	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
)

// ConsensusAuthority is the only value of the consensus key.
const ConsensusAuthority = "authority"

// Defaults of New.
const (
	DefaultBlockInterval = 5 * time.Second
	// MaxBlockInterval bounds block_interval.
	MaxBlockInterval = 24 * time.Hour
	// MaxFutureDriftLimit bounds max_future_drift (as chain.Params.Validate).
	MaxFutureDriftLimit = 24 * time.Hour
)

// commitTag is the domain tag of the commitment.
const commitTag = "p2pchain/network/v1"

// File is the TOML document of a network file. Durations are Go durations
// ("5s", "500ms"), times RFC 3339.
type File struct {
	Name           string   `toml:"name"`
	Consensus      string   `toml:"consensus"`
	GenesisTime    string   `toml:"genesis_time"`
	BlockInterval  string   `toml:"block_interval"`
	MaxReadings    int      `toml:"max_readings"`
	MaxFutureDrift string   `toml:"max_future_drift"`
	Authorities    []string `toml:"authorities"`
	Timeouts       Timeouts `toml:"timeouts"`
}

// Timeouts are the [timeouts] table: bft.Timeouts without Resend, which is
// each node's own business and not part of the genesis.
type Timeouts struct {
	Propose        string `toml:"propose"`
	ProposeDelta   string `toml:"propose_delta"`
	Prevote        string `toml:"prevote"`
	PrevoteDelta   string `toml:"prevote_delta"`
	Precommit      string `toml:"precommit"`
	PrecommitDelta string `toml:"precommit_delta"`
}

// Network is a checked network file and what follows from it.
type Network struct {
	File     File
	Params   chain.Params // Consensus Authority, Difficulty 0, MaxReorgDepth 1, FinalAge 0, Commitment
	Set      *bft.Set     // the genesis authorities, in file order
	Timeouts bft.Timeouts // Resend is bft.DefaultTimeouts's
	Interval time.Duration
}

// Authority returns the node's configuration for this network.
func (n *Network) Authority() node.Authority {
	return node.Authority{Set: n.Set, Timeouts: n.Timeouts, Interval: n.Interval}
}

// Index returns the position of peer ID id among the genesis authorities.
func (n *Network) Index(id string) (int, bool) {
	for i, a := range n.File.Authorities {
		if a == id {
			return i, true
		}
	}
	return -1, false
}

// New returns a file for a network of these authorities (peer IDs) with
// every other value at its default, genesis time now (to the second, UTC).
// It does not check the file: Parse(f.Encode()) does.
func New(name string, authorities []string) (*File, error) {
	if !utf8.ValidString(name) {
		return nil, errors.New("the network name must be UTF-8 text")
	}
	d := chain.DefaultParams()
	t := bft.DefaultTimeouts()
	f := &File{
		Name:           name,
		Consensus:      ConsensusAuthority,
		GenesisTime:    time.Now().UTC().Truncate(time.Second).Format(time.RFC3339),
		BlockInterval:  formatDuration(DefaultBlockInterval),
		MaxReadings:    d.MaxReadings,
		MaxFutureDrift: formatDuration(d.MaxFutureDrift),
		Authorities:    append([]string(nil), authorities...),
		Timeouts: Timeouts{
			Propose: formatDuration(t.Propose), ProposeDelta: formatDuration(t.ProposeDelta),
			Prevote: formatDuration(t.Prevote), PrevoteDelta: formatDuration(t.PrevoteDelta),
			Precommit: formatDuration(t.Precommit), PrecommitDelta: formatDuration(t.PrecommitDelta),
		},
	}
	return f, nil
}

// formatDuration writes d as a Go duration without the zero units that
// time.Duration.String adds ("2m", not "2m0s").
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Load reads and checks the network file at path.
func Load(path string) (*Network, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("network file: %w", err)
	}
	n, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("network file %s: %w", path, err)
	}
	return n, nil
}

// keyError is a bad value: the key and what its value must be.
func keyError(key, format string, args ...any) error {
	return fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...))
}

// Parse checks a network file and returns its network.
func Parse(data []byte) (*Network, error) {
	var f File
	d := toml.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&f); err != nil {
		return nil, decodeError(err)
	}
	if err := missingKeys(data); err != nil {
		return nil, err
	}
	return f.check()
}

// decodeError rewords an error of the TOML decoder: the line and the key.
func decodeError(err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) && len(strict.Errors) > 0 {
		var msgs []string
		for _, e := range strict.Errors {
			row, _ := e.Position()
			msgs = append(msgs, fmt.Sprintf("line %d: unknown key %q", row, strings.Join(e.Key(), ".")))
		}
		return fmt.Errorf("%s (the keys are %s)", strings.Join(msgs, "; "), strings.Join(allKeys, ", "))
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		key := strings.Join(de.Key(), ".")
		if key != "" {
			return fmt.Errorf("line %d: %s: %s (it must be %s)", row, key, strings.TrimPrefix(de.Error(), "toml: "), want[key])
		}
		return fmt.Errorf("line %d: not valid TOML: %s", row, strings.TrimPrefix(de.Error(), "toml: "))
	}
	return fmt.Errorf("not valid TOML: %w", err)
}

// want says what each key's value must be.
var want = map[string]string{
	"name":                     "the network's name in quotes, 1 to 64 bytes",
	"consensus":                `"authority"`,
	"genesis_time":             `an RFC 3339 time in quotes, e.g. "2026-01-01T00:00:00Z"`,
	"block_interval":           fmt.Sprintf(`a duration in quotes from 1ms to %s, e.g. "5s"`, formatDuration(MaxBlockInterval)),
	"max_readings":             fmt.Sprintf("a whole number from 1 to %d", chain.MaxReadingsLimit),
	"max_future_drift":         fmt.Sprintf(`a duration in quotes from 0s to %s, e.g. "2m"`, formatDuration(MaxFutureDriftLimit)),
	"authorities":              fmt.Sprintf(`a list of 1 to %d distinct Ed25519 peer IDs in quotes, e.g. ["12D3KooW..."]`, bft.MaxAuthorities),
	"timeouts":                 "a table of the six timeouts",
	"timeouts.propose":         timeoutWant(true),
	"timeouts.propose_delta":   timeoutWant(false),
	"timeouts.prevote":         timeoutWant(true),
	"timeouts.prevote_delta":   timeoutWant(false),
	"timeouts.precommit":       timeoutWant(true),
	"timeouts.precommit_delta": timeoutWant(false),
}

func timeoutWant(base bool) string {
	low := "0s"
	if base {
		low = "1ms"
	}
	return fmt.Sprintf(`a duration in quotes from %s to %s, e.g. "500ms"`, low, formatDuration(bft.MaxTimeout))
}

// allKeys are the file's keys, in the order of Encode.
var allKeys = []string{"name", "consensus", "genesis_time", "block_interval", "max_readings", "max_future_drift",
	"authorities", "timeouts.propose", "timeouts.propose_delta", "timeouts.prevote", "timeouts.prevote_delta",
	"timeouts.precommit", "timeouts.precommit_delta"}

// missingKeys refuses a file that lacks a key: every key is required.
func missingKeys(data []byte) error {
	var m map[string]any
	if err := toml.Unmarshal(data, &m); err != nil {
		return decodeError(err)
	}
	var missing []string
	for _, k := range allKeys {
		table, key, nested := strings.Cut(k, ".")
		v, ok := m[table]
		if ok && nested {
			t, _ := v.(map[string]any)
			_, ok = t[key]
		}
		if !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s: missing; every key is required (it must be %s)", missing[0], want[missing[0]])
	}
	return nil
}

// duration parses the duration of key, which must be whole milliseconds
// from lo to hi.
func duration(key, s string, lo, hi time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, keyError(key, "%q is not a duration: it must be %s", s, want[key])
	case d%time.Millisecond != 0:
		return 0, keyError(key, "%q is not a whole number of milliseconds: it must be %s", s, want[key])
	case d < lo || d > hi:
		return 0, keyError(key, "%q is out of range: it must be %s", s, want[key])
	}
	return d, nil
}

// check checks every value of f and returns its network.
func (f File) check() (*Network, error) {
	if f.Consensus != ConsensusAuthority {
		return nil, keyError("consensus", "%q is not known: it must be %s (a proof-of-work network needs no network file: use --network and --difficulty)", f.Consensus, want["consensus"])
	}
	p := chain.DefaultParams()
	p.Name = f.Name
	if f.Name == "" || len(f.Name) > 64 {
		return nil, keyError("name", "%q: it must be %s", f.Name, want["name"])
	}
	gt, err := time.Parse(time.RFC3339Nano, f.GenesisTime)
	if err != nil {
		return nil, keyError("genesis_time", "%q is not a time: it must be %s", f.GenesisTime, want["genesis_time"])
	}
	if gt.Nanosecond()%int(time.Millisecond) != 0 {
		return nil, keyError("genesis_time", "%q is finer than a millisecond: it must be %s", f.GenesisTime, want["genesis_time"])
	}
	p.GenesisTime = gt.UnixMilli()
	interval, err := duration("block_interval", f.BlockInterval, time.Millisecond, MaxBlockInterval)
	if err != nil {
		return nil, err
	}
	if f.MaxReadings < 1 || f.MaxReadings > chain.MaxReadingsLimit {
		return nil, keyError("max_readings", "%d is out of range: it must be %s", f.MaxReadings, want["max_readings"])
	}
	p.MaxReadings = f.MaxReadings
	if p.MaxFutureDrift, err = duration("max_future_drift", f.MaxFutureDrift, 0, MaxFutureDriftLimit); err != nil {
		return nil, err
	}
	set, err := authoritySet(f.Authorities)
	if err != nil {
		return nil, err
	}
	t := bft.DefaultTimeouts()
	for _, tt := range []struct {
		key  string
		s    string
		dst  *time.Duration
		base bool
	}{
		{"timeouts.propose", f.Timeouts.Propose, &t.Propose, true},
		{"timeouts.propose_delta", f.Timeouts.ProposeDelta, &t.ProposeDelta, false},
		{"timeouts.prevote", f.Timeouts.Prevote, &t.Prevote, true},
		{"timeouts.prevote_delta", f.Timeouts.PrevoteDelta, &t.PrevoteDelta, false},
		{"timeouts.precommit", f.Timeouts.Precommit, &t.Precommit, true},
		{"timeouts.precommit_delta", f.Timeouts.PrecommitDelta, &t.PrecommitDelta, false},
	} {
		lo := time.Duration(0)
		if tt.base {
			lo = time.Millisecond
		}
		if *tt.dst, err = duration(tt.key, tt.s, lo, bft.MaxTimeout); err != nil {
			return nil, err
		}
	}
	p.Difficulty = 0
	p.MaxReorgDepth = 1
	p.FinalAge = 0
	p.Consensus = chain.Authority
	p.Commitment = commitment(set, interval, t)
	if err := p.Validate(); err != nil {
		return nil, err // the checks above cover every rule; a guard
	}
	f.Authorities = append([]string(nil), f.Authorities...)
	return &Network{File: f, Params: p, Set: set, Timeouts: t, Interval: interval}, nil
}

// authoritySet checks the peer IDs and returns their set.
func authoritySet(ids []string) (*bft.Set, error) {
	if len(ids) == 0 || len(ids) > bft.MaxAuthorities {
		return nil, keyError("authorities", "%d peer IDs: it must be %s", len(ids), want["authorities"])
	}
	keys := make([]bft.Key, len(ids))
	seen := make(map[bft.Key]int, len(ids))
	for i, s := range ids {
		k, err := KeyOf(s)
		if err != nil {
			return nil, keyError(fmt.Sprintf("authorities[%d]", i), "%v", err)
		}
		if j, dup := seen[k]; dup {
			return nil, keyError(fmt.Sprintf("authorities[%d]", i), "%s is authorities[%d] already: each authority must be listed once", s, j)
		}
		seen[k] = i
		keys[i] = k
	}
	set, err := bft.NewSet(keys)
	if err != nil {
		return nil, keyError("authorities", "%v", err)
	}
	return set, nil
}

// KeyOf returns the authority key of a libp2p peer ID, which must be that of
// an Ed25519 key (the IDs p2pchain prints: 12D3KooW...).
func KeyOf(id string) (bft.Key, error) {
	var k bft.Key
	pid, err := peer.Decode(id)
	if err != nil {
		return k, fmt.Errorf("%q is not a peer ID (p2pchain init and p2pchain id print a node's: 12D3KooW...)", id)
	}
	pub, err := pid.ExtractPublicKey()
	switch {
	case errors.Is(err, peer.ErrNoPublicKey):
		return k, fmt.Errorf("%q is the peer ID of a key too large to be inlined (RSA): an authority's peer ID must be that of an Ed25519 key, 12D3KooW...", id)
	case err != nil:
		return k, fmt.Errorf("%q is not a peer ID: %v (p2pchain init and p2pchain id print a node's: 12D3KooW...)", id, err)
	}
	if _, ok := pub.(*crypto.Ed25519PublicKey); !ok {
		return k, fmt.Errorf("%q is the peer ID of a %s key: an authority's peer ID must be that of an Ed25519 key, 12D3KooW...", id, pub.Type())
	}
	raw, err := pub.Raw()
	if err != nil || len(raw) != len(k) {
		return k, fmt.Errorf("%q: not a 32-byte Ed25519 key", id)
	}
	copy(k[:], raw)
	return k, nil
}

// PeerIDOf returns the peer ID of an authority key.
func PeerIDOf(k bft.Key) (string, error) {
	pub, err := crypto.UnmarshalEd25519PublicKey(k[:])
	if err != nil {
		return "", err
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		return "", err
	}
	return id.String(), nil
}

// commitment returns the hash of what the genesis commits to beyond the
// chain's own parameters (see the package doc).
func commitment(set *bft.Set, interval time.Duration, t bft.Timeouts) chain.Hash {
	b := []byte(commitTag)
	sh := set.Hash()
	b = append(b, sh[:]...)
	for _, d := range []time.Duration{interval, t.Propose, t.ProposeDelta, t.Prevote, t.PrevoteDelta, t.Precommit, t.PrecommitDelta} {
		b = binary.BigEndian.AppendUint64(b, uint64(d.Milliseconds()))
	}
	return sha256.Sum256(b)
}

// Encode returns f as a documented TOML file.
func (f *File) Encode() []byte {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w(`# p2pchain network file: the parameters of an authority network, one whose
# blocks are proposed in turn and signed by a known set of authorities, and
# final once more than two thirds of them have signed.
#
# Every member of the network (authorities and followers) must use this same
# file: its parameters form the genesis block, so a node whose file differs in
# any value has another genesis and is refused by the others. Comments, key
# order and spacing do not matter. Do not edit it once the network runs:
# authorities join and leave through the chain, not through this file.
#
# Start a node of the network with:
#   p2pchain node --network-file FILE
# (init, verify, export and import take --network-file FILE too; every key
# below is required.)

# The network's name (1 to 64 bytes): part of the genesis and gossip topic.
name = %s

# How the network agrees on blocks: "authority" is the only value.
consensus = %s

# The genesis block's time, RFC 3339.
genesis_time = %s

# A block is proposed at once when readings are pending; with none, an empty
# block comes at most this long after the last one (a Go duration: 500ms, 5s, 1m).
block_interval = %s

# The most readings one block may carry (1 to %d).
max_readings = %d

# How far ahead of a node's clock a block or reading time may be.
max_future_drift = %s

# The genesis authorities: libp2p peer IDs of Ed25519 keys, as p2pchain init
# and p2pchain id print them. Their order is the order of proposers.
authorities = [
`, quote(f.Name), quote(f.Consensus), quote(f.GenesisTime), quote(f.BlockInterval),
		chain.MaxReadingsLimit, f.MaxReadings, quote(f.MaxFutureDrift))
	for i, a := range f.Authorities {
		w("  %s, # %d\n", quote(a), i)
	}
	w(`]

# Consensus timeouts (Go durations, whole milliseconds, at most 10m). An
# authority waits this long in each step of a round before it moves on; each
# round after the first of a height waits longer by the step's delta.
[timeouts]
# How long to wait for the proposer's block.
propose = %s
# Added to propose for each further round of a height.
propose_delta = %s
# How long to wait for more prevotes once more than two thirds have voted.
prevote = %s
# Added to prevote for each further round.
prevote_delta = %s
# How long to wait for more precommits once more than two thirds have voted.
precommit = %s
# Added to precommit for each further round.
precommit_delta = %s
`, quote(f.Timeouts.Propose), quote(f.Timeouts.ProposeDelta), quote(f.Timeouts.Prevote),
		quote(f.Timeouts.PrevoteDelta), quote(f.Timeouts.Precommit), quote(f.Timeouts.PrecommitDelta))
	return []byte(b.String())
}

// quote writes s as a TOML basic string.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

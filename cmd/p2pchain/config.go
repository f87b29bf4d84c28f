package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/datadir"
	"github.com/p2pchain/p2pchain/internal/p2p"
)

// nodeConfig is everything that configures a node. The config file in the
// data directory sets it, P2PCHAIN_* environment variables override the
// file, and flags given on the command line override both. Each field's
// toml tag is its key in the file; settings says its flag and variable.
type nodeConfig struct {
	Network     string   `toml:"network"`
	Difficulty  int      `toml:"difficulty"`
	NetworkFile string   `toml:"network_file"` // an authority network's file: replaces Network and Difficulty (network.go)
	IP          string   `toml:"ip"`
	Port        int      `toml:"port"`
	Subject     string   `toml:"subject"`
	Peers       []string `toml:"peers"`
	MDNS        bool     `toml:"mdns"`
	DHT         bool     `toml:"dht"`
	LogLevel    string   `toml:"log_level"`
	API         string   `toml:"api"`
	Checkpoint  string   `toml:"checkpoint"`
}

// setting ties a config key to its flag and its environment variable.
type setting struct {
	key  string // in config.toml
	flag string // of the node command
	env  string
	want string // what a value must be, for error messages
}

// settings lists every key of nodeConfig, in the order of the file.
var settings = []setting{
	{"network", "network", "P2PCHAIN_NETWORK", `a name in quotes, e.g. network = "p2pchain"`},
	{"difficulty", "difficulty", "P2PCHAIN_DIFFICULTY", fmt.Sprintf("a whole number of bits from 0 to %d, e.g. difficulty = 18", chain.MaxDifficulty)},
	{"network_file", "network-file", "P2PCHAIN_NETWORK_FILE", `the path of a network file in quotes, or "" for none, e.g. network_file = "clinic.toml"`},
	{"ip", "ip", "P2PCHAIN_IP", `an IP address in quotes, e.g. ip = "127.0.0.1"`},
	{"port", "l", "P2PCHAIN_PORT", "a port number from 0 to 65535, e.g. port = 10000"},
	{"subject", "subject", "P2PCHAIN_SUBJECT", `a subject in quotes, e.g. subject = "demo"`},
	{"peers", "peer", "P2PCHAIN_PEERS", `a list of multiaddrs in quotes, e.g. peers = ["/ip4/127.0.0.1/tcp/10000/p2p/12D3KooW..."]`},
	{"mdns", "mdns", "P2PCHAIN_MDNS", "true or false, e.g. mdns = true"},
	{"dht", "dht", "P2PCHAIN_DHT", "true or false, e.g. dht = false"},
	{"log_level", "log-level", "P2PCHAIN_LOG_LEVEL", `"debug", "info", "warn" or "error", e.g. log_level = "info"`},
	{"api", "api", "P2PCHAIN_API", `HOST:PORT in quotes, or "off", e.g. api = "127.0.0.1:5001"`},
	{"checkpoint", "checkpoint", "P2PCHAIN_CHECKPOINT", `HEIGHT:HASH in quotes, or "", e.g. checkpoint = ""`},
}

func settingOf(key string) setting {
	for _, s := range settings {
		if s.key == key {
			return s
		}
	}
	return setting{key: key}
}

// field returns the field of c that key names.
func (c *nodeConfig) field(key string) reflect.Value {
	v := reflect.ValueOf(c).Elem()
	for i := range v.NumField() {
		if v.Type().Field(i).Tag.Get("toml") == key {
			return v.Field(i)
		}
	}
	panic("no config key " + key)
}

// DefaultAPIPort is where the API listens unless told otherwise. When it is
// taken the node moves to the next free port up to lastAPIPort, then to any.
const (
	DefaultAPIPort = 5001
	lastAPIPort    = 5010
)

func defaultNodeConfig() nodeConfig {
	return nodeConfig{
		Network:    chain.DefaultParams().Name,
		Difficulty: chain.DefaultDifficulty,
		IP:         "127.0.0.1",
		Subject:    "demo",
		MDNS:       true,
		LogLevel:   "info",
		API:        "127.0.0.1:" + strconv.Itoa(DefaultAPIPort),
	}
}

// defaultConfigFile is written to a new data directory: every setting with
// its default and what it does.
const defaultConfigFile = `# p2pchain node configuration. Flags given on the command line override it,
# and so do P2PCHAIN_* environment variables (P2PCHAIN_PORT, P2PCHAIN_PEERS, ...).

# Network name and proof-of-work difficulty (leading zero bits). Together they
# fix the genesis block: nodes that differ in either refuse each other, and the
# chain in this directory belongs to them. Do not change them afterwards.
network = %q
difficulty = %d

# Network file of an authority network (p2pchain network new writes one): the
# network's name, authorities and consensus come from it, and network and
# difficulty above are not used. Every member uses the same file. A relative
# path is relative to this directory. Empty: an open proof-of-work network.
network_file = %q

# Where to listen, TCP and QUIC on the same port (0: any free port).
# 127.0.0.1 keeps the node to this machine; 0.0.0.0 accepts peers from others.
ip = "127.0.0.1"
port = %d

# Subject of readings typed at the prompt as a bare number. Subjects are
# case-sensitive: "alice" and "Alice" are two subjects.
subject = "demo"

# Bootstrap peers (full multiaddrs ending in /p2p/<peer ID>): dialled at start
# and redialled with backoff whenever the connection drops.
peers = []

# Find peers on the local network by mDNS (idle while ip is a loopback address,
# where no other machine could reach the node anyway).
mdns = true

# Find peers through the Kademlia DHT, by rendezvous on the network's genesis
# hash, starting from the bootstrap peers.
dht = false

# debug, info, warn or error.
log_level = "info"

# Address of the HTTP API and web explorer. On port 5001, when that port is
# taken (several nodes on one machine), the node takes the next free one up to
# 5010, then any free port, and says so; another port must be free. The node
# prints the URL and writes it to the file "api" beside this one, where the
# client commands find it. Off loopback, writes need the bearer token the node
# generates into "api.token". "off" disables the API.
api = "127.0.0.1:5001"

# A block this node requires on its chain, as HEIGHT:HASH, copied from a node
# you trust (its p2pchain status). A new node with a checkpoint cannot be led
# onto another branch below it by the peers it meets first. Empty: none.
checkpoint = ""
`

// configFile is what a data directory's config file said.
type configFile struct {
	path    string
	missing bool           // there was no file
	empty   bool           // the file sets nothing
	lines   map[string]int // the keys it sets, and their lines
}

// readConfig reads the config file of dir over the defaults. It writes
// nothing: a missing file gives the defaults and missing.
func readConfig(dir *datadir.Dir) (nodeConfig, configFile, error) {
	f := configFile{path: dir.File(datadir.ConfigFile), lines: map[string]int{}}
	cfg := defaultNodeConfig()
	data, err := os.ReadFile(f.path)
	if errors.Is(err, os.ErrNotExist) {
		f.missing = true
		return cfg, f, nil
	}
	if err != nil {
		return cfg, f, fmt.Errorf("read config file: %w", err)
	}
	if err := decodeConfig(f.path, data, &cfg); err != nil {
		return cfg, f, err
	}
	f.lines = keyLines(data)
	f.empty = len(f.lines) == 0
	for key, line := range f.lines {
		if err := cfg.checkKey(key); err != nil {
			return cfg, f, fmt.Errorf("config file %s, line %d: %v\n  want %s; fix the line, or remove it to use the default",
				f.path, line, err, settingOf(key).want)
		}
	}
	return cfg, f, nil
}

// writeConfig writes the documented default config file, with base's
// network, difficulty, network file and port.
func writeConfig(dir *datadir.Dir, base nodeConfig) error {
	text := fmt.Sprintf(defaultConfigFile, base.Network, base.Difficulty, base.NetworkFile, base.Port)
	if err := dir.WriteFile(datadir.ConfigFile, []byte(text), 0o600); err != nil {
		return fmt.Errorf("write config file: %w", err)
	}
	return nil
}

// loadConfig reads the config file of dir, writing a documented default one
// with base's network, difficulty and port first if there is none.
func loadConfig(dir *datadir.Dir, base nodeConfig) (nodeConfig, error) {
	cfg, f, err := readConfig(dir)
	if err != nil || !f.missing {
		return cfg, err
	}
	if err := writeConfig(dir, base); err != nil {
		return base, err
	}
	cfg, _, err = readConfig(dir)
	return cfg, err
}

// decodeConfig decodes a config file's text into cfg, with errors that name
// the file, the line, the key and what to do.
func decodeConfig(path string, data []byte, cfg *nodeConfig) error {
	d := toml.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	err := d.Decode(cfg)
	if err == nil {
		return nil
	}
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) && len(strict.Errors) > 0 {
		var msgs []string
		for _, e := range strict.Errors {
			row, _ := e.Position()
			key := strings.Join(e.Key(), ".")
			msg := fmt.Sprintf("line %d: unknown key %q", row, key)
			if s := closestKey(key); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			msgs = append(msgs, msg)
		}
		return fmt.Errorf("config file %s, %s\n  the keys are %s; fix or remove the line",
			path, strings.Join(msgs, "; "), strings.Join(configKeys(), ", "))
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, col := de.Position()
		key := strings.Join(de.Key(), ".")
		if s := settingOf(key); s.want != "" && strings.Contains(err.Error(), "cannot decode") {
			return fmt.Errorf("config file %s, line %d: %s = %s is not %s\n  fix the line, or remove it to use the default",
				path, row, key, valueText(data, row, col), s.want)
		}
		return fmt.Errorf("config file %s, line %d, column %d: not valid TOML: %s\n  fix the line, or move the file away: the node then writes a fresh default one",
			path, row, col, strings.TrimPrefix(err.Error(), "toml: "))
	}
	return fmt.Errorf("config file %s: %w\n  fix it, or move it away: the node then writes a fresh default one", path, err)
}

// valueText returns the text of line row from column col (1-based) on.
func valueText(data []byte, row, col int) string {
	lines := strings.Split(string(data), "\n")
	if row < 1 || row > len(lines) {
		return "?"
	}
	l := lines[row-1]
	if col >= 1 && col <= len(l) {
		l = l[col-1:]
	}
	return strings.TrimSpace(l)
}

// keyLine matches a line that sets a top-level key.
var keyLine = regexp.MustCompile(`^\s*([A-Za-z0-9_-]+)\s*=`)

// keyLines returns the keys a config file sets and the line of each (the
// file decoded, so it is valid TOML with known keys only).
func keyLines(data []byte) map[string]int {
	lines := map[string]int{}
	for i, l := range strings.Split(string(data), "\n") {
		if m := keyLine.FindStringSubmatch(l); m != nil {
			lines[m[1]] = i + 1
		}
	}
	return lines
}

// configKeys returns the keys of the config file.
func configKeys() []string {
	var keys []string
	for _, s := range settings {
		keys = append(keys, s.key)
	}
	return keys
}

// closestKey returns the config key nearest to key by edit distance, if it is
// near enough to be a typo.
func closestKey(key string) string {
	best, bestD := "", 3
	for _, k := range configKeys() {
		if d := editDistance(strings.ToLower(key), k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// applyEnv overrides settings from P2PCHAIN_* environment variables
// (P2PCHAIN_PORT, P2PCHAIN_PEERS as a comma-separated list, ...): they sit
// between the config file and the flags.
func applyEnv(cfg *nodeConfig, getenv func(string) string) error {
	for _, s := range settings {
		v := getenv(s.env)
		if v == "" {
			continue
		}
		f := cfg.field(s.key)
		switch f.Kind() {
		case reflect.String:
			f.SetString(v)
		case reflect.Int:
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%s=%q: want a whole number", s.env, v)
			}
			f.SetInt(int64(n))
		case reflect.Bool:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%s=%q: want true or false", s.env, v)
			}
			f.SetBool(b)
		case reflect.Slice:
			var l listFlag
			_ = l.Set(v)
			f.Set(reflect.ValueOf([]string(l)))
		}
		if err := cfg.checkKey(s.key); err != nil {
			return fmt.Errorf("%s=%q: %v", s.env, v, err)
		}
	}
	return nil
}

// checkKey checks the value of one setting.
func (c nodeConfig) checkKey(key string) error {
	switch key {
	case "port":
		if c.Port < 0 || c.Port > 65535 {
			return fmt.Errorf("port %d: a port is 0 to 65535", c.Port)
		}
	case "difficulty":
		if c.Difficulty < 0 || c.Difficulty > chain.MaxDifficulty {
			return fmt.Errorf("difficulty %d: must be 0 to %d", c.Difficulty, chain.MaxDifficulty)
		}
	case "network":
		p := chain.DefaultParams()
		p.Name = c.Network
		if err := p.Validate(); err != nil {
			return fmt.Errorf("network %q: %w", c.Network, err)
		}
	case "subject":
		if err := chain.CheckSubject(c.Subject); err != nil {
			return fmt.Errorf("subject %q: %w", c.Subject, err)
		}
	case "log_level":
		if _, err := parseLevel(c.LogLevel); err != nil {
			return err
		}
	case "checkpoint":
		if _, err := parseCheckpoint(c.Checkpoint); err != nil {
			return err
		}
	case "ip":
		if net.ParseIP(c.IP) == nil {
			return fmt.Errorf("ip %q: not an IP address such as 127.0.0.1 or 0.0.0.0", c.IP)
		}
	case "api":
		if c.API == "off" {
			return nil
		}
		_, port, err := net.SplitHostPort(c.API)
		if err != nil {
			return fmt.Errorf("api %q: %w", c.API, err)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			return fmt.Errorf("api %q: port %q is not a number from 0 to 65535", c.API, port)
		}
	case "peers":
		for _, a := range c.Peers {
			if _, err := p2p.ParsePeerAddr(a); err != nil {
				return fmt.Errorf("peers: %w", err)
			}
		}
	}
	return nil
}

// check checks every setting.
func (c nodeConfig) check() error {
	for _, s := range settings {
		if err := c.checkKey(s.key); err != nil {
			return err
		}
	}
	return nil
}

// source says where the value of a setting came from: a flag, the
// environment, a line of the config file or the default.
func source(key string, f configFile, flagsSet map[string]bool, getenv func(string) string) string {
	s := settingOf(key)
	switch {
	case flagsSet[s.flag]:
		return "flag -" + s.flag
	case getenv(s.env) != "":
		return "$" + s.env
	case f.lines[key] > 0:
		return fmt.Sprintf("%s line %d", f.path, f.lines[key])
	case f.missing:
		return fmt.Sprintf("the default: there is no %s", f.path)
	case f.empty:
		return fmt.Sprintf("the default: %s is empty", f.path)
	}
	return fmt.Sprintf("the default: %s does not set %s", f.path, key)
}

// parseCheckpoint reads a checkpoint given as HEIGHT:HASH ("" is none).
func parseCheckpoint(s string) (*chain.Checkpoint, error) {
	if s == "" {
		return nil, nil
	}
	hs, hashText, ok := strings.Cut(s, ":")
	height, err := strconv.ParseUint(hs, 10, 64)
	if !ok || err != nil || height == 0 {
		return nil, fmt.Errorf("checkpoint %q: want HEIGHT:HASH with a height above 0, e.g. 120:%s", s, strings.Repeat("0", 64))
	}
	hash, err := chain.ParseHash(hashText)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %q: %w", s, err)
	}
	return &chain.Checkpoint{Height: height, Hash: hash}, nil
}

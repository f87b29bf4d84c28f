package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/datadir"
)

// nodeConfig is everything that configures a node. The config file in the
// data directory sets it, P2PCHAIN_* environment variables override the
// file, and flags given on the command line override both.
type nodeConfig struct {
	Network    string   `toml:"network"`
	Difficulty int      `toml:"difficulty"`
	IP         string   `toml:"ip"`
	Port       int      `toml:"port"`
	Subject    string   `toml:"subject"`
	Peers      []string `toml:"peers"`
	MDNS       bool     `toml:"mdns"`
	DHT        bool     `toml:"dht"`
	LogLevel   string   `toml:"log_level"`
	API        string   `toml:"api"`
	Checkpoint string   `toml:"checkpoint"`
}

func defaultNodeConfig() nodeConfig {
	return nodeConfig{
		Network:    chain.DefaultParams().Name,
		Difficulty: chain.DefaultDifficulty,
		IP:         "127.0.0.1",
		Subject:    "demo",
		MDNS:       true,
		LogLevel:   "info",
		API:        "127.0.0.1:0",
	}
}

// defaultConfigFile is written to a new data directory: every setting with
// its default and what it does.
const defaultConfigFile = `# p2pchain node configuration. Flags given on the command line override it.

# Network name and proof-of-work difficulty (leading zero bits). Together they
# fix the genesis block: nodes that differ in either refuse each other.
network = %q
difficulty = %d

# Where to listen, TCP and QUIC on the same port (0: any free port).
# 127.0.0.1 keeps the node to this machine; 0.0.0.0 accepts peers from others.
ip = "127.0.0.1"
port = %d

# Subject of readings typed at the prompt as a bare number.
subject = "demo"

# Bootstrap peers (full multiaddrs ending in /p2p/<peer ID>): dialled at start
# and redialled with backoff whenever the connection drops.
peers = []

# Find peers on the local network by mDNS (idle while ip is a loopback address,
# where no other machine could reach the node anyway).
mdns = true

# Find peers through the Kademlia DHT, by rendezvous on the network name,
# starting from the bootstrap peers.
dht = false

# debug, info, warn or error.
log_level = "info"

# Address of the HTTP API and web explorer (port 0: any free port; the node
# prints the URL and writes it to the file "api" beside this one, where the
# client commands find it). Off loopback, writes need the bearer token the
# node generates into "api.token". "off" disables the API.
api = "127.0.0.1:0"

# A block this node requires on its chain, as HEIGHT:HASH, copied from a node
# you trust (its p2pchain status). A new node with a checkpoint cannot be led
# onto another branch below it by the peers it meets first. Empty: none.
checkpoint = ""
`

// loadConfig reads the config file of dir, writing a documented default one
// first if there is none.
func loadConfig(dir *datadir.Dir, base nodeConfig) (nodeConfig, error) {
	path := dir.File(datadir.ConfigFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		text := fmt.Sprintf(defaultConfigFile, base.Network, base.Difficulty, base.Port)
		if err := dir.WriteFile(datadir.ConfigFile, []byte(text), 0o600); err != nil {
			return base, fmt.Errorf("write config: %w", err)
		}
		data = []byte(text)
	} else if err != nil {
		return base, fmt.Errorf("read config: %w", err)
	}
	cfg := defaultNodeConfig()
	d := toml.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&cfg); err != nil {
		return base, fmt.Errorf("config file %s: %w (fix it, or move it away to get a fresh default)", path, err)
	}
	return cfg, nil
}

// applyEnv overrides settings from P2PCHAIN_* environment variables
// (P2PCHAIN_PORT, P2PCHAIN_PEERS as a comma-separated list, ...): they sit
// between the config file and the flags.
func applyEnv(cfg *nodeConfig, getenv func(string) string) error {
	str := func(name string, dst *string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	num := func(name string, dst *int) error {
		if v := getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%s=%q: want a whole number", name, v)
			}
			*dst = n
		}
		return nil
	}
	boolean := func(name string, dst *bool) error {
		if v := getenv(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%s=%q: want true or false", name, v)
			}
			*dst = b
		}
		return nil
	}
	str("P2PCHAIN_NETWORK", &cfg.Network)
	str("P2PCHAIN_IP", &cfg.IP)
	str("P2PCHAIN_SUBJECT", &cfg.Subject)
	str("P2PCHAIN_LOG_LEVEL", &cfg.LogLevel)
	str("P2PCHAIN_API", &cfg.API)
	str("P2PCHAIN_CHECKPOINT", &cfg.Checkpoint)
	if v := getenv("P2PCHAIN_PEERS"); v != "" {
		var l listFlag
		_ = l.Set(v)
		cfg.Peers = l
	}
	for _, err := range []error{
		num("P2PCHAIN_DIFFICULTY", &cfg.Difficulty),
		num("P2PCHAIN_PORT", &cfg.Port),
		boolean("P2PCHAIN_MDNS", &cfg.MDNS),
		boolean("P2PCHAIN_DHT", &cfg.DHT),
	} {
		if err != nil {
			return err
		}
	}
	return nil
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

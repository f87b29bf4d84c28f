package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/p2pchain/p2pchain/internal/datadir"
	"github.com/p2pchain/p2pchain/internal/p2p"
)

// dirFlags picks a data directory the way the node command does: --data,
// else $P2PCHAIN_DATA, else the default directory of -l PORT.
type dirFlags struct {
	data string
	port int
}

func (d *dirFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.data, "data", "", "data directory (default $"+envData+", or ~/.p2pchain/node-PORT)")
	fs.IntVar(&d.port, "l", 0, "the listen port whose default data directory to use")
}

func (d dirFlags) path() (string, error) {
	switch {
	case d.data != "":
		return d.data, nil
	case os.Getenv(envData) != "":
		return os.Getenv(envData), nil
	}
	return datadir.Default(d.port)
}

func runInit(args []string, stdout, stderr io.Writer) error {
	var d dirFlags
	cfg := defaultNodeConfig()
	fs := flag.NewFlagSet("p2pchain init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	d.register(fs)
	fs.StringVar(&cfg.Network, "network", cfg.Network, "network name")
	fs.IntVar(&cfg.Difficulty, "difficulty", cfg.Difficulty, "proof-of-work difficulty in leading zero bits")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	cfg.Port = d.port
	if err := cfg.check(); err != nil {
		return err
	}
	path, err := d.path()
	if err != nil {
		return err
	}
	dir, err := datadir.Open(path)
	if err != nil {
		return err
	}
	defer dir.Close()
	key, created, err := dir.Key()
	if err != nil {
		return err
	}
	if _, err := loadConfig(dir, cfg); err != nil {
		return err
	}
	id, err := p2p.PeerID(key)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(stdout, "initialised %s\n", dir.Path())
	} else {
		fmt.Fprintf(stdout, "%s was already initialised; nothing changed\n", dir.Path())
	}
	fmt.Fprintf(stdout, "peer ID  %s\nconfig   %s\nstart it with: p2pchain node --data %s\n", id, dir.File(datadir.ConfigFile), dir.Path())
	return nil
}

func runID(args []string, stdout, stderr io.Writer) error {
	var d dirFlags
	fs := flag.NewFlagSet("p2pchain id", flag.ContinueOnError)
	fs.SetOutput(stderr)
	d.register(fs)
	if err := parseNone(fs, args); err != nil {
		return err
	}
	path, err := d.path()
	if err != nil {
		return err
	}
	key, err := datadir.ReadKey(path)
	if err != nil {
		return err
	}
	id, err := p2p.PeerID(key)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, id)
	return err
}

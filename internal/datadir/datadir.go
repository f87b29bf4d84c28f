// Package datadir manages a node's data directory: the lock that keeps two
// nodes out of one directory, the identity key, and where the chain store,
// the config file and the remembered peers live.
//
// The identity key is created on first start (PKCS#8 PEM, mode 0600) and
// reused after, so a node keeps its peer ID across restarts. The lock is on
// the file LOCK (an advisory flock on Unix; on Windows a byte-range lock on
// one byte far past the pid the file records, so that the pid stays
// readable), released by the system when the process ends, even by kill -9,
// so a crashed node never leaves a stale lock.
package datadir

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// File names inside a data directory.
const (
	LockFile      = "LOCK"
	KeyFile       = "identity.key"
	StoreDir      = "chain"
	ConfigFile    = "config.toml"
	PeerstoreFile = "peers.json"
	APIFile       = "api"            // the running node's API URL, for client commands
	TokenFile     = "api.token"      // bearer token for API writes when it listens off loopback
	ReadTokenFile = "api.read-token" // bearer token that opens event streams only, for viewers on other machines
)

// EnvHome names the environment variable that moves the default root of data
// directories away from ~/.p2pchain.
const EnvHome = "P2PCHAIN_HOME"

// ErrLocked means another process holds the data directory.
var ErrLocked = errors.New("data directory in use by another node")

// Dir is an open, locked data directory.
type Dir struct {
	path string
	lock *os.File
}

// Root returns the directory under which default data directories live:
// $P2PCHAIN_HOME, or ~/.p2pchain.
func Root() (string, error) {
	if h := os.Getenv(EnvHome); h != "" {
		return h, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no home directory (%w): give a data directory with --data", err)
	}
	return filepath.Join(home, ".p2pchain"), nil
}

// Default returns the default data directory of a node listening on port:
// <root>/node-<port>, so demo nodes started with different -l ports keep
// separate directories and find them again after a restart; <root>/default
// for a node on a random port.
func Default(port int) (string, error) {
	root, err := Root()
	if err != nil {
		return "", err
	}
	name := "default"
	if port != 0 {
		name = "node-" + strconv.Itoa(port)
	}
	return filepath.Join(root, name), nil
}

// Open creates the directory if needed (mode 0700) and locks it.
func Open(path string) (*Dir, error) {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("data directory %s: %w", path, err)
	}
	f, err := os.OpenFile(filepath.Join(path, LockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data directory %s: %w", path, err)
	}
	if held, err := lockFile(f, true); err != nil {
		f.Close()
		if held {
			return nil, fmt.Errorf("%w: %s (pid %s); give this node its own directory with --data DIR or another -l port",
				ErrLocked, path, readPID(filepath.Join(path, LockFile)))
		}
		return nil, fmt.Errorf("lock data directory %s: %w", path, err)
	}
	// Record who holds it, for the message above.
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &Dir{path: path, lock: f}, nil
}

// InUse reports whether a process holds the data directory at path, and
// that process's pid as the lock file records it. It creates nothing; it
// takes a shared lock for an instant, which a node starting at that very
// instant would find held.
func InUse(path string) (pid string, inUse bool) {
	f, err := os.Open(filepath.Join(path, LockFile))
	if err != nil {
		return "", false
	}
	defer f.Close()
	if held, err := lockFile(f, false); err != nil {
		return readPID(f.Name()), held
	}
	_ = unlockFile(f)
	return "", false
}

func readPID(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return "unknown"
	}
	return string(b[:len(b)-1])
}

// Path returns the directory.
func (d *Dir) Path() string { return d.path }

// File returns the path of a file in the directory.
func (d *Dir) File(name string) string { return filepath.Join(d.path, name) }

// Close releases the lock.
func (d *Dir) Close() error {
	_ = unlockFile(d.lock) // closing releases it too; Windows asks for an unlock first
	return d.lock.Close()
}

// Key returns the node's identity key, creating it on first use. created
// reports whether it was made now.
func (d *Dir) Key() (key ed25519.PrivateKey, created bool, err error) {
	path := d.File(KeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		_, key, err = ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, false, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, false, err
		}
		data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		if err := WriteFileAtomic(path, data, 0o600); err != nil {
			return nil, false, fmt.Errorf("write identity key: %w", err)
		}
		return key, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read identity key: %w", err)
	}
	key, err = parseKey(b)
	if err != nil {
		return nil, false, fmt.Errorf("identity key %s: %w (move it away to make a new identity, which changes the peer ID)", path, err)
	}
	return key, false, nil
}

func parseKey(b []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM private key")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T, want an Ed25519 key", k)
	}
	return key, nil
}

// CheckFileTarget reports an error if path, a file to be written (and
// renamed into place), is a directory: the rename failed only once the
// work was done, with "rename ...: file exists".
func CheckFileTarget(path string) error {
	if info, err := os.Stat(path); err == nil && info.IsDir() {
		return fmt.Errorf("%s is a directory: give the path of a file to write, e.g. %s", path, filepath.Join(path, "out.json"))
	}
	return nil
}

// WriteFileAtomic replaces path with data: it writes a temporary file beside
// it, syncs it, renames it over path and syncs the directory, so a crash
// leaves the old file or the new one, never a part.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	if err := CheckFileTarget(path); err != nil {
		return err
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil { // make the rename durable
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// WriteFile writes a file of the directory atomically.
func (d *Dir) WriteFile(name string, data []byte, perm os.FileMode) error {
	return WriteFileAtomic(d.File(name), data, perm)
}

// ReadKey reads the identity key of the data directory at path without
// locking it or creating anything, so it works while a node runs there.
func ReadKey(path string) (ed25519.PrivateKey, error) {
	file := filepath.Join(path, KeyFile)
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s has no identity yet: run 'p2pchain init --data %s' or start a node there", path, path)
	}
	if err != nil {
		return nil, fmt.Errorf("read identity key: %w", err)
	}
	key, err := parseKey(b)
	if err != nil {
		return nil, fmt.Errorf("identity key %s: %w", file, err)
	}
	return key, nil
}

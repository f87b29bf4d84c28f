package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/p2pchain/p2pchain/internal/chain"
)

var (
	pristineOnce  sync.Once
	pristineDir   string
	pristineState *State
)

// pristine returns a closed store of the small fixture (main chain, side
// blocks and pending readings) and its State. Tests damage copies of it.
func pristine(t *testing.T) (string, *State) {
	t.Helper()
	pristineOnce.Do(func() {
		f := smallFixture(t)
		dir, err := os.MkdirTemp("", "p2pchain-store-pristine-")
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "chain")
		n := newNode(t, mustOpen(t, path))
		for _, r := range makeReadings(f.params, "pending", 3, 5) {
			n.submit(r)
		}
		for _, b := range f.main {
			n.add(b)
		}
		for _, b := range f.fork[:forkDepth] {
			n.add(b)
		}
		st, err := n.store.Load()
		if err != nil {
			t.Fatal(err)
		}
		if err := n.store.Close(); err != nil {
			t.Fatal(err)
		}
		pristineDir, pristineState = path, st
	})
	if pristineDir == "" {
		t.Fatal("no pristine store")
	}
	return pristineDir, pristineState
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pristineDir != "" {
		os.RemoveAll(filepath.Dir(pristineDir))
	}
	os.Exit(code)
}

// damaged copies the pristine store to a new directory and returns it with
// the names of its files.
func damaged(t *testing.T) (string, []string) {
	t.Helper()
	src, _ := pristine(t)
	dst := filepath.Join(t.TempDir(), "chain")
	if err := copyTree(src, dst); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dst)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && e.Name() != "LOCK" {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return dst, names
}

// openLoad opens and loads the store at path, turning a panic into a test
// failure, and returns the state or the error.
func openLoad(t *testing.T, path string) (st *State, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("panic: %v", r)
		}
	}()
	s, err := Open(path, testParams())
	if err != nil {
		return nil, err
	}
	defer s.Close()
	st, err = s.Load()
	if err != nil {
		return nil, err
	}
	// Walk every block too, as verify and export do.
	if err := s.Walk(0, func(*chain.Block) error { return nil }); err != nil {
		return nil, err
	}
	return st, nil
}

// wantCorrupt checks that err is a *CorruptError naming path and the way out.
func wantCorrupt(t *testing.T, what string, path string, err error) {
	t.Helper()
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("%s: got %v (%T), want *CorruptError", what, err, err)
	}
	msg := err.Error()
	if ce.Path != path || !strings.Contains(msg, path) || !strings.Contains(msg, "p2pchain verify --data "+filepath.Dir(path)) ||
		!strings.Contains(msg, "re-sync") {
		t.Fatalf("%s: message does not name the store and the way out: %s", what, msg)
	}
}

// wantCorruptOrSame accepts a *CorruptError, or a store that loads exactly
// the pristine state: damage the engine detects and repairs (a torn log
// tail), or damage to bytes that are not in use, never a silently shorter
// chain.
func wantCorruptOrSame(t *testing.T, what, path string, st *State, err error) bool {
	t.Helper()
	if err != nil {
		wantCorrupt(t, what, path, err)
		return true
	}
	_, want := pristine(t)
	if !reflect.DeepEqual(st, want) {
		t.Fatalf("%s: no error, but the store loads %d main, %d side, %d pending; want %d, %d, %d",
			what, len(st.Main), len(st.Side), len(st.Pending), len(want.Main), len(want.Side), len(want.Pending))
	}
	return false
}

func TestCorruptNotAStore(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
	}{
		{"text file", "this is not a chain store\n"},
		{"empty file", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "chain")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := openLoad(t, path)
			wantCorrupt(t, tc.name, path, err)
		})
	}
	t.Run("directory of other files", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "chain")
		os.Mkdir(path, 0o700)
		os.WriteFile(filepath.Join(path, "notes.txt"), []byte("hello"), 0o600)
		_, err := openLoad(t, path)
		wantCorrupt(t, "directory of other files", path, err)
	})
}

// TestCorruptFiles damages each file of a real store in several ways.
func TestCorruptFiles(t *testing.T) {
	_, names := damaged(t)
	for _, name := range names {
		kind := fileKind(name)
		for _, dmg := range []struct {
			name string
			do   func(t *testing.T, file string)
		}{
			{"zero length", func(t *testing.T, file string) { truncate(t, file, 0) }},
			{"truncated to 1 byte", func(t *testing.T, file string) { truncate(t, file, 1) }},
			{"truncated to half", func(t *testing.T, file string) { truncate(t, file, size(t, file)/2) }},
			{"last byte cut", func(t *testing.T, file string) { truncate(t, file, size(t, file)-1) }},
			{"text", func(t *testing.T, file string) {
				os.WriteFile(file, []byte(strings.Repeat("not a store\n", 50)), 0o600)
			}},
			{"deleted", func(t *testing.T, file string) { os.Remove(file) }},
		} {
			t.Run(name+"/"+dmg.name, func(t *testing.T) {
				path, _ := damaged(t)
				file := filepath.Join(path, name)
				dmg.do(t, file)
				st, err := openLoad(t, path)
				detected := wantCorruptOrSame(t, dmg.name, path, st, err)
				if mustDetect(kind) && !detected {
					t.Fatalf("damage to %s (%s) not detected", name, kind)
				}
			})
		}
	}
}

// TestCorruptRandomBytes overwrites random bytes and random 4 KiB pages of
// the store's files.
func TestCorruptRandomBytes(t *testing.T) {
	_, names := damaged(t)
	rng := rand.New(rand.NewPCG(7, 11))
	for _, name := range names {
		for round := 0; round < 6; round++ {
			page := round%2 == 1
			t.Run(name, func(t *testing.T) {
				path, _ := damaged(t)
				file := filepath.Join(path, name)
				data, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				if len(data) == 0 {
					t.Skip("empty file")
				}
				if page {
					start := rng.IntN(len(data)/4096+1) * 4096
					for i := start; i < min(start+4096, len(data)); i++ {
						data[i] = byte(rng.Uint32())
					}
				} else {
					for i := 0; i < 8; i++ {
						data[rng.IntN(len(data))] ^= byte(1 + rng.IntN(255))
					}
				}
				if err := os.WriteFile(file, data, 0o600); err != nil {
					t.Fatal(err)
				}
				st, err := openLoad(t, path)
				detected := wantCorruptOrSame(t, "random bytes", path, st, err)
				if fileKind(name) == "table" && !detected {
					t.Fatalf("damage to table %s not detected", name)
				}
			})
		}
	}
}

// TestCorruptRecords writes well-formed but inconsistent records with the
// engine itself: the checks of Load must catch each.
func TestCorruptRecords(t *testing.T) {
	_, st := pristine(t)
	tip := st.Main[len(st.Main)-1]
	mid := st.Main[len(st.Main)/2]
	for _, tc := range []struct {
		name string
		do   func(b *pebble.Batch)
	}{
		{"height missing", func(b *pebble.Batch) { b.Delete(keyHeight(mid.Header.Height), nil) }},
		{"main block missing", func(b *pebble.Batch) { b.Delete(keyBlock(mid.Hash()), nil) }},
		{"tip record behind", func(b *pebble.Batch) { b.Set(keyTip, encodeTip(mid.Hash(), mid.Header.Height), nil) }},
		{"tip record missing", func(b *pebble.Batch) { b.Delete(keyTip, nil) }},
		{"tip beyond the index", func(b *pebble.Batch) { b.Delete(keyHeight(tip.Header.Height), nil) }},
		{"block under another hash", func(b *pebble.Batch) {
			data, _ := tip.MarshalBinary()
			b.Set(keyBlock(mid.Hash()), data, nil)
		}},
		{"block body changed under its hash", func(b *pebble.Batch) {
			data, _ := mid.MarshalBinary()
			data[len(data)-1] ^= 1 // the last signature's last byte
			b.Set(keyBlock(mid.Hash()), data, nil)
		}},
		{"block bytes cut", func(b *pebble.Batch) {
			data, _ := mid.MarshalBinary()
			b.Set(keyBlock(mid.Hash()), data[:len(data)-3], nil)
		}},
		{"index points to a side block", func(b *pebble.Batch) {
			side := st.Side[0]
			b.Set(keyHeight(side.Header.Height), hashKey(0, side.Hash())[1:], nil)
		}},
		{"side block without parent", func(b *pebble.Batch) { b.Delete(keyBlock(st.Side[0].Hash()), nil) }},
		{"genesis record changed", func(b *pebble.Batch) { b.Delete(keyGenesis, nil) }},
		{"pending garbage", func(b *pebble.Batch) { b.Set(keyPending(chain.Hash{9}), []byte("garbage!garbage"), nil) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, _ := damaged(t)
			db, err := pebble.Open(path, &pebble.Options{Logger: quietLogger{}, EventListener: eventListener(nil)})
			if err != nil {
				t.Fatal(err)
			}
			b := db.NewBatch()
			tc.do(b)
			if err := b.Commit(pebble.Sync); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			_, err = openLoad(t, path)
			wantCorrupt(t, tc.name, path, err)
		})
	}
}

// fileKind names the role of a Pebble file.
func fileKind(name string) string {
	switch {
	case strings.HasSuffix(name, ".sst"):
		return "table"
	case strings.HasPrefix(name, "MANIFEST"):
		return "manifest"
	case strings.HasSuffix(name, ".log"):
		return "log"
	case strings.HasPrefix(name, "marker."):
		return "marker"
	case strings.HasPrefix(name, "OPTIONS"):
		return "options"
	}
	return "other"
}

// mustDetect reports whether any damage to a file of kind must be detected.
// Other damage may be harmless: the write-ahead log is empty after a clean
// close, the options file is advisory, a marker file's name is its content,
// and a torn tail of the manifest is the engine's normal crash recovery
// (wantCorruptOrSame still requires the store to load unchanged then).
func mustDetect(kind string) bool { return kind == "table" }

func truncate(t *testing.T, file string, n int64) {
	t.Helper()
	if err := os.Truncate(file, max(n, 0)); err != nil {
		t.Fatal(err)
	}
}

func size(t *testing.T, file string) int64 {
	t.Helper()
	info, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	return info.Size()
}

// TestCrashedStoreLostLog: a store that crashed (its writes only in the
// engine's log) and then lost the end of that log must not open as a
// silently shorter chain: the commits file shows that committed writes are
// missing.
func TestCrashedStoreLostLog(t *testing.T) {
	f := smallFixture(t)
	path := filepath.Join(t.TempDir(), "chain")
	n := newNode(t, mustOpen(t, path))
	for _, b := range f.main {
		n.add(b)
	}
	pending := makeReadings(f.params, "pending", 3, 5)
	for _, r := range pending {
		n.submit(r)
	}
	// Copy the files while the store is open, as a crash leaves them.
	crashed := filepath.Join(t.TempDir(), "chain")
	copyDir(t, path, crashed)
	if err := n.store.Close(); err != nil {
		t.Fatal(err)
	}
	logs, _ := filepath.Glob(filepath.Join(crashed, "*.log"))
	if len(logs) == 0 {
		t.Fatal("no log in the crashed store")
	}
	sort.Strings(logs)
	newest := logs[len(logs)-1]

	// Undamaged, the crashed copy opens with everything.
	intact := filepath.Join(t.TempDir(), "chain")
	copyDir(t, crashed, intact)
	st, err := openLoad(t, intact)
	if err != nil || len(st.Main) != len(f.main) || len(st.Pending) != len(pending) {
		t.Fatalf("crashed store without damage: %v", err)
	}

	fi, err := os.Stat(newest)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int64{0, fi.Size() / 2, fi.Size() - 1} {
		damaged := filepath.Join(t.TempDir(), "chain")
		copyDir(t, crashed, damaged)
		if err := os.Truncate(filepath.Join(damaged, filepath.Base(newest)), size); err != nil {
			t.Fatal(err)
		}
		what := fmt.Sprintf("crashed store with its newest log cut to %d of %d bytes", size, fi.Size())
		_, err = openLoad(t, damaged)
		wantCorrupt(t, what, damaged, err)
		if !strings.Contains(err.Error(), "committed writes are missing") {
			t.Fatalf("%s: message does not say what was lost: %v", what, err)
		}
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || e.Name() == "LOCK" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCommitsFileDamaged: a damaged commits file is the counter's damage,
// not lost writes. Every flipped byte of it, and a file cut short, opens the
// intact store with a warning and rewrites the file from the store's own
// count; a well-formed count ahead of the store, in the current format or
// the old 8-byte one, is still reported as lost writes.
func TestCommitsFileDamaged(t *testing.T) {
	src, _ := damaged(t)
	good, err := os.ReadFile(filepath.Join(src, commitsFile))
	if err != nil {
		t.Fatal(err)
	}
	count, ok := decodeCommits(good)
	if len(good) != commitsFileSize || !ok || count == 0 {
		t.Fatalf("commits file of %d bytes, count %d (%v)", len(good), count, ok)
	}

	open := func(t *testing.T, path string) (*State, string, error) {
		t.Helper()
		var logged bytes.Buffer
		s, err := Open(path, testParams(), WithLogger(slog.New(slog.NewTextHandler(&logged, nil))))
		if err != nil {
			return nil, logged.String(), err
		}
		defer s.Close()
		st, err := s.Load()
		return st, logged.String(), err
	}
	var damages [][]byte
	for i := range good {
		for _, flip := range []byte{0x01, 0x80, 0xff} {
			d := bytes.Clone(good)
			d[i] ^= flip
			damages = append(damages, d)
		}
	}
	damages = append(damages, good[:commitsFileSize-1], good[:9], append(bytes.Clone(good), 0))
	for i, d := range damages {
		path, _ := damaged(t)
		file := filepath.Join(path, commitsFile)
		if err := os.WriteFile(file, d, 0o600); err != nil {
			t.Fatal(err)
		}
		st, logged, err := open(t, path)
		wantCorruptOrSame(t, fmt.Sprintf("damage %d (%x)", i, d), path, st, err)
		if err != nil {
			t.Fatalf("damage %d (%x): a damaged commits file reported as a damaged store: %v", i, d, err)
		}
		if !strings.Contains(logged, "commits file is damaged") {
			t.Errorf("damage %d (%x): no warning; logged %q", i, d, logged)
		}
		if now, _ := os.ReadFile(file); !bytes.Equal(now, good) {
			t.Errorf("damage %d: commits file now %x, want it rewritten as %x", i, now, good)
		}
	}

	// Well-formed counts ahead of the store are lost writes.
	for _, ahead := range [][]byte{encodeCommits(count + 3), binary.BigEndian.AppendUint64(nil, count+3)} {
		path, _ := damaged(t)
		if err := os.WriteFile(filepath.Join(path, commitsFile), ahead, 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := open(t, path)
		wantCorrupt(t, fmt.Sprintf("count ahead (%d bytes)", len(ahead)), path, err)
		if !strings.Contains(err.Error(), "3 committed writes are missing") {
			t.Errorf("count ahead: %v", err)
		}
	}
	// The old format, not ahead, opens without a word.
	path, _ := damaged(t)
	if err := os.WriteFile(filepath.Join(path, commitsFile), binary.BigEndian.AppendUint64(nil, count), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, logged, err := open(t, path); err != nil || logged != "" {
		t.Errorf("old-format commits file: %v, logged %q", err, logged)
	}
}

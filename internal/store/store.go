package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// LockTimeout is how long Open waits for another process to release the
// store before it gives up with ErrLocked.
const LockTimeout = time.Second

// formatVersion is Pebble's on-disk format, pinned so that upgrading the
// library never silently rewrites a store into a format an older binary
// cannot read.
const formatVersion = pebble.FormatValueSeparation

// Store is a node's chain store. Its methods are safe for concurrent use;
// Commits are applied one at a time.
type Store struct {
	path    string
	params  chain.Params
	genesis chain.Hash
	log     *slog.Logger

	life sync.RWMutex // held shared by every operation, exclusively by Close
	db   *pebble.DB   // nil once closed
	lock *pebble.Lock

	fs          vfs.FS // every file the store reads or writes, ballast included
	efs         vfs.FS // fs that drops the ballast when a write finds the disk full: the engine's and the commits file's
	reserve     uint64 // bytes kept free (WithReserve); 0: by the file system's size
	ballastMu   sync.Mutex
	ballastNext time.Time                  // when to try again to make a ballast that could not be made; guarded by ballastMu
	ballastOK   atomic.Bool                // the ballast file is in place
	stopped     atomic.Pointer[WriteError] // the engine stopped after a failed write; nil: it runs

	slowAfter time.Duration              // a disk operation this long is reported (WithDiskSlow)
	slowLast  atomic.Pointer[diskSlowed] // the engine's last report of a slow disk operation; nil: none
	health    io.Closer                  // stops the engine's disk-health checks

	failMu  sync.Mutex
	failErr error         // why the store failed (fault.go); nil: it works; guarded by failMu
	failCh  chan struct{} // closed when failErr is set

	wmu           sync.Mutex // serialises writes, so the commit count is in order
	commits       uint64     // write batches committed; guarded by wmu
	commitsF      vfs.File   // the commits file, kept open; guarded by wmu
	commitsWarned bool       // a failed write of the commits file was logged; guarded by wmu
	tip           atomic.Pointer[tipRecord]
	seq           atomic.Uint64 // last arrival number given to a pending reading
}

type tipRecord struct {
	hash   chain.Hash
	height uint64
}

// Option configures Open.
type Option func(*Store)

// WithLogger sets where the store reports what it repaired by itself, such
// as a damaged commits file (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *Store) { s.log = l } }

// Open opens the store in directory path for the network of params, or
// creates it if path does not exist or is an empty directory. It fails with
// ErrLocked (after LockTimeout) if another process has it open, with
// ErrWrongNetwork if it was made for another genesis, and with a
// *CorruptError if it is damaged or is not a store.
func Open(path string, params chain.Params, opts ...Option) (*Store, error) {
	if err := params.Validate(); err != nil {
		return nil, fmt.Errorf("chain store %s: %w", path, err)
	}
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(path, 0o700); err != nil {
			return nil, fmt.Errorf("chain store: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("chain store: %w", err)
	case !info.IsDir():
		return nil, corrupt(path, "%s is a file, not a store directory", path)
	}
	cfg := Store{fs: vfs.Default} // the options, for the file system the lock is taken on
	for _, o := range opts {
		o(&cfg)
	}
	lock, err := lockDir(path, cfg.fs)
	if err != nil {
		return nil, err
	}
	s, err := open(path, params, lock, opts)
	if err != nil {
		lock.Close()
		return nil, err
	}
	return s, nil
}

// lockDir takes the store's lock file, retrying for LockTimeout while
// another process holds it.
func lockDir(path string, fsys vfs.FS) (*pebble.Lock, error) {
	deadline := time.Now().Add(LockTimeout)
	for {
		l, err := pebble.LockDirectory(path, fsys)
		if err == nil {
			return l, nil
		}
		if diskFault(err) {
			return nil, &DiskError{Path: path, Op: "locking it", Err: err}
		}
		if !lockConflict(err) {
			return nil, fmt.Errorf("chain store %s: lock: %w", path, err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("chain store %s: %w: another node seems to use this data directory "+
				"(stop it, or give this node a data directory of its own)", path, ErrLocked)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lockConflict reports whether err from pebble.LockDirectory means the lock
// is held (by this or another process) rather than that the lock file
// cannot be created.
func lockConflict(err error) bool {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return false
	}
	var errno syscall.Errno
	return errors.As(err, &errno) || strings.Contains(err.Error(), "lock held by current process")
}

// storeFiles reports whether directory path holds anything but the lock
// and the ballast.
func storeFiles(path string) (bool, error) {
	entries, err := os.ReadDir(path)
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		if e.Name() != "LOCK" && e.Name() != BallastFile {
			return true, nil
		}
	}
	return false, nil
}

func open(path string, params chain.Params, lock *pebble.Lock, opts []Option) (s *Store, err error) {
	s = &Store{path: path, params: params, genesis: params.Genesis().Hash(), lock: lock, log: slog.Default(), fs: vfs.Default,
		failCh: make(chan struct{}), slowAfter: DefaultDiskSlow}
	for _, o := range opts {
		o(s)
	}
	s.efs = vfs.OnDiskFull(s.fs, s.dropBallast)
	// The engine's writes and syncs are timed (slow.go); its file system
	// is the same one, seen through the timer.
	engineFS, health := vfs.WithDiskHealthChecks(s.efs, s.slowAfter, nil, s.diskSlow)
	s.health = health
	defer func() {
		if err != nil {
			_ = health.Close()
		}
	}()
	defer s.recoverPanic(&err)
	existing, err := storeFiles(path)
	if err != nil {
		return nil, fmt.Errorf("chain store: %w", err)
	}
	popts := &pebble.Options{
		Lock:               lock,
		ErrorIfNotExists:   existing,
		FormatMajorVersion: formatVersion,
		Logger:             quietLogger{s},
		EventListener:      eventListener(s),
		FS:                 engineFS,
	}
	// Bloom filters in every table, every level (L1 and below take L0's):
	// most lookups are for keys the store does not hold (is this reading
	// already in the chain? a new one never is), and without a filter each
	// costs a seek in every table that might hold it.
	popts.Levels[0].FilterPolicy = bloom.FilterPolicy(10)
	// Compactions granted without a timer (scheduler.go).
	popts.Experimental.CompactionScheduler = newCompactionScheduler()
	db, err := s.openEngine(popts)
	if err != nil {
		if ferr := s.Err(); ferr != nil {
			return nil, ferr // the store failed while the engine opened: that says why
		}
		if errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("chain store %s: %w", path, err)
		}
		if errors.Is(err, pebble.ErrDBDoesNotExist) {
			return nil, corrupt(path, "the directory holds files but no store")
		}
		if noSpace(err) {
			return nil, &WriteError{Path: path, Full: true, Err: err} // not damage
		}
		if diskFault(err) {
			return nil, &DiskError{Path: path, Op: "opening", Err: err} // not damage either
		}
		return nil, &CorruptError{Path: path, Err: err}
	}
	s.db = db
	if err := s.init(); err != nil {
		if s.stopped.Load() == nil {
			db.Close()
		}
		return nil, err
	}
	if err := s.Err(); err != nil {
		// The engine's background work failed while the store opened
		// (a flush of the replayed log).
		s.closeFailed(db)
		return nil, err // the caller releases the directory
	}
	_ = s.CheckSpace() // makes the ballast if there is room
	return s, nil
}

// openEngine opens the engine, unless the store fails meanwhile: the
// engine flushes the log it replays before Open returns, and retries a
// failed flush forever. Then it returns the failure, and the engine is
// closed if it ever opens.
func (s *Store) openEngine(popts *pebble.Options) (*pebble.DB, error) {
	type opened struct {
		db  *pebble.DB
		err error
	}
	done := make(chan opened, 1) // holds the one answer
	var mu sync.Mutex
	abandoned := false // guarded by mu
	go func() {
		var o opened
		defer func() {
			if r := recover(); r != nil { // a panic of the engine: as in the caller (recoverPanic)
				o.err = s.panicErr(r)
			}
			mu.Lock()
			defer mu.Unlock()
			if abandoned {
				if o.db != nil {
					_ = o.db.Close()
				}
				return
			}
			done <- o
		}()
		o.db, o.err = pebble.Open(s.path, popts)
	}()
	select {
	case o := <-done:
		return o.db, o.err
	case <-s.failCh:
		mu.Lock()
		defer mu.Unlock()
		abandoned = true
		select {
		case o := <-done: // opened meanwhile
			if o.db != nil {
				_ = o.db.Close()
			}
		default:
		}
		return nil, s.Err()
	}
}

// init checks the meta records of an opened store, or writes them into an
// empty one, and reads the tip and the last pending arrival number.
func (s *Store) init() error {
	genesis, err := s.get(s.db, keyGenesis)
	if errors.Is(err, ErrNotFound) {
		if empty, err := s.empty(); err != nil {
			return err
		} else if !empty {
			return corrupt(s.path, "the meta records are missing")
		}
		// An empty engine in a directory whose commits file counts writes
		// has lost everything: never start it over as a new store.
		if err := s.checkCommits(); err != nil {
			return err
		}
		return s.create()
	}
	if err != nil {
		return err
	}
	version, err := s.get(s.db, keyVersion)
	if err != nil {
		return s.missing(err, "the schema version")
	}
	if len(version) != 4 {
		return corrupt(s.path, "schema version record of %d bytes", len(version))
	}
	if v := binary.BigEndian.Uint32(version); v != schemaVersion {
		return fmt.Errorf("chain store %s has layout version %d; this program reads version %d (protocol %d blocks): "+
			"move the directory away and let the node sync again from its peers", s.path, v, schemaVersion, chain.HeaderVersion)
	}
	if len(genesis) != chain.HashSize {
		return corrupt(s.path, "genesis record of %d bytes", len(genesis))
	}
	if chain.Hash(genesis) != s.genesis {
		network, _ := s.get(s.db, keyNetwork)
		return &NetworkError{Path: s.path, HeldName: string(network), HeldGenesis: chain.Hash(genesis),
			Name: s.params.Name, Genesis: s.genesis}
	}
	tipHash, tipHeight, err := s.readTip(s.db)
	if err != nil {
		return err
	}
	s.tip.Store(&tipRecord{hash: tipHash, height: tipHeight})
	if err := s.checkCommits(); err != nil {
		return err
	}
	if err := s.buildSubjectIndex(); err != nil {
		return err
	}
	return s.scanPending(s.db, func(seq uint64, _ chain.Reading) {
		s.seq.Store(max(s.seq.Load(), seq))
	})
}

// checkCommits reads the store's commit count and compares it with the
// commits file: a file ahead of the store means the engine dropped writes
// that had been committed (a damaged newest log), and the chain would come
// back silently shorter.
func (s *Store) checkCommits() error {
	v, err := s.get(s.db, keyCommits)
	switch {
	case errors.Is(err, ErrNotFound):
		v = make([]byte, 8) // nothing written since the store was made
	case err != nil:
		return err
	case len(v) != 8:
		return corrupt(s.path, "commit count record of %d bytes", len(v))
	}
	s.commits = binary.BigEndian.Uint64(v)
	file := s.fs.PathJoin(s.path, commitsFile)
	side, err := s.readFile(file)
	if err != nil || len(side) == 0 {
		return nil // missing, or emptied by a power cut: nothing to compare
	}
	n, ok := decodeCommits(side)
	if !ok {
		// The counter is damaged, not the store: say so, and count on
		// from the store's own number.
		s.log.Warn("chain store: the commits file is damaged (its checksum fails); "+
			"it is rewritten from the store's own count, which cannot show lost writes this once",
			"file", file, "count", s.commits)
		_ = s.writeFile(file, encodeCommits(s.commits)) // best effort, as every commit's
		return nil
	}
	if n > s.commits {
		return corrupt(s.path, "%d committed writes are missing (the store holds %d of %d): its newest log file is damaged",
			n-s.commits, s.commits, n)
	}
	return nil
}

func (s *Store) missing(err error, what string) error {
	if errors.Is(err, ErrNotFound) {
		return corrupt(s.path, "%s is missing", what)
	}
	return err
}

// empty reports whether the store holds no record at all.
func (s *Store) empty() (bool, error) {
	it, err := s.db.NewIter(nil)
	if err != nil {
		return false, s.readErr(err)
	}
	any := it.First()
	if err := it.Close(); err != nil {
		return false, s.readErr(err)
	}
	return !any, nil
}

// create writes the meta records and the genesis block of a new store.
func (s *Store) create() error {
	g := s.params.Genesis()
	data, err := g.MarshalBinary()
	if err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	b.Set(keyVersion, binary.BigEndian.AppendUint32(nil, schemaVersion), nil)
	b.Set(keyNetwork, []byte(s.params.Name), nil)
	b.Set(keyGenesis, s.genesis[:], nil)
	b.Set(keyBlock(s.genesis), data, nil)
	b.Set(keyHeight(0), s.genesis[:], nil)
	b.Set(keyTip, encodeTip(s.genesis, 0), nil)
	b.Set(keySideIndex, nil, nil)    // commits index every side block from the start
	b.Set(keySubjectIndex, nil, nil) // and every main-chain reading by subject
	b.Set(keyTimeIndex, nil, nil)    // and by subject and time
	if err := b.Commit(pebble.Sync); err != nil {
		return s.writeErr(err)
	}
	s.tip.Store(&tipRecord{hash: s.genesis})
	return nil
}

// Path returns the store directory.
func (s *Store) Path() string { return s.path }

// Close flushes the store (so that the next Open need not replay a log) and
// closes it. Calling Close again returns ErrClosed.
func (s *Store) Close() (err error) {
	s.life.Lock()
	defer s.life.Unlock()
	if s.db == nil {
		return ErrClosed
	}
	defer s.recoverPanic(&err)
	defer s.health.Close() // after the engine: its last writes are timed too
	db := s.db
	s.db = nil
	if s.commitsF != nil {
		_ = s.commitsF.Close() // best effort, as its writes
		s.commitsF = nil
	}
	if s.stopped.Load() != nil {
		// The engine stopped after a failed write: its state is
		// undefined (closing it panics or hangs), and everything it
		// acknowledged is in its log. Release the directory, for the
		// engine's reference too; the next Open replays the log. (The
		// node stops after this: nothing in this process uses the stopped
		// engine again.)
		_ = s.lock.Close()
		return s.lock.Close()
	}
	if s.Err() != nil {
		// The store failed (fault.go): a flush would retry a failing
		// write forever. Everything acknowledged is in the engine's log.
		s.closeFailed(db)
		return s.lock.Close()
	}
	var ferr error
	if s.CheckSpace() == nil {
		// A flush on a full disk fails, and the engine retries it
		// forever: then the next Open replays the log instead.
		ferr = s.flush(db)
	}
	if s.Err() != nil { // the flush failed: it would never end
		s.closeFailed(db)
		return s.lock.Close()
	}
	cerr := db.Close()
	lerr := s.lock.Close()
	if err := errors.Join(ferr, cerr, lerr); err != nil {
		return fmt.Errorf("chain store %s: close: %w", s.path, err)
	}
	return nil
}

// reader is what lookups need of a DB or a snapshot.
type reader interface {
	Get(key []byte) ([]byte, io.Closer, error)
	NewIter(o *pebble.IterOptions) (*pebble.Iterator, error)
}

// get returns a copy of the value of key, or ErrNotFound.
func (s *Store) get(r reader, key []byte) ([]byte, error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, s.readErr(err)
	}
	out := append([]byte(nil), v...)
	if err := closer.Close(); err != nil {
		return nil, s.readErr(err)
	}
	return out, nil
}

// scan calls fn for every key of prefix in order, with the key without its
// prefix. The slices are valid only during the call.
func (s *Store) scan(r reader, prefix byte, from []byte, fn func(k, v []byte) error) error {
	lower, upper := prefixBounds(prefix)
	if from != nil {
		lower = append([]byte{prefix}, from...)
	}
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return s.readErr(err)
	}
	for it.First(); it.Valid(); it.Next() {
		if err := fn(it.Key()[1:], it.Value()); err != nil {
			it.Close()
			return err
		}
	}
	return s.readErr(it.Close())
}

// flush flushes the engine's memtables, unless the store fails meanwhile:
// a flush whose table write fails is retried by the engine forever, and
// Flush would never return. Then the flush is left to Close, which ends
// it.
func (s *Store) flush(db *pebble.DB) error {
	done := make(chan error, 1)
	go func() {
		defer func() { // the engine closed meanwhile (closeFailed): nothing to report
			if r := recover(); r != nil {
				done <- s.panicErr(r)
			}
		}()
		done <- db.Flush()
	}()
	select {
	case err := <-done:
		return err
	case <-s.failCh:
		return nil // the failure is reported; the goroutine ends with the process
	}
}

// closeFailed closes the engine of a failed store without a flush. Its
// errors and panics are dropped: the store's failure says what went wrong.
func (s *Store) closeFailed(db *pebble.DB) {
	defer func() { _ = recover() }()
	_ = db.Close()
}

// quietLogger drops Pebble's informational messages (they would clutter a
// node's console) and keeps the first line of its errors (the store returns
// the details).
type quietLogger struct{ s *Store }

func (quietLogger) Infof(string, ...any) {}
func (quietLogger) Errorf(format string, args ...any) {
	msg, _, _ := strings.Cut(fmt.Sprintf(format, args...), "\n")
	pebble.DefaultLogger.Errorf("chain store engine: %s", msg)
}

// Fatalf does not exit the process: in a call of the store it panics, and
// the panic becomes a *WriteError if it met a failed write, a *DiskError
// if the disk failed, a *CorruptError otherwise; on the engine's own
// goroutines it stops the store instead (Store.engineFatal). The panic
// value is an error that wraps the errors among args, so that a full disk
// is told apart from damage.
func (l quietLogger) Fatalf(format string, args ...any) {
	var errs []error
	for _, a := range args {
		if e, ok := a.(error); ok {
			errs = append(errs, e)
		}
	}
	l.s.engineFatal(fatalError{msg: fmt.Sprintf(format, args...), errs: errs})
}

// fatalError is the panic value of quietLogger.Fatalf.
type fatalError struct {
	msg  string
	errs []error
}

func (e fatalError) Error() string   { return e.msg }
func (e fatalError) Unwrap() []error { return e.errs }

// eventListener reports the engine's background errors and the corruption it
// detects on one line each, instead of Pebble's default, which exits the
// process on corruption. The store call that met the corruption returns a
// *CorruptError; a background error that will not pass fails the store
// (Store.backgroundError).
func eventListener(s *Store) *pebble.EventListener {
	return &pebble.EventListener{
		BackgroundError: s.backgroundError,
		DataCorruption:  func(info pebble.DataCorruptionInfo) { quietLogger{}.Errorf("%s", info) },
	}
}

// Package store is a node's persistent chain store: every block it accepted
// (main chain and side branches), the main-chain indexes, the tip and the
// pending readings, in one directory, crash-safe. It imports the consensus
// core (package chain) and one storage engine, Pebble, chosen by measurement
// against bbolt (docs/STORAGE.md has the numbers and the layout).
//
// What it does not do: it validates nothing of consensus (the chain does
// that before anything is committed) and keeps no chain in memory. The
// node, the one owner of the chain, calls it.
//
// # Use
//
//	s, err := store.Open(dir, params) // creates dir if needed
//	st, err := s.LoadRecent()        // at start: final block, main chain above it, side blocks, pending
//	// rebuild the chain from st, then for every change:
//	err = s.Commit(store.Commit{Blocks: ..., Updates: ..., PendingAdd: ..., PendingRemove: ...})
//	err = s.AddPending(r)            // before acknowledging a submitted reading
//	err = s.Close()
//
// Lookups for tools and the API: BlockByHash, BlockAtHeight, Tip, Height,
// ReadingBlock and Walk (the main chain in height order, for `p2pchain
// verify` and `export`).
//
// # Guarantees
//
// Commit, AddPending and RemovePending are each one atomic transaction,
// synced to disk before they return: after a crash the store holds each of
// them whole or not at all. A Commit stores blocks by hash, moves the height
// index (height -> block hash) and the reading index (reading id -> block
// hash) for each update that changed the tip, records the tip and updates
// the pending set, together. Commit refuses (ErrBadCommit, nothing written)
// updates that do not follow the stored tip, so the indexes never drift from
// the chain that produced them.
//
// Load checks the store quickly instead of replaying the chain: each main
// height present, each block stored under its own hash and linked to the
// previous main block, the tip record on the last main block, each side
// block's parent stored. Proof of work, Merkle roots and signatures are
// re-checked only by `p2pchain verify`. LoadRecent, what a node reads at
// start, does the same from the final height the last commit recorded,
// and leaves the final blocks below on disk, where the node's chain reads
// them through the store's lookups (chain.Archive): a restart does not
// grow with the chain.
//
// # Errors
//
//   - ErrLocked: another process has the store open; Open waits LockTimeout
//     (1 s) before giving up, never forever.
//   - ErrWrongNetwork: the store was made for another genesis block.
//   - *CorruptError{Path, Err}: the store is damaged or is not a store (a
//     truncated or overwritten file, a missing file, records that do not
//     decode or indexes that disagree). Its message names the directory and
//     says what to do: run `p2pchain verify --data DIR`, or move the store
//     away and let the node re-sync from its peers. Panics of the engine on
//     damaged data are recovered and reported the same way; the store never
//     repairs or truncates anything by itself.
//   - ErrFull: the disk is full; not damage (space.go). A *FullError is a
//     write refused before it began, under the reserve the store keeps
//     free (WithReserve): nothing written, the store stays open, and the
//     same write succeeds once space returns (CheckSpace says when). A
//     *WriteError is a write that failed in the engine (a full disk past
//     the reserve and the ballast, or an I/O error): the engine stops,
//     every later write returns it, Close only releases the directory,
//     and everything acknowledged before is there at the next Open.
//   - *DiskError{Path, Op, Err}: the disk failed under the store (an I/O
//     error, a file system that became read-only) while reading, opening
//     or locking it, or under the engine's background work (a flush, a
//     compaction, its MANIFEST). Not known damage: its message says to check the disk
//     (dmesg, SMART) and start the node again once it is fixed, not to move
//     the store away.
//   - A failed store (fault.go): a read error (a *DiskError, a
//     *CorruptError), or background work of the engine that failed for
//     any reason but a full disk (a *DiskError; an exhausted quota, which
//     the reserve cannot see, is a *WriteError), fails the store: Err returns the first failure, Failed is closed, and every
//     later write returns it. The lookups that answer false rather than an
//     error (ReadingBlock, MainHash, MainHeight, MainHashes) answer false
//     then too, so a caller checks Err before it acts on a false. Close and
//     Open do not wait for the engine of a failed store.
//   - A slow disk is no error (slow.go): a write returns once the disk
//     answers, and LastDiskSlow reports the engine's writes and syncs
//     that last WithDiskSlow (5 s) or longer.
//   - ErrNotFound from BlockByHash and BlockAtHeight; ErrClosed after Close.
//
// All of them are matched with errors.Is or errors.As. A Store is safe for
// concurrent use; Commits are applied one at a time.
package store

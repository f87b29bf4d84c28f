//go:build windows

package datadir

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// lockOffset is where the lock's one byte lies. Windows' file locks are
// mandatory byte-range locks: a lock on the bytes of the pid that the lock
// file records would keep another process from reading it, so the lock
// covers a byte far beyond them (a range past the end of a file may be
// locked).
const lockOffset = 1 << 30

// lockFile takes a lock on f without waiting, exclusive or shared; held
// reports that another open file holds a lock that conflicts. The lock ends
// when f is closed or unlockFile is called.
func lockFile(f *os.File, exclusive bool) (held bool, err error) {
	flags := uint32(windows.LOCKFILE_FAIL_IMMEDIATELY)
	if exclusive {
		flags |= windows.LOCKFILE_EXCLUSIVE_LOCK
	}
	err = windows.LockFileEx(windows.Handle(f.Fd()), flags, 0, 1, 0, &windows.Overlapped{Offset: lockOffset})
	return errors.Is(err, windows.ERROR_LOCK_VIOLATION), err
}

func unlockFile(f *os.File) error {
	return windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, &windows.Overlapped{Offset: lockOffset})
}

package datadir

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestKeyCreatedOnceAndKept(t *testing.T) {
	d, err := Open(filepath.Join(t.TempDir(), "node"))
	if err != nil {
		t.Fatal(err)
	}
	k1, created, err := d.Key()
	if err != nil || !created {
		t.Fatalf("first Key: created %v, err %v", created, err)
	}
	fi, err := os.Stat(d.File(KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	d.Close()
	d, err = Open(d.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	k2, created, err := d.Key()
	if err != nil || created {
		t.Fatalf("second Key: created %v, err %v", created, err)
	}
	if !bytes.Equal(k1, k2) {
		t.Fatal("the identity key changed across reopen")
	}
}

func TestCorruptKeyIsAClearError(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, content := range []string{"", "garbage", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"} {
		if err := os.WriteFile(d.File(KeyFile), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := d.Key()
		if err == nil || !strings.Contains(err.Error(), KeyFile) || !strings.Contains(err.Error(), "move it away") {
			t.Errorf("key %q: error %v, want one naming the file and what to do", content, err)
		}
	}
}

// TestLockedByAnotherProcess: a second process cannot open a directory that
// one holds; the message says what to do.
func TestLockedByAnotherProcess(t *testing.T) {
	if os.Getenv("DATADIR_HOLD") != "" {
		d, err := Open(os.Getenv("DATADIR_HOLD"))
		if err != nil {
			os.Exit(3)
		}
		defer d.Close()
		os.Stdout.WriteString("locked\n")
		_, _ = os.Stdin.Read(make([]byte, 1)) // hold until the parent closes stdin
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=TestLockedByAnotherProcess")
	cmd.Env = append(os.Environ(), "DATADIR_HOLD="+dir)
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if _, err := out.Read(buf); err != nil || string(buf) != "locked\n" {
		t.Fatalf("holder did not lock: %q %v", buf, err)
	}
	_, err := Open(dir)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "--data") {
		t.Fatalf("Open of a held directory: %v, want ErrLocked with advice", err)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	d, err := Open(dir) // released when the holder exits
	if err != nil {
		t.Fatalf("after the holder exited: %v", err)
	}
	d.Close()
}

func TestDefaultPerPort(t *testing.T) {
	t.Setenv(EnvHome, "/x")
	a, _ := Default(10000)
	b, _ := Default(10001)
	c, _ := Default(0)
	if a == b || a != "/x/node-10000" || c != "/x/default" {
		t.Fatalf("defaults %s %s %s", a, b, c)
	}
}

// TestInUse: InUse sees a held directory and its pid, and a released or
// missing one as free, creating nothing.
func TestInUse(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none")
	if _, inUse := InUse(missing); inUse {
		t.Fatal("a missing directory is in use")
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("InUse created %s", missing)
	}
	d, err := Open(filepath.Join(t.TempDir(), "node"))
	if err != nil {
		t.Fatal(err)
	}
	pid, inUse := InUse(d.Path())
	if !inUse || pid != strconv.Itoa(os.Getpid()) {
		t.Fatalf("held directory: pid %q in use %v; want %d, true", pid, inUse, os.Getpid())
	}
	d.Close()
	if _, inUse := InUse(d.Path()); inUse {
		t.Fatal("released directory still in use")
	}
	d, err = Open(d.Path()) // InUse left no lock behind
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
}

// TestWriteFileAtomicOntoDirectory: a target that is a directory is
// refused at once with what to give; the rename failed only at the end,
// with "rename .../.out.tmp123 ...: file exists".
func TestWriteFileAtomicOntoDirectory(t *testing.T) {
	parent := t.TempDir()
	target := filepath.Join(parent, "out")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	err := WriteFileAtomic(target, []byte("x"), 0o600)
	if err == nil || !strings.Contains(err.Error(), "is a directory: give the path of a file") {
		t.Fatalf("error %v, want one saying the target is a directory", err)
	}
	if left, _ := os.ReadDir(parent); len(left) != 1 {
		t.Errorf("left beside it: %v", left)
	}
}

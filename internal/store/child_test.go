package store

import (
	"bufio"
	"os"
	"os/exec"
	"testing"
)

// holdInChild runs this test binary as a child that opens the store at path
// and keeps it open until the returned function is called.
func holdInChild(t *testing.T, path string) (stop func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockedByProcess$")
	cmd.Env = append(os.Environ(), "P2PCHAIN_STORE_HOLD="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "open\n" {
		stdin.Close()
		cmd.Wait()
		t.Fatalf("child did not open the store: %q, %v", line, err)
	}
	return func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("child: %v", err)
		}
	}
}

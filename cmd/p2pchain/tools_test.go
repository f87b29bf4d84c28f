package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/datadir"
	"github.com/p2pchain/p2pchain/internal/store"
)

// Tests of the offline tools (verify, export, import), on real stores in
// temporary directories and with the built binary.

// tamper changes blocks while a test chain is built: before[h] runs on the
// block at height h before its proof of work is solved, after[h] after.
type tamper struct {
	before, after map[int]func(b *chain.Block)
}

// buildChain makes n blocks on the genesis of p, each holding k readings,
// by hand rather than through chain.AddBlock, so that a test can break any
// rule in them.
func buildChain(t testing.TB, p chain.Params, n, k int, tm tamper) []*chain.Block {
	t.Helper()
	return buildOn(t, p, p.Genesis(), n, k, "patient", tm)
}

// buildOn makes n blocks on parent, each holding k readings of subjects
// named after subject.
func buildOn(t testing.TB, p chain.Params, parent *chain.Block, n, k int, subject string, tm tamper) []*chain.Block {
	t.Helper()
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	blocks := make([]*chain.Block, 0, n)
	first := int(parent.Header.Height) + 1
	for h := first; h < first+n; h++ {
		b := &chain.Block{}
		for j := 0; j < k; j++ {
			r, err := chain.NewReading(key, fmt.Sprintf("%s-%d", subject, j), 40+(h+j)%200, time.UnixMilli(p.GenesisTime+int64(h*1000+j)))
			if err != nil {
				t.Fatal(err)
			}
			b.Readings = append(b.Readings, r)
		}
		b.Header = chain.Header{Version: chain.HeaderVersion, Height: uint64(h), Parent: parent.Hash(),
			Time: p.GenesisTime + int64(h)*1000 + int64(k), Root: b.ReadingsRoot(), Count: uint32(len(b.Readings)), Difficulty: p.Difficulty}
		if f := tm.before[h]; f != nil {
			f(b)
		}
		if err := chain.Solve(context.Background(), &b.Header); err != nil {
			t.Fatal(err)
		}
		if f := tm.after[h]; f != nil {
			f(b)
		}
		blocks = append(blocks, b)
		parent = b
	}
	return blocks
}

// writeDataDir stores blocks as the main chain of a new data directory, with
// the config file of network p, as a node would leave it. store.Commit does
// not validate, so the blocks may break any rule.
func writeDataDir(t testing.TB, path string, p chain.Params, blocks []*chain.Block) {
	t.Helper()
	st, err := store.Open(filepath.Join(path, datadir.StoreDir), p)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(blocks); i += 1000 {
		var c store.Commit
		for _, b := range blocks[i:min(i+1000, len(blocks))] {
			c.Blocks = append(c.Blocks, b)
			c.Updates = append(c.Updates, &chain.Update{Hash: b.Hash(), Height: b.Header.Height, TipChanged: true, Connected: []*chain.Block{b}})
		}
		if err := st.Commit(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	dir, err := datadir.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	cfg := defaultNodeConfig()
	cfg.Network, cfg.Difficulty = p.Name, int(p.Difficulty)
	if _, err := loadConfig(dir, cfg); err != nil {
		t.Fatal(err)
	}
}

// writeSide stores blocks off the main chain, as a node keeps the blocks
// of a branch that lost.
func writeSide(t testing.TB, path string, p chain.Params, blocks []*chain.Block) {
	t.Helper()
	st, err := store.Open(filepath.Join(path, datadir.StoreDir), p)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(store.Commit{Blocks: blocks}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

func toolParams(difficulty uint32) chain.Params {
	p := chain.TestParams("tools-test")
	p.Difficulty = difficulty
	return p
}

// toolResult is what a run of the binary printed and how it exited.
type toolResult struct {
	stdout, stderr string
	code           int
}

func (r toolResult) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// runTool runs the binary to completion with a private P2PCHAIN_HOME, stdin
// as its input (nil: none) and extra environment variables.
func runTool(t *testing.T, stdin io.Reader, env []string, args ...string) toolResult {
	t.Helper()
	cmd := installed(args...)
	cmd.Env = append(append(cmd.Env, "P2PCHAIN_HOME="+t.TempDir()), env...)
	cmd.Stdin = stdin
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := toolResult{stdout: out.String(), stderr: errOut.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return r
}

// wantOK fails the test unless r succeeded and its stdout matches every
// pattern.
func wantOK(t *testing.T, r toolResult, stdout ...string) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("failed:\n%s", r)
	}
	for _, re := range stdout {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Fatalf("stdout does not match %q:\n%s", re, r)
		}
	}
}

// wantFail fails the test unless r failed and its stderr holds every string.
func wantFail(t *testing.T, r toolResult, stderr ...string) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("succeeded, want failure:\n%s", r)
	}
	for _, s := range stderr {
		if !strings.Contains(r.stderr, s) {
			t.Fatalf("stderr does not say %q:\n%s", s, r)
		}
	}
}

// listDir returns the names in a directory, or nil if it does not exist.
func listNames(t *testing.T, path string) []string {
	t.Helper()
	entries, err := os.ReadDir(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestVerify(t *testing.T) {
	t.Parallel()
	p := toolParams(4)
	blocks := buildChain(t, p, 25, 3, tamper{})
	tip := blocks[len(blocks)-1].Hash()

	// By --data, and by -l as the node finds its default directory.
	home := t.TempDir()
	data := filepath.Join(home, "node-10007")
	writeDataDir(t, data, p, blocks)
	for _, args := range [][]string{{"verify", "--data", data}, {"verify", "-l", "10007"}} {
		r := runTool(t, nil, []string{"P2PCHAIN_HOME=" + home}, args...)
		wantOK(t, r, `(?m)^chain OK: 25 blocks, 75 readings, network "tools-test", difficulty 4$`,
			`(?m)^tip #25 `+tip.String()+`$`, `(?m)^checked in \S+: \d+ blocks/s, \d+ readings/s$`)
	}

	// A chain of another network is named as such.
	r := runTool(t, nil, nil, "verify", "--data", data, "--network", "other")
	wantFail(t, r, "another network", `the chain was made with network "tools-test"`, "give --network tools-test")

	// Nothing there: said, and nothing created.
	missing := filepath.Join(t.TempDir(), "none")
	wantFail(t, runTool(t, nil, nil, "verify", "--data", missing), "no data directory "+missing)
	if listNames(t, missing) != nil {
		t.Fatal("verify created a data directory")
	}
}

// TestVerifyFaults stores chains that break one rule at one height (Commit
// does not validate) and expects verify to name the height and the rule.
func TestVerifyFaults(t *testing.T) {
	t.Parallel()
	p := toolParams(4)
	var dup chain.Reading // a reading of block 3, used again in block 9
	tests := []struct {
		name   string
		height int
		tm     tamper
		reason string
	}{
		{"bad signature", 7, tamper{before: map[int]func(*chain.Block){7: func(b *chain.Block) {
			b.Readings[1].Sig[5] ^= 1
			b.Header.Root = b.ReadingsRoot() // made so: the header commits to the bad signature
		}}}, "bad signature"},
		{"reading twice", 9, tamper{
			after: map[int]func(*chain.Block){3: func(b *chain.Block) { dup = b.Readings[0] }},
			before: map[int]func(*chain.Block){9: func(b *chain.Block) {
				b.Readings[0] = dup
				b.Header.Root, b.Header.Count = b.ReadingsRoot(), uint32(len(b.Readings))
			}},
		}, "already in block at height 3"},
		{"no proof of work", 5, tamper{after: map[int]func(*chain.Block){5: func(b *chain.Block) {
			for chain.MeetsTarget(b.Hash(), b.Header.Difficulty) {
				b.Header.Nonce++
			}
		}}}, "insufficient proof of work"},
		{"wrong readings root", 4, tamper{before: map[int]func(*chain.Block){4: func(b *chain.Block) {
			b.Header.Root[0] ^= 1
		}}}, "readings do not match its header's readings root"},
		{"signature changed on disk", 8, tamper{after: map[int]func(*chain.Block){8: func(b *chain.Block) {
			b.Readings[1].Sig[5] ^= 1 // the header commits to it: damage
		}}}, "readings do not match its header's readings root"},
		{"time before parent", 6, tamper{before: map[int]func(*chain.Block){6: func(b *chain.Block) {
			b.Header.Time = p.GenesisTime
		}}}, "time before parent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			writeDataDir(t, data, p, buildChain(t, p, 12, 2, tt.tm))
			r := runTool(t, nil, nil, "verify", "--data", data)
			if strings.Contains(tt.reason, "readings do not match") {
				// A body that does not match its header is damage the
				// store itself catches on reading.
				wantFail(t, r, fmt.Sprintf("FAULT at height %d: the store ", tt.height), tt.reason,
					"mv "+filepath.Join(data, "chain"), "syncs the chain from its peers")
				return
			}
			wantFail(t, r, fmt.Sprintf("FAULT at height %d of the main chain (block ", tt.height), tt.reason,
				fmt.Sprintf("blocks up to height %d are valid", tt.height-1),
				"mv "+filepath.Join(data, "chain"), "syncs the chain from its peers")
			if r.stdout != "" {
				t.Fatalf("a summary on stdout despite the fault:\n%s", r)
			}
		})
	}
}

// TestVerifySideBranches: blocks of branches that lost are checked too, and
// must not have more work than the main chain.
func TestVerifySideBranches(t *testing.T) {
	t.Parallel()
	p := toolParams(2)
	main := buildChain(t, p, 10, 2, tamper{})
	badSig := tamper{before: map[int]func(*chain.Block){7: func(b *chain.Block) {
		b.Readings[0].Sig[0] ^= 1
		b.Header.Root = b.ReadingsRoot()
	}}}
	for _, tt := range []struct {
		name string
		side []*chain.Block
		want []string // in stderr; none: verify passes
	}{
		{"valid", buildOn(t, p, main[4], 3, 1, "side", tamper{}), nil},
		{"bad signature", buildOn(t, p, main[4], 3, 1, "side", badSig),
			[]string{"FAULT at height 7 of a side branch (block ", "bad signature", "blocks up to height 10 are valid"}},
		{"more work", buildOn(t, p, main[7], 3, 1, "side", tamper{}),
			[]string{"FAULT at height 11 of a side branch", "a side branch has more work than the recorded main chain (tip #10 "}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			writeDataDir(t, data, p, main)
			writeSide(t, data, p, tt.side)
			r := runTool(t, nil, nil, "verify", "--data", data)
			if tt.want == nil {
				wantOK(t, r, `(?m)^chain OK: 10 blocks, 20 readings`, `(?m)^also 3 side-branch blocks and 0 pending readings$`)
				return
			}
			wantFail(t, r, tt.want...)
		})
	}
}

// TestVerifyDamagedStore damages a file of the store itself: reported as a
// fault too, never a panic.
func TestVerifyDamagedStore(t *testing.T) {
	t.Parallel()
	p := toolParams(0)
	data := filepath.Join(t.TempDir(), "data")
	writeDataDir(t, data, p, buildChain(t, p, 40, 2, tamper{}))
	tables, err := filepath.Glob(filepath.Join(data, datadir.StoreDir, "*.sst"))
	if err != nil || len(tables) == 0 {
		t.Fatalf("no table files (%v)", err)
	}
	for _, f := range tables {
		info, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(f, info.Size()/2); err != nil {
			t.Fatal(err)
		}
	}
	r := runTool(t, nil, nil, "verify", "--data", data)
	wantFail(t, r, "FAULT", "is damaged", "mv "+filepath.Join(data, "chain"))
	if strings.Contains(r.stderr, "panic") {
		t.Fatalf("panic:\n%s", r)
	}
}

// TestToolsRefuseRunningNode: the tools need the data directory to
// themselves, and say so when a node runs on it.
func TestToolsRefuseRunningNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node process")
	}
	t.Parallel()
	p := toolParams(0)
	data := filepath.Join(t.TempDir(), "data")
	writeDataDir(t, data, p, buildChain(t, p, 10, 1, tamper{}))
	n := start(t, "node", "--data", data, "-l", "0")
	n.expect(`^data .*, height 10, tip`)
	for _, args := range [][]string{{"verify", "--data", data}, {"export", "--data", data}} {
		wantFail(t, runTool(t, nil, nil, args...), data+" is in use by a running node (pid ", "stop the node first")
	}
	n.stop()
	wantOK(t, runTool(t, nil, nil, "verify", "--data", data), `chain OK: 10 blocks`)
}

// TestExportImportRoundTrip: export, import into a new directory, verify and
// export again give the same tip and the same bytes, and a node runs on the
// imported directory.
func TestExportImportRoundTrip(t *testing.T) {
	t.Parallel()
	p := toolParams(2)
	blocks := buildChain(t, p, 30, 3, tamper{})
	tip := blocks[len(blocks)-1].Hash()
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	writeDataDir(t, src, p, blocks)

	file1 := filepath.Join(tmp, "chain.jsonl")
	wantOK(t, runTool(t, nil, nil, "export", "--data", src, "--out", file1),
		`(?m)^exported 30 blocks \(90 readings\) of network "tools-test", difficulty 2, to `,
		`(?m)^tip #30 `+tip.String())
	exported, err := os.ReadFile(file1)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(exported), "\n"), "\n")
	if len(lines) != 30 {
		t.Fatalf("%d lines, want one per block from height 1: %q", len(lines), exported)
	}
	for i, line := range lines { // line N is the block at height N, in the chain's JSON form
		var b chain.Block
		if err := b.UnmarshalJSON([]byte(line)); err != nil || b.Hash() != blocks[i].Hash() {
			t.Fatalf("line %d is not block %d (%v): %s", i+1, i+1, err, line)
		}
	}
	if r := runTool(t, nil, nil, "export", "--data", src); r.code != 0 || r.stdout != string(exported) {
		t.Fatalf("export to standard output differs from --out:\n%s", r)
	}

	// Import, by file and from standard input, without --difficulty (the
	// file's) and with it.
	dst := filepath.Join(tmp, "dst")
	wantOK(t, runTool(t, nil, nil, "import", "--data", dst, "--network", "tools-test", file1),
		`(?m)^imported 30 blocks \(90 readings\) into `+regexp.QuoteMeta(dst)+`: network "tools-test", difficulty 2$`,
		`(?m)^tip #30 `+tip.String()+`$`, `(?m)^start a node on it with: p2pchain node --data `+regexp.QuoteMeta(dst)+`$`)
	dst2 := filepath.Join(tmp, "dst2")
	wantOK(t, runTool(t, bytes.NewReader(exported), []string{"P2PCHAIN_NETWORK=tools-test"}, "import", "-", "--difficulty", "2", "--data", dst2),
		`(?m)^tip #30 `+tip.String()+`$`)

	for _, d := range []string{dst, dst2} {
		wantOK(t, runTool(t, nil, nil, "verify", "--data", d), `(?m)^chain OK: 30 blocks, 90 readings`, `(?m)^tip #30 `+tip.String()+`$`)
		file2 := filepath.Join(tmp, "again.jsonl")
		wantOK(t, runTool(t, nil, nil, "export", "--data", d, "--out", file2))
		again, err := os.ReadFile(file2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, exported) {
			t.Fatalf("export after import differs:\n%s\n---\n%s", again, exported)
		}
	}
	if names := listNames(t, tmp); strings.Join(names, " ") != "again.jsonl chain.jsonl dst dst2 src" {
		t.Fatalf("export left temporary files: %v", names)
	}

	// The imported directory is a node's: it starts on that chain.
	if testing.Short() {
		return
	}
	n := start(t, "node", "--data", dst, "-l", "0")
	n.expect(`^network "tools-test", genesis \w+, difficulty 2$`)
	n.expect(`^data ` + regexp.QuoteMeta(dst) + `, height 30, tip ` + tip.Short() + `$`)
	n.stop()
}

// TestImportRejects: a bad file aborts the import at its line, and what the
// import created is gone.
func TestImportRejects(t *testing.T) {
	t.Parallel()
	p := toolParams(0)
	blocks := buildChain(t, p, 8, 2, tamper{})
	var lines []string
	for _, b := range blocks {
		data, err := b.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(data))
	}
	badSig := *blocks[4]
	badSig.Readings = append([]chain.Reading(nil), badSig.Readings...)
	badSig.Readings[0].Sig[0] ^= 1
	badSig.Header.Root = badSig.ReadingsRoot() // a block made with a bad signature, not one damaged later
	if err := chain.Solve(context.Background(), &badSig.Header); err != nil {
		t.Fatal(err)
	}
	badSigLine, _ := badSig.MarshalJSON()
	with := func(i int, line string) []string {
		out := append([]string(nil), lines...)
		out[i] = line
		return out
	}
	swapped := append([]string(nil), lines...)
	swapped[3], swapped[4] = swapped[4], swapped[3]

	tests := []struct {
		name  string
		lines []string
		args  []string
		want  []string
	}{
		{"malformed line", with(2, `{"height":3,`), nil, []string{"line 3: malformed: block: unexpected EOF"}},
		{"not JSON", with(5, `hello`), nil, []string{"line 6: malformed: block: invalid character"}},
		{"unknown field", with(1, strings.Replace(lines[1], `{`, `{"extra":1,`, 1)), nil, []string{`line 2: malformed: block: unknown field "extra"`}},
		{"empty line", with(3, ``), nil, []string{"line 4: empty line"}},
		{"bad block", with(4, string(badSigLine)), nil, []string{"line 5: block ", " at height 5 is invalid: bad signature"}},
		{"out of order", swapped, nil, []string{"line 4: block at height 5; line N must hold the block at height N"}},
		{"gap", append(append([]string(nil), lines[:2]...), lines[3:]...), nil, []string{"line 3: block at height 4"}},
		{"other network", lines, []string{"--network", "other"}, []string{"line 1: the block's parent", `is not the genesis block`, `of network "other"`}},
		{"other difficulty", lines, []string{"--difficulty", "3"}, []string{"line 1: the block's parent", "with difficulty 3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tmp := t.TempDir()
			file := filepath.Join(tmp, "chain.jsonl")
			if err := os.WriteFile(file, []byte(strings.Join(tt.lines, "\n")+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			// A directory that did not exist is not left behind; one that
			// did is left as it was.
			fresh := filepath.Join(tmp, "new")
			args := append([]string{"import", "--data", fresh, "--network", "tools-test"}, tt.args...)
			wantFail(t, runTool(t, nil, nil, append(args, file)...), tt.want...)
			if names := listNames(t, fresh); names != nil {
				t.Fatalf("the failed import left %s with %v", fresh, names)
			}
			existing := filepath.Join(tmp, "existing")
			if err := os.Mkdir(existing, 0o700); err != nil {
				t.Fatal(err)
			}
			args = append([]string{"import", "--data", existing, "--network", "tools-test"}, tt.args...)
			wantFail(t, runTool(t, nil, nil, append(args, file)...), tt.want...)
			if names := listNames(t, existing); len(names) != 0 {
				t.Fatalf("the failed import left %v in %s", names, existing)
			}
		})
	}
}

// TestImportRefusesChain: import never touches a directory that holds a
// chain.
func TestImportRefusesChain(t *testing.T) {
	t.Parallel()
	p := toolParams(0)
	blocks := buildChain(t, p, 5, 1, tamper{})
	tmp := t.TempDir()
	data := filepath.Join(tmp, "data")
	writeDataDir(t, data, p, blocks)
	file := filepath.Join(tmp, "chain.jsonl")
	wantOK(t, runTool(t, nil, nil, "export", "--data", data, "--out", file))
	before := listNames(t, data)
	wantFail(t, runTool(t, nil, nil, "import", "--data", data, file),
		data+" already holds a chain ("+filepath.Join(data, "chain")+"): import only into a new data directory")
	if after := listNames(t, data); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Fatalf("directory changed from %v to %v", before, after)
	}
	wantOK(t, runTool(t, nil, nil, "verify", "--data", data), `chain OK: 5 blocks`)

	// A directory with a config file for another network is refused too.
	other := filepath.Join(tmp, "other")
	writeDataDir(t, other, toolParams(5), nil)
	if err := os.RemoveAll(filepath.Join(other, datadir.StoreDir)); err != nil {
		t.Fatal(err)
	}
	wantFail(t, runTool(t, nil, nil, "import", "--data", other, "--difficulty", "0", file),
		"is for network \"tools-test\" with difficulty 5, the flags or environment say \"tools-test\" with 0")
}

func TestToolArguments(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"import", "--data", t.TempDir()}, "give the file to import"},
		{[]string{"import", "--data", t.TempDir(), "a", "b"}, "give the file to import"},
		{[]string{"import", "--data", t.TempDir(), "/nonexistent/file"}, "no such file"},
		{[]string{"export", "stray"}, `unexpected argument "stray"`},
		{[]string{"verify", "--difficulty", "99"}, "want a whole number from 0 to 64"},
		{[]string{"verify", "-l", "70000"}, "a port is 0 to 65535"},
	} {
		wantFail(t, runTool(t, nil, nil, tt.args...), tt.want)
	}
}

// TestProgressLines: away from a terminal, progress is a line now and then.
func TestProgressLines(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, "verify", 200)
	p.update(10, 10) // too soon: nothing
	if buf.Len() != 0 {
		t.Fatalf("printed at once: %q", buf.String())
	}
	p.next = time.Now()
	p.update(50, 50)
	p.finish(200, 200)
	if !regexp.MustCompile(`^verify: 25%, 50 blocks, \d+ blocks/s\n$`).MatchString(buf.String()) {
		t.Fatalf("progress %q", buf.String())
	}
}

// BenchmarkVerify measures p2pchain verify on a 10,000-block chain with 1
// and 10 readings a block (signature checks dominate):
//
//	go test ./cmd/p2pchain -run '^$' -bench Verify -benchtime 3x
func BenchmarkVerify(b *testing.B) {
	for _, k := range []int{1, 10} {
		b.Run(fmt.Sprintf("blocks=10000/readings=%d", k), func(b *testing.B) {
			p := toolParams(8)
			data := filepath.Join(b.TempDir(), "data")
			writeDataDir(b, data, p, buildChain(b, p, 10000, k, tamper{}))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := runVerify([]string{"--data", data}, io.Discard, io.Discard); err != nil {
					b.Fatal(err)
				}
			}
			perOp := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(10000/perOp, "blocks/s")
			b.ReportMetric(float64(10000*k)/perOp, "readings/s")
		})
	}
}

// TestImportFailedDiskFull: an import that meets a full disk says so in
// an import's words. It printed the node's text ("the node writes again by
// itself once there is room"), though the import had stopped and removed
// what it wrote.
func TestImportFailedDiskFull(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "chain.import"), chain.DefaultParams(), store.WithReserve(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	full := st.CheckSpace()
	if !errors.Is(full, store.ErrFull) {
		t.Fatalf("a store that keeps 4 EiB free: %v, want a full disk", full)
	}
	msg := importFailed(fmt.Errorf("commit: %w", full)).Error()
	for _, want := range []string{"chain.import is full: ", " free of ", "nothing was imported", "run the import again"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error does not say %q: %s", want, msg)
		}
	}
	if strings.Contains(msg, "the node") {
		t.Errorf("the error of an import speaks of a node: %s", msg)
	}
	if other := errors.New("line 3: malformed"); importFailed(other) != other {
		t.Errorf("another error changed: %v", importFailed(other))
	}
}

// TestExportOutDirectory: export --out naming a directory is refused
// before any work, saying so; it exported the whole chain and then failed
// with "rename ...: file exists".
func TestExportOutDirectory(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run([]string{"export", "--data", filepath.Join(t.TempDir(), "node"), "--out", out}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "--out: "+out+" is a directory: give the path of a file") {
		t.Errorf("exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
}

package main

// What every subcommand shares: its help text, one way to parse flags, short
// flag errors, and the name to print in commands a user may paste.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// usageError is a mistake on the command line (an unknown flag, a bad value,
// a missing argument): the command prints it with a pointer to its -h and
// exits with status 2.
type usageError struct {
	cmd string // the subcommand, "" for p2pchain itself
	err error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usagef returns a usageError of command cmd.
func usagef(cmd, format string, args ...any) error {
	return &usageError{cmd: cmd, err: fmt.Errorf(format, args...)}
}

// help is what a command's -h prints besides its flags.
type help struct {
	usage    string   // after "p2pchain NAME ", e.g. "BPM [SUBJECT] [flags]"
	about    []string // what the command does, a line each
	examples []string // after "p2pchain ", a line each
}

// cmdFlags is a subcommand's flag set. Its errors are short (see parse) and
// its -h writes the command's help to standard output.
type cmdFlags struct {
	*flag.FlagSet
	name   string
	help   help
	stdout io.Writer
}

// newCmdFlags returns the flag set of subcommand name.
func newCmdFlags(name string, h help, stdout io.Writer) *cmdFlags {
	fs := flag.NewFlagSet("p2pchain "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // parse reports errors itself, briefly
	fs.Usage = func() {}
	return &cmdFlags{FlagSet: fs, name: name, help: h, stdout: stdout}
}

// parse parses args, which may mix flags and other arguments (flags may
// follow them: p2pchain add 72 --subject alice), and returns the other
// arguments. -h prints the help and returns flag.ErrHelp; a bad flag returns
// a usageError. "--" ends the flags.
func (c *cmdFlags) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := c.Parse(args); err != nil {
			// A negative number is an argument (add -5 gets "not a
			// plausible heart rate"), not an unknown flag.
			if i := negativeNumber(args, err); i >= 0 {
				pos, args = append(pos, args[i]), args[i+1:]
				continue
			}
			if errors.Is(err, flag.ErrHelp) {
				c.printHelp(c.stdout)
				return nil, flag.ErrHelp
			}
			return nil, &usageError{cmd: c.name, err: c.explainValue(err)}
		}
		rest := c.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// badValue matches the flag package's error for a value that does not parse.
var badValue = regexp.MustCompile(`^(invalid (?:boolean )?value "(?:[^"\\]|\\.)*" for (?:flag )?-(\S+)): (parse error|value out of range)$`)

// explainValue replaces the flag package's "parse error" with what a good
// value of the flag looks like: its kind and the flag's usage line.
func (c *cmdFlags) explainValue(err error) error {
	m := badValue.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	fl := c.Lookup(m[2])
	if fl == nil {
		return err
	}
	want := "want a valid value"
	if g, ok := fl.Value.(flag.Getter); ok {
		switch g.Get().(type) {
		case int, int64:
			want = "want a whole number"
		case uint, uint64:
			want = "want a whole number, 0 or more"
		case float64:
			want = "want a number"
		case bool:
			want = "want true or false"
		case time.Duration:
			want = "want a duration such as 30s or 5m"
		}
	}
	if m[3] == "value out of range" {
		want += " in range"
	}
	name, usage := flag.UnquoteUsage(fl)
	if name != "" {
		name = " " + name
	}
	return fmt.Errorf("%s: %s (-%s%s: %s)", m[1], want, fl.Name, name, usage)
}

// negativeNumber returns the index in args of the negative number that err
// complains about as an unknown flag, or -1.
func negativeNumber(args []string, err error) int {
	name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -")
	if !ok || name == "" || strings.Trim(name, "0123456789") != "" {
		return -1
	}
	for i, a := range args {
		if a == "-"+name {
			return i
		}
	}
	return -1
}

// noArgs parses args for a command that takes flags only.
func (c *cmdFlags) noArgs(args []string) error {
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef(c.name, "unexpected argument %q", pos[0])
	}
	return nil
}

// printHelp writes the command's usage, description, examples and flags.
func (c *cmdFlags) printHelp(w io.Writer) {
	self := invocation()
	fmt.Fprintf(w, "Usage: %s %s %s\n\n", self, c.name, c.help.usage)
	for _, l := range c.help.about {
		fmt.Fprintln(w, l)
	}
	if len(c.help.examples) > 0 {
		fmt.Fprintln(w, "\nExamples:")
		for _, e := range c.help.examples {
			fmt.Fprintf(w, "  %s %s\n", self, e)
		}
	}
	fmt.Fprintln(w, "\nFlags (one dash or two):")
	c.SetOutput(w)
	c.PrintDefaults()
	c.SetOutput(io.Discard)
}

// jsonFlag adds --json to a command that prints data.
func (c *cmdFlags) jsonFlag(dst *bool, what string) {
	c.BoolVar(dst, "json", false, "print "+what+" as JSON")
}

// invocation is how the user ran this program, to print in commands they may
// paste: "p2pchain" when it was found on $PATH, the path they typed
// ("./p2pchain"), or "go run ./cmd/p2pchain" under go run.
func invocation() string {
	exe, _ := os.Executable()
	wd, _ := os.Getwd()
	return invocationOf(os.Args[0], exe, wd, os.Getenv("GOCACHE"))
}

// invocationOf is invocation for argv0 (os.Args[0]), the executable's path,
// the working directory and $GOCACHE.
func invocationOf(argv0, exe, wd, gocache string) string {
	if built := exe; built != "" && isGoRunBinary(built, gocache) {
		switch {
		case fileExists(filepath.Join(wd, "cmd", "p2pchain", "main.go")):
			return "go run ./cmd/p2pchain"
		case filepath.Base(wd) == "p2pchain" && fileExists(filepath.Join(wd, "main.go")):
			return "go run ."
		}
		return "go run github.com/p2pchain/p2pchain/cmd/p2pchain"
	}
	if argv0 == "" {
		return "p2pchain"
	}
	if strings.ContainsAny(argv0, " \t'\"$") {
		return "'" + strings.ReplaceAll(argv0, "'", `'\''`) + "'"
	}
	return argv0 // a bare name came from $PATH; a path runs as typed
}

// isGoRunBinary reports whether exe is a binary that go run built: in a
// go-build temporary directory, or (Go 1.24 and later) in the build cache.
func isGoRunBinary(exe, gocache string) bool {
	if gocache != "" && gocache != "off" && strings.HasPrefix(exe, filepath.Clean(gocache)+string(filepath.Separator)) {
		return true
	}
	for _, part := range strings.Split(filepath.ToSlash(filepath.Dir(exe)), "/") {
		if strings.HasPrefix(part, "go-build") {
			return true
		}
	}
	return false
}

func fileExists(path string) bool {
	info, err := os.Stat(path)
	return err == nil && !info.IsDir()
}

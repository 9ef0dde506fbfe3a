package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/refreshd/refreshd/executor"
)

// newFlagSet returns the flag set of subcommand name. usage, the synopsis and what the
// command does, is printed above the flags by --help and after a usage error. The flag
// package prints nothing itself: parseFlags returns its errors and main reports them.
func newFlagSet(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), usage+"\n\nFlags:")
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, taking flags after positional arguments too
// (`refreshd logs RUN -o json`, `refreshd run --local FILE --dry-run`), the way operators
// type them; after "--" everything is positional. The error is errHelp after --help, a
// usage error after a bad flag.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return &helpRequest{fs}
			}
			return &usageError{fs: fs, err: err}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	// Leave the positional arguments in fs.Args(), where commands read them.
	if err := fs.Parse(append([]string{"--"}, positional...)); err != nil {
		return &usageError{fs: fs, err: err}
	}
	return nil
}

// killGraceFlag registers --kill-grace, with one meaning for every command that runs steps:
// the grace of a plan that sets no kill_grace (a plan's own kill_grace wins).
func killGraceFlag(fs *flag.FlagSet) *time.Duration {
	return fs.Duration("kill-grace", executor.DefaultKillGrace,
		"time between SIGTERM and SIGKILL of a step's process group, for plans that set no kill_grace (a plan's own kill_grace wins)")
}

// checkKillGrace rejects a negative --kill-grace.
func checkKillGrace(d time.Duration) error {
	if d < 0 {
		return usageErrorf("--kill-grace %s: must not be negative", d)
	}
	return nil
}

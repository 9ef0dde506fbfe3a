package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// newFlagSet returns the flag set of subcommand name. usage, the synopsis and what the
// command does, is printed above the flags by --help and after a bad flag.
func newFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, usage+"\n\nFlags:")
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, taking flags after positional arguments too
// (`refreshd logs RUN -o json`), the way operators type them; after "--" everything is
// positional. done reports that the command must exit now with code: 0 after --help, 2
// after a bad flag (the flag package has said why).
func parseFlags(fs *flag.FlagSet, args []string) (code int, done bool) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0, true
			}
			return 2, true
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
		return 2, true
	}
	return 0, false
}

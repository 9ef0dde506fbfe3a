package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/refreshd/refreshd/executor"
)

// flagSet is a command's flags and the synopsis of its positional arguments. The usage's
// synopsis line is generated from both (so it cannot omit a flag) and parseFlags checks
// the number of arguments against the same synopsis (so every command rejects extra ones).
type flagSet struct {
	*flag.FlagSet
	args  argSpec
	about string
}

// newFlagSet returns the flags of command name. args is the synopsis of its positional
// arguments: "" for none, NAME for a required one, [NAME] for an optional one, NAME... for
// one or more; about says what the command does. The flag package prints nothing itself:
// parseFlags returns its errors and main reports them.
func newFlagSet(name, args, about string) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), args: parseArgSpec(args), about: about}
	fs.SetOutput(io.Discard)
	fs.Usage = func() { writeUsage(fs.Output(), fs) }
	return fs
}

// argSpec is the count of positional arguments a synopsis allows.
type argSpec struct {
	synopsis string
	min, max int // max < 0: no limit
}

func parseArgSpec(s string) argSpec {
	a := argSpec{synopsis: s}
	for _, w := range strings.Fields(s) {
		optional := strings.HasPrefix(w, "[")
		if !optional {
			a.min++
		}
		if strings.HasSuffix(strings.TrimSuffix(w, "]"), "...") {
			a.max = -1
		} else if a.max >= 0 {
			a.max++
		}
	}
	return a
}

// check refuses a count of arguments the synopsis does not allow, naming them.
func (a argSpec) check(fs *flagSet) error {
	n := fs.NArg()
	switch {
	case n < a.min:
		return usage(fs, "%s needs %s", fs.Name(), a.synopsis)
	case a.max >= 0 && n > a.max:
		extra := fs.Args()[a.max:]
		if a.max == 0 {
			return usage(fs, "%s takes no arguments; got %q", fs.Name(), strings.Join(extra, " "))
		}
		return usage(fs, "%s takes %s; %q is one argument too many", fs.Name(), a.synopsis, extra[0])
	}
	return nil
}

// flagName is how a flag is written: -o for a one-letter name, --name otherwise.
func flagName(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// flagValue is the placeholder of a flag's value: the `NAME` its usage quotes, else one
// from its type; "" for a boolean.
func flagValue(f *flag.Flag) string {
	name, _ := flag.UnquoteUsage(f)
	switch name {
	case "":
		return ""
	case "string", "value":
		return "VALUE"
	case "int", "uint", "int64", "uint64", "float":
		return "N"
	}
	return strings.ToUpper(name)
}

// repeatable reports whether a flag may be given more than once (its usage says so).
func repeatable(f *flag.Flag) bool { return strings.Contains(f.Usage, "repeatable") }

// synopsis is "refreshd NAME [--flag VALUE]... ARGS", generated from the flag set.
func synopsis(fs *flagSet) string {
	var b strings.Builder
	b.WriteString("refreshd " + fs.Name())
	fs.VisitAll(func(f *flag.Flag) {
		b.WriteString(" [" + flagName(f.Name))
		if v := flagValue(f); v != "" {
			b.WriteString(" " + v)
		}
		b.WriteString("]")
		if repeatable(f) {
			b.WriteString("...")
		}
	})
	if fs.args.synopsis != "" {
		b.WriteString(" " + fs.args.synopsis)
	}
	return b.String()
}

// writeUsage prints the synopsis, what the command does and its flags, each written the way
// the synopsis writes it.
func writeUsage(w io.Writer, fs *flagSet) {
	fmt.Fprintf(w, "Usage: %s\n", synopsis(fs))
	if fs.about != "" {
		fmt.Fprintf(w, "\n%s\n", fs.about)
	}
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if first {
			fmt.Fprint(w, "\nFlags:\n")
			first = false
		}
		_, text := flag.UnquoteUsage(f)
		head := "  " + flagName(f.Name)
		if v := flagValue(f); v != "" {
			head += " " + v
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "[]" {
			text += fmt.Sprintf(" (default %q)", f.DefValue)
		}
		fmt.Fprintf(w, "%s\n    \t%s\n", head, strings.ReplaceAll(text, "\n", "\n    \t"))
	})
}

// parseFlags parses args, taking flags after positional arguments too
// (`refreshd logs RUN -o json`, `refreshd run --local FILE --dry-run`), the way operators
// type them; after "--" everything is positional. The error is a help request after
// --help, a usage error after a bad flag or a count of arguments the synopsis does not
// allow.
func parseFlags(fs *flagSet, args []string) error {
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
	return fs.args.check(fs)
}

// killGraceFlag registers --kill-grace, with one meaning for every command that runs steps:
// the grace of a plan that sets no kill_grace (a plan's own kill_grace wins).
func killGraceFlag(fs *flagSet) *time.Duration {
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

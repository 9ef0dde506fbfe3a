package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/refreshd/refreshd/executor/history"
	"github.com/refreshd/refreshd/executor/report"
)

// cmdLogs is `refreshd logs [--state DIR] [-o json] RUN [STEP]`: a run's steps, attempts,
// exit codes, caches, publish diff and the output of each attempt, read from the store.
func cmdLogs(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("logs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: refreshd logs [--state DIR] [-o json] RUN [STEP]\n\nA run's steps, attempts and output. STEP is an instance id or a step id (all its instances).")
		fs.PrintDefaults()
	}
	state := fs.String("state", defaultLocalState(), "state directory")
	out := outputFlag(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if !checkOutput(*out, stderr) {
		return 2
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		fs.Usage()
		return 2
	}
	store, err := history.OpenReadOnly(filepath.Join(*state, "history.db"))
	if err != nil {
		fmt.Fprintf(stderr, "refreshd: %v\n", err)
		return 1
	}
	defer store.Close()
	r, err := store.Run(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "refreshd: %v\n", err)
		return 1
	}
	step := fs.Arg(1)
	if *out == "json" {
		printJSON(stdout, report.CollectLogs(r, step))
		return 0
	}
	report.Run(stdout, r, step, true)
	return 0
}

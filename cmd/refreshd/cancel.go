package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/refreshd/refreshd/daemon/control"
)

// cmdCancel interrupts a running run; its steps' process groups are killed.
func cmdCancel(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cancel", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: refreshd cancel [--socket PATH] [-o json] RUN\n\nInterrupt a running run: the process groups of its steps get SIGTERM, then SIGKILL after the grace period.\n\nFlags:")
		fs.PrintDefaults()
	}
	socket := socketFlag(fs)
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
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "refreshd: cancel needs exactly one RUN id")
		return 2
	}
	if err := control.NewClient(*socket).Cancel(ctx, fs.Arg(0)); err != nil {
		return clientError(stderr, err)
	}
	if *out == "json" {
		printJSON(stdout, map[string]string{"cancelled": fs.Arg(0)})
	} else {
		fmt.Fprintf(stdout, "cancelling %s\n", fs.Arg(0))
	}
	return 0
}

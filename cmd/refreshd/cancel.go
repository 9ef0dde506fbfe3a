package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/refreshd/refreshd/daemon/control"
)

// cmdCancel interrupts a running run; its steps' process groups are killed.
func cmdCancel(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cancel", flag.ContinueOnError)
	fs.SetOutput(stderr)
	socket := socketFlag(fs)
	out := outputFlag(fs)
	if err := fs.Parse(args); err != nil {
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

package main

import (
	"context"
	"fmt"
	"io"

	"github.com/refreshd/refreshd/daemon/control"
)

// cmdCancel interrupts a running run; its steps' process groups are killed.
func cmdCancel(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("cancel", "RUN", "Interrupt a running run: the process groups of its steps get SIGTERM, then SIGKILL after the grace period.")
	socket := socketFlag(fs)
	out := outputFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := control.NewClient(*socket).Cancel(ctx, fs.Arg(0)); err != nil {
		return err
	}
	if *out == "json" {
		printJSON(stdout, map[string]string{"cancelled": fs.Arg(0)})
	} else {
		fmt.Fprintf(stdout, "cancelling %s\n", fs.Arg(0))
	}
	return nil
}

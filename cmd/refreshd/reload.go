package main

import (
	"context"
	"fmt"
	"io"

	"github.com/refreshd/refreshd/daemon/control"
)

// cmdReload makes the daemon re-read its plans (like systemctl reload refreshd). Plans
// that fail to load keep their previous version; their errors are printed and exit 1.
func cmdReload(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("reload", "", "Make the daemon re-read its plans (like SIGHUP). A plan that fails to load keeps its previous\nversion; its errors are printed and the exit code is 1.")
	socket := socketFlag(fs)
	out := outputFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	res, err := control.NewClient(*socket).Reload(ctx)
	if err != nil {
		return err
	}
	if *out == "json" {
		printJSON(stdout, res)
	} else {
		fmt.Fprintf(stdout, "reloaded: %d plans scheduled\n", res.Plans)
		for _, e := range res.LoadErrors {
			fmt.Fprintf(stdout, "  %s\n", e.Error)
		}
	}
	if len(res.LoadErrors) > 0 {
		return exitWith(exitFailed)
	}
	return nil
}

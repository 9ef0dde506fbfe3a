package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/refreshd/refreshd/daemon/control"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/report"
	"github.com/refreshd/refreshd/statedir"
)

// cmdHistory is `refreshd history [--state DIR] [-o json] [--limit N] [PLAN]`: past runs,
// newest first. A running daemon holds the store, so its socket is asked first; with no
// daemon listening the store in --state is read directly.
func cmdHistory(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("history", "[PLAN]", "Past runs, newest first: from the daemon on --socket, or, when no daemon listens on the\ndefault socket, from the store in --state (it says which it read).")
	socket := socketFlag(fs)
	stateDir := readStateFlag(fs)
	out := outputFlag(fs)
	limit := fs.Int("limit", 20, "at most this many runs (0: all)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var runs []*history.Run
	where, err := readRuns(fs, *socket, stateDir, stderr,
		func() (err error) { runs, err = control.NewClient(*socket).Runs(ctx, fs.Arg(0), *limit); return err },
		func(state string) (err error) { runs, err = storeRuns(state, fs.Arg(0), *limit); return err })
	if err != nil {
		return err
	}
	if *out == "json" {
		if runs == nil {
			runs = []*history.Run{}
		}
		printJSON(stdout, runs)
		return nil
	}
	if len(runs) == 0 {
		fmt.Fprintf(stdout, "no runs recorded (read from %s)\n", where)
		return nil
	}
	report.Runs(stdout, runs)
	return nil
}

// storeRuns reads the run list (headers, as the daemon lists them) from the store of a
// state directory no daemon is using.
// A state directory without a store yet (nothing ever ran there) has no runs.
func storeRuns(state, plan string, limit int) ([]*history.Run, error) {
	path := statedir.Dir{Root: state}.History()
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	store, err := history.OpenReadOnly(path)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	return store.Heads(plan, limit)
}

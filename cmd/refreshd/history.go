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
	fs := newFlagSet("history", "[PLAN]", "Past runs, newest first: from the daemon on --socket, or, when no daemon listens on the\ndefault socket, from the store in --state (it says which it read). With --package or\n--branch: the constraint history instead, every package pin runs published, newest first.")
	socket := socketFlag(fs)
	stateDir := readStateFlag(fs)
	out := outputFlag(fs)
	limit := fs.Int("limit", 20, "at most this many runs (0: all), or pins (at most 1000)")
	pkg := fs.String("package", "", "the constraint history of this `PACKAGE` (a name or its start, compared as PEP 503 does)")
	branch := fs.String("branch", "", "the constraint history of this constraints `BRANCH`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *pkg != "" || *branch != "" {
		if fs.NArg() > 0 {
			return usage(fs, "history --package and --branch take no PLAN")
		}
		if *limit < 0 || *limit > 1000 {
			return usageErrorf("--limit %d: want at most 1000 pins", *limit)
		}
		return pinHistory(ctx, fs, history.PinQuery{Package: *pkg, Branch: *branch, Limit: *limit}, *socket, stateDir, *out, stdout, stderr)
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

// pinHistory prints the constraint history q selects: from the daemon, or a state
// directory's store, as the run history is read.
func pinHistory(ctx context.Context, fs *flagSet, q history.PinQuery, socket string, stateDir func() string, out string, stdout, stderr io.Writer) error {
	var pins []history.Pin
	where, err := readRuns(fs, socket, stateDir, stderr,
		func() (err error) { pins, err = control.NewClient(socket).Pins(ctx, q); return err },
		func(state string) error {
			return withStore(state, func(s *history.Store) (err error) { pins, err = s.Pins(q); return err })
		})
	if err != nil {
		return err
	}
	if out == "json" {
		if pins == nil {
			pins = []history.Pin{}
		}
		printJSON(stdout, pins)
		return nil
	}
	if len(pins) == 0 {
		fmt.Fprintf(stdout, "no published pins match (read from %s)\n", where)
		return nil
	}
	report.Pins(stdout, pins)
	return nil
}

// withStore runs read on the store of a state directory no daemon is using; a state
// directory without a store yet (nothing ever ran there) leaves read unrun.
func withStore(state string, read func(*history.Store) error) error {
	path := statedir.Dir{Root: state}.History()
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	store, err := history.OpenReadOnly(path)
	if err != nil {
		return err
	}
	defer store.Close()
	return read(store)
}

// storeRuns reads the run list (headers, as the daemon lists them) from the store of a
// state directory no daemon is using.
// A state directory without a store yet (nothing ever ran there) has no runs.
func storeRuns(state, plan string, limit int) (runs []*history.Run, err error) {
	return runs, withStore(state, func(s *history.Store) error { runs, err = s.Heads(plan, limit); return err })
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/refreshd/refreshd/daemon/control"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/report"
	"github.com/refreshd/refreshd/statedir"
)

// cmdLogs is `refreshd logs [-f] [--state DIR] [-o json] RUN [STEP]`: a run's steps,
// attempts, exit codes, caches, publish diff and the output of each attempt. A running
// daemon holds the store, so its socket is asked first (and -f follows a run live through
// it); with no daemon listening the store in --state is read directly.
func cmdLogs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("logs", "RUN [STEP]", "A run's steps, attempts and output. STEP is an instance id or a step id (all its instances).\n-f follows a running run's output live until it ends (needs the daemon) and then exits\nas run --wait does: 0 succeeded, 1 failed, 130 interrupted.")
	socket := socketFlag(fs)
	stateDir := readStateFlag(fs)
	follow := fs.Bool("f", false, "follow the run's output until it ends")
	out := outputFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	id, step := fs.Arg(0), fs.Arg(1)
	c := control.NewClient(*socket)
	if *follow {
		return followLogs(ctx, c, id, step, *out, stdout)
	}
	var r *history.Run
	where, err := readRuns(fs, *socket, stateDir, stderr,
		func() (err error) { r, err = c.Run(ctx, id); return err },
		func(state string) (err error) { r, err = storeRun(state, id); return err })
	if errors.Is(err, history.ErrNotFound) {
		return &exitError{code: exitInvalid, err: fmt.Errorf("no run %q in %s", id, where)}
	}
	if err != nil {
		return err
	}
	// Whether the daemon or the store answered, a step the run does not have is an
	// error, not an empty report.
	if err := report.CheckStep(r, step); err != nil {
		return &exitError{code: exitInvalid, err: err}
	}
	// The attempt log files are named in the record; the CLI reads them itself (the state
	// directory's logs are readable by the daemon's group).
	if *out == "json" {
		return report.WriteLogsJSON(stdout, r, step)
	}
	report.Run(stdout, r, step, true)
	return nil
}

// followLogs streams a run's output from the daemon until the run ends, then prints its
// detail (or, with -o json, its logs record), and exits as the run ended (0 succeeded,
// 1 failed, 130 interrupted), as run --wait does.
func followLogs(ctx context.Context, c *control.Client, id, step, out string, stdout io.Writer) error {
	err := c.Logs(ctx, id, step, true, func(line string) error {
		if out == "text" {
			fmt.Fprintln(stdout, line)
		}
		return nil
	})
	if ctx.Err() != nil {
		return exitWith(exitInterrupted)
	}
	if err != nil {
		return err
	}
	r, err := c.Run(ctx, id)
	if err != nil {
		return err
	}
	if out == "json" {
		if err := report.WriteLogsJSON(stdout, r, step); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(stdout)
		report.Run(stdout, r, step, false)
	}
	// Like run --wait: the exit code says how the run ended.
	return exitWith(control.ExitCode(r.Status))
}

// storeRun reads one run from the store of a state directory no daemon is using.
func storeRun(state, id string) (*history.Run, error) {
	store, err := history.OpenReadOnly(statedir.Dir{Root: state}.History())
	if err != nil {
		return nil, err
	}
	defer store.Close()
	return store.Run(id)
}

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/refreshd/refreshd/plan"
)

// cmdValidate loads plan files and directories and reports every problem as
// FILE:LINE:COL: message. For each valid plan it prints the next three scheduled times in
// the plan's timezone, so an operator sees what "0 2 * * *" in Europe/Berlin really means.
func cmdValidate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("validate", "PATH...", "Check plan files and directories of plans (with their shared builders files), and print\ntheir next run times. Exit 0 when all are valid, 2 when one is not (or is missing).")
	from := fs.String("from", "", "compute next runs after this `TIME` (RFC 3339) instead of now")
	staging := addStagingFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	now := time.Now()
	if *from != "" {
		t, err := time.Parse(time.RFC3339, *from)
		if err != nil {
			return usageErrorf("--from %q: want RFC 3339, like 2026-01-02T15:04:05Z", *from)
		}
		now = t
	}
	// Loading is bounded in time (a plan on a hung file system is reported, not waited
	// for), yet a signal must still end validate at once: the work runs aside and
	// validate returns when the context is cancelled.
	return validateUntilDone(ctx, func() error {
		staging.lister(ctx)
		load := planLoaders{
			dir:   func(dir string) ([]*plan.Plan, error) { return plan.LoadDirWith(dir, staging.opts) },
			files: func(paths []string) ([]*plan.Plan, error) { return plan.LoadFilesWith(paths, staging.opts) },
		}
		return validatePaths(load, fs.Args(), now, stdout, stderr)
	})
}

// validateUntilDone runs validate's work aside and returns its result, or exit 130 as soon
// as ctx is cancelled (SIGINT or SIGTERM): the work may be stuck in a read the kernel does
// not let go of, and the process exits anyway.
func validateUntilDone(ctx context.Context, work func() error) error {
	done := make(chan error, 1)
	go func() { done <- work() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return &exitError{code: exitInterrupted, err: fmt.Errorf("validate stopped: %w", context.Cause(ctx))}
	}
}

// planLoaders are the plan package's loaders, as validate uses them.
type planLoaders struct {
	dir   func(dir string) ([]*plan.Plan, error)
	files func(paths []string) ([]*plan.Plan, error)
}

// validatePaths validates each path: a directory as the daemon loads it, and every run of
// consecutive file arguments together (each directory read once, so validating 1,600
// files costs what their directory does).
func validatePaths(load planLoaders, paths []string, now time.Time, stdout, stderr io.Writer) error {
	ok := true
	report := func(plans []*plan.Plan, err error) {
		for _, p := range plans {
			if !printValid(stdout, stderr, p, now) {
				ok = false
			}
		}
		if err != nil {
			ok = false
			printError(stderr, err)
		}
	}
	var files []string
	flush := func() {
		if len(files) > 0 {
			report(load.files(files))
			files = nil
		}
	}
	for _, path := range paths {
		if st, err := os.Stat(path); err == nil && st.IsDir() {
			flush()
			report(load.dir(path))
			continue
		}
		files = append(files, path)
	}
	flush()
	if !ok {
		return exitWith(exitInvalid)
	}
	return nil
}

// printValid renders every instance of p, as a run would, and prints its summary and next
// run times, or the rendering's errors (an image reference, path or branch name a value
// made invalid). It reports whether p is valid.
func printValid(w, errw io.Writer, p *plan.Plan, now time.Time) bool {
	g, err := plan.Expand(p)
	if err != nil {
		printError(errw, err)
		return false
	}
	fmt.Fprintf(w, "%s: plan %s ok (%d steps, %d instances", p.File, p.Name, len(p.Steps), len(g.Instances))
	if len(g.Pending()) > 0 {
		fmt.Fprintf(w, ", %d steps expand at run time", len(g.Pending()))
	}
	fmt.Fprintln(w, ")")
	if len(p.Overrides) > 0 {
		fmt.Fprintf(w, "  %d values overridden by an overlay or --var (refreshd plan lists them)\n", len(p.Overrides))
	}
	for _, warn := range p.Warnings {
		fmt.Fprintf(errw, "refreshd: %s: warning: %s\n", warn.Pos, warn.Msg)
	}
	if p.Schedule == "" {
		fmt.Fprintln(w, "  no schedule: manual runs only")
		return true
	}
	var times []string
	for _, t := range p.NextRuns(now, 3) {
		times = append(times, t.Format("Mon 2006-01-02 15:04:05 MST"))
	}
	fmt.Fprintf(w, "  schedule %q in %s, next: %s\n", p.Schedule, p.Timezone, strings.Join(times, ", "))
	return true
}

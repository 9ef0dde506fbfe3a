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
	fs := newFlagSet("validate", "Usage: refreshd validate [--from TIME] PATH...\n\nCheck plan files and directories of plans (with their shared builders files).\nExit 0 when all are valid, 1 otherwise.")
	from := fs.String("from", "", "compute next runs after this time (RFC 3339) instead of now")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usage(fs, "validate needs at least one PATH")
	}
	now := time.Now()
	if *from != "" {
		t, err := time.Parse(time.RFC3339, *from)
		if err != nil {
			return usageErrorf("--from %q: want RFC 3339, like 2026-01-02T15:04:05Z", *from)
		}
		now = t
	}
	ok := true
	for _, path := range fs.Args() {
		var plans []*plan.Plan
		var err error
		if st, serr := os.Stat(path); serr == nil && st.IsDir() {
			plans, err = plan.LoadDir(path)
		} else {
			var p *plan.Plan
			p, err = plan.LoadFile(path)
			if p != nil {
				plans = []*plan.Plan{p}
			}
		}
		for _, p := range plans {
			printValid(stdout, p, now)
		}
		if err != nil {
			ok = false
			printError(stderr, err)
		}
	}
	if !ok {
		return exitWith(exitFailed)
	}
	return nil
}

func printValid(w io.Writer, p *plan.Plan, now time.Time) {
	g, err := plan.Expand(p)
	n := 0
	if err == nil {
		n = len(g.Instances)
	}
	fmt.Fprintf(w, "%s: plan %s ok (%d steps, %d instances)\n", p.File, p.Name, len(p.Steps), n)
	if p.Schedule == "" {
		fmt.Fprintln(w, "  no schedule: manual runs only")
		return
	}
	var times []string
	for _, t := range p.NextRuns(now, 3) {
		times = append(times, t.Format("Mon 2006-01-02 15:04:05 MST"))
	}
	fmt.Fprintf(w, "  schedule %q in %s, next: %s\n", p.Schedule, p.Timezone, strings.Join(times, ", "))
}

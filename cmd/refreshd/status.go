package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/refreshd/refreshd/daemon/control"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/report"
)

// cmdStatus shows the daemon's plans, next run times, running runs, last results and plan
// load errors.
func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", "", "The plans of the daemon, next run times, running runs, last results (for one that did not\nsucceed: when it ended and why) and plan load errors. Exit 1 when a plan did not load.")
	socket := socketFlag(fs)
	out := outputFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	st, err := control.NewClient(*socket).Status(ctx)
	if err != nil {
		return err
	}
	if *out == "json" {
		printJSON(stdout, st)
		return nil
	}
	writeStatus(stdout, st, time.Now(), time.Local)
	if rec := st.StoreRecovered; rec != nil {
		fmt.Fprintf(stdout, "\nHistory store was corrupt at start-up (%s): moved to %s at %s; the history since starts empty.\n",
			rec.Error, rec.MovedTo, rec.At.Local().Format(time.RFC3339))
	}
	if len(st.LoadErrors) > 0 {
		fmt.Fprintf(stdout, "\nPlan load errors (the previous version of these plans keeps running):\n")
		for _, e := range st.LoadErrors {
			fmt.Fprintf(stdout, "  %s\n", e.Error)
		}
		return exitWith(exitFailed)
	}
	return nil
}

// writeStatus prints the daemon's status as a table, one plan a line. A last run that did
// not succeed shows when it ended and why (failed, skipped, interrupted), on the same line,
// cut to fit a terminal: the whole reason is in `refreshd history` and `-o json`.
func writeStatus(w io.Writer, st *control.Status, now time.Time, loc *time.Location) {
	// st.Version is the daemon's versionString ("refreshd VERSION GOVERSION"), name included.
	fmt.Fprintf(w, "%s, pid %d, up %s, plans from %s\n\n", st.Version, st.PID,
		now.Sub(st.Started).Round(time.Second), st.PlansDir)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PLAN\tSCHEDULE\tNEXT\tRUNNING\tLAST\tENDED\tWHY")
	for _, p := range st.Plans {
		sched, next := p.Schedule, "-"
		if sched == "" {
			sched = "(manual)"
		} else if p.Timezone != "" && p.Timezone != "UTC" {
			sched += " " + p.Timezone
		}
		if !p.Next.IsZero() {
			next = p.Next.In(loc).Format("2006-01-02 15:04:05 MST")
		}
		running := p.Running
		if p.Queued != "" {
			running += " (+1 queued)"
		}
		if running == "" {
			running = "-"
		}
		last, ended, why := "-", "-", "-"
		if l := p.Last; l != nil {
			last = fmt.Sprintf("%s %s", l.Status, l.ID)
			if !l.End.IsZero() {
				ended = l.End.In(loc).Format("2006-01-02 15:04:05 MST")
			}
			if l.Status != history.StatusSucceeded && l.Reason != "" {
				why = report.OneLine(l.Reason, whyWidth)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Plan, sched, next, running, last, ended, why)
	}
	tw.Flush()
}

// whyWidth is how much of a reason a status line shows.
const whyWidth = 80

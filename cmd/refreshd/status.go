package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/refreshd/refreshd/daemon/control"
)

// cmdStatus shows the daemon's plans, next run times, running runs, last results and plan
// load errors.
func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", "Usage: refreshd status [--socket PATH] [-o json]\n\nThe plans of the daemon, next run times, running runs, last results and plan load errors.")
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
	// st.Version is the daemon's versionString ("refreshd VERSION GOVERSION"), name included.
	fmt.Fprintf(stdout, "%s, pid %d, up %s, plans from %s\n\n", st.Version, st.PID,
		time.Since(st.Started).Round(time.Second), st.PlansDir)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PLAN\tSCHEDULE\tNEXT\tRUNNING\tLAST")
	for _, p := range st.Plans {
		sched, next := p.Schedule, "-"
		if sched == "" {
			sched = "(manual)"
		} else if p.Timezone != "" && p.Timezone != "UTC" {
			sched += " " + p.Timezone
		}
		if !p.Next.IsZero() {
			next = p.Next.Local().Format("2006-01-02 15:04:05 MST")
		}
		running := p.Running
		if p.Queued != "" {
			running += " (+1 queued)"
		}
		if running == "" {
			running = "-"
		}
		last := "-"
		if p.Last != nil {
			last = fmt.Sprintf("%s %s", p.Last.Status, p.Last.ID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Plan, sched, next, running, last)
	}
	tw.Flush()
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

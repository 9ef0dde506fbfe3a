// Package report renders history records for people and scripts: the run list of
// `refreshd history`, the run detail and logs of `refreshd logs`, and the live view of
// `refreshd run --local` on a terminal. The CLI reading the store and the daemon serving its
// socket both render with it, so both show the same thing.
package report

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/safearg"
)

// Runs writes the run list, newest first as given.
func Runs(w io.Writer, runs []*history.Run) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tPLAN\tTRIGGER\tSTARTED\tDURATION\tSTATUS\tREASON")
	for _, r := range runs {
		status := string(r.Status)
		if r.DryRun {
			status += " (dry run)" // nothing was executed: not to be read as a real success
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Plan, r.Trigger,
			r.Start.Local().Format("2006-01-02 15:04:05"), duration(r.Start, r.End), status, oneLine(r.Reason))
	}
	tw.Flush()
}

// StepMatches says whether a step instance is selected by filter: its exact id, or its
// step id (every instance of a matrix step). An empty filter selects every step.
func StepMatches(instance, filter string) bool {
	if filter == "" || instance == filter {
		return true
	}
	return strings.HasPrefix(instance, filter+"[")
}

// CheckStep returns an error naming the run's steps when filter selects none of them, so
// that asking for a step that is not there fails instead of printing an empty report.
func CheckStep(r *history.Run, filter string) error {
	if filter == "" {
		return nil
	}
	ids := make([]string, 0, len(r.Steps))
	for _, s := range r.Steps {
		if StepMatches(s.Instance, filter) {
			return nil
		}
		ids = append(ids, s.Instance)
	}
	return fmt.Errorf("run %s has no step %q (its steps: %s)", r.ID, filter, strings.Join(ids, ", "))
}

// Run writes a run's detail: each selected step with its attempts (exit code or signal,
// duration, error), the caches it checked (digest before -> after), the constraints it
// published (package: old -> new), its warnings, and, with output, its log files' contents.
// A filter that selects no step is the caller's to reject first (CheckStep).
func Run(w io.Writer, r *history.Run, filter string, output bool) {
	fmt.Fprintf(w, "run %s of %s (%s", r.ID, r.Plan, r.Trigger)
	if !r.Scheduled.IsZero() {
		fmt.Fprintf(w, ", scheduled %s", r.Scheduled.Local().Format(time.RFC3339))
	}
	if r.DryRun {
		fmt.Fprint(w, ", dry run")
	}
	fmt.Fprintf(w, "): %s, started %s, took %s\n", r.Status, r.Start.Local().Format("2006-01-02 15:04:05"), duration(r.Start, r.End))
	if r.Reason != "" {
		fmt.Fprintf(w, "  reason: %s\n", r.Reason)
	}
	if src := r.Source; src != nil {
		moved := "unchanged"
		if src.Changed {
			moved = "moved from " + orNone(src.Previous)
		}
		fmt.Fprintf(w, "  source: %s %s at %s in %s (%s)\n", src.Repo, src.Ref, src.Commit, src.Path, moved)
	}
	if len(r.Params) > 0 {
		var ps []string
		for _, k := range slices.Sorted(maps.Keys(r.Params)) {
			ps = append(ps, k+"="+strconv.Quote(r.Params[k]))
		}
		fmt.Fprintf(w, "  params: %s\n", strings.Join(ps, " "))
	}
	for _, v := range r.Vars {
		value := v.Value
		if v.List {
			value = "[" + strings.Join(v.Values, " ") + "]"
		}
		fmt.Fprintf(w, "  from the tree: %s = %s (step %s)\n", v.Name, value, v.Step)
	}
	for _, f := range r.Freshness {
		held, scope := "not fresh", "the run"
		if f.Fresh {
			held = "fresh"
		}
		if f.Step != "" {
			scope = "step " + f.Step
		}
		fmt.Fprintf(w, "  skip_if (%s, %s): %s: %s\n", scope, f.Pos, held, f.Why)
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", warn)
	}
	for _, s := range r.Steps {
		if StepMatches(s.Instance, filter) {
			step(w, s, output)
		}
	}
}

// step writes one step of Run: status, attempts, caches, publish, warnings and with output
// its attempts' logs.
func step(w io.Writer, s history.Step, output bool) {
	stepHeader(w, s)
	for _, a := range s.Attempts {
		fmt.Fprintf(w, "  attempt %d: %s, %s", a.N, AttemptOutcome(a), duration(a.Start, a.End))
		if a.Error != "" && a.Error != AttemptOutcome(a) {
			fmt.Fprintf(w, ", %s", a.Error)
		}
		fmt.Fprintln(w)
	}
	stepResults(w, s)
	for _, warn := range s.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", warn)
	}
	if output {
		stepOutput(w, s)
	}
}

// stepHeader writes a step's status line and why it ran or did not: reason, when, node.
func stepHeader(w io.Writer, s history.Step) {
	fmt.Fprintf(w, "\n%s %s: %s", symbol(s.Status), s.Instance, s.Status)
	if !s.Start.IsZero() {
		fmt.Fprintf(w, " in %s", duration(s.Start, s.End))
	}
	fmt.Fprintln(w)
	if s.Reason != "" {
		fmt.Fprintf(w, "  reason: %s\n", s.Reason)
	}
	if s.When != "" {
		fmt.Fprintf(w, "  when: %s", s.When)
		if s.After != "" {
			fmt.Fprintf(w, ", ran after: %s", s.After)
		}
		fmt.Fprintln(w)
	}
	if s.Node != "" {
		fmt.Fprintf(w, "  built on node: %s\n", s.Node)
	}
}

// stepResults writes what a step's action recorded: cache refs, a publish, a test report.
func stepResults(w io.Writer, s history.Step) {
	for _, c := range s.Caches {
		state := "unchanged"
		switch {
		case !c.Verified:
			state = "MISSING"
		case c.Changed:
			state = "changed"
		}
		fmt.Fprintf(w, "  cache %s: %s -> %s (%s)\n", c.Ref, orNone(c.Before), orNone(c.After), state)
	}
	if p := s.Publish; p != nil {
		commit := p.Commit
		if commit == "" {
			commit = "no commit"
		}
		fmt.Fprintf(w, "  published to %s %s: %s (%s, %d push attempts)\n", p.Repo, p.Branch, p.Summary, commit, p.PushAttempts)
		for _, c := range p.Changes {
			fmt.Fprintf(w, "    %s %s: %s -> %s\n", c.File, c.Package, orNone(c.Old), orNone(c.New))
		}
		if p.Reconciled != "" {
			fmt.Fprintf(w, "  publish %s\n", p.Reconciled)
		}
	}
	if t := s.Tests; t != nil {
		fmt.Fprintf(w, "  tests (%s): %d ran, %d failed, %d errors, %d skipped\n", t.Report, t.Total, t.Failures, t.Errors, t.Skipped)
		for _, id := range t.Failed {
			fmt.Fprintf(w, "    failed: %s\n", id)
		}
	}
}

// stepOutput writes the log of each of a step's attempts, prefixed.
func stepOutput(w io.Writer, s history.Step) {
	for _, a := range s.Attempts {
		if a.Log == "" {
			continue
		}
		fmt.Fprintf(w, "  --- output of attempt %d (%s)\n", a.N, a.Log)
		if err := copyPrefixed(w, a.Log, "  | "); err != nil {
			fmt.Fprintf(w, "  (cannot read: %v)\n", err)
		}
	}
}

// AttemptOutcome says how an attempt ended, in the words of `refreshd logs` and the
// dashboard alike: running, interrupted (cut short by a crash or a stop), the signal that
// killed it, its exit code, or not started (its process never ran).
func AttemptOutcome(a history.Attempt) string {
	switch {
	case a.End.IsZero():
		return "running"
	case a.Interrupted:
		return "interrupted"
	case a.Signal != "":
		return "signal: " + a.Signal // as Go prints it: "signal: killed", "signal: terminated"
	case a.ExitCode >= 0:
		return fmt.Sprintf("exit code %d", a.ExitCode)
	}
	return "not started"
}

func symbol(s history.Status) string {
	switch s {
	case history.StatusSucceeded:
		return "✓"
	case history.StatusFailed:
		return "✗"
	case history.StatusRunning:
		return "▶"
	case history.StatusSkipped:
		return "-"
	case history.StatusInterrupted:
		return "!"
	}
	return "·"
}

func duration(start, end time.Time) string {
	if start.IsZero() {
		return "-"
	}
	if end.IsZero() {
		return time.Since(start).Round(time.Second).String() + " so far"
	}
	d := end.Sub(start)
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func oneLine(s string) string {
	first, _, more := strings.Cut(s, "\n")
	first = OneLine(first, 0)
	if more {
		return first + " ..."
	}
	return first
}

// OneLine makes s fit one line of a terminal: control characters (newlines, escape
// sequences from a step's output quoted in a reason) and format characters (a bidi
// override that would make the line read other than it is: safearg.Hidden) become spaces, runs of spaces one,
// and past max runes (max > 0) it is cut with "…".
func OneLine(s string, max int) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || safearg.Hidden(r) }), " ")
	if max <= 0 || utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return strings.TrimRight(string(r[:max-1]), " ") + "…"
}

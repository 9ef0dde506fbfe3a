package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/refreshd/refreshd/executor"
	"github.com/refreshd/refreshd/plan"
)

// cmdPlan is the dry run: it loads and expands one plan and prints, level by level, the
// instances that may run in parallel and the exact commands each would run. Nothing runs.
func cmdPlan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("plan", "FILE", "Dry run: the expanded graph in order, what may run in parallel, and the exact\ncommand line of every step instance; the steps that expand at run time, from the values\nof which step. Nothing is executed. A plan with instances shows each (or --instance).\nExit 2 when the plan is missing or invalid.")
	instance := fs.String("instance", "", "show only this `INSTANCE` of a plan that declares instances")
	params := paramFlag{}
	fs.Var(params, "param", "`NAME=VALUE`: expand with this run parameter (repeatable)")
	staging := addStagingFlags(fs)
	values := paramFlag{}
	fs.Var(valueFlag{values}, "value", "`NAME=V1,V2`: expand the steps that wait for values read from the tree with these instead (a list var takes V1,V2; source.commit for the checkout's commit), so every step's command shows (repeatable)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	staging.lister(ctx)
	plans, err := plan.LoadPlansWith(fs.Arg(0), staging.opts)
	if err != nil {
		return &exitError{code: exitInvalid, err: err}
	}
	if *instance != "" {
		p, err := pickInstance(plans, *instance)
		if err != nil {
			return usageErrorf("%v", err)
		}
		plans = []*plan.Plan{p}
	}
	for i, p := range plans {
		resolved, err := p.ResolveParams(params)
		if err != nil {
			return usageErrorf("%v", err)
		}
		g, err := plan.ExpandRun(p, resolved)
		if err != nil {
			return &exitError{code: exitInvalid, err: err}
		}
		if len(values) > 0 {
			if err := g.ExtendDry(values); err != nil {
				return usageErrorf("%v", err)
			}
		}
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		printGraph(stdout, g, &executor.Tools{})
	}
	return nil
}

// printGraph prints expanded graph g: the plan's settings, then level by level each
// instance with its skip_if conditions, expectations and the exact commands it would run.
func printGraph(w io.Writer, g *plan.Graph, tools *executor.Tools) {
	printGraphHeader(w, g)
	maxLevel := 0
	for _, in := range g.Instances {
		maxLevel = max(maxLevel, in.Level)
	}
	byID := make(map[string]*plan.Instance, len(g.Instances))
	for _, in := range g.Instances {
		byID[in.ID] = in
	}
	shown := map[string]bool{} // steps whose skip_if is printed
	for level := 0; level <= maxLevel; level++ {
		fmt.Fprintf(w, "\nlevel %d: may run in parallel\n", level)
		for _, note := range concurrencyNotes(g, level) {
			fmt.Fprintf(w, "  %s\n", note)
		}
		for _, in := range g.Instances {
			if in.Level == level {
				printInstance(w, g, in, byID, shown, tools)
			}
		}
	}
	printPending(w, g)
}

// printGraphHeader prints what holds for the whole of g: the plan line, its params,
// schedule, workdir, overrides, derived instances, the dry run's values and the plan's
// skip_if conditions.
func printGraphHeader(w io.Writer, g *plan.Graph) {
	p := g.Plan
	fmt.Fprintf(w, "plan %s (%s): %d steps, %d instances", p.Name, p.File, len(p.Steps), len(g.Instances))
	if pending := g.Pending(); len(pending) > 0 {
		fmt.Fprintf(w, " before run-time expansion (%d steps pending)", len(pending))
	}
	fmt.Fprintln(w)
	if len(g.Params) > 0 {
		var ps []string
		for _, name := range p.ParamNames() {
			ps = append(ps, fmt.Sprintf("%s=%q", name, g.Params[name]))
		}
		fmt.Fprintf(w, "params %s\n", strings.Join(ps, " "))
	}
	if p.Schedule != "" {
		fmt.Fprintf(w, "schedule %q in %s, overlap %s, catch_up %t", p.Schedule, p.Timezone, p.Overlap, p.CatchUp)
	} else {
		fmt.Fprintf(w, "manual runs only, overlap %s", p.Overlap)
	}
	if p.Timeout > 0 {
		fmt.Fprintf(w, ", timeout %s", plan.ShortDuration(p.Timeout))
	}
	fmt.Fprintln(w)
	if p.Workdir != "" {
		fmt.Fprintf(w, "workdir %s\n", p.Workdir)
	}
	printOverrides(w, p)
	if d := p.Derived; d != nil {
		printDerived(w, d)
	}
	if given := g.DryValues(); len(given) > 0 {
		fmt.Fprintf(w, "dry run with values given for the tree's: %s\n", strings.Join(given, " "))
	}
	for _, c := range p.SkipIf {
		printSkipIf(w, g, c, "")
	}
}

// printDerived says which instances instances_from chose, from which listing.
func printDerived(w io.Writer, d *plan.DerivedInstances) {
	listed := ""
	if !d.ListedAt.IsZero() {
		listed = ", listed " + d.ListedAt.UTC().Format(time.RFC3339)
	}
	written := ""
	if len(d.Written) > 0 {
		written = "; declared under instances: " + strings.Join(d.Written, ", ")
	}
	fmt.Fprintf(w, "instances from the branches of %s matching %s, newest %d: %s (%d matching%s%s)\n",
		d.Repo, d.Pattern, d.Newest, orNone(strings.Join(d.Chosen, ", ")), len(d.Matching), listed, written)
	if d.Warning != "" {
		fmt.Fprintf(w, "  warning: %s\n", d.Warning)
	}
}

// printInstance prints one instance of a level: its line, its step's skip_if conditions
// (the first time the step is shown), its expectations and the commands it would run.
func printInstance(w io.Writer, g *plan.Graph, in *plan.Instance, byID map[string]*plan.Instance, shown map[string]bool, tools *executor.Tools) {
	fmt.Fprintf(w, "  %s%s\n", in.ID, details(in, byID))
	if in.Step != nil && !shown[in.Step.ID] {
		shown[in.Step.ID] = true
		for _, c := range in.Step.SkipIf {
			printSkipIf(w, g, c, "      ")
		}
	}
	for _, e := range in.Expects {
		fmt.Fprintf(w, "      expect %q == %q, or fail unrun%s\n", e.That, e.Equals, whyNote(e.Why))
		if e.Failed() != "" {
			fmt.Fprintf(w, "      # does not hold with these values: the run would stop here\n")
		}
	}
	for _, line := range executor.Describe(g.Plan, in, tools) {
		fmt.Fprintf(w, "      %s\n", line)
	}
}

// printSkipIf describes a skip_if condition: the plan's (skipping the run) or a step's
// (skipping that step and what needs it), indented by indent.
func printSkipIf(w io.Writer, g *plan.Graph, c plan.SkipCondition, indent string) {
	p := g.Plan
	what, rest := "the run", "the rest of the run"
	if c.Step != "" {
		what = "step " + c.Step + " and what needs it"
		rest = what
	}
	switch {
	case c.Branch != nil:
		fmt.Fprintf(w, "%sskip %s if branch %s of %s has a commit newer than %s\n", indent, what, c.Branch.Branch, c.Branch.Repo, plan.ShortDuration(c.Branch.Within))
	case c.Image != nil:
		fmt.Fprintf(w, "%sskip %s if image %s was created less than %s ago\n", indent, what, c.Image.Ref, plan.ShortDuration(c.Image.Within))
	case c.Tags != nil && len(c.Tags.After) > 0:
		if refs, ready, err := g.SkipTagRefs(c); ready && err == nil {
			// The values are known (a dry run given them): the exact tags.
			fmt.Fprintf(w, "%sonce %s succeeded, skip %s if every one of these %d tags changed digest less than %s ago (as refreshd saw it):\n",
				indent, strings.Join(c.Tags.After, ", "), rest, len(refs), plan.ShortDuration(c.Tags.Within))
			for _, ref := range refs {
				fmt.Fprintf(w, "%s  %s\n", indent, ref)
			}
			return
		}
		refs, axes := c.Tags.RefPatterns(p)
		fmt.Fprintf(w, "%sonce %s succeeded, skip %s if every one of these tags, for each %s, changed digest less than %s ago (as refreshd saw it):\n",
			indent, strings.Join(c.Tags.After, ", "), rest, strings.Join(axes, " x "), plan.ShortDuration(c.Tags.Within))
		for _, ref := range refs {
			fmt.Fprintf(w, "%s  %s\n", indent, ref)
		}
	case c.Tags != nil:
		fmt.Fprintf(w, "%sskip %s if every one of these %d tags changed digest less than %s ago (as refreshd saw it):\n", indent, what, len(c.Tags.Refs), plan.ShortDuration(c.Tags.Within))
		for _, ref := range c.Tags.Refs {
			fmt.Fprintf(w, "%s  %s\n", indent, ref)
		}
	}
}

// concurrencyNotes says which instances of a level a concurrency cap keeps from running
// all at once: each step group (ConcurrencyKey) with more instances than its step's
// concurrency, and the plan's own cap, so "may run in parallel" is never read unqualified.
func concurrencyNotes(g *plan.Graph, level int) []string {
	var notes []string
	count := map[string]int{}
	var keys []string
	total := 0
	capOf := map[string]int{}
	for _, in := range g.Instances {
		if in.Level != level {
			continue
		}
		total++
		if in.Step == nil || in.Step.Concurrency <= 0 {
			continue
		}
		if count[in.ConcurrencyKey] == 0 {
			keys = append(keys, in.ConcurrencyKey)
		}
		count[in.ConcurrencyKey]++
		capOf[in.ConcurrencyKey] = in.Step.Concurrency
	}
	for _, k := range keys {
		if count[k] > capOf[k] {
			notes = append(notes, fmt.Sprintf("(%s: %s)", k, capNote(capOf[k])))
		}
	}
	if c := g.Plan.Concurrency; c > 0 && total > c {
		notes = append(notes, fmt.Sprintf("(the whole plan: %s)", capNote(c)))
	}
	return notes
}

func capNote(n int) string {
	if n == 1 {
		return "concurrency 1: one after another"
	}
	return fmt.Sprintf("concurrency %d: at most %d at once", n, n)
}

// details summarises what limits an instance: its needs (by step), its concurrency group,
// builder, timeout and retries.
func details(in *plan.Instance, byID map[string]*plan.Instance) string {
	var parts []string
	var needs []string
	for _, n := range in.Needs {
		name := n
		if dep := byID[n]; dep != nil && dep.Step != nil {
			name = dep.Step.ID
		}
		if !slices.Contains(needs, name) {
			needs = append(needs, name)
		}
	}
	if in.Step != nil && in.Step.When.Cleanup() {
		what := "the steps it needs"
		if len(needs) == 0 {
			what = "every other step"
		}
		cond := "whatever happened"
		if in.Step.When == plan.WhenFailure {
			cond = "only if one did not succeed"
		}
		parts = append(parts, fmt.Sprintf("when %s: once %s ended, %s, also after a cancel", in.Step.When, what, cond))
	}
	if len(needs) > 0 {
		parts = append(parts, "after "+strings.Join(needs, ", "))
	}
	if in.Step != nil && len(in.Step.Secrets) > 0 {
		parts = append(parts, "secrets "+strings.Join(in.Step.Secrets, ", "))
	}
	if in.Step != nil && in.Step.Concurrency > 0 {
		parts = append(parts, fmt.Sprintf("concurrency %d in %s", in.Step.Concurrency, in.ConcurrencyKey))
	}
	if in.Builder != "" {
		parts = append(parts, "builder "+in.Builder)
	}
	if in.Timeout > 0 {
		parts = append(parts, "timeout "+plan.ShortDuration(in.Timeout))
	}
	if in.Retry.Attempts > 1 {
		parts = append(parts, fmt.Sprintf("%d attempts", in.Retry.Attempts))
	}
	if len(parts) == 0 {
		return ""
	}
	return "  (" + strings.Join(parts, "; ") + ")"
}

// printPending shows the steps that expand at run time: from the values of which step,
// and which vars.
func printPending(w io.Writer, g *plan.Graph) {
	pending := g.Pending()
	if len(pending) == 0 {
		return
	}
	fmt.Fprintf(w, "\nexpands at run time (the graph grows when a step that defines values succeeds):\n")
	for _, ps := range pending {
		from := "after " + strings.Join(ps.Step.Needs, ", ") + " expanded"
		if len(ps.Waits) > 0 {
			from = "from the values of " + strings.Join(ps.Waits, ", ") + " (" + strings.Join(ps.Vars, ", ") + ")"
		}
		what := ""
		if len(ps.Step.Matrix) > 0 {
			var axes []string
			for _, ax := range ps.Step.Matrix {
				axes = append(axes, ax.Name)
			}
			what = ", matrix over " + strings.Join(axes, " x ")
		}
		fmt.Fprintf(w, "  %s: %s%s\n", ps.Step.ID, from, what)
		for _, c := range ps.Step.SkipIf {
			printSkipIf(w, g, c, "    ")
		}
		for _, e := range ps.Step.Expect {
			fmt.Fprintf(w, "    expect %s == %s, or fail unrun%s\n", e.That, e.Equals, whyNote(e.Why))
		}
	}
}

// printOverrides lists the values an overlay or a --var set, so a staging run's plan is
// never mistaken for the plan as written.
func printOverrides(w io.Writer, p *plan.Plan) {
	if len(p.Overrides) == 0 {
		return
	}
	fmt.Fprintf(w, "overridden (%d values not as the plan file says):\n", len(p.Overrides))
	for _, o := range p.Overrides {
		fmt.Fprintf(w, "  %s = %s  (%s)\n", o.Path, o.Value, o.Pos)
	}
}

func whyNote(why string) string {
	if why == "" {
		return ""
	}
	return ": " + why
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

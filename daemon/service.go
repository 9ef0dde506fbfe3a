package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/refreshd/refreshd/daemon/control"
	"github.com/refreshd/refreshd/daemon/schedule"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/report"
)

// The Daemon is the control socket's Service.
var _ control.Service = (*Daemon)(nil)

// Status implements control.Service.
func (d *Daemon) Status(ctx context.Context) (*control.Status, error) {
	states, err := d.sched.Plans(ctx)
	if err != nil {
		return nil, fmt.Errorf("read schedule: %w", mapErr(err))
	}
	st := &control.Status{PID: os.Getpid(), Version: d.cfg.Version, Started: d.started, PlansDir: d.cfg.PlansDir}
	// One listing of the run headers for every plan, newest first: the first of a plan is
	// its last run.
	last := map[string]*history.Run{}
	if runs, err := d.cfg.Store.Heads("", 0); err == nil {
		for _, r := range runs {
			if last[r.Plan] == nil {
				last[r.Plan] = r
			}
		}
	} else {
		d.log.Warn("read the last runs for status", "err", err)
	}
	for _, s := range states {
		ps := control.PlanStatus{
			Plan: s.Plan, File: s.File, Schedule: s.Schedule, Timezone: s.Timezone, Overlap: s.Overlap,
			Next: s.Next, Running: s.Running, Queued: s.Queued,
		}
		if r := last[s.Plan]; r != nil {
			ps.Last = &control.RunSummary{ID: r.ID, Status: r.Status, End: r.End, Reason: r.Reason}
		}
		st.Plans = append(st.Plans, ps)
	}
	d.mu.Lock()
	st.LoadErrors = append(st.LoadErrors, d.loadErrors...)
	st.LastReload = d.lastReload
	d.mu.Unlock()
	if rec := d.cfg.Store.Recovered(); rec != nil {
		st.StoreRecovered = &control.StoreRecovery{MovedTo: rec.MovedTo, At: rec.At, Error: rec.Err}
	}
	return st, nil
}

// Trigger implements control.Service. The params are checked against the plan before
// anything starts: a bad one is ErrInvalid, naming it. A plan with instances is run by
// instance (PLAN/INSTANCE); its bare name is not found, with the instances listed.
func (d *Daemon) Trigger(ctx context.Context, name string, params map[string]string) (*control.Triggered, error) {
	d.mu.Lock()
	p := d.plans[name]
	var instances []string
	for _, q := range d.plans {
		if q.Base == name && q.Instance != "" {
			instances = append(instances, q.Name)
		}
	}
	d.mu.Unlock()
	if p == nil {
		if len(instances) > 0 {
			slices.Sort(instances)
			return nil, control.Errorf(control.ErrNotFound, "plan %s has instances; run one of %s", name, strings.Join(instances, ", "))
		}
		return nil, mapErr(fmt.Errorf("%w: %q", schedule.ErrUnknownPlan, name))
	}
	resolved, err := p.ResolveParams(params)
	if err != nil {
		return nil, control.Errorf(control.ErrInvalid, "%w", err)
	}
	id, queued, err := d.sched.TriggerWith(ctx, name, resolved)
	if err != nil {
		return nil, mapErr(err)
	}
	d.streams.open(id) // followers may attach before the engine starts it
	// The param names only: a value may be a secret, which the run's record shows masked.
	d.log.Info("manual run requested", "plan", name, "run", id, "queued", queued, "params", slices.Sorted(maps.Keys(params)))
	return &control.Triggered{Run: id, Plan: name, Queued: queued, Params: resolved}, nil
}

// Runs implements control.Service: the runs' headers (history.Store.Heads), each with the
// counts of its steps instead of them; RunRecord has a whole run.
func (d *Daemon) Runs(ctx context.Context, plan string, limit int) ([]*history.Run, error) {
	runs, err := d.cfg.Store.Heads(plan, limit)
	if err != nil {
		return nil, fmt.Errorf("list runs of %q: %w", plan, err)
	}
	return runs, nil
}

// RunRecord implements control.Service. A run that was triggered but has not reached the store
// yet (queued, or starting) is reported as a conflict, not as missing.
func (d *Daemon) RunRecord(ctx context.Context, id string) (*history.Run, error) {
	r, err := d.cfg.Store.Run(id)
	if err == nil && r != nil {
		return r, nil
	}
	if d.streams.get(id) != nil {
		return nil, control.Errorf(control.ErrConflict, "run %s has not started yet", id)
	}
	if err == nil || errors.Is(err, history.ErrNotFound) {
		return nil, control.Errorf(control.ErrNotFound, "no run %q in history", id)
	}
	return nil, fmt.Errorf("read run %q: %w", id, err)
}

// Pins implements control.Service: the constraint history, from the store's index.
func (d *Daemon) Pins(ctx context.Context, q history.PinQuery) ([]history.Pin, error) {
	return d.cfg.Store.Pins(q)
}

// errCancelled is the recorded reason of a run cancelled through the socket.
var errCancelled = errors.New("cancelled by refreshd cancel")

// Cancel implements control.Service. A run that has already ended is a conflict with its
// state (409, naming how it ended), not a missing run.
func (d *Daemon) Cancel(ctx context.Context, id string) error {
	if err := d.sched.CancelCause(ctx, id, errCancelled); err != nil {
		if errors.Is(err, schedule.ErrUnknownRun) {
			if r, rerr := d.cfg.Store.Run(id); rerr == nil && r != nil && r.Status != history.StatusRunning {
				return control.Errorf(control.ErrConflict, "run %s has already ended (%s); there is nothing to cancel", id, r.Status)
			}
		}
		return mapErr(err)
	}
	d.log.Info("run cancel requested", "run", id)
	return nil
}

// Logs implements control.Service: live lines for a run this daemon is running (or ran
// within the last minute), the attempt log files otherwise.
func (d *Daemon) Logs(ctx context.Context, id, step string, follow bool, w control.LineWriter) error {
	st := d.streams.get(id)
	if st == nil {
		return d.logFiles(id, step, w)
	}
	if err := d.checkLiveStep(id, step); err != nil {
		return err
	}
	for from := 0; ; {
		c := d.streams.read(st, from)
		from = c.next
		if c.skipped > 0 {
			// The follower fell behind the buffer: say so, and where the whole output is.
			if err := w.WriteLine(fmt.Sprintf("(%d lines skipped; see refreshd logs %s)", c.skipped, id)); err != nil {
				return err
			}
		}
		for _, l := range c.lines {
			if !report.StepMatches(l.instance, step) {
				continue
			}
			text := l.text
			if step == "" {
				text = l.instance + " | " + text
			}
			if err := w.WriteLine(text); err != nil {
				return err
			}
		}
		if c.done || !follow {
			return nil
		}
		select {
		case <-c.more:
		case <-ctx.Done():
			return nil
		}
	}
}

// checkLiveStep fails, as not found, a step filter that selects nothing of a live run: no
// instance of its record so far, and no step of its plan (instances of a step whose values
// come from the tree appear only once the step giving them has run).
func (d *Daemon) checkLiveStep(id, step string) error {
	if step == "" {
		return nil
	}
	r, err := d.cfg.Store.Run(id)
	if err != nil || r == nil {
		return nil // not recorded yet (queued, starting): nothing to check against
	}
	cerr := report.CheckStep(r, step)
	if cerr == nil {
		return nil
	}
	d.mu.Lock()
	p := d.plans[r.Plan]
	d.mu.Unlock()
	if p != nil {
		for _, s := range p.Steps {
			if report.StepMatches(s.ID, step) || strings.HasPrefix(step, s.ID+"[") {
				return nil
			}
		}
	}
	return control.Errorf(control.ErrNotFound, "%w", cerr)
}

// logFiles writes a finished run's attempt logs, step by step. It streams each file line by
// line, never reading a whole file: a build log can be large and the client reads it as it
// comes.
func (d *Daemon) logFiles(id, step string, w control.LineWriter) error {
	if step != "" {
		// One instance (what the dashboard follows) is found without reading the run.
		if _, st, err := d.cfg.Store.Step(id, step); err == nil && st != nil {
			return copyAttempts(st, false, w)
		}
	}
	r, err := d.RunRecord(context.Background(), id)
	if err != nil {
		return err
	}
	if err := report.CheckStep(r, step); err != nil {
		return control.Errorf(control.ErrNotFound, "%w", err)
	}
	for i := range r.Steps {
		if !report.StepMatches(r.Steps[i].Instance, step) {
			continue
		}
		if err := copyAttempts(&r.Steps[i], step == "", w); err != nil {
			return err
		}
	}
	return nil
}

// copyAttempts writes the log files of s's attempts, each line prefixed with its instance
// when prefix.
func copyAttempts(s *history.Step, prefix bool, w control.LineWriter) error {
	for _, a := range s.Attempts {
		if a.Log == "" {
			continue
		}
		if err := copyLog(a.Log, s.Instance, prefix, w); err != nil {
			return err
		}
	}
	return nil
}

func copyLog(path, instance string, prefix bool, w control.LineWriter) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read log of %s: %w", instance, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if prefix {
			line = instance + " | " + line
		}
		if err := w.WriteLine(line); err != nil {
			return err
		}
	}
	return sc.Err()
}

// mapErr gives scheduler errors the control API's status codes.
func mapErr(err error) error {
	switch {
	case errors.Is(err, schedule.ErrUnknownPlan), errors.Is(err, schedule.ErrUnknownRun):
		return control.Errorf(control.ErrNotFound, "%w", err)
	case errors.Is(err, schedule.ErrRunning):
		return control.Errorf(control.ErrConflict, "%w", err)
	case errors.Is(err, schedule.ErrStopped):
		return control.Errorf(control.ErrStopping, "%w", err)
	}
	return err
}

package daemon

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/refreshd/refreshd/daemon/metrics"
	"github.com/refreshd/refreshd/daemon/schedule"
	"github.com/refreshd/refreshd/executor"
	"github.com/refreshd/refreshd/history"
)

// runner carries out the scheduler's decisions through the engine.
type runner struct{ d *Daemon }

// Run runs one plan through the engine. A panic in the engine fails this run only.
func (r *runner) Run(ctx context.Context, f schedule.Fire) {
	d := r.d
	log := d.log.With("plan", f.Plan.Name, "run", f.RunID)
	defer func() {
		if p := recover(); p != nil {
			log.Error("run panicked", "panic", p, "stack", string(debug.Stack()))
			r.recordFailed(f, fmt.Sprintf("internal error: %v", p))
		}
	}()
	log.Info("run starting", "trigger", f.Trigger, "scheduled", f.Scheduled)
	run, err := d.cfg.Engine.Run(ctx, f.Plan, RunRequest{ID: f.RunID, Trigger: f.Trigger, Scheduled: f.Scheduled, Params: f.Params})
	switch {
	case err != nil && run == nil:
		// The plan did not expand or the store refused the start: still a failed run in
		// history, in the metrics and to the webhooks, not only a log line.
		log.Error("run did not start", "err", err)
		r.recordFailed(f, err.Error())
	case err != nil:
		log.Error("run ended with an error", "status", run.Status, "err", err)
	default:
		log.Info("run ended", "status", run.Status)
	}
}

// recordFailed records f as failed with reason, keeping what the engine had recorded of it,
// and tells the observer so metrics, followers and webhooks see the end.
func (r *runner) recordFailed(f schedule.Fire, reason string) {
	d := r.d
	now := time.Now()
	run := &history.Run{ID: f.RunID, Plan: f.Plan.Name, Trigger: f.Trigger, Scheduled: f.Scheduled,
		Start: now, End: now, Status: history.StatusFailed, Reason: reason, Params: executor.RecordParams(context.Background(), f.Plan, f.Params)}
	if prev, err := d.cfg.Store.Run(f.RunID); err == nil && prev != nil {
		run.Start, run.Steps = prev.Start, prev.Steps
	}
	if err := d.cfg.Store.SaveRun(run); err != nil {
		d.log.Error("record failed run", "plan", f.Plan.Name, "run", f.RunID, "err", err)
	}
	d.Observer().RunFinished(run)
}

// Skipped records a trigger dropped because the plan was running, and counts it as an
// overlap skip (the observer would count it as a skip of another kind; nothing else of
// the observer applies to a trigger that never had a run).
func (r *runner) Skipped(f schedule.Fire, reason string) {
	now := time.Now()
	run := &history.Run{ID: f.RunID, Plan: f.Plan.Name, Trigger: f.Trigger, Scheduled: f.Scheduled,
		Start: now, End: now, Status: history.StatusSkipped, Reason: reason, Params: executor.RecordParams(context.Background(), f.Plan, f.Params)}
	if err := r.d.cfg.Store.SaveRun(run); err != nil {
		r.d.log.Error("record skipped trigger", "plan", f.Plan.Name, "run", f.RunID, "err", err)
	}
	if r.d.metrics != nil {
		r.d.metrics.RunFinished(runEnd(run, metrics.SkipOverlap), false)
	}
}

// Dropped records a queued run that will never start (cancelled, its plan removed by a
// reload, the daemon stopping) as interrupted, and ends its live stream, so `run --wait`
// and `logs -f` on it return instead of waiting for a start that will not come.
// It goes through the observer like every other end: the observer ends its live stream and
// counts it; a run that never started sends no webhook. The scheduler calls Dropped on its
// own goroutine, which is safe: the observer never waits on the scheduler.
func (r *runner) Dropped(f schedule.Fire, cause error) {
	now := time.Now()
	run := &history.Run{ID: f.RunID, Plan: f.Plan.Name, Trigger: f.Trigger, Scheduled: f.Scheduled,
		Start: now, End: now, Status: history.StatusInterrupted, Reason: "dropped before it started: " + cause.Error(), Params: executor.RecordParams(context.Background(), f.Plan, f.Params)}
	if err := r.d.cfg.Store.SaveRun(run); err != nil {
		r.d.log.Error("record dropped run", "plan", f.Plan.Name, "run", f.RunID, "err", err)
	}
	r.d.Observer().RunFinished(run)
	r.d.streams.finish(run.ID) // never started: nothing for the scheduler to release
}

// Released ends the run's live stream once the scheduler has let go of the run, so a
// follower (`run --wait`, `logs -f`) returns only when the plan takes a new trigger; ended
// at RunFinished, a `run --wait P && run P` was refused now and then as overlapping.
func (r *runner) Released(f schedule.Fire) { r.d.streams.finish(f.RunID) }

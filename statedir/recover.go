package statedir

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/proc"
)

// InterruptedReason is the reason recorded on runs an earlier refreshd left running.
const InterruptedReason = "refreshd stopped while the run was running (crash, kill -9 or power loss)"

// recoverGrace is the time between SIGTERM and SIGKILL for groups left by a dead refreshd.
// It is shorter than a step's kill_grace: nothing waits for these steps any more, and the
// new refreshd should not start its own runs while they still push.
const recoverGrace = 5 * time.Second

// Recover is what refreshd does at start-up, holding the state directory lock, before it
// runs anything: it stops the process groups an earlier refreshd left running (it was killed
// with kill -9, or crashed; Pdeathsig killed only each leader): those of open attempts (a
// step's argv, git, docker buildx, buildctl) and the run's own (skip_if's git). It then marks
// those runs interrupted, and reconciles each publish that had handed a commit to git push
// with the branch (reconcilePublishes). It returns the ids of the runs marked.
//
// A recorded group is signalled only when it is still the same group (proc.Group.Left,
// conservative about pid reuse). The run's own group (skip_if's git) is checked like each
// open attempt's.
//
// The group gets SIGTERM, then SIGKILL after a short grace. Failing to stop a group is
// logged, not returned: the runs are marked interrupted regardless.
func (d Dir) Recover(ctx context.Context, store *history.Store, o Options) ([]string, error) {
	o.defaults()
	logger := o.Log
	runs, err := store.Runs("", 0)
	if err != nil {
		return nil, fmt.Errorf("find runs left running: %w", err)
	}
	boot := proc.BootID()
	for _, r := range runs {
		if r.Status != history.StatusRunning {
			continue
		}
		d.replayJournal(store, r, logger)
		log := logger.With("plan", r.Plan, "run", r.ID)
		if g := r.Process; g != nil {
			stopLeft(ctx, log, proc.Group{PGID: g.PGID, StartTicks: g.StartTicks, BootID: g.BootID}, boot)
		}
		for _, s := range r.Steps {
			for _, a := range s.Attempts {
				if a.PGID <= 0 || !a.End.IsZero() {
					continue
				}
				g := proc.Group{PGID: a.PGID, StartTicks: a.StartTicks, BootID: a.BootID}
				stopLeft(ctx, log.With("step", s.Instance, "attempt", a.N), g, boot)
			}
		}

	}
	d.restoreOutcomes(store, runs, logger)
	ids, err := store.InterruptRunning(InterruptedReason)
	if err != nil {
		return nil, err
	}
	d.reconcilePublishes(ctx, store, append(slices.Clone(ids), cutPushes(runs)...), o)
	return ids, nil
}

// cutPushes are the runs a stop interrupted during a push that did not end in the time it
// was given (git.Options.PushGrace): recorded interrupted, with a commit handed to git
// push, none recorded published and no reconciliation yet. The remote may have taken the
// commit after the stop; the next start settles them like the runs a kill left running.
func cutPushes(runs []*history.Run) []string {
	var ids []string
	for _, r := range runs {
		if r.Status != history.StatusInterrupted {
			continue
		}
		for _, s := range r.Steps {
			if p := s.Publish; p != nil && s.Status == history.StatusInterrupted && p.Pushing != "" && p.Commit == "" && p.Reconciled == "" {
				ids = append(ids, r.ID)
				break
			}
		}
	}
	return ids
}

// stopLeft stops group g if it is still the one an earlier refreshd recorded (Group.Left).
// Failing to stop it is logged: the run is marked interrupted regardless.
func stopLeft(ctx context.Context, log *slog.Logger, g proc.Group, boot string) {
	log = log.With("pgid", g.PGID)
	why := g.Left(boot)
	if why == "" {
		log.Debug("process group left by an earlier refreshd is gone")
		return
	}
	log.Warn("stopping process group left running by an earlier refreshd", "found", why, "grace", recoverGrace)
	if err := proc.StopGroup(ctx, g.PGID, recoverGrace); err != nil {
		log.Error("stop process group left running by an earlier refreshd", "err", err)
	}
}

// restoreOutcomes records the end of each run left running whose outcome file says how it
// ended (the store could not record it then): its status and reason, with a note saying
// where they came from, and its unfinished steps interrupted.
func (d Dir) restoreOutcomes(store *history.Store, runs []*history.Run, log *slog.Logger) {
	for _, r := range runs {
		if r.Status != history.StatusRunning {
			continue
		}
		o, err := d.ReadOutcome(r.ID)
		if err != nil {
			log.Error("read the outcome file of a run left running", "run", r.ID, "err", err)
			continue
		}
		if o == nil {
			continue
		}
		reason := o.Reason
		note := fmt.Sprintf("recorded at the next start from %s: the store could not record the run's end (%s)", d.Outcome(r.ID), o.StoreError)
		if reason != "" {
			reason += "; "
		}
		if err := store.Finish(r.ID, o.Status, reason+note, o.End); err != nil {
			log.Error("record the outcome of a run left running", "run", r.ID, "err", err)
			continue
		}
		log.Warn("restored the end of a run the store could not record", "run", r.ID, "status", o.Status)
	}
}

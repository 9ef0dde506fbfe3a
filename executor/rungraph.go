package executor

import (
	"context"
	"fmt"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/plan"
)

// DefaultCleanupBound bounds a when: failure/always step that sets no timeout once the run
// it belongs to was cancelled, interrupted or timed out: cleanup must not hold a stopping
// daemon for ever.
const DefaultCleanupBound = time.Minute

// scheduler runs one run's graph. It owns the graph (g, which grows in stages: stages.go),
// the index of its instances (idx), where each instance is (state, result, bad), the
// budgets (nRunning, perKey), a stage that could not expand (stageErr) and why the rest of
// the run is skipped (skipRest). All of it belongs to one goroutine, the run's: execute
// makes it, skipAll and run run on it, and nothing else reads it. So it has no lock:
// instances run on goroutines of their own, are handed their *plan.Instance (never an index
// into the growing list), and report back on results; what they record goes through the
// recorder, which has its own lock.
type scheduler struct {
	env   *runEnv
	g     *plan.Graph
	rec   *recorder
	skips *skipDecider
	// runInstance runs instance i to its end (runState.runInstance) on an instance's
	// goroutine.
	runInstance func(ctx context.Context, i int, inst *plan.Instance) finished

	idx map[string]int // instance id -> index in g.Instances and the record's steps

	ctx     context.Context // the run's; set by run
	results chan finished

	insts  []*plan.Instance
	state  []int
	result []history.Status
	// bad says, per instance, whether it counts against the run (run's result).
	bad                 []bool
	perKey              map[string]int // running instances per ConcurrencyKey
	nRunning, remaining int
	followsMemo         map[int][]int
	// skipRest is set when a skip_if decided at run time held: why, for the steps not started.
	skipRest string
	// stageErr is a stage that could not expand; the run fails with it.
	stageErr error
}

// newScheduler is the scheduler of g, whose instances are the record's first steps.
func newScheduler(env *runEnv, g *plan.Graph, rec *recorder, skips *skipDecider, runInstance func(context.Context, int, *plan.Instance) finished) *scheduler {
	sc := &scheduler{env: env, g: g, rec: rec, skips: skips, runInstance: runInstance,
		idx: make(map[string]int, len(g.Instances)), results: make(chan finished), perKey: map[string]int{}, followsMemo: map[int][]int{}}
	for i, inst := range g.Instances {
		sc.idx[inst.ID] = i
	}
	return sc
}

// run runs the graph's instances: each starts as soon as all its needs succeeded,
// within the plan-wide concurrency and its ConcurrencyKey's budget (the step's
// concurrency), in graph order among those ready. An instance whose need did not succeed
// is skipped with the reason, and so, in turn, are its dependents; independent branches go
// on. Once ctx is done nothing new starts but cleanup steps, running instances are stopped
// by ctx, and instances never started are recorded interrupted.
//
// Cleanup steps (when: failure or always) wait until what they follow has ended (their
// needs; without needs, every other step of the run), whatever the outcome, and then run
// (always) or run only if something they follow did not succeed or the run was cancelled
// (failure). They run on a context of their own, so a cancel, SIGTERM or plan timeout
// does not stop them; once the run's context is done they are bounded by cleanupBound.
//
// It returns, per instance, whether it counts against the run: false for an instance that
// succeeded, or was skipped only because a when: condition did not hold (a failure step
// when nothing failed, and what needs it).
//
// When a step that defines run-time values succeeds, the steps using them are expanded
// here (stages.go) and join the scheduling before anything else starts.
func (sc *scheduler) run(ctx context.Context) (bad []bool) {
	sc.ctx = ctx
	sc.grow(len(sc.g.Instances))
	for sc.remaining > 0 {
		sc.startReady()
		if sc.nRunning == 0 {
			break // nothing can ever start, which an acyclic graph rules out
		}
		sc.finish(<-sc.results)
	}
	for i := range sc.insts {
		if sc.state[i] == waiting {
			sc.bad[i] = true
			sc.rec.update(i, func(s *history.Step) {
				s.Status, s.Reason = history.StatusInterrupted, "run ended before the step started"
			})
		}
	}
	why := ""
	switch {
	case sc.skipRest != "":
		why = sc.skipRest
	case sc.stageErr != nil:
		why = "not expanded: " + sc.stageErr.Error()
	case ctx.Err() != nil:
		why = "run ended before the step expanded"
	case sc.env.spec.DryRun:
		why = "dry run: expands at run time, from values the dry run does not produce"
	}
	sc.recordPending(why)
	return sc.bad
}

// skipAll marks every waiting step skipped with reason, and the steps that would have
// expanded at run time too: the run ends before its graph starts.
func (sc *scheduler) skipAll(reason string) {
	for i := range sc.g.Instances {
		sc.rec.update(i, func(s *history.Step) {
			if s.Status == history.StatusWaiting {
				s.Status, s.Reason = history.StatusSkipped, reason
			}
		})
	}
	sc.recordPending(reason)
}

// Where an instance is in the run (scheduler.state).
const (
	waiting = iota
	running
	done
)

// finished is an instance's end, sent back by the goroutine that ran it: its status and,
// for a step with outputs: that succeeded, the values it defined.
type finished struct {
	i      int
	status history.Status
	values map[string]plan.Var
}

// grow takes in n instances the graph gained (all of them at the start).
func (sc *scheduler) grow(n int) {
	sc.insts = sc.g.Instances
	sc.state = append(sc.state, make([]int, n)...)
	sc.result = append(sc.result, make([]history.Status, n)...)
	sc.bad = append(sc.bad, make([]bool, n)...)
	sc.remaining += n
	clear(sc.followsMemo) // a cleanup step without needs follows the new instances too
}

// follows is what instance i waits for: its needs, or for a cleanup step without needs,
// every instance that is not a cleanup step and does not depend on it.
func (sc *scheduler) follows(i int) []int {
	if out, ok := sc.followsMemo[i]; ok {
		return out
	}
	var out []int
	if len(sc.insts[i].Needs) == 0 && when(sc.insts[i]).Cleanup() {
		after := sc.dependents(i)
		for j := range sc.insts {
			if !when(sc.insts[j]).Cleanup() && !after[j] {
				out = append(out, j)
			}
		}
	} else {
		for _, need := range sc.insts[i].Needs {
			out = append(out, sc.idx[need])
		}
	}
	sc.followsMemo[i] = out
	return out
}

// canStart reports whether instance i may start now, or, when it never will, why.
// neutral says the skip is not a failure: a when: condition that did not hold.
func (sc *scheduler) canStart(i int) (ready bool, skipReason string, neutral bool) {
	inst, idx := sc.insts[i], sc.idx
	for _, need := range inst.Needs {
		if _, ok := idx[need]; !ok {
			return false, "needs " + need + ", which is not in the graph", false
		}
	}
	w := when(inst)
	if !w.Cleanup() {
		for _, need := range inst.Needs {
			j := idx[need]
			if sc.state[j] == done && sc.result[j] != history.StatusSucceeded {
				why := "needs " + need + " which " + outcome(sc.result[j])
				if st := sc.insts[j].Step; st != nil && sc.result[j] == history.StatusSkipped && sc.skips.stepSkipped(st.ID) != "" {
					why += ": its skip_if held (" + st.ID + " is fresh)"
				}
				return false, why, !sc.bad[j]
			}
		}
		for _, need := range inst.Needs {
			if sc.state[idx[need]] != done {
				return false, "", false
			}
		}
		return sc.ctx.Err() == nil, "", false
	}
	var failed string
	for _, j := range sc.follows(i) {
		if sc.state[j] != done {
			return false, "", false
		}
		if sc.bad[j] && failed == "" {
			failed = sc.insts[j].ID
		}
	}
	if w == plan.WhenFailure && failed == "" && sc.ctx.Err() == nil {
		return false, "when: failure, and nothing it follows failed", true
	}
	return true, "", false
}

// after says what a cleanup step ran after, for its record.
func (sc *scheduler) after(i int) string {
	if sc.ctx.Err() != nil {
		_, why := sc.env.ended(sc.ctx)
		return "the run ended: " + why
	}
	for _, j := range sc.follows(i) {
		if sc.bad[j] {
			return sc.insts[j].ID + " " + outcome(sc.result[j])
		}
	}
	return "everything it follows succeeded"
}

// settle ends instance i without running it.
func (sc *scheduler) settle(i int, status history.Status, reason string, bad bool) {
	sc.state[i], sc.result[i], sc.bad[i] = done, status, bad
	sc.remaining--
	sc.rec.update(i, func(s *history.Step) { s.Status, s.Reason = status, reason })
}

// startReady settles what can no longer run and starts what may, in passes until nothing
// changes: a skip can make dependents skippable in turn.
func (sc *scheduler) startReady() {
	for changed := true; changed; {
		changed = false
		for i, inst := range sc.insts {
			if sc.state[i] != waiting {
				continue
			}
			cleanup := when(inst).Cleanup()
			switch {
			case sc.ctx.Err() != nil && !cleanup:
				sc.settle(i, history.StatusInterrupted, "run ended before the step started", true)
				changed = true
				continue
			case sc.skipRest != "" && !cleanup:
				// The outputs are fresh: the rest of the run is not needed. Not a failure,
				// so when: failure steps do not run and when: always steps do.
				sc.settle(i, history.StatusSkipped, sc.skipRest, false)
				changed = true
				continue
			case inst.Step != nil && sc.skips.stepSkipped(inst.Step.ID) != "" && !cleanup:
				// The step's own skip_if held: it is skipped, not failed, and what needs it
				// is skipped in turn (canStart), while the rest of the run goes on.
				sc.settle(i, history.StatusSkipped, SkipIfReasonPrefix+sc.skips.stepSkipped(inst.Step.ID), false)
				sc.env.log.Info("step skipped: its skip_if held", "step", inst.ID)
				changed = true
				continue
			}
			ready, skip, neutral := sc.canStart(i)
			if skip != "" {
				sc.settle(i, history.StatusSkipped, skip, !neutral)
				sc.env.log.Info("step skipped", "step", inst.ID, "reason", skip)
				changed = true
				continue
			}
			if !ready {
				continue
			}
			if c := sc.g.Plan.Concurrency; c > 0 && sc.nRunning >= c {
				break
			}
			if c := stepConcurrency(inst); c > 0 && sc.perKey[inst.ConcurrencyKey] >= c {
				continue
			}
			sc.start(i)
		}
	}
}

// start runs instance i in a goroutine that reports back on results. A cleanup step runs on
// a context of its own (cleanupContext).
func (sc *scheduler) start(i int) {
	inst := sc.insts[i]
	sc.state[i] = running
	sc.nRunning++
	sc.perKey[inst.ConcurrencyKey]++
	if !when(inst).Cleanup() {
		go func() { sc.results <- sc.runInstance(sc.ctx, i, inst) }()
		return
	}
	why := sc.after(i)
	sc.rec.update(i, func(s *history.Step) { s.After = why })
	sc.env.log.Info("cleanup step starting", "step", inst.ID, "when", when(inst), "after", sc.env.red.String(why))
	cctx, cancel := sc.cleanupContext(sc.ctx, inst)
	go func() {
		defer cancel()
		sc.results <- sc.runInstance(cctx, i, inst)
	}()
}

// finish records an instance's end. When it defined values (outputs:, or the source a
// checkout fetched), the steps using them are expanded now and join the scheduling, and a
// skip_if over them is decided, before anything else starts.
func (sc *scheduler) finish(f finished) {
	sc.state[f.i], sc.result[f.i] = done, f.status
	sc.bad[f.i] = f.status != history.StatusSucceeded
	sc.nRunning--
	sc.perKey[sc.insts[f.i].ConcurrencyKey]--
	sc.remaining--
	st := sc.insts[f.i].Step
	if f.status != history.StatusSucceeded || st == nil || (st.Outputs == nil && st.Checkout == nil) || sc.stageErr != nil {
		return
	}
	n, err := sc.extend(st, f.values)
	if err != nil {
		sc.stageErr = err
		sc.env.log.Error("run-time expansion failed", "from", st.ID, "err", err)
		return
	}
	if why, skip := sc.skips.lateSkip(sc.ctx); skip {
		sc.skipRest = SkipIfReasonPrefix + why
	}
	if n > 0 {
		sc.grow(n)
	}
}

// dependents returns the instances that need instance i, directly or not.
func (sc *scheduler) dependents(i int) map[int]bool {
	insts := sc.g.Instances
	out := map[int]bool{i: true}
	// Graph order is topological: one pass in order finds every dependent.
	for j, inst := range insts {
		for _, need := range inst.Needs {
			if out[sc.idx[need]] {
				out[j] = true
				break
			}
		}
	}
	delete(out, i)
	return out
}

// when is an instance's when: condition; built-in instances without a step (provision)
// run on success.
func when(inst *plan.Instance) plan.When {
	if inst.Step == nil || inst.Step.When == "" {
		return plan.WhenSuccess
	}
	return inst.Step.When
}

// cleanupContext is the context a cleanup step runs in: not cancelled with the run's ctx
// (a cancel, SIGTERM or the plan's timeout is exactly when cleanup must still happen), but
// once ctx is done, bounded by cleanupBound.
func (sc *scheduler) cleanupContext(ctx context.Context, inst *plan.Instance) (context.Context, context.CancelFunc) {
	cctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	bound := sc.cleanupBound(inst)
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(bound, func() {
			cancel(fmt.Errorf("cleanup step stopped %s after the run ended (its bound: the step's timeout, else %s, within the daemon's stop budget)", bound, DefaultCleanupBound))
		})
		context.AfterFunc(cctx, func() { t.Stop() })
	})
	return cctx, func() { stop(); cancel(nil) }
}

// cleanupBound is how long a cleanup step may still run once the run's context is done:
// its own timeout, else DefaultCleanupBound, capped by Config.MaxKillGrace (a daemon being
// stopped has only so long before systemd kills it).
func (sc *scheduler) cleanupBound(inst *plan.Instance) time.Duration {
	b := DefaultCleanupBound
	if inst.Timeout > 0 {
		b = inst.Timeout
	}
	if m := sc.env.e.cfg.MaxKillGrace; m > 0 && b > m {
		b = m
	}
	return b
}

func outcome(s history.Status) string {
	switch s {
	case history.StatusFailed:
		return "failed"
	case history.StatusSkipped:
		return "was skipped"
	case history.StatusInterrupted:
		return "was interrupted"
	}
	return "ended " + string(s)
}

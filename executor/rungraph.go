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

// schedule runs the graph's instances: each starts as soon as all its needs succeeded,
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
// One goroutine (this one) owns the scheduling state, and the graph: when a step that
// defines run-time values succeeds, the steps using them are expanded here (stages.go) and
// join the scheduling before anything else starts. Instances report back on a channel.
func (rs *runState) schedule(ctx context.Context) (bad []bool) {
	insts := rs.g.Instances
	const (
		waiting = iota
		running
		done
	)
	state := make([]int, len(insts))
	result := make([]history.Status, len(insts))
	bad = make([]bool, len(insts))
	perKey := map[string]int{}
	type finished struct {
		i      int
		status history.Status
	}
	results := make(chan finished)
	nRunning, remaining := 0, len(insts)
	skipRest := "" // set when a skip_if decided at run time held: why, for the steps not started

	// follows is what instance i waits for: its needs, or for a cleanup step without
	// needs, every instance that is not a cleanup step and does not depend on it.
	followsMemo := map[int][]int{}
	follows := func(i int) []int {
		if out, ok := followsMemo[i]; ok {
			return out
		}
		var out []int
		if len(insts[i].Needs) == 0 && when(insts[i]).Cleanup() {
			after := rs.dependents(i)
			for j := range insts {
				if !when(insts[j]).Cleanup() && !after[j] {
					out = append(out, j)
				}
			}
		} else {
			for _, need := range insts[i].Needs {
				out = append(out, rs.idx[need])
			}
		}
		followsMemo[i] = out
		return out
	}

	// canStart reports whether instance i may start now, or, when it never will, why.
	// neutral says the skip is not a failure: a when: condition that did not hold.
	canStart := func(i int) (ready bool, skipReason string, neutral bool) {
		for _, need := range insts[i].Needs {
			if _, ok := rs.idx[need]; !ok {
				return false, "needs " + need + ", which is not in the graph", false
			}
		}
		w := when(insts[i])
		if !w.Cleanup() {
			for _, need := range insts[i].Needs {
				j := rs.idx[need]
				if state[j] == done && result[j] != history.StatusSucceeded {
					return false, "needs " + need + " which " + outcome(result[j]), !bad[j]
				}
			}
			for _, need := range insts[i].Needs {
				if state[rs.idx[need]] != done {
					return false, "", false
				}
			}
			if ctx.Err() != nil {
				return false, "", false
			}
			return true, "", false
		}
		var failed string
		for _, j := range follows(i) {
			if state[j] != done {
				return false, "", false
			}
			if bad[j] && failed == "" {
				failed = insts[j].ID
			}
		}
		if w == plan.WhenFailure && failed == "" && ctx.Err() == nil {
			return false, "when: failure, and nothing it follows failed", true
		}
		return true, "", false
	}

	// after says what a cleanup step ran after, for its record.
	after := func(i int) string {
		if ctx.Err() != nil {
			_, why := rs.ended(ctx)
			return "the run ended: " + why
		}
		for _, j := range follows(i) {
			if bad[j] {
				return insts[j].ID + " " + outcome(result[j])
			}
		}
		return "everything it follows succeeded"
	}

	for remaining > 0 {
		// Passes until nothing changes: a skip can make dependents skippable in turn.
		for changed := true; changed; {
			changed = false
			for i, inst := range insts {
				if state[i] != waiting {
					continue
				}
				if ctx.Err() != nil && !when(inst).Cleanup() {
					state[i], result[i], bad[i] = done, history.StatusInterrupted, true
					remaining--
					rs.update(i, func(s *history.Step) {
						s.Status, s.Reason = history.StatusInterrupted, "run ended before the step started"
					})
					changed = true
					continue
				}
				if skipRest != "" && !when(inst).Cleanup() {
					// The outputs are fresh: the rest of the run is not needed. Not a failure,
					// so when: failure steps do not run and when: always steps do.
					state[i], result[i] = done, history.StatusSkipped
					remaining--
					rs.update(i, func(s *history.Step) { s.Status, s.Reason = history.StatusSkipped, skipRest })
					changed = true
					continue
				}
				ready, skip, neutral := canStart(i)
				if skip != "" {
					state[i], result[i], bad[i] = done, history.StatusSkipped, !neutral
					remaining--
					rs.update(i, func(s *history.Step) { s.Status, s.Reason = history.StatusSkipped, skip })
					rs.log.Info("step skipped", "step", inst.ID, "reason", skip)
					changed = true
					continue
				}
				if !ready {
					continue
				}
				if c := rs.p.Concurrency; c > 0 && nRunning >= c {
					break
				}
				if c := stepConcurrency(inst); c > 0 && perKey[inst.ConcurrencyKey] >= c {
					continue
				}
				state[i] = running
				nRunning++
				perKey[inst.ConcurrencyKey]++
				if !when(inst).Cleanup() {
					go func() { results <- finished{i, rs.runInstance(ctx, i, inst)} }()
					continue
				}
				why := after(i)
				rs.update(i, func(s *history.Step) { s.After = why })
				rs.log.Info("cleanup step starting", "step", inst.ID, "when", when(inst), "after", rs.red.String(why))
				cctx, cancel := rs.cleanupContext(ctx, inst)
				go func() {
					defer cancel()
					results <- finished{i, rs.runInstance(cctx, i, inst)}
				}()
			}
		}
		if nRunning == 0 {
			break // nothing can ever start, which an acyclic graph rules out
		}
		f := <-results
		state[f.i], result[f.i] = done, f.status
		bad[f.i] = f.status != history.StatusSucceeded
		nRunning--
		perKey[insts[f.i].ConcurrencyKey]--
		remaining--
		if st := insts[f.i].Step; f.status == history.StatusSucceeded && st != nil && (st.Outputs != nil || st.Checkout != nil) && rs.stageErr == nil {
			n, err := rs.extend(st)
			if err != nil {
				rs.stageErr = err
				rs.log.Error("run-time expansion failed", "from", st.ID, "err", err)
				continue
			}
			// A skip_if over tags named from these values is decided now, before anything
			// expanded from them starts.
			if why, skip := rs.lateSkip(ctx); skip {
				skipRest = SkipIfReasonPrefix + why
			}
			if n > 0 {
				insts = rs.g.Instances
				state = append(state, make([]int, n)...)
				result = append(result, make([]history.Status, n)...)
				bad = append(bad, make([]bool, n)...)
				remaining += n
				clear(followsMemo) // a cleanup step without needs follows the new instances too
			}
		}
	}
	for i := range insts {
		if state[i] == waiting {
			bad[i] = true
			rs.update(i, func(s *history.Step) {
				s.Status, s.Reason = history.StatusInterrupted, "run ended before the step started"
			})
		}
	}
	why := ""
	switch {
	case skipRest != "":
		why = skipRest
		rs.mu.Lock()
		rs.skipped = skipRest
		rs.mu.Unlock()
	case rs.stageErr != nil:
		why = "not expanded: " + rs.stageErr.Error()
	case ctx.Err() != nil:
		why = "run ended before the step expanded"
	case rs.spec.DryRun:
		why = "dry run: expands at run time, from values the dry run does not produce"
	}
	rs.recordPending(why)
	return bad
}

// dependents returns the instances that need instance i, directly or not.
func (rs *runState) dependents(i int) map[int]bool {
	insts := rs.g.Instances
	out := map[int]bool{i: true}
	// Graph order is topological: one pass in order finds every dependent.
	for j, inst := range insts {
		for _, need := range inst.Needs {
			if out[rs.idx[need]] {
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
func (rs *runState) cleanupContext(ctx context.Context, inst *plan.Instance) (context.Context, context.CancelFunc) {
	cctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	bound := rs.cleanupBound(inst)
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
func (rs *runState) cleanupBound(inst *plan.Instance) time.Duration {
	b := DefaultCleanupBound
	if inst.Timeout > 0 {
		b = inst.Timeout
	}
	if m := rs.e.cfg.MaxKillGrace; m > 0 && b > m {
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

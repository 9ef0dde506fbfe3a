package executor

import (
	"context"

	"github.com/refreshd/refreshd/history"
)

// schedule runs the graph's instances: each starts as soon as all its needs succeeded,
// within the plan-wide concurrency and its ConcurrencyKey's budget (the step's
// concurrency), in graph order among those ready. An instance whose need did not succeed
// is skipped with the reason, and so, in turn, are its dependents; independent branches go
// on. Once ctx is done nothing new starts, running instances are stopped by ctx, and
// instances never started are recorded interrupted.
//
// One goroutine (this one) owns the scheduling state; instances report back on a channel.
func (rs *runState) schedule(ctx context.Context) {
	insts := rs.g.Instances
	const (
		waiting = iota
		running
		done
	)
	state := make([]int, len(insts))
	result := make([]history.Status, len(insts))
	perKey := map[string]int{}
	type finished struct {
		i      int
		status history.Status
	}
	results := make(chan finished)
	nRunning, remaining := 0, len(insts)

	// canStart reports whether instance i may start now, or, for a need that did not
	// succeed, why it never will.
	canStart := func(i int) (ready bool, skipReason string) {
		for _, need := range insts[i].Needs {
			j, ok := rs.idx[need]
			if !ok {
				return false, "needs " + need + ", which is not in the graph"
			}
			if state[j] == done && result[j] != history.StatusSucceeded {
				return false, "needs " + need + " which " + outcome(result[j])
			}
		}
		for _, need := range insts[i].Needs {
			if state[rs.idx[need]] != done {
				return false, ""
			}
		}
		return true, ""
	}

	for remaining > 0 {
		// Passes until nothing changes: a skip can make dependents skippable in turn.
		for changed := ctx.Err() == nil; changed; {
			changed = false
			for i, inst := range insts {
				if state[i] != waiting {
					continue
				}
				ready, skip := canStart(i)
				if skip != "" {
					state[i], result[i] = done, history.StatusSkipped
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
				go func() { results <- finished{i, rs.runInstance(ctx, i)} }()
			}
		}
		if nRunning == 0 {
			break // cancelled (or nothing can ever start, which an acyclic graph rules out)
		}
		f := <-results
		state[f.i], result[f.i] = done, f.status
		nRunning--
		perKey[insts[f.i].ConcurrencyKey]--
		remaining--
	}
	for i := range insts {
		if state[i] == waiting {
			rs.update(i, func(s *history.Step) {
				s.Status, s.Reason = history.StatusInterrupted, "run ended before the step started"
			})
		}
	}
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

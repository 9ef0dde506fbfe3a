package executor

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/refreshd/refreshd/executor/gitpub"
	"github.com/refreshd/refreshd/plan"
	"github.com/refreshd/refreshd/proc"
)

// SkipIfReasonPrefix starts the recorded reason of a run skipped because a skip_if
// condition held (the output was fresh): the daemon counts such skips as fresh.
const SkipIfReasonPrefix = "skip_if: "

// checkSkip reports whether a run should be skipped because the project's CI refreshed
// recently: a constraints branch whose last commit, or an image whose config `created`, is
// newer than the condition's window. The first condition that holds gives the reason.
//
// A condition that cannot be checked (image missing, branch unreachable) counts as "not
// fresh": skip_if only saves work, so not knowing means doing the refresh, never failing it.
// Each such condition is a warning, returned for the run's record and logged to log.
//
// procs starts git (the run's runner: its groups are recorded on the run).
func (t *Tools) checkSkip(ctx context.Context, g *plan.Graph, secrets map[string]string, procs *proc.Runner, log *slog.Logger) (skip bool, reason string, warnings []string) {
	now := time.Now()
	for _, c := range g.Plan.SkipIf {
		var at time.Time
		var within time.Duration
		var what, how string
		var err error
		switch {
		case c.Branch != nil:
			env := append([]string{"GIT_TERMINAL_PROMPT=0"}, gitpub.TokenEnv(branchToken(g, c.Branch.Repo, secrets))...)
			at, err = gitpub.LastCommitTime(ctx, procs, c.Branch.Repo, c.Branch.Branch, env)
			within, what, how = c.Branch.Within, "branch "+c.Branch.Branch, "last commit"
		case c.Image != nil:
			at, err = t.registryClient(log).ImageCreated(ctx, c.Image.Ref)
			within, what, how = c.Image.Within, "image "+c.Image.Ref, "created"
		default:
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return false, "", warnings // the caller records the interruption
			}
			w := fmt.Sprintf("skip_if at %s: cannot tell whether %s is fresh, refreshing: %v", c.Pos, what, err)
			log.Warn("skip_if condition could not be checked; treated as not fresh", "pos", c.Pos.String(), "err", err)
			warnings = append(warnings, w)
			continue
		}
		if age := now.Sub(at); age < within {
			return true, fmt.Sprintf("%s %s %s ago (%s), within %s", what, how, age.Round(time.Second), at.UTC().Format(time.RFC3339), within), warnings
		}
	}
	return false, "", warnings
}

// branchToken is the token for reading a skip_if branch: that of a publish_constraints step
// of the plan pushing to the same repository (the branch skip_if watches is usually the one
// the plan publishes), or "" when none has one. The plan schema needs no key of its own.
func branchToken(g *plan.Graph, repo string, secrets map[string]string) string {
	for _, inst := range g.Instances {
		if act, ok := inst.Action.(*plan.PublishAction); ok && act.Repo == repo && act.Token != "" {
			return secrets[act.Token]
		}
	}
	return ""
}

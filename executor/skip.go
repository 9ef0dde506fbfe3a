package executor

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/refreshd/refreshd/executor/gitpub"
	"github.com/refreshd/refreshd/history"
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
func (t *Tools) checkSkip(ctx context.Context, g *plan.Graph, conds []plan.SkipCondition, secrets map[string]string, procs *proc.Runner, tags tagObserver, log *slog.Logger) (skip bool, reason string, warnings []string) {
	now := time.Now()
	for _, c := range conds {
		var at time.Time
		var within time.Duration
		var what, how string
		var err error
		switch {
		case c.Tags != nil:
			fresh, why, warn := t.checkTags(ctx, c, c.Tags.Refs, tags, now, log)
			if ctx.Err() != nil {
				return false, "", warnings
			}
			if warn != "" {
				warnings = append(warnings, warn)
			}
			if fresh {
				return true, why, warnings
			}
			log.Info("skip_if tags: not fresh", "pos", c.Pos.String(), "why", why)
			continue
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

// decideSkip checks the skip_if conditions that can be decided before any step runs (all
// but tags conditions over values a step defines at run time: lateSkip decides those).
func (rs *runState) decideSkip(ctx context.Context) (skip bool, why string) {
	var conds []plan.SkipCondition
	for _, c := range rs.p.SkipIf {
		if c.Tags != nil && len(c.Tags.After) > 0 {
			continue // lateSkip's
		}
		conds = append(conds, c)
	}
	skip, why, warnings := rs.tools.checkSkip(ctx, rs.g, conds, rs.secrets, rs.runProcs(), rs.e.cfg.Store, rs.log)
	rs.warn(warnings...)
	return skip, why
}

// lateSkip decides each tags condition whose refs name run-time values, as soon as the
// steps defining them have delivered (it runs after each stage of the graph expands). It
// reports why when one holds: every watched tag, of every value the tree gave, is fresh.
// A condition whose refs cannot be made from the values cannot be checked: a warning, and
// the run goes on, as for any skip_if it cannot check.
func (rs *runState) lateSkip(ctx context.Context) (why string, skip bool) {
	for i, c := range rs.p.SkipIf {
		if rs.decided[i] || c.Tags == nil || len(c.Tags.After) == 0 {
			continue
		}
		refs, ready, err := rs.g.SkipTagRefs(c)
		if !ready {
			continue
		}
		rs.decided[i] = true
		if err != nil {
			rs.warn(fmt.Sprintf("skip_if at %s: cannot tell whether the tags are fresh, refreshing: %v", c.Pos, err))
			continue
		}
		fresh, why, warn := rs.tools.checkTags(ctx, c, refs, rs.e.cfg.Store, time.Now(), rs.log)
		if warn != "" {
			rs.warn(warn)
		}
		if ctx.Err() != nil {
			return "", false
		}
		if fresh {
			rs.log.Info("skip_if tags: fresh; the rest of the run is skipped", "pos", c.Pos.String(), "after", strings.Join(c.Tags.After, ","), "tags", len(refs))
			return why, true
		}
		rs.log.Info("skip_if tags: not fresh", "pos", c.Pos.String(), "after", strings.Join(c.Tags.After, ","), "tags", len(refs), "why", why)
	}
	return "", false
}

// warn adds warnings to the run's record.
func (rs *runState) warn(warnings ...string) {
	if len(warnings) == 0 {
		return
	}
	rs.mu.Lock()
	rs.rec.Warnings = append(rs.rec.Warnings, warnings...)
	rs.mu.Unlock()
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

// tagObserver is the store of watched tags (history.Store.ObserveTag).
type tagObserver interface {
	ObserveTag(ref, digest string, at time.Time) (history.Tag, error)
}

// checkTags looks up every ref of a tags condition in the registry, records its digest in
// the store, and reports the condition fresh when every ref's digest changed within the
// window. A change is dated when refreshd first saw it (the rule: a change first
// seen at T is a refresh at T): the push was between the look before and that one, both of
// which the record and the reason name. A plan that looks more often dates pushes closer.
//
// Every ref is looked up and recorded, even when an earlier one already decides the
// answer: a tag's record is only as good as its last look. A ref refreshd has seen only one
// digest of cannot be dated: the condition cannot be checked (warning) until it changes.
func (t *Tools) checkTags(ctx context.Context, c plan.SkipCondition, refs []string, tags tagObserver, now time.Time, log *slog.Logger) (fresh bool, why, warning string) {
	tf := c.Tags
	if tags == nil {
		return false, "no store of watched tags", fmt.Sprintf("skip_if at %s: cannot tell whether the tags are fresh, refreshing: no history store", c.Pos)
	}
	reg := t.registryClient(log)
	var stale, absent, undated, failed []string
	var oldest, oldestAfter time.Time
	var oldestRef string
	for _, ref := range refs {
		digest, found, err := reg.Digest(ctx, ref)
		if err != nil {
			if ctx.Err() != nil {
				return false, "", ""
			}
			failed = append(failed, fmt.Sprintf("%s (%v)", ref, err))
			continue
		}
		if !found {
			digest = ""
		}
		tag, err := tags.ObserveTag(ref, digest, now)
		switch {
		case err != nil:
			failed = append(failed, fmt.Sprintf("%s (%v)", ref, err))
		case !found:
			absent = append(absent, ref)
		case tag.ChangedBy.IsZero():
			undated = append(undated, ref)
		case now.Sub(tag.ChangedBy) >= tf.Within:
			stale = append(stale, fmt.Sprintf("%s (last change seen %s)", ref, tag.ChangedBy.Format(time.RFC3339)))
		case oldest.IsZero() || tag.ChangedBy.Before(oldest):
			oldest, oldestRef, oldestAfter = tag.ChangedBy, ref, tag.ChangedAfter
		}
	}
	var cannot []string
	if len(failed) > 0 {
		cannot = append(cannot, "could not look up "+strings.Join(failed, ", "))
	}
	if len(undated) > 0 {
		cannot = append(cannot, fmt.Sprintf("refreshd has seen only one digest of %s so far (it dates a push from the next change of digest on)", strings.Join(undated, ", ")))
	}
	if len(cannot) > 0 {
		warning = fmt.Sprintf("skip_if at %s: cannot tell whether every tag is fresh, refreshing: %s", c.Pos, strings.Join(cannot, "; "))
		log.Warn("skip_if tags could not all be checked; treated as not fresh", "pos", c.Pos.String(), "failed", len(failed), "undated", len(undated))
	}
	switch {
	case len(absent) > 0:
		return false, "missing in the registry: " + strings.Join(absent, ", "), warning
	case len(stale) > 0:
		return false, "not pushed within " + tf.Within.String() + ": " + strings.Join(stale, ", "), warning
	case len(cannot) > 0:
		return false, "cannot tell", warning
	}
	return true, fmt.Sprintf("all %d tags pushed within %s (oldest: %s, new digest seen %s ago, pushed after %s)", len(refs), tf.Within,
		oldestRef, now.Sub(oldest).Round(time.Second), oldestAfter.UTC().Format(time.RFC3339)), warning
}

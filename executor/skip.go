package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/refreshd/refreshd/executor/git"
	"github.com/refreshd/refreshd/executor/registry"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/plan"
	"github.com/refreshd/refreshd/proc"
)

// SkipIfReasonPrefix starts the recorded reason of a run (or a step) skipped because a
// skip_if condition held (the output was fresh): the daemon counts such runs as fresh.
const SkipIfReasonPrefix = "skip_if: "

// checkCond checks one skip_if condition whose refs are known (refs: a tags condition's
// rendered refs): whether it holds, and why (what was fresh, or what was not: the stale or
// missing tags, the branch's or image's age).
//
// A condition that cannot be checked (image missing, branch unreachable) counts as "not
// fresh": skip_if only saves work, so not knowing means doing the refresh, never failing it.
// Such a condition returns a warning, for the run's record; it is logged to log too.
//
// procs starts git (the run's runner: its groups are recorded on the run); budget bounds the
// time the run's conditions wait on registries (nil: no bound of its own).
func (t *Tools) checkCond(ctx context.Context, g *plan.Graph, c plan.SkipCondition, refs []string, secrets map[string]string, procs *proc.Runner, tags tagObserver, budget *registryBudget, log *slog.Logger) (fresh bool, why, warning string) {
	now := time.Now()
	var at time.Time
	var within time.Duration
	var what, how string
	var err error
	switch {
	case c.Tags != nil:
		return t.checkTags(ctx, c, refs, tags, now, budget, log)
	case c.Branch != nil:
		env := append([]string{"GIT_TERMINAL_PROMPT=0"}, git.TokenEnv(branchToken(g, c.Branch.Repo, secrets))...)
		at, err = git.LastCommitTime(ctx, procs, c.Branch.Repo, c.Branch.Branch, env)
		within, what, how = c.Branch.Within, "branch "+c.Branch.Branch, "last commit"
	case c.Image != nil:
		bctx, spent := budget.within(ctx)
		at, err = t.registryClient(log).ImageCreated(bctx, c.Image.Ref)
		err = budget.heldBy(bctx, c.Image.Ref, err)
		spent()
		within, what, how = c.Image.Within, "image "+c.Image.Ref, "created"
	default:
		return false, "", ""
	}
	if err != nil {
		if ctx.Err() != nil {
			return false, "", "" // the caller records the interruption
		}
		log.Warn("skip_if condition could not be checked; treated as not fresh", "pos", c.Pos.String(), "err", err)
		return false, fmt.Sprintf("cannot tell whether %s is fresh: %v", what, err),
			fmt.Sprintf("skip_if at %s: cannot tell whether %s is fresh, refreshing: %v", c.Pos, what, err)
	}
	age := now.Sub(at)
	why = fmt.Sprintf("%s %s %s ago (%s)", what, how, age.Round(time.Second), at.UTC().Format(time.RFC3339))
	if age < within {
		return true, why + ", within " + within.String(), ""
	}
	return false, why + ", not within " + within.String(), ""
}

// condKey names one skip_if condition of a run: its step ("" for the plan's) and its
// index among that step's (or the plan's) conditions.
type condKey struct {
	step string
	i    int
}

// keyedConds lists the run's skip_if conditions, the plan's first, each with its key.
func keyedConds(p *plan.Plan) (keys []condKey, conds []plan.SkipCondition) {
	n := map[string]int{}
	for _, c := range p.SkipConditions() {
		keys = append(keys, condKey{c.Step, n[c.Step]})
		conds = append(conds, c)
		n[c.Step]++
	}
	return keys, conds
}

// skipDecider decides a run's skip_if conditions and keeps what it decided: the
// conditions over run-time values already decided (decided), why each step whose own
// condition held is skipped (stepSkip), and what is left of the time the conditions may
// wait on registries (registry, which has its own lock). It belongs to the run's
// goroutine: execute decides before the graph starts (decideSkip), the scheduler on the
// same goroutine after each stage (lateSkip), and reads stepSkip; so it has no lock. What
// it decides goes on the record through the recorder.
type skipDecider struct {
	env *runEnv
	g   *plan.Graph
	rec *recorder

	decided  map[condKey]bool
	stepSkip map[string]string
	registry *registryBudget
}

func newSkipDecider(env *runEnv, g *plan.Graph, rec *recorder) *skipDecider {
	return &skipDecider{env: env, g: g, rec: rec, decided: map[condKey]bool{}, stepSkip: map[string]string{},
		registry: newRegistryBudget(env.e.cfg.Tools.RegistryBudget)}
}

// stepSkipped is why step's own skip_if held, or "".
func (d *skipDecider) stepSkipped(step string) string { return d.stepSkip[step] }

// procs is the runner of the processes the run starts outside any step (skip_if's git):
// each group is recorded on the run itself, for the same recovery.
func (d *skipDecider) procs() *proc.Runner {
	return &proc.Runner{Grace: d.env.grace, Log: d.env.log, Started: func(g proc.Group) {
		// the run's own group is not a step's: saved before git runs on
		d.rec.setProcess(history.ProcessGroup{PGID: g.PGID, StartTicks: g.StartTicks, BootID: g.BootID})
	}}
}

// decideSkip checks the skip_if conditions that can be decided before any step runs (all
// but tags conditions over values a step defines at run time: lateSkip decides those). A
// plan condition that holds skips the run (skip, why); a step's marks that step skipped
// (stepSkip). Each decision is recorded on the run, held or not, with why.
func (d *skipDecider) decideSkip(ctx context.Context) (skip bool, why string) {
	keys, conds := keyedConds(d.g.Plan)
	for k, c := range conds {
		if c.Tags != nil && len(c.Tags.After) > 0 {
			continue // lateSkip's
		}
		if why, skip := d.decide(ctx, keys[k], c, c.Tags.RefsIfKnown()); skip {
			return true, why
		}
		if ctx.Err() != nil {
			return false, ""
		}
	}
	return false, ""
}

// decide checks one condition (unless its step is already skipped), records the decision
// and, for a step's condition that held, marks the step skipped. It reports a plan
// condition that held.
func (d *skipDecider) decide(ctx context.Context, key condKey, c plan.SkipCondition, refs []string) (why string, skipRun bool) {
	if key.step != "" && d.stepSkip[key.step] != "" {
		return "", false
	}
	env := d.env
	fresh, why, warn := env.tools.checkCond(ctx, d.g, c, refs, env.secrets, d.procs(), runTags{env.e.cfg.Store, env.sighting(false)}, d.registry, env.log)
	d.rec.warn(warn)
	if ctx.Err() != nil {
		return "", false
	}
	why = env.red.String(why) // refs rendered from values that may hold a secret: logged and recorded masked
	d.recordFreshness(c, fresh, why)
	scope := "the run"
	if key.step != "" {
		scope = "step " + key.step + " and what needs it"
	}
	if !fresh {
		env.log.Info("skip_if: not fresh", "pos", c.Pos.String(), "step", key.step, "why", why)
		return "", false
	}
	env.log.Info("skip_if: fresh; skipping "+scope, "pos", c.Pos.String(), "step", key.step, "why", why)
	if key.step == "" {
		return why, true
	}
	d.stepSkip[key.step] = why
	return "", false
}

// recordFreshness adds a skip_if decision to the run's record.
func (d *skipDecider) recordFreshness(c plan.SkipCondition, fresh bool, why string) {
	d.rec.addFreshness(history.Freshness{Pos: c.Pos.String(), Step: c.Step, Fresh: fresh, Why: why})
}

// lateSkip decides each tags condition whose refs name run-time values, as soon as the
// steps defining them have delivered (it runs after each stage of the graph expands). It
// reports why when a plan condition holds: every watched tag, of every value the tree gave,
// is fresh; a step's condition that holds marks its step skipped (stepSkip). A condition
// whose refs cannot be made from the values cannot be checked: a warning, and the run goes
// on, as for any skip_if it cannot check.
func (d *skipDecider) lateSkip(ctx context.Context) (why string, skip bool) {
	keys, conds := keyedConds(d.g.Plan)
	for k, c := range conds {
		if d.decided[keys[k]] || c.Tags == nil || len(c.Tags.After) == 0 {
			continue
		}
		refs, ready, err := d.g.SkipTagRefs(c)
		if !ready {
			continue
		}
		d.decided[keys[k]] = true
		if err != nil {
			d.rec.warn(fmt.Sprintf("skip_if at %s: cannot tell whether the tags are fresh, refreshing: %v", c.Pos, err))
			d.recordFreshness(c, false, "cannot tell: "+err.Error())
			continue
		}
		if why, skip := d.decide(ctx, keys[k], c, refs); skip || ctx.Err() != nil {
			return why, skip
		}
	}
	return "", false
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

// runTags is the store of watched tags as one run's sightings.
type runTags struct {
	store *history.Store
	by    history.Sighting
}

func (r runTags) ObserveTag(ref, digest string, at time.Time) (history.Tag, error) {
	return r.store.ObserveTagBy(ref, digest, at, r.by)
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
func (t *Tools) checkTags(ctx context.Context, c plan.SkipCondition, refs []string, tags tagObserver, now time.Time, budget *registryBudget, log *slog.Logger) (fresh bool, why, warning string) {
	tf := c.Tags
	if tags == nil {
		return false, "no store of watched tags", fmt.Sprintf("skip_if at %s: cannot tell whether the tags are fresh, refreshing: no history store", c.Pos)
	}
	reg := t.registryClient(log)
	var stale, absent, undated, failed []string
	var oldest, oldestAfter time.Time
	var oldestRef string
	for _, ref := range refs {
		bctx, spent := budget.within(ctx)
		digest, found, err := reg.Digest(bctx, ref)
		err = budget.heldBy(bctx, ref, err)
		spent()
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

// DefaultRegistryBudget is the time a run's skip_if conditions may wait on registries in
// all (Tools.RegistryBudget). One request is bounded by its tries, their timeouts and the
// capped backoff between them (about 3.5 minutes with the defaults); a plan watching many
// tags on a registry that answers slowly would otherwise add those up. Past the budget,
// the conditions left are not checked: not fresh, and the run refreshes.
const DefaultRegistryBudget = 3 * time.Minute

// errRegistryBudget is the cause of a registry check's context ending with the budget.
var errRegistryBudget = errors.New("registry budget spent")

// registryBudget is what is left of a run's time for registry checks. A nil budget bounds
// nothing. Checks run one after another, but the budget is safe for concurrent use.
type registryBudget struct {
	mu    sync.Mutex
	total time.Duration
	left  time.Duration
}

func newRegistryBudget(total time.Duration) *registryBudget {
	if total <= 0 {
		total = DefaultRegistryBudget
	}
	return &registryBudget{total: total, left: total}
}

// within returns ctx bounded by the budget left, and the function to call when the check
// is done, which charges the time it took.
func (b *registryBudget) within(ctx context.Context) (context.Context, func()) {
	if b == nil {
		return ctx, func() {}
	}
	b.mu.Lock()
	left := max(b.left, 0)
	b.mu.Unlock()
	start := time.Now()
	bctx, cancel := context.WithTimeoutCause(ctx, left, errRegistryBudget)
	return bctx, func() {
		cancel()
		b.mu.Lock()
		b.left -= time.Since(start)
		b.mu.Unlock()
	}
}

// heldBy names the registry of ref in err when the budget, not the run, ended the check
// (bctx from within).
func (b *registryBudget) heldBy(bctx context.Context, ref string, err error) error {
	if err == nil || b == nil || !errors.Is(context.Cause(bctx), errRegistryBudget) {
		return err
	}
	host := ref
	if r, perr := registry.ParseRef(ref); perr == nil {
		host = r.Host
	}
	return fmt.Errorf("registry %s held the checks past the run's budget for registry checks (%s)", host, b.total)
}

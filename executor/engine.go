// Package executor runs plans: the run graph, processes in their own groups, output
// streaming and redaction, retries, timeouts, locks and the history record of every run.
package executor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/redact"
	"github.com/refreshd/refreshd/plan"
	"github.com/refreshd/refreshd/proc"
	"github.com/refreshd/refreshd/statedir"
)

// Config configures an Engine.
type Config struct {
	StateDir  string
	Store     *history.Store
	Logger    *slog.Logger
	Tools     *Tools
	Observer  Observer      // optional
	KillGrace time.Duration // overrides the plan's if non-zero (tests)
	// DefaultKillGrace is the grace of a plan that sets none (the daemon's --kill-grace).
	DefaultKillGrace time.Duration
	// MaxKillGrace caps every grace if non-zero: the daemon keeps a stop within systemd's
	// TimeoutStopSec whatever a plan asks for (--stop-timeout).
	MaxKillGrace time.Duration
	Output       io.Writer // optional: also receives every redacted output line, "INSTANCE | line"
}

// Observer receives a run's events as they happen (the daemon's metrics and live tails, the
// terminal's live view). Calls for one run come in order, from the engine's goroutines; an
// observer must be quick and must not call back into the engine.
type Observer interface {
	RunStarted(r *history.Run)
	StepChanged(runID string, s *history.Step)
	RunFinished(r *history.Run)
	Line(runID, instance string, line string) // redacted; for live tails
	// NodeDown tells of a node of a builder's pool the run found down and went on without
	// (the daemon's metric; the run's record has it as a warning).
	NodeDown(runID string, d history.NodeDown)
}

// Engine runs plan graphs. One Engine may run several runs at once (of different plans).
type Engine struct {
	cfg  Config
	dir  statedir.Dir // cfg.StateDir
	log  *slog.Logger
	rand func() float64
	// slots queues this process's builds for node slots, first come first served across
	// every run the engine makes.
	slots *slotManager
	// provisions lets runs provisioning the same builder at the same time share it.
	provisions *provisionShare
	// outMu serialises writes to cfg.Output, which every run of the engine writes to.
	outMu sync.Mutex
}

// DefaultKillGrace is the grace when neither the plan nor the Config sets one.
const DefaultKillGrace = 30 * time.Second

// defaultKeepRuns is the retention when a plan does not set keep_runs.
const defaultKeepRuns = 50

// New checks cfg and makes an engine. It makes this process a child subreaper, so that the
// grandchildren of killed steps are reaped here rather than left as zombies under a PID 1
// that does not reap.
func New(cfg Config) (*Engine, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("engine config: no state directory")
	}
	if cfg.Store == nil {
		return nil, errors.New("engine config: no history store")
	}
	dir, err := statedir.New(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("engine config: %w", err)
	}
	cfg.StateDir = dir.Root
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Tools == nil {
		cfg.Tools = &Tools{}
	}
	if cfg.Tools.DockerConfig == "" {
		// One directory for every docker command, step and registry check (dockerconfig.go).
		if cfg.Tools.DockerConfig, err = defaultDockerConfig(); err != nil {
			return nil, fmt.Errorf("engine config: %w", err)
		}
	}
	if cfg.Tools.DockerContext == "" {
		// The context refreshd was started with, else docker's default: never the one a
		// step left current in the docker config (breeze's `docker context use`).
		cfg.Tools.DockerContext = os.Getenv("DOCKER_CONTEXT")
	}
	if err := proc.BecomeSubreaper(); err != nil {
		cfg.Logger.Warn("orphaned step processes will be reaped by PID 1 instead", "err", err)
	}
	return &Engine{cfg: cfg, dir: dir, log: cfg.Logger, rand: defaultRand, slots: newSlotManager(), provisions: newProvisionShare()}, nil
}

// RunSpec says which run to make of a graph.
type RunSpec struct {
	ID        string // "" makes one with NewRunID
	Trigger   history.Trigger
	Scheduled time.Time
	DryRun    bool
}

// NewRunID makes a run id: the plan name, the UTC start time to the millisecond, and a
// random suffix, e.g. "nightly-20260102T030405.123Z-9f3a". Ids of one plan sort by time;
// every character is safe in a file name (log directories are named after it).
func NewRunID(planName string, t time.Time) string {
	var b [2]byte
	rand.Read(b[:])
	return statedir.Readable(planName) + "-" + t.UTC().Format("20060102T150405.000Z") + "-" + hex.EncodeToString(b[:])
}

var (
	errPlanTimeout = errors.New("plan timeout exceeded")
	errStepTimeout = errors.New("step timeout exceeded")
)

// Run executes the graph to its end and returns the final record, which is also in the
// store. Cancelling ctx interrupts the run: running process groups are killed (SIGTERM,
// grace, SIGKILL), steps not started are not started, and the run is recorded interrupted.
// The plan's timeout bounds the whole run (it then fails). The error is only about
// recording the run; how the run went is in the record.
func (e *Engine) Run(ctx context.Context, g *plan.Graph, spec RunSpec) (*history.Run, error) {
	p := g.Plan
	if spec.ID == "" {
		spec.ID = NewRunID(p.Name, time.Now())
	}
	if spec.Trigger == "" {
		spec.Trigger = history.TriggerManual
	}
	env := newRunEnv(ctx, e, g, spec)
	rec := &history.Run{ID: spec.ID, Plan: p.Name, Trigger: spec.Trigger, Scheduled: spec.Scheduled,
		Start: time.Now().UTC(), Status: history.StatusRunning, DryRun: spec.DryRun, Params: maskValues(env.red, g.Params)}
	for _, inst := range g.Instances {
		st := history.Step{Instance: inst.ID, Status: history.StatusWaiting}
		if w := when(inst); w.Cleanup() {
			st.When = string(w)
		}
		rec.Steps = append(rec.Steps, st)
	}
	rs := &runState{runEnv: env, rec: newRecorder(e.cfg.Store, e.cfg.Observer, env.red, env.log, rec)}
	rs.prev = newPreviousDigests(env, rs.rec)
	rs.skips = newSkipDecider(env, g, rs.rec)
	rs.sched = newScheduler(env, g, rs.rec, rs.skips, rs.runInstance)
	if err := rs.rec.begin(); err != nil {
		return nil, fmt.Errorf("start run %s of %s: %w", spec.ID, p.Name, err)
	}
	dir := e.dir
	journal, err := dir.OpenJournal(spec.ID)
	if err != nil {
		rs.log.Warn("no run journal: each step change waits for the store", "err", err)
	}
	if err := dir.ReserveOutcome(spec.ID); err != nil {
		rs.log.Warn("no outcome file: if the store cannot record this run's end, a restart will call it interrupted", "err", err)
	}
	if o := e.cfg.Observer; o != nil {
		rs.rec.view(func(r *history.Run) { o.RunStarted(copyRun(r)) })
	}
	rs.log.Info("run started", "trigger", spec.Trigger, "instances", len(g.Instances), "dry_run", spec.DryRun)

	rs.rec.start(journal)
	status, reason := rs.execute(ctx)
	final, err := rs.rec.finish(status, reason)
	if err != nil {
		err = fmt.Errorf("record the end of run %s of %s: %w", spec.ID, p.Name, err)
		o := statedir.Outcome{Status: final.Status, Reason: final.Reason, End: final.End, StoreError: err.Error()}
		if werr := dir.WriteOutcome(spec.ID, o); werr != nil {
			rs.log.Error("the run's end is recorded nowhere", "status", final.Status, "err", err, "outcome_err", werr)
		} else {
			rs.log.Error("the store could not record the run's end; kept in its outcome file for the next start", "status", final.Status, "path", dir.Outcome(spec.ID), "err", err)
		}
	}
	attrs := []any{"status", status, "duration", final.End.Sub(final.Start).Round(time.Millisecond)}
	if reason != "" {
		attrs = append(attrs, "reason", final.Reason)
	}
	rs.log.Log(ctx, statusLevel(status), "run finished", attrs...)
	if o := e.cfg.Observer; o != nil {
		o.RunFinished(copyRun(final))
	}
	e.prune(p)
	return final, err
}

func (e *Engine) grace(p *plan.Plan) time.Duration {
	g := DefaultKillGrace
	switch {
	case e.cfg.KillGrace > 0:
		g = e.cfg.KillGrace
	case p.KillGrace > 0:
		g = p.KillGrace
	case e.cfg.DefaultKillGrace > 0:
		g = e.cfg.DefaultKillGrace
	}
	if e.cfg.MaxKillGrace > 0 && g > e.cfg.MaxKillGrace {
		g = e.cfg.MaxKillGrace
	}
	return g
}

// prune applies the plan's retention and deletes the removed runs' logs and scratch files.
func (e *Engine) prune(p *plan.Plan) {
	keep := p.KeepRuns
	if keep <= 0 {
		keep = defaultKeepRuns
	}
	removed, err := e.cfg.Store.Prune(p.Name, keep)
	if err != nil {
		e.log.Error("retention", "plan", p.Name, "err", err)
		return
	}
	for _, r := range removed {
		for _, d := range []string{e.dir.RunLogs(r.ID), e.dir.RunScratch(r.ID)} {
			if err := os.RemoveAll(d); err != nil {
				e.log.Error("retention: delete files of a removed run", "plan", p.Name, "run", r.ID, "err", err)
			}
		}
	}
	if len(removed) > 0 {
		e.log.Info("retention: removed old runs", "plan", p.Name, "removed", len(removed), "keep", keep)
	}
}

// runState is one run in progress: it runs the run (execute) and its instances
// (instance.go), and ties the parts of a run together, each of which says what it owns and
// what guards it:
//   - runEnv (embedded): what the run works with, read-only from its start;
//   - rec: the record, its journal and its saves, behind the recorder's own lock;
//   - sched: the graph and where each instance is, and skips: the skip_if decisions, both
//     the run's goroutine's (execute, and the scheduler it runs on it), without a lock;
//   - health (nodes found down, its own lock) and prev (earlier runs' digests, read once),
//     shared by the run's attempts.
//
// runState's own fields are set by Run before anything runs and never reassigned.
type runState struct {
	*runEnv
	rec    *recorder
	sched  *scheduler
	skips  *skipDecider
	health nodeHealth
	prev   *previousDigests
}

// maskValues is m (params) with every secret value masked, for the record.
func maskValues(red *redact.Redactor, m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = red.String(v)
	}
	return out
}

// RecordParams is params as a run of p records them: every value equal to one of p's
// secrets, or holding one, masked, as the engine records the runs it runs. The daemon
// records the triggers it never runs (skipped, dropped) with it.
func RecordParams(ctx context.Context, p *plan.Plan, params map[string]string) map[string]string {
	values, _, _ := ReadSecrets(ctx, p) // the values read are masked; a missing one shows nowhere
	return maskValues(redact.New(slices.Collect(maps.Values(values))...), params)
}

// execute does the run: what preparing its environment said, skip_if, the graph. It
// returns the run's status.
func (rs *runState) execute(ctx context.Context) (history.Status, string) {
	for _, w := range rs.startWarnings {
		rs.log.Warn(w)
	}
	rs.rec.warn(rs.startWarnings...)
	if rs.startErr != nil {
		rs.sched.skipAll("run failed before it started")
		return history.StatusFailed, rs.startErr.Error()
	}
	if rs.p.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, rs.p.Timeout, errPlanTimeout)
		defer cancel()
	}
	if len(rs.p.SkipConditions()) > 0 {
		skip, why := rs.skips.decideSkip(ctx)
		switch {
		case ctx.Err() != nil:
			rs.sched.skipAll("run interrupted before the step started")
			return rs.ended(ctx)
		case skip:
			rs.sched.skipAll(SkipIfReasonPrefix + why)
			return history.StatusSkipped, SkipIfReasonPrefix + why
		}
	}
	bad := rs.sched.run(ctx)
	if ctx.Err() != nil {
		return rs.ended(ctx)
	}
	if err := rs.sched.stageErr; err != nil {
		return history.StatusFailed, err.Error()
	}
	var failed string
	rs.rec.view(func(r *history.Run) {
		for _, s := range r.Steps {
			if s.Status == history.StatusFailed {
				failed = fmt.Sprintf("step %s failed: %s", s.Instance, s.Reason)
				return
			}
		}
		for i, s := range r.Steps {
			if i < len(bad) && bad[i] { // past bad: steps that never expanded (stages.go)
				failed = fmt.Sprintf("step %s %s: %s", s.Instance, s.Status, s.Reason)
				return
			}
		}
	})
	if failed != "" {
		return history.StatusFailed, failed
	}
	if why := rs.sched.skipRest; why != "" {
		return history.StatusSkipped, why
	}
	return history.StatusSucceeded, ""
}

// holdBuilder takes what instance inst needs of its builder, for the instance only, so two
// plans on one builder interleave build by build instead of one waiting for the other's
// whole run:
//   - provision: nothing here; the action takes the builder's lock (statedir.Dir.BuilderLock)
//     while it converges, boots and checks the builder, so provisioning happens once at a
//     time, and runs of this engine arriving meanwhile share its outcome (provisionShare);
//   - buildx_cache: nothing here; the action takes one node slot for its build (acquireSlot);
//   - a run step that drives the builder itself: slot 0 of every node (lockWholeBuilder).
func (rs *runState) holdBuilder(ctx context.Context, inst *plan.Instance) (unlock func(), err error) {
	start := time.Now()
	defer func() {
		if waited := time.Since(start); err == nil && waited > time.Second {
			rs.log.Info("builder lock acquired after waiting", "builder", inst.Builder, "step", inst.ID, "waited", waited.Round(time.Millisecond))
		}
	}()
	switch inst.Action.(type) {
	case *plan.BuildxCacheAction, *plan.ProvisionAction:
		return func() {}, nil
	}
	b := rs.p.Builders[inst.Builder]
	if b == nil {
		return nil, fmt.Errorf("builder %s is not declared", inst.Builder)
	}
	return lockWholeBuilder(ctx, rs.e.slots, rs.e.cfg.StateDir, b)
}

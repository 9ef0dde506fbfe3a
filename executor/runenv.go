package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/redact"
	"github.com/refreshd/refreshd/plan"
)

// runEnv is what a run works with and never changes: the engine, the plan and which run
// this is, the secrets read at its start and the redactor that masks them, the logger
// (masking too), the tools (with the plan's DOCKER_CONFIG), the plan's default workdir and
// the kill grace. newRunEnv builds it before the run's record exists; from then on every
// goroutine of the run reads it without a lock, and nothing writes it. What changes while
// a run goes on lives elsewhere: the record in recorder (its own lock), the graph and
// where each instance is in scheduler (the scheduling goroutine's).
type runEnv struct {
	e       *Engine
	p       *plan.Plan
	spec    RunSpec
	log     *slog.Logger // plan= and run= attached; every value it logs is masked
	red     *redact.Redactor
	secrets map[string]string
	workdir string // the plan's default workdir (created when it is STATE/work/PLAN)
	tools   *Tools // the engine's, or for a plan whose env sets DOCKER_CONFIG, with that one
	grace   time.Duration

	// startWarnings (a secret file others may read) go on the run's record when it starts;
	// startErr (a secret without a value, a DOCKER_CONFIG the run cannot use, a workdir it
	// cannot create) fails the run before any step starts (tools and workdir may be unset).
	startWarnings []string
	startErr      error
}

// newRunEnv reads p's secrets and prepares what the run of g needs before it starts.
// Secrets come first: their values are masked in every field of the run from then on, in
// its instance ids (g.Mask: the record's steps, log file names, logs, pages, the journal's
// step=), its params (and, as they arrive, its vars: stages.go) and every value its log
// lines carry. A failure is not returned but kept in startErr, for the run's record.
func newRunEnv(ctx context.Context, e *Engine, g *plan.Graph, spec RunSpec) *runEnv {
	p := g.Plan
	env := &runEnv{e: e, p: p, spec: spec, grace: e.grace(p)}
	env.secrets, env.startWarnings, env.startErr = ReadSecrets(ctx, p)
	env.red = redact.New(slices.Collect(maps.Values(env.secrets))...)
	g.Mask(env.red.String)
	// every value logged, a client's URL too
	env.log = slog.New(env.red.Handler(e.log.With("plan", p.Name, "run", spec.ID).Handler()))
	if env.startErr != nil {
		return env
	}
	dockerConfig, err := planDockerConfig(g)
	if err != nil {
		env.startErr = err
		return env
	}
	env.tools = e.cfg.Tools.forDockerConfig(dockerConfig)
	env.workdir = p.Workdir
	if env.workdir == "" {
		env.workdir = e.dir.Work(p.Name)
		if err := os.MkdirAll(env.workdir, 0o750); err != nil {
			env.startErr = fmt.Errorf("create workdir %s: %w", env.workdir, err)
		}
	}
	return env
}

// ended is the status of a run whose context ended: failed on the plan's timeout,
// interrupted when cancelled (Ctrl-C, daemon shutdown, refreshd cancel).
func (env *runEnv) ended(ctx context.Context) (history.Status, string) {
	if errors.Is(context.Cause(ctx), errPlanTimeout) {
		return history.StatusFailed, fmt.Sprintf("plan timeout %s exceeded", env.p.Timeout)
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return history.StatusInterrupted, cause.Error() // the canceller's why: "cancelled by refreshd cancel"
	}
	return history.StatusInterrupted, "interrupted"
}

// sighting is this run as the one looking at a tag.
func (env *runEnv) sighting(pushed bool) history.Sighting {
	return history.Sighting{Plan: env.p.Name, Run: env.spec.ID, Pushed: pushed}
}

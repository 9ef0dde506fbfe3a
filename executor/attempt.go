package executor

import (
	"context"
	"io"
	"log/slog"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/plan"
	"github.com/refreshd/refreshd/proc"
)

// Attempt is what the engine hands an action for one try of one step instance. Built-in
// actions (provision, buildx cache, verify, publish) do their work through it so that their
// processes, output, secrets and records are handled exactly like a run step's.
type Attempt struct {
	RunID    string
	Plan     *plan.Plan
	Instance *plan.Instance
	// Workdir is the instance's resolved working directory: its own workdir, else the plan's,
	// else STATE/work/PLAN. Actions use it rather than re-deriving it, so a plan that sets no
	// workdir finds what its run steps wrote.
	Workdir string
	N       int          // 1-based attempt number
	Log     *slog.Logger // carries plan, run, step and attempt attributes
	// Output receives process output; each line is logged live, redacted, and stored in the
	// attempt's log file.
	Output io.Writer
	// Secrets holds the plan's secret values, read at the start of the run. Every one of them
	// is redacted from output, logs, history and errors.
	Secrets map[string]string
	// Exec runs argv in its own process group, in dir (the instance's workdir if ""), with the
	// step's environment plus extraEnv ("K=V"), streaming to Output. Cancelling ctx or the
	// step's timeout kills the whole group (SIGTERM, grace, SIGKILL).
	Exec func(ctx context.Context, dir string, argv []string, extraEnv ...string) (ExitStatus, error)
	// Procs starts every other process of the attempt (git, docker buildx and buildctl
	// queries) under the same rules as Exec: the step's kill grace, and each process group
	// recorded on the attempt for the recovery after a kill -9 of refreshd.
	Procs *proc.Runner
	// Record updates this instance's history record (node, caches, publish, warnings).
	Record func(func(*history.Step))
	// Warn records a warning on the run (and logs it).
	Warn func(msg string)
	// Previous returns the digest ref had before this run, as refreshd last recorded it: an
	// earlier step of this run that read the registry before changing the ref (a cache
	// build), else the latest earlier run of the plan that recorded the ref. digest is ""
	// when the ref was recorded absent; ok is false when there is no record of it at all.
	// It lets a verify step, which runs after the builds, say what changed.
	Previous func(ref string) (digest string, ok bool)
	// SetSource records what a checkout fetched as the run's source; Source returns it (nil
	// before a checkout of this run succeeded). Publish templates see it as .source.
	SetSource func(history.Source)
	Source    func() *history.Source
	// ObserveTag tells the store of watched tags (skip_if tags:) the digest ref has now, as
	// this attempt read it from the registry: the run's own pushes count as refreshes too
	// (pushed: the attempt exported that cache itself, and the record names the run).
	ObserveTag func(ref, digest string, pushed bool)
	// StateDir is the daemon's (or run --local's) state directory.
	StateDir string
	DryRun   bool // the dry run: change nothing outside the state directory
	// health is the run's record of its builders' nodes found down (shared by its attempts).
	health *nodeHealth
	// slots is the engine's slot queue; nil (an attempt made outside an engine) queues the
	// attempt alone, still sharing the slots' flocks with everything else.
	slots *slotManager
	// provisions is the engine's sharing of provisionings in flight; nil: none.
	provisions *provisionShare
	// nodeDown tells the engine's observer of a pool node found down; nil outside a run.
	nodeDown func(history.NodeDown)
}

// reportNodeDown tells the run's observer of d.
func (a *Attempt) reportNodeDown(d history.NodeDown) {
	if a.nodeDown != nil {
		a.nodeDown(d)
	}
}

// observeTag records ref's digest as seen now, if the engine watches tags.
func (a *Attempt) observeTag(ref, digest string, pushed bool) {
	if a.ObserveTag != nil {
		a.ObserveTag(ref, digest, pushed)
	}
}

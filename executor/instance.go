package executor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/plan"
	"github.com/refreshd/refreshd/proc"
)

// stepConcurrency is the budget of an instance's ConcurrencyKey; 0 means no cap.
func stepConcurrency(inst *plan.Instance) int {
	if inst.Step == nil {
		return 0
	}
	return inst.Step.Concurrency
}

// runInstance runs instance i with its retry policy and returns its end: its final status
// and, when it succeeded, the values it defined (outputs:). inst is passed rather than read
// from the graph: the graph's instance list grows while instances run (stages.go).
func (rs *runState) runInstance(ctx context.Context, i int, inst *plan.Instance) finished {
	log := rs.log.With("step", inst.ID)
	start := time.Now().UTC()
	rs.rec.update(i, func(s *history.Step) { s.Status, s.Start = history.StatusRunning, start })

	finish := func(st history.Status, reason string) finished {
		end := time.Now().UTC()
		rs.rec.update(i, func(s *history.Step) { s.Status, s.Reason, s.End = st, reason, end })
		attrs := []any{"status", st, "duration", end.Sub(start).Round(time.Millisecond)}
		if reason != "" {
			attrs = append(attrs, "reason", rs.red.String(reason))
		}
		log.Log(ctx, statusLevel(st), "step finished", attrs...)
		return finished{i: i, status: st}
	}

	for _, e := range inst.Expects {
		if why := e.Failed(); why != "" {
			// A value read from the tree disagrees with the plan: nothing of this step
			// runs, and nothing that needs it (a publish) either.
			return finish(history.StatusFailed, why)
		}
	}
	if inst.Builder != "" && !rs.spec.DryRun {
		unlock, err := rs.holdBuilder(ctx, inst)
		if err != nil {
			if ctx.Err() != nil {
				st, why := rs.ended(ctx)
				return finish(st, why+" while waiting for the lock of builder "+inst.Builder)
			}
			return finish(history.StatusFailed, err.Error())
		}
		defer unlock()
	}
	log.Info("step started")

	attempts := max(inst.Retry.Attempts, 1)
	var pats []*regexp.Regexp
	if attempts > 1 {
		// Only a failed attempt with another after it asks whether its output matched: a
		// step with one attempt neither compiles the patterns nor holds every line to them.
		pats = retryPatterns(inst.Retry)
	}
	for n := 1; ; n++ {
		matched, err := rs.attempt(ctx, i, inst, n, pats, log.With("attempt", n))
		if err == nil {
			f := finish(history.StatusSucceeded, "")
			f.values = matched.values
			return f
		}
		if ctx.Err() != nil {
			st, why := rs.ended(ctx)
			return finish(st, why)
		}
		reason := fmt.Sprintf("attempt %d of %d: %v", n, attempts, err)
		if n >= attempts {
			return finish(history.StatusFailed, reason)
		}
		why := retryable(inst.Retry, pats, matched.status, matched.line, err.Error())
		if why == "" {
			return finish(history.StatusFailed, reason+" (not retried: no retry_on exit code or pattern matched)")
		}
		delay := backoff(inst.Retry, n, rs.e.rand)
		log.Warn("attempt failed, retrying", "attempt", n, "err", rs.red.String(err.Error()), "why", rs.red.String(why), "backoff", delay.Round(time.Millisecond))
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			st, why := rs.ended(ctx)
			return finish(st, why+" during the backoff before attempt "+fmt.Sprint(n+1))
		}
	}
}

// attemptResult is what the retry decision needs from an attempt besides its error.
type attemptResult struct {
	status ExitStatus // of the last process the attempt ran
	line   string     // first output line that matched a retry pattern
	// values are what a step with outputs: defined, read when the attempt succeeded.
	values map[string]plan.Var
}

// attempt runs one attempt of instance i: its log file, its Attempt for the action, its
// timeout, and its record.
func (rs *runState) attempt(ctx context.Context, i int, inst *plan.Instance, n int, pats []*regexp.Regexp, log *slog.Logger) (attemptResult, error) {
	logPath := rs.e.dir.Log(rs.spec.ID, inst.ID, n)
	start := time.Now().UTC()
	rs.rec.update(i, func(s *history.Step) {
		s.Attempts = append(s.Attempts, history.Attempt{N: n, Start: start, ExitCode: -1, Log: logPath})
	})
	res, err := rs.runAttempt(ctx, i, inst, n, logPath, pats, log)
	end := time.Now().UTC()
	rs.rec.update(i, func(s *history.Step) {
		a := &s.Attempts[len(s.Attempts)-1]
		a.End, a.ExitCode, a.Signal = end, res.status.Code, res.status.Signal
		if err != nil {
			a.Error = rs.red.String(err.Error())
		}
	})
	return res, err
}

// runAttempt does attempt n of instance i within the step's timeout: the action, then, for
// a step that defines values, reading them (stages.go), every output line into the log at
// logPath.
func (rs *runState) runAttempt(ctx context.Context, i int, inst *plan.Instance, n int, logPath string, pats []*regexp.Regexp, log *slog.Logger) (attemptResult, error) {
	logFile, err := createAttemptLog(logPath)
	if err != nil {
		return attemptResult{status: ExitStatus{Code: 1}}, err
	}
	defer logFile.f.Close()
	lw := newLineWriter(rs.red, pats, rs.lineSink(inst, logFile, log))
	if inst.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, inst.Timeout, errStepTimeout)
		defer cancel()
	}
	var last lastExit
	var stdout *capture
	if wantsStdout(inst) && !rs.spec.DryRun {
		stdout = &capture{}
	}
	a := rs.newAttempt(i, inst, n, log, lw, stdout, &last)
	err = rs.dispatch(ctx, a)
	var values map[string]plan.Var
	if err == nil && inst.Step != nil && inst.Step.Outputs != nil && !rs.spec.DryRun {
		values, err = rs.readOutputs(ctx, inst, a.Workdir, stdout, lw)
	}
	err = rs.attemptError(ctx, inst, err, lw, logFile)
	res := attemptResult{status: last.get(), line: lw.Matched(), values: values}
	if err == nil {
		res.status = ExitStatus{}
	} else if res.status == (ExitStatus{}) {
		res.status = ExitStatus{Code: 1} // a built-in action failed outside any process
	}
	return res, err
}

// createAttemptLog creates the attempt's log file (and the run's log directory).
func createAttemptLog(path string) (*attemptLog, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create log directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return nil, fmt.Errorf("create attempt log: %w", err)
	}
	return &attemptLog{f: f, path: path}, nil
}

// lastExit is the exit status of the latest process of an attempt to end. An action may
// run processes of one attempt at once (provisioning waits for every node together), so it
// has a lock of its own.
type lastExit struct {
	mu sync.Mutex
	st ExitStatus
}

func (l *lastExit) set(st ExitStatus) {
	l.mu.Lock()
	l.st = st
	l.mu.Unlock()
}

func (l *lastExit) get() ExitStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st
}

// newAttempt is the Attempt an action does attempt n of instance i through: its workdir,
// output (lw), secrets and process runner, Exec for its processes (each one's status into
// last, standard output into stdout when the step's values come from it) and the hooks
// it records through.
func (rs *runState) newAttempt(i int, inst *plan.Instance, n int, log *slog.Logger, lw *lineWriter, stdout *capture, last *lastExit) *Attempt {
	workdir := cmp.Or(inst.Workdir, rs.workdir)
	procs := rs.attemptProcs(i, log)
	a := &Attempt{
		RunID: rs.spec.ID, Plan: rs.p, Instance: inst, Workdir: workdir, N: n, Log: log, Output: lw,
		Secrets: rs.secrets, StateDir: rs.e.cfg.StateDir, DryRun: rs.spec.DryRun, Procs: procs,
		health: &rs.health, slots: rs.e.slots, provisions: rs.e.provisions,
		nodeDown: func(d history.NodeDown) {
			if o := rs.e.cfg.Observer; o != nil {
				o.NodeDown(rs.spec.ID, d)
			}
		},
		Exec: func(ctx context.Context, dir string, argv []string, extraEnv ...string) (ExitStatus, error) {
			dir = cmp.Or(dir, workdir)
			env := stepEnv(inst, rs.secrets, rs.tools.DockerConfig, append(rs.sourceEnv(), extraEnv...))
			c := proc.Cmd{Argv: argv, Dir: dir, Env: env, Output: lw}
			if stdout != nil {
				c.Stdout = stdout // a nil *capture must not become a non-nil io.Writer
			}
			st, err := procs.Run(ctx, c)
			last.set(st)
			// A missing program and a missing directory both fail the start with ENOENT:
			// only the directory's own absence is said as such.
			if err != nil && dir == workdir && errors.Is(err, fs.ErrNotExist) && !dirExists(dir) {
				err = fmt.Errorf("workdir %s %s does not exist (refreshd creates only the default workdir, and a checkout step its path): create it, or check out into it first", dir, workdirSetting(rs.p, inst))
			}
			return st, err
		},
	}
	rs.recordHooks(a, i)
	return a
}

// attemptError is the attempt's error as recorded, from err, what the action returned: a
// timeout of the step's own said as such, a log that could not keep the output, and the
// output line that says why a process failed.
func (rs *runState) attemptError(ctx context.Context, inst *plan.Instance, err error, lw *lineWriter, logFile *attemptLog) error {
	if errors.Is(context.Cause(ctx), errStepTimeout) && rs.stepTimedOut(ctx) {
		err = fmt.Errorf("timed out after %s (process group stopped: SIGTERM, then SIGKILL after %s)", inst.Timeout, rs.grace)
	}
	// Output the log could not keep makes the attempt fail: a success whose log was cut
	// would hide what the step printed.
	lw.Flush()
	if lerr := logFile.close(); lerr != nil && err == nil {
		err = lerr
	}
	if err != nil && ctx.Err() == nil {
		// "exit code 1" alone sends the operator to the log; name the line that says why.
		if line := strings.TrimSpace(lw.ErrorLine()); line != "" && !strings.Contains(err.Error(), line) {
			err = fmt.Errorf("%w: %s", err, line)
		}
	}
	return err
}

// lineSink is where each redacted output line of an attempt of inst goes: its log file,
// the structured log, Config.Output and the observer's live tails.
func (rs *runState) lineSink(inst *plan.Instance, logFile *attemptLog, log *slog.Logger) func(line string) {
	obs, out := rs.e.cfg.Observer, rs.e.cfg.Output
	return func(line string) {
		if err := logFile.write(line); err != nil {
			log.Error("write attempt log", "path", logFile.path, "err", err)
		}
		log.LogAttrs(context.Background(), slog.LevelInfo, "output", slog.String("line", line))
		if out != nil {
			rs.e.outMu.Lock()
			fmt.Fprintf(out, "%s | %s\n", inst.ID, line)
			rs.e.outMu.Unlock()
		}
		if obs != nil {
			obs.Line(rs.spec.ID, inst.ID, line)
		}
	}
}

// recordHooks gives attempt a (of instance i) what an action records through: the step's
// record, the digests of earlier runs, the run's source, watched tags and warnings.
func (rs *runState) recordHooks(a *Attempt, i int) {
	inst, log := a.Instance, a.Log
	a.Record = func(f func(*history.Step)) { rs.rec.update(i, f) }
	a.Previous = func(ref string) (string, bool) { return rs.prev.digest(inst.ID, ref) }
	a.SetSource = func(src history.Source) {
		rs.rec.setSource(src)
		rs.rec.update(i, func(*history.Step) {}) // saves the record
	}
	a.Source = rs.rec.source
	a.ObserveTag = func(ref, digest string, pushed bool) {
		if rs.spec.DryRun {
			return
		}
		if _, err := rs.e.cfg.Store.ObserveTagBy(ref, digest, time.Now(), rs.sighting(pushed)); err != nil {
			log.Error("record the digest of a watched tag", "ref", ref, "err", err)
		}
	}
	a.Warn = func(msg string) {
		msg = rs.red.String(msg)
		log.Warn(msg)
		rs.rec.warn(inst.ID + ": " + msg)
		rs.rec.update(i, func(s *history.Step) { s.Warnings = append(s.Warnings, msg) })
	}
}

// sourceEnv tells a run step what the run's checkout fetched: REFRESHD_SOURCE_COMMIT, _REF
// and _REPO once a checkout of this run succeeded.
func (rs *runState) sourceEnv() []string {
	src := rs.rec.source()
	if src == nil {
		return nil
	}
	return []string{"REFRESHD_SOURCE_COMMIT=" + src.Commit, "REFRESHD_SOURCE_REF=" + src.Ref, "REFRESHD_SOURCE_REPO=" + src.Repo}
}

// stepTimedOut reports whether the attempt's own timeout (not the run's end) stopped it.
func (rs *runState) stepTimedOut(ctx context.Context) bool {
	return ctx.Err() != nil && !errors.Is(context.Cause(ctx), errPlanTimeout)
}

// dispatch does the attempt's action. A dry run executes nothing: it prints the action's
// operations, exactly as a run would execute them, or lets an action that can compute its
// effect without changing anything (publish) do so; the action honours a.DryRun.
func (rs *runState) dispatch(ctx context.Context, a *Attempt) error {
	act, err := builtin(a.Instance.Action, rs.p)
	if err != nil {
		return fmt.Errorf("instance %s: %w", a.Instance.ID, err)
	}
	if !rs.spec.DryRun {
		return act.run(ctx, rs.tools, a)
	}
	if p, ok := act.(previewer); ok {
		return p.preview(ctx, rs.tools, a)
	}
	for _, op := range act.describe(rs.tools) {
		fmt.Fprintf(a.Output, "dry run: %s\n", op)
	}
	return nil
}

// statusLevel is the log level of a step's or a run's end: a failure is an error, so that
// `journalctl -p err -u refreshd` lists every failed run and step with its reason; an
// interruption (cancel, shutdown, a crash found at start) a warning; the rest information.
func statusLevel(st history.Status) slog.Level {
	switch st {
	case history.StatusFailed:
		return slog.LevelError
	case history.StatusInterrupted:
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

// workdirSetting names where an instance's workdir comes from, for an error about it.
func workdirSetting(p *plan.Plan, inst *plan.Instance) string {
	switch {
	case inst.Step != nil && inst.Step.Workdir != "":
		return "(workdir: of step " + inst.Step.ID + ")"
	case p.Workdir != "":
		return "(workdir: of plan " + p.Name + ")"
	}
	return "(the plan's default)"
}

// dirExists says whether dir is there and a directory.
func dirExists(dir string) bool {
	fi, err := os.Stat(dir)
	return err == nil && fi.IsDir()
}

// Package daemon is refreshd's long-running process: it loads the plans, schedules them,
// runs them through the engine, serves the control socket and (if asked) metrics, sends
// webhooks, and speaks the systemd notify protocol. SIGHUP reloads; cancelling Run's
// context (SIGTERM) stops scheduling, interrupts running runs and returns.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/refreshd/refreshd/daemon/control"
	"github.com/refreshd/refreshd/daemon/metrics"
	"github.com/refreshd/refreshd/daemon/schedule"
	"github.com/refreshd/refreshd/daemon/web"
	"github.com/refreshd/refreshd/daemon/webhook"
	"github.com/refreshd/refreshd/executor"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/plan"
)

// RunRequest is what the daemon asks the engine to run.
type RunRequest struct {
	ID        string
	Trigger   history.Trigger
	Scheduled time.Time
	Params    map[string]string // checked; nil for the plan's defaults
}

// Engine runs one plan to its end (an adapter over executor.Engine: plan.Expand, then
// Engine.Run). Cancelling ctx interrupts the run: its process groups are killed with the
// grace period and the run is recorded interrupted.
type Engine interface {
	Run(ctx context.Context, p *plan.Plan, req RunRequest) (*history.Run, error)
}

// Store is the part of the history store the daemon uses (an adapter over history.Store).
type Store interface {
	Run(id string) (*history.Run, error)
	// Heads lists runs as headers (no steps, Summary counting them), newest first; plan
	// "" = all. Every listing reads these: their cost does not grow with a run's size.
	Heads(plan string, limit int) ([]*history.Run, error)
	Head(id string) (*history.Run, error)
	// RunPart is a run's header with its step summary and one window of its steps.
	RunPart(id string, offset, limit int) (*history.Run, error)
	// Step is one step instance of a run and its index.
	Step(id, instance string) (int, *history.Step, error)
	// SaveRun records a run the engine never ran: a skipped trigger, a queued run that was
	// dropped, a run that panicked.
	SaveRun(r *history.Run) error
	// Recovered reports a corrupt store moved aside at start-up (history.Store.Recovered).
	Recovered() *history.Recovery
	// Tags returns the watched cache tags' records, by ref (history.Store.Tags).
	Tags() (map[string]history.Tag, error)
	// Pins returns published package pins, newest first (history.Store.Pins).
	Pins(q history.PinQuery) ([]history.Pin, error)
	schedule.Marks
}

// Loader loads every plan in dir: the valid ones, and a plan.ErrorList whose Pos.File names
// each invalid file, as plan.LoadDir does. Any other error is charged to the directory.
type Loader func(dir string) ([]*plan.Plan, error)

// Config configures a Daemon.
type Config struct {
	PlansDir string
	Load     Loader
	Engine   Engine
	Store    Store
	Logger   *slog.Logger
	Version  string
	// Build labels refreshd_build_info (the release alone, not the Version line).
	Build       metrics.BuildInfo
	Socket      string // control socket path
	SocketGroup string // group owning the socket ("" keeps the daemon's)
	// MetricsAddr serves /metrics when not empty (see metrics.ListenAddr).
	MetricsAddr string
	// HTTPAddr serves the read-only web dashboard (daemon/web) when not empty; a bare port
	// binds 127.0.0.1. The same address as MetricsAddr shares one listener.
	HTTPAddr string
	// HTTPHosts are the names, besides their own addresses, that the TCP listeners answer
	// to (--http-host): host or host:port. Any other Host header is answered 421.
	HTTPHosts []string
	// Webhooks are global targets, notified for every plan.
	Webhooks []webhook.Target
	// HTTPURL is the dashboard's address as operators reach it (a proxy's, say): a
	// notification links the run's page under it. Empty: notifications carry no link.
	HTTPURL string
	// Notify speaks sd_notify; nil sends nothing.
	Notify Notifier
	// RunID makes run ids (executor.NewRunID); nil uses the scheduler's default.
	RunID func(plan string, t time.Time) string
	// StopTimeout bounds a stop (0: DefaultStopTimeout). Give the engine
	// MaxKillGrace(StopTimeout) so that running steps are killed in time.
	StopTimeout time.Duration
	// LiveLines bounds the live output kept per running run for `logs -f` and `run --wait`
	// (0: 20,000 lines); a follower that falls further behind is told how many it missed.
	LiveLines int
}

// DefaultStopTimeout is below the unit's TimeoutStopSec (90s): the daemon finishes its own
// stop, runs recorded, before systemd would SIGKILL it.
const DefaultStopTimeout = 80 * time.Second

// MaxKillGrace is the longest kill grace that fits in a stop of stopTimeout: a margin (a
// quarter, at most 10s) is left for reaping the groups, recording the runs and sending
// their webhooks.
func MaxKillGrace(stopTimeout time.Duration) time.Duration {
	if stopTimeout <= 0 {
		stopTimeout = DefaultStopTimeout
	}
	return stopTimeout - min(stopTimeout/4, 10*time.Second)
}

// errStopping is the recorded reason of the runs a stop interrupts. Run's context ends on
// SIGTERM (or SIGINT in a terminal); the unit stops the daemon with SIGTERM.
var errStopping = errors.New("refreshd stopping (SIGTERM)")

// Daemon is a running refreshd. Build it with New, then call Run.
type Daemon struct {
	cfg     Config
	log     *slog.Logger
	sched   *schedule.Scheduler
	metrics *metrics.Metrics
	web     *web.Server // nil without HTTPAddr
	hooks   *webhook.Sender
	streams *streams
	started time.Time
	// hookCtx is the context of webhook sends; cancelHooks drops those still in flight
	// webhookDrain into a stop, so a slow receiver cannot hold the stop up.
	hookCtx     context.Context
	cancelHooks context.CancelFunc
	reloadMu    sync.Mutex // serialises reloads (SIGHUP and the socket), whole

	// notifyMu orders sd_notify messages with the state they describe: stopping is set
	// with STOPPING=1 (holding both locks; read under either), after which no READY=1 goes
	// out and STATUS= only counts the stop down. Taken before mu, never while holding it.
	notifyMu sync.Mutex

	mu         sync.Mutex // guards the fields below
	plans      map[string]*plan.Plan
	loadErrors []control.LoadError
	lastReload time.Time
	lastStatus map[string]history.Status // per plan, for recovery notifications
	running    map[string]string         // run id -> plan, started runs
	stopping   bool                      // a stop has begun (STATUS= says so from then on)
}

// New checks cfg and builds a daemon; nothing runs until Run.
func New(cfg Config) (*Daemon, error) {
	switch {
	case cfg.Load == nil, cfg.Engine == nil, cfg.Store == nil:
		return nil, errors.New("daemon config: Load, Engine and Store are required")
	case cfg.Socket == "":
		return nil, errors.New("daemon config: no control socket path")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Notify == nil {
		cfg.Notify = nopNotifier{}
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	hookCtx, cancelHooks := context.WithCancel(context.Background())
	d := &Daemon{
		hookCtx:     hookCtx,
		cancelHooks: cancelHooks,
		cfg:         cfg,
		log:         cfg.Logger,
		hooks:       webhook.NewSender(cfg.Logger, 4, 10*time.Second),
		streams:     newStreams(cfg.LiveLines),
		plans:       map[string]*plan.Plan{},
		lastStatus:  map[string]history.Status{},
		running:     map[string]string{},
	}
	if cfg.MetricsAddr != "" {
		d.metrics = metrics.New(cfg.Build)
		if rec := cfg.Store.Recovered(); rec != nil {
			d.metrics.StoreRecovered(rec.At)
		}
		d.metrics.WatchTagAges(d.tagAges)
	}
	if cfg.HTTPAddr != "" {
		var err error
		if d.web, err = web.New(web.Config{Source: d, Logger: cfg.Logger, Version: cfg.Version}); err != nil {
			return nil, err
		}
	}
	opts := []schedule.Option{schedule.WithLogger(cfg.Logger), schedule.WithMarks(cfg.Store)}
	if cfg.RunID != nil {
		opts = append(opts, schedule.WithRunID(cfg.RunID))
	}
	d.sched = schedule.New(&runner{d: d}, opts...)
	return d, nil
}

// Observer returns the engine observer that feeds metrics, live logs and notifications.
// Pass it as executor.Config.Observer.
func (d *Daemon) Observer() *Observer { return &Observer{d: d} }

// Run runs the daemon until ctx is cancelled, then shuts down: scheduling stops, running
// runs are interrupted (the engine kills their process groups) and recorded, and Run
// returns once they have.
func (d *Daemon) Run(ctx context.Context) error {
	d.started = time.Now()
	// SIGHUP is caught from the start: its default action would kill a daemon still loading.
	// A reload asked for before READY is done once the daemon is ready.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	d.notify("STATUS=loading plans")
	plans := d.loadPlans(nil)
	d.rememberLastStatus(plans)

	l, err := control.Listen(d.cfg.Socket, d.cfg.SocketGroup)
	if err != nil {
		return err
	}
	httpLs, err := d.listenHTTP()
	if err != nil {
		l.Close()
		return err
	}

	schedCtx, stopSched := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopSched(nil)
	srvCtx, stopSrv := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSrv()
	// The scheduler is waited for through Done (bounded at shutdown), the servers by wg.
	go d.sched.Run(schedCtx, plans)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := control.Serve(srvCtx, l, d, d.log); err != nil {
			d.log.Error("control socket", "err", err)
		}
	}()
	for _, hl := range httpLs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := serveHTTP(srvCtx, hl, d.cfg.HTTPHosts, d.log); err != nil {
				d.log.Error("http listener", "err", err)
			}
		}()
	}

	watchdog := d.cfg.Notify.WatchdogTicker()
	defer watchdog.Stop()

	d.log.Info("daemon ready", "plans", len(plans), "socket", d.cfg.Socket, "plans_dir", d.cfg.PlansDir)
	d.notifyStatus("READY=1")
	for {
		select {
		case <-ctx.Done():
			d.log.Info("shutting down: interrupting running runs")
			d.notifyStopping()
			stopSched(errStopping)
			select {
			case <-d.sched.Done():
			case <-time.After(MaxKillGrace(d.cfg.StopTimeout) + min(d.cfg.StopTimeout/8, 5*time.Second)):
				// Not expected (the engine caps every grace to fit), but systemd's SIGKILL
				// must not be what ends a stop: the next start marks such runs interrupted.
				d.log.Error("runs did not stop in time; exiting with them still recorded running", "stop_timeout", d.cfg.StopTimeout)
			}
			stopSrv()
			wg.Wait()
			d.drainWebhooks()
			d.log.Info("daemon stopped")
			return nil
		case <-hup:
			d.log.Info("SIGHUP: reloading plans")
			d.Reload(ctx)
		case <-watchdog.C():
			// Only a scheduler that answers keeps the watchdog fed: if its goroutine is
			// stuck, systemd restarts the daemon.
			pctx, cancel := context.WithTimeout(ctx, watchdogProbe)
			_, err := d.sched.Plans(pctx)
			cancel()
			if err != nil {
				d.log.Error("scheduler did not answer; not feeding the watchdog", "err", err)
				continue
			}
			d.cfg.Notify.Notify("WATCHDOG=1")
		}
	}
}

// loadPlans loads the plans directory. A file that fails to load keeps the plan it held
// before (old, by file), so a typo never unschedules a plan.
func (d *Daemon) loadPlans(old map[string]*plan.Plan) []*plan.Plan {
	loaded, err := d.cfg.Load(d.cfg.PlansDir)
	var loadErrs []control.LoadError
	failed := map[string]bool{}
	var perFile plan.ErrorList
	if err != nil && !errors.As(err, &perFile) && len(loaded) == 0 && old != nil {
		// Not a list of plan errors but the directory itself (unreadable, gone): keep every
		// plan as it was rather than unschedule them all.
		d.log.Error("plans directory did not load; keeping every plan as it was", "dir", d.cfg.PlansDir, "err", err)
		d.mu.Lock()
		d.loadErrors, d.lastReload = []control.LoadError{{File: d.cfg.PlansDir, Error: err.Error()}}, time.Now()
		plans := make([]*plan.Plan, 0, len(old))
		for _, p := range old {
			plans = append(plans, p)
		}
		d.mu.Unlock()
		if d.metrics != nil {
			d.metrics.LoadErrors([]string{d.cfg.PlansDir})
		}
		return plans
	}
	if err != nil {
		for _, le := range loadErrors(err, d.cfg.PlansDir) {
			loadErrs = append(loadErrs, le)
			failed[le.File] = true
			d.log.Error("plan did not load", "file", le.File, "err", le.Error)
		}
	}
	byName := map[string]*plan.Plan{}
	for _, p := range loaded {
		byName[p.Name] = p
	}
	for name, p := range old {
		if _, ok := byName[name]; !ok && failed[p.File] {
			d.log.Warn("keeping the previous version of a plan whose file did not load", "plan", name, "file", p.File)
			byName[name] = p
		}
	}
	plans := make([]*plan.Plan, 0, len(byName))
	for _, p := range byName {
		plans = append(plans, p)
		if d.metrics != nil {
			d.metrics.PlanKnown(p.Name)
		}
	}
	d.mu.Lock()
	d.plans, d.loadErrors, d.lastReload = byName, loadErrs, time.Now()
	d.mu.Unlock()
	if d.metrics != nil {
		d.metrics.PoolNodes(poolNodes(plans))
		files := make([]string, 0, len(failed))
		for f := range failed {
			files = append(files, f)
		}
		d.metrics.LoadErrors(files)
	}
	return plans
}

// poolNodes lists the nodes of every builder's pools (platforms with more than one node)
// the plans declare, each once: plans share builders.
func poolNodes(plans []*plan.Plan) []metrics.PoolNode {
	seen := map[metrics.PoolNode]bool{}
	var out []metrics.PoolNode
	for _, p := range plans {
		for _, b := range p.Builders {
			per := map[string]int{}
			for _, n := range b.Nodes {
				per[n.Platform]++
			}
			for _, n := range b.Nodes {
				pn := metrics.PoolNode{Builder: b.Name, Node: n.Name, Platform: n.Platform}
				if per[n.Platform] > 1 && !seen[pn] {
					seen[pn] = true
					out = append(out, pn)
				}
			}
		}
	}
	return out
}

// loadErrors splits a Loader's error by file, from the structured positions of
// plan.LoadDir's errors (a path may hold ':', so the text is never parsed). An error that
// is not a plan error is charged to the plans directory.
func loadErrors(err error, dir string) []control.LoadError {
	var list plan.ErrorList
	var one *plan.Error
	switch {
	case errors.As(err, &list):
		out := make([]control.LoadError, 0, len(list))
		for _, e := range list {
			out = append(out, control.LoadError{File: e.Pos.File, Error: e.Error()})
		}
		return out
	case errors.As(err, &one):
		return []control.LoadError{{File: one.Pos.File, Error: one.Error()}}
	}
	return []control.LoadError{{File: dir, Error: err.Error()}}
}

// watchdogProbe bounds the scheduler round-trip that precedes each watchdog ping.
const watchdogProbe = 5 * time.Second

// webhookDrain is how long a stop waits for webhooks in flight before cancelling them.
const webhookDrain = 5 * time.Second

// drainWebhooks waits for the webhook sends in flight, at most webhookDrain, then cancels
// the rest (the sender logs each one it drops).
func (d *Daemon) drainWebhooks() {
	done := make(chan struct{})
	go func() {
		d.hooks.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(webhookDrain):
		d.log.Warn("webhooks still sending; cancelling them", "waited", webhookDrain)
		d.cancelHooks()
		<-done
	}
}

// Reload re-reads the plans and reschedules; running runs are not touched. Reloads are
// serialised, so their RELOADING=1 ... READY=1 notifications never interleave.
func (d *Daemon) Reload(ctx context.Context) (*control.Reloaded, error) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	d.notify(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d\nSTATUS=reloading plans", monotonicUsec()))
	d.mu.Lock()
	old := d.plans
	d.mu.Unlock()
	plans := d.loadPlans(old)
	var added []*plan.Plan
	for _, p := range plans {
		if _, ok := old[p.Name]; !ok {
			added = append(added, p)
		}
	}
	// A plan a reload adds gets its history (last status, last success) as a plan loaded at
	// start-up does; a plan it removes stops being exported.
	d.rememberLastStatus(added)
	if d.metrics != nil {
		kept := map[string]bool{}
		for _, p := range plans {
			kept[p.Name] = true
		}
		for name := range old {
			if !kept[name] {
				d.metrics.PlanRemoved(name)
			}
		}
	}
	if err := d.sched.Reload(ctx, plans); err != nil {
		d.log.Error("reschedule plans", "err", err)
		d.mu.Lock()
		d.loadErrors = append(d.loadErrors, control.LoadError{Error: err.Error()})
		d.mu.Unlock()
	}
	d.mu.Lock()
	res := &control.Reloaded{Plans: len(plans), LoadErrors: d.loadErrors}
	d.mu.Unlock()
	d.log.Info("plans reloaded", "plans", len(plans), "errors", len(res.LoadErrors))
	d.notifyStatus("READY=1")
	return res, nil
}

// rememberLastStatus seeds, from history, the per-plan last status (so that the first
// success after a restart still counts as a recovery) and the metrics' last run, last
// success and last fresh times.
func (d *Daemon) rememberLastStatus(plans []*plan.Plan) {
	for _, p := range plans {
		runs, err := d.cfg.Store.Heads(p.Name, 0) // newest first, as many as retention keeps
		if err != nil {
			d.log.Warn("read last runs", "plan", p.Name, "err", err)
			continue
		}
		for _, r := range runs {
			if r.Status == history.StatusSucceeded || r.Status == history.StatusFailed {
				d.mu.Lock()
				d.lastStatus[p.Name] = r.Status
				d.mu.Unlock()
				break
			}
		}
		if d.metrics != nil {
			ends := make([]metrics.RunEnd, 0, len(runs))
			for _, r := range runs {
				if r.End.IsZero() || r.DryRun {
					continue
				}
				ends = append(ends, runEnd(r, ""))
			}
			d.metrics.Restore(p.Name, ends)
		}
	}
}

// runEnd is a finished run as the metrics see it. skipReason, when set, is the reason
// the caller knows (the scheduler's overlap); otherwise it is read from the record.
func runEnd(r *history.Run, skipReason string) metrics.RunEnd {
	e := metrics.RunEnd{Plan: r.Plan, Status: string(r.Status), End: r.End}
	if r.Status == history.StatusSkipped {
		e.SkipReason = skipReason
		if e.SkipReason == "" {
			e.SkipReason = metrics.SkipOther
			if strings.HasPrefix(r.Reason, executor.SkipIfReasonPrefix) {
				e.SkipReason = metrics.SkipFresh
			}
		}
	}
	return e
}

// notify sends state to systemd, unless a stop has begun: after STOPPING=1 neither a
// READY=1 nor a reload's status may tell systemd the daemon is serving again.
func (d *Daemon) notify(state string) {
	d.notifyMu.Lock()
	defer d.notifyMu.Unlock()
	if !d.stopping {
		d.cfg.Notify.Notify(state)
	}
}

// notifyStatus sends STATUS= with the current state, after the assignments in prefix
// ("READY=1"; "" for none). It is sent at every run start and end, so the line never shows
// a run that has ended; during a stop it counts the runs still being stopped.
func (d *Daemon) notifyStatus(prefix string) {
	d.notifyMu.Lock()
	defer d.notifyMu.Unlock()
	if d.stopping {
		prefix = "" // no READY=1 after STOPPING=1
	}
	if prefix != "" {
		prefix += "\n"
	}
	d.cfg.Notify.Notify(prefix + "STATUS=" + d.statusLine())
}

// notifyStopping sends STOPPING=1 and marks the daemon stopping, in one step: a status
// computed before it cannot be sent after it.
func (d *Daemon) notifyStopping() {
	d.notifyMu.Lock()
	defer d.notifyMu.Unlock()
	d.mu.Lock()
	d.stopping = true
	d.mu.Unlock()
	d.cfg.Notify.Notify("STOPPING=1\nSTATUS=" + d.statusLine())
}

// statusLine is the short STATUS= text: "3 plans, 1 running: airflow-main", or during a
// stop "stopping: interrupting 1 running run: airflow-main". It is built from the runs the
// engine reported started and not yet finished, not from the scheduler, which counts a run
// until its goroutine returns, after the run's end was reported. Call with notifyMu held.
func (d *Daemon) statusLine() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	running := slices.Compact(slices.Sorted(maps.Values(d.running)))
	if d.stopping {
		switch len(running) {
		case 0:
			return "stopping: no runs left"
		case 1:
			return "stopping: interrupting 1 running run: " + running[0]
		}
		return fmt.Sprintf("stopping: interrupting %d running runs: %s", len(running), strings.Join(running, ", "))
	}
	s := fmt.Sprintf("%d plans, %d running", len(d.plans), len(running))
	if len(running) > 0 {
		s += ": " + strings.Join(running, ", ")
	}
	if n := len(d.loadErrors); n > 0 {
		s += fmt.Sprintf("; %d plan load errors", n)
	}
	return s
}

// tagAges lists the watched tags of the loaded plans as refreshd_cache_tag_age_seconds
// reports them: a tag whose plan a reload removed is not exported (it would alert for a
// plan nobody runs; its record is forgotten 90 days after its last run).
func (d *Daemon) tagAges() ([]metrics.TagAge, error) {
	tags, err := d.cfg.Store.Tags()
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]metrics.TagAge, 0, len(tags))
	for _, t := range tags {
		if d.plans[t.Plan] != nil {
			out = append(out, metrics.TagAge{Plan: t.Plan, Ref: t.Ref, Changed: t.ChangedBy})
		}
	}
	return out, nil
}

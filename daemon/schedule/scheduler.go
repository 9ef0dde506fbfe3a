// Package schedule starts runs of plans on their cron schedules and on request.
//
// Like robfig/cron's own Cron, one goroutine owns the plan table; everything else (manual
// triggers, reloads, finished runs, status snapshots, cancels) talks to it over channels, so
// the table needs no lock. robfig/cron/v3 is used for parsing and next-time computation
// only: a single timer wakes the owner at the earliest next time of any plan, so an idle
// scheduler costs nothing (no polling).
//
// The rules (see the scheduler lessons in the design notes): never two runs of one plan; a
// trigger while the plan runs is skipped (overlap: skip) or waits, one deep (overlap: queue);
// a trigger never cancels a running run; a panicking run ends that run, not the scheduler;
// the last scheduled time is persisted so that a time missed while the daemon was down is
// run once at start-up when the plan asks for catch_up.
package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/plan"
)

// Fire is one decision to start a run of a plan.
type Fire struct {
	RunID     string
	Plan      *plan.Plan
	Trigger   history.Trigger
	Scheduled time.Time // the cron time; zero for manual runs
	// Params are a manual run's parameters, checked (plan.ResolveParams); nil for the
	// defaults, as every scheduled run has.
	Params map[string]string
}

// Runner carries out the scheduler's decisions.
type Runner interface {
	// Run executes one run to its end. ctx is cancelled by Cancel or when the scheduler
	// stops; the run must then stop its processes and return.
	Run(ctx context.Context, f Fire)
	// Skipped records a trigger that was dropped because the plan was already running.
	Skipped(f Fire, reason string)
	// Dropped records a queued run that will never start: it was cancelled, its plan was
	// removed by a reload, or the scheduler is stopping (cause says which). Whoever waits
	// for that run must learn that it ended.
	Dropped(f Fire, cause error)
	// Released says f's plan is free for another trigger: f's Run returned and the
	// scheduler let go of it (a queued run may have taken its place). Whoever waits for f
	// to end so as to trigger the plan again (`run --wait P && run P`) is told here, not
	// when Run recorded the end: until Released a trigger is refused as overlapping. Called
	// on the scheduler's goroutine: it must not wait for the scheduler.
	Released(f Fire)
}

// Marks persists the last scheduled time per plan (history.Store satisfies it).
type Marks interface {
	LastScheduled(plan string) (time.Time, error)
	SetLastScheduled(plan string, t time.Time) error
}

// Errors returned by Trigger and Cancel.
var (
	ErrUnknownPlan = errors.New("no such plan")
	ErrRunning     = errors.New("plan is already running")
	ErrUnknownRun  = errors.New("no such running run")
	ErrStopped     = errors.New("scheduler stopped")
)

// PlanState is a snapshot of one scheduled plan.
type PlanState struct {
	Plan     string
	File     string
	Schedule string
	Timezone string
	Overlap  string
	Next     time.Time // zero: no schedule
	Running  string    // run id
	Queued   string    // run id of the waiting trigger
}

// Option configures a Scheduler.
type Option func(*Scheduler)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *Scheduler) { s.log = l } }

// WithMarks persists last scheduled times and enables catch-up.
func WithMarks(m Marks) Option { return func(s *Scheduler) { s.marks = m } }

// WithRunID sets how run ids are made (default: plan-YYYYMMDDTHHMMSS.mmmZ).
func WithRunID(f func(plan string, t time.Time) string) Option {
	return func(s *Scheduler) { s.runID = f }
}

// WithClock replaces time.Now (tests of catch-up decisions).
func WithClock(now func() time.Time) Option { return func(s *Scheduler) { s.now = now } }

// Scheduler schedules plans. Create it with New, start it with Run.
type Scheduler struct {
	runner Runner
	log    *slog.Logger
	marks  Marks
	runID  func(plan string, t time.Time) string
	now    func() time.Time

	reqs chan func(*state) // closures executed by the owner goroutine
	done chan struct{}     // closed when Run returns
}

// New returns a scheduler for the given plans; nothing happens until Run.
func New(runner Runner, opts ...Option) *Scheduler {
	s := &Scheduler{
		runner: runner,
		log:    slog.Default(),
		runID:  defaultRunID,
		now:    time.Now,
		reqs:   make(chan func(*state)),
		done:   make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func defaultRunID(plan string, t time.Time) string {
	// An instance's name holds "/" (PLAN/INSTANCE); a run id is a path segment and a file name.
	return strings.ReplaceAll(plan, "/", "_") + "-" + t.UTC().Format("20060102T150405.000Z")
}

// entry is one plan in the owner's table.
type entry struct {
	plan    *plan.Plan
	sched   cron.Schedule // nil: manual runs only
	next    time.Time
	running *Fire
	cancel  context.CancelCauseFunc
	queued  *Fire
	removed bool // dropped by a reload while running: forget it when the run ends
	lastID  string
	seq     int
}

// newRunID makes a run id unique within the plan even when two triggers share a timestamp.
func (s *Scheduler) newRunID(e *entry, t time.Time) string {
	id := s.runID(e.plan.Name, t)
	if id == e.lastID {
		e.seq++
		return fmt.Sprintf("%s.%d", id, e.seq)
	}
	e.lastID, e.seq = id, 0
	return id
}

// state is owned by the Run goroutine.
type state struct {
	entries  map[string]*entry
	runCtx   context.Context
	wg       sync.WaitGroup
	finished chan *Fire
	stopped  bool
}

// Run schedules plans until ctx is cancelled, then stops scheduling, cancels the running
// runs, waits for them to return, and returns. plans is the initial table.
func (s *Scheduler) Run(ctx context.Context, plans []*plan.Plan) error {
	defer close(s.done)
	runCtx, cancelRuns := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelRuns(nil)
	st := &state{entries: map[string]*entry{}, runCtx: runCtx, finished: make(chan *Fire)}
	if errs := s.load(st, plans); errs != nil {
		s.log.Error("schedule plans", "err", errs)
	}
	s.catchUp(st)

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := s.arm(st, timer)
		var wake <-chan time.Time
		if !next.IsZero() {
			wake = timer.C
		}
		select {
		case <-ctx.Done():
			st.stopped = true
			s.dropQueued(st, context.Cause(ctx))
			// The runs learn why they end from their context's cause (the daemon's
			// "refreshd stopping (SIGTERM)"), which the engine records as their reason.
			cancelRuns(context.Cause(ctx))
			s.drain(st)
			return nil
		case <-wake:
			s.fireDue(st)
		case f := <-st.finished:
			s.finish(st, f)
		case req := <-s.reqs:
			req(st)
		}
	}
}

// dropQueued drops every queued run with cause: a stopping scheduler starts nothing more.
func (s *Scheduler) dropQueued(st *state, cause error) {
	for _, name := range sortedNames(st) {
		if e := st.entries[name]; e.queued != nil {
			s.drop(e, cause)
		}
	}
}

// drop forgets e's queued run and tells the runner it will never start.
func (s *Scheduler) drop(e *entry, cause error) {
	q := e.queued
	e.queued = nil
	if cause == nil {
		cause = context.Canceled
	}
	s.log.Info("queued run dropped", "plan", q.Plan.Name, "run", q.RunID, "cause", cause)
	s.runner.Dropped(*q, cause)
}

// drain waits for running runs to return, still answering requests meanwhile (status must
// show the runs being interrupted; triggers are refused).
func (s *Scheduler) drain(st *state) {
	allDone := make(chan struct{})
	go func() {
		st.wg.Wait()
		close(allDone)
	}()
	for {
		select {
		case <-allDone:
			return
		case f := <-st.finished:
			s.finish(st, f)
		case req := <-s.reqs:
			req(st)
		}
	}
}

// arm sets timer to the earliest next time and returns it (zero: nothing scheduled).
func (s *Scheduler) arm(st *state, timer *time.Timer) time.Time {
	var earliest time.Time
	for _, e := range st.entries {
		if e.sched == nil || e.removed || e.next.IsZero() {
			continue
		}
		if earliest.IsZero() || e.next.Before(earliest) {
			earliest = e.next
		}
	}
	if !timer.Stop() {
		select {
		case <-timer.C:
		default:
		}
	}
	if !earliest.IsZero() {
		timer.Reset(max(earliest.Sub(s.now()), 0))
	}
	return earliest
}

// fireDue triggers every plan whose next time has come and computes its following time.
func (s *Scheduler) fireDue(st *state) {
	now := s.now()
	for _, name := range sortedNames(st) {
		e := st.entries[name]
		if e.sched == nil || e.removed || e.next.IsZero() || e.next.After(now) {
			continue
		}
		scheduled := e.next
		e.next = e.sched.Next(now)
		s.mark(name, scheduled)
		s.trigger(st, e, &Fire{RunID: s.newRunID(e, scheduled), Plan: e.plan, Trigger: history.TriggerSchedule, Scheduled: scheduled})
	}
}

func (s *Scheduler) mark(name string, t time.Time) {
	if s.marks == nil {
		return
	}
	if err := s.marks.SetLastScheduled(name, t); err != nil {
		s.log.Error("persist last scheduled time", "plan", name, "err", err)
	}
}

// trigger starts f, queues it, or records it as skipped. It reports whether f will run.
func (s *Scheduler) trigger(st *state, e *entry, f *Fire) (queued bool, err error) {
	if e.running == nil {
		s.start(st, e, f)
		return false, nil
	}
	if e.plan.Overlap == plan.OverlapQueue && e.queued == nil {
		e.queued = f
		s.log.Info("run queued behind the running one", "plan", e.plan.Name, "run", f.RunID, "running", e.running.RunID)
		return true, nil
	}
	reason := fmt.Sprintf("plan %s is already running (run %s)", e.plan.Name, e.running.RunID)
	if e.queued != nil {
		reason += fmt.Sprintf(" and run %s is queued", e.queued.RunID)
	}
	if f.Trigger != history.TriggerManual {
		s.log.Warn("trigger skipped", "plan", e.plan.Name, "run", f.RunID, "reason", reason)
		s.runner.Skipped(*f, reason)
	}
	return false, fmt.Errorf("%w: %s", ErrRunning, reason)
}

func (s *Scheduler) start(st *state, e *entry, f *Fire) {
	ctx, cancel := context.WithCancelCause(st.runCtx)
	e.running, e.cancel = f, cancel
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		defer cancel(nil)
		defer func() {
			// A panicking run ends that run, not the daemon. The runner records the
			// run's outcome itself; this is the last line of defence.
			if r := recover(); r != nil {
				s.log.Error("run panicked", "plan", f.Plan.Name, "run", f.RunID, "panic", r, "stack", string(debug.Stack()))
			}
			st.finished <- f
		}()
		s.runner.Run(ctx, *f)
	}()
}

func (s *Scheduler) finish(st *state, f *Fire) {
	defer s.runner.Released(*f)
	e := st.entries[f.Plan.Name]
	if e == nil || e.running != f {
		return
	}
	e.running, e.cancel = nil, nil
	if e.removed {
		delete(st.entries, f.Plan.Name)
		return
	}
	if q := e.queued; q != nil && !st.stopped {
		e.queued = nil
		q.Plan = e.plan // a reload while it waited: run the current version
		s.start(st, e, q)
	}
}

// catchUp runs, once, each catch_up plan whose scheduled time passed while the daemon was
// down. A plan seen for the first time gets a mark now, so later downtime is detected.
func (s *Scheduler) catchUp(st *state) {
	if s.marks == nil {
		return
	}
	now := s.now()
	for _, name := range sortedNames(st) {
		e := st.entries[name]
		if e.sched == nil {
			continue
		}
		last, ok := s.lastMark(name, now)
		if !ok {
			continue
		}
		missed := lastMissed(e.sched, last, now)
		if missed.IsZero() {
			continue
		}
		s.mark(name, missed)
		if !e.plan.CatchUp {
			s.log.Info("scheduled time missed while down; catch_up is off", "plan", name, "missed", missed)
			continue
		}
		s.log.Info("catching up a scheduled time missed while down", "plan", name, "missed", missed)
		s.trigger(st, e, &Fire{RunID: s.newRunID(e, now), Plan: e.plan, Trigger: history.TriggerCatchUp, Scheduled: missed})
	}
}

// load replaces the table with plans. A plan whose schedule does not parse keeps its old
// version; the errors are returned, one per plan. Running runs are never interrupted.
func (s *Scheduler) load(st *state, plans []*plan.Plan) error {
	var errs []error
	seen := map[string]bool{}
	now := s.now()
	for _, p := range plans {
		seen[p.Name] = true
		var sched cron.Schedule
		if p.Schedule != "" {
			var err error
			if sched, err = plan.ParseSchedule(p.Schedule, p.Location); err != nil {
				errs = append(errs, fmt.Errorf("plan %s (%s): %w", p.Name, p.Pos, err))
				if old := st.entries[p.Name]; old != nil {
					old.removed = false
				}
				continue
			}
		}
		e := st.entries[p.Name]
		if e == nil {
			e = &entry{}
			st.entries[p.Name] = e
			if sched != nil {
				s.markIfNew(p.Name, now)
			}
		}
		changed := e.plan == nil || e.plan.Schedule != p.Schedule || zone(e.plan) != zone(p)
		e.plan, e.sched, e.removed = p, sched, false
		if sched == nil {
			e.next = time.Time{}
		} else if changed || e.next.IsZero() {
			e.next = sched.Next(now)
		}
	}
	for name, e := range st.entries {
		if seen[name] {
			continue
		}
		if e.running != nil {
			e.removed = true
			if e.queued != nil {
				s.drop(e, fmt.Errorf("plan %s removed by a reload", name))
			}
		} else {
			delete(st.entries, name)
		}
	}
	return errors.Join(errs...)
}

// markIfNew gives a plan seen for the first time (at start or added by a reload) a mark
// now, so downtime before its first fire is caught up.
func (s *Scheduler) markIfNew(name string, now time.Time) {
	if s.marks != nil {
		s.lastMark(name, now)
	}
}

// lastMark is the plan's last scheduled time as marked. ok is false when there is none to
// compare with: unreadable (logged), or the plan is new, which then gets a mark now.
func (s *Scheduler) lastMark(name string, now time.Time) (last time.Time, ok bool) {
	last, err := s.marks.LastScheduled(name)
	if err != nil {
		s.log.Error("read last scheduled time", "plan", name, "err", err)
		return time.Time{}, false
	}
	if last.IsZero() {
		s.mark(name, now)
		return time.Time{}, false
	}
	return last, true
}

func zone(p *plan.Plan) string {
	if p.Location == nil {
		return ""
	}
	return p.Location.String()
}

func sortedNames(st *state) []string {
	names := make([]string, 0, len(st.entries))
	for n := range st.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// do runs f on the owner goroutine and waits for it.
func (s *Scheduler) do(ctx context.Context, f func(*state)) error {
	ran := make(chan struct{})
	select {
	case s.reqs <- func(st *state) { f(st); close(ran) }:
	case <-s.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	<-ran
	return nil
}

// Reload replaces the plans. Plans that fail to schedule keep their old version; the
// returned error lists them. Runs in progress continue.
func (s *Scheduler) Reload(ctx context.Context, plans []*plan.Plan) error {
	var err error
	if derr := s.do(ctx, func(st *state) { err = s.load(st, plans) }); derr != nil {
		return derr
	}
	return err
}

// Trigger starts a manual run of the named plan now, or queues it (overlap: queue). It
// returns the run id, and whether the run waits behind a running one.
func (s *Scheduler) Trigger(ctx context.Context, name string) (runID string, queued bool, err error) {
	return s.TriggerWith(ctx, name, nil)
}

// TriggerWith is Trigger for a run with params, already checked against the plan.
func (s *Scheduler) TriggerWith(ctx context.Context, name string, params map[string]string) (runID string, queued bool, err error) {
	derr := s.do(ctx, func(st *state) {
		e := st.entries[name]
		if e == nil || e.removed {
			err = fmt.Errorf("%w: %q", ErrUnknownPlan, name)
			return
		}
		if st.stopped {
			err = ErrStopped
			return
		}
		f := &Fire{RunID: s.newRunID(e, s.now()), Plan: e.plan, Trigger: history.TriggerManual, Params: params}
		runID = f.RunID
		queued, err = s.trigger(st, e, f)
	})
	if derr != nil {
		return "", false, derr
	}
	return runID, queued, err
}

// CancelCause interrupts a running run (or drops a queued one); the run's context gets
// cause, so the run can record why it ended. A queued run is handed to Runner.Dropped
// with cause.
func (s *Scheduler) CancelCause(ctx context.Context, runID string, cause error) error {
	err := fmt.Errorf("%w: %q", ErrUnknownRun, runID)
	derr := s.do(ctx, func(st *state) {
		for _, e := range st.entries {
			switch {
			case e.running != nil && e.running.RunID == runID:
				e.cancel(cause)
				err = nil
			case e.queued != nil && e.queued.RunID == runID:
				s.drop(e, cause)
				err = nil
			}
		}
	})
	if derr != nil {
		return derr
	}
	return err
}

// Plans returns a snapshot of the table, sorted by plan name.
func (s *Scheduler) Plans(ctx context.Context) ([]PlanState, error) {
	var out []PlanState
	err := s.do(ctx, func(st *state) {
		for _, name := range sortedNames(st) {
			e := st.entries[name]
			ps := PlanState{Plan: name, File: e.plan.File, Schedule: e.plan.Schedule, Timezone: zone(e.plan), Overlap: string(e.plan.Overlap)}
			if !e.removed {
				ps.Next = e.next
			}
			if e.running != nil {
				ps.Running = e.running.RunID
			}
			if e.queued != nil {
				ps.Queued = e.queued.RunID
			}
			out = append(out, ps)
		}
	})
	return out, err
}

// Done is closed when Run has returned.
func (s *Scheduler) Done() <-chan struct{} { return s.done }

package schedule

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/plan"
)

// recorder is a Runner that holds each run for hold (or until cancelled) and records what the
// scheduler asked of it, including whether two runs of one plan ever overlapped.
type recorder struct {
	hold    time.Duration
	panicOn int // the nth run (1-based) panics

	mu       sync.Mutex
	runs     []Fire
	started  []time.Time
	skipped  []string
	dropped  []string
	released []string
	active   map[string]int
	overlaps int
	cancels  int
}

func (r *recorder) Run(ctx context.Context, f Fire) {
	r.mu.Lock()
	if r.active == nil {
		r.active = map[string]int{}
	}
	r.active[f.Plan.Name]++
	if r.active[f.Plan.Name] > 1 {
		r.overlaps++
	}
	r.runs = append(r.runs, f)
	r.started = append(r.started, time.Now())
	n := len(r.runs)
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.active[f.Plan.Name]--
		r.mu.Unlock()
	}()
	if n == r.panicOn {
		panic("boom")
	}
	select {
	case <-time.After(r.hold):
	case <-ctx.Done():
		r.mu.Lock()
		r.cancels++
		r.mu.Unlock()
	}
}

func (r *recorder) Skipped(f Fire, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.skipped = append(r.skipped, f.RunID+": "+reason)
}

func (r *recorder) Dropped(f Fire, cause error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dropped = append(r.dropped, f.RunID+": "+cause.Error())
}

func (r *recorder) Released(f Fire) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.released = append(r.released, f.RunID)
}

func (r *recorder) droppedRuns() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.dropped...)
}

func (r *recorder) snapshot() (runs []Fire, skipped []string, overlaps, cancels int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Fire(nil), r.runs...), append([]string(nil), r.skipped...), r.overlaps, r.cancels
}

// memMarks is an in-memory Marks (the persistent one is history.Store, tested there).
type memMarks struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func (m *memMarks) LastScheduled(p string) (time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.m[p], nil
}

func (m *memMarks) SetLastScheduled(p string, t time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m[p] = t
	return nil
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// start runs a scheduler until the test ends; stop returns once Run has returned.
func start(t *testing.T, r Runner, plans []*plan.Plan, opts ...Option) (s *Scheduler, stop func()) {
	t.Helper()
	s = New(r, append([]Option{WithLogger(quiet())}, opts...)...)
	ctx, cancel := context.WithCancel(context.Background())
	go s.Run(ctx, plans)
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-s.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("scheduler did not stop within 10s")
			}
		})
	}
	t.Cleanup(stop)
	return s, stop
}

func everySecond(name string, overlap plan.Overlap) *plan.Plan {
	return &plan.Plan{Name: name, Schedule: "* * * * * *", Location: time.UTC, Overlap: overlap}
}

func TestPerSecondScheduleFiresOnTheSecond(t *testing.T) {
	t.Parallel()
	r := &recorder{hold: 10 * time.Millisecond}
	_, stop := start(t, r, []*plan.Plan{everySecond("a", plan.OverlapSkip)})
	time.Sleep(3200 * time.Millisecond)
	stop()
	runs, skipped, overlaps, _ := r.snapshot()
	if len(runs) < 3 || len(runs) > 4 {
		t.Fatalf("got %d runs in 3.2s of a per-second schedule, want 3 or 4", len(runs))
	}
	for i, f := range runs {
		if f.Trigger != history.TriggerSchedule || f.Scheduled.Nanosecond() != 0 {
			t.Errorf("run %d: trigger %s scheduled %s, want schedule on a whole second", i, f.Trigger, f.Scheduled)
		}
		if lat := r.started[i].Sub(f.Scheduled); lat < 0 || lat > 500*time.Millisecond {
			t.Errorf("run %d started %s after its scheduled time", i, lat)
		}
	}
	if len(skipped) != 0 || overlaps != 0 {
		t.Errorf("skipped %v overlaps %d, want none", skipped, overlaps)
	}
}

func TestOverlapSkipNeverRunsTwice(t *testing.T) {
	t.Parallel()
	r := &recorder{hold: 2500 * time.Millisecond}
	s, stop := start(t, r, []*plan.Plan{everySecond("slow", plan.OverlapSkip)})
	began := time.Now()
	for runs, _, _, _ := r.snapshot(); len(runs) == 0 && time.Since(began) < 2*time.Second; runs, _, _, _ = r.snapshot() {
		time.Sleep(10 * time.Millisecond)
	}
	if _, _, err := s.Trigger(context.Background(), "slow"); !errors.Is(err, ErrRunning) {
		t.Errorf("manual trigger while running: err %v, want ErrRunning", err)
	}
	// Runs start at F and F+3s; F+1s, F+2s and F+4s are skipped.
	runs, _, _, _ := r.snapshot()
	time.Sleep(time.Until(runs[0].Scheduled.Add(4500 * time.Millisecond)))
	stop()
	runs, skipped, overlaps, _ := r.snapshot()
	if overlaps != 0 {
		t.Fatalf("%d overlapping runs of one plan", overlaps)
	}
	if len(runs) != 2 || runs[1].Scheduled.Sub(runs[0].Scheduled) != 3*time.Second {
		t.Errorf("got runs %v of a 2.5s step on a 1s schedule in 4.5s, want 2, 3s apart", runs)
	}
	if len(skipped) != 3 {
		t.Errorf("skipped triggers %q, want 3", skipped)
	}
}

func TestOverlapQueueIsOneDeep(t *testing.T) {
	t.Parallel()
	r := &recorder{hold: 1500 * time.Millisecond}
	p := &plan.Plan{Name: "q", Location: time.UTC, Overlap: plan.OverlapQueue}
	s, stop := start(t, r, []*plan.Plan{p})
	ctx := context.Background()
	id1, q1, err1 := s.Trigger(ctx, "q")
	id2, q2, err2 := s.Trigger(ctx, "q")
	_, _, err3 := s.Trigger(ctx, "q")
	if err1 != nil || q1 || err2 != nil || !q2 || id1 == id2 {
		t.Fatalf("first two triggers: (%s %v %v) (%s %v %v), want started then queued", id1, q1, err1, id2, q2, err2)
	}
	if !errors.Is(err3, ErrRunning) {
		t.Fatalf("third trigger: %v, want ErrRunning (queue is one deep)", err3)
	}
	st, _ := s.Plans(ctx)
	if st[0].Running != id1 || st[0].Queued != id2 {
		t.Errorf("status %+v, want running %s queued %s", st[0], id1, id2)
	}
	time.Sleep(2 * time.Second)
	runs, _, overlaps, _ := r.snapshot()
	if len(runs) != 2 || runs[1].RunID != id2 || overlaps != 0 {
		t.Errorf("runs %v overlaps %d, want the queued run started after the first", runs, overlaps)
	}
	stop()
}

func TestCatchUpRunsOnceAfterDowntime(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	p := &plan.Plan{Name: "yearly", Schedule: "0 3 1 1 *", Location: time.UTC, CatchUp: true}
	off := &plan.Plan{Name: "nocatch", Schedule: "0 3 1 1 *", Location: time.UTC}
	marks := &memMarks{m: map[string]time.Time{
		"yearly":  time.Date(2024, 1, 1, 3, 0, 0, 0, time.UTC),
		"nocatch": time.Date(2024, 1, 1, 3, 0, 0, 0, time.UTC),
	}}
	for restart, want := range []int{1, 0} {
		r := &recorder{}
		_, stop := start(t, r, []*plan.Plan{p, off}, WithMarks(marks), WithClock(clock))
		time.Sleep(100 * time.Millisecond)
		stop()
		runs, _, _, _ := r.snapshot()
		if len(runs) != want {
			t.Fatalf("start %d: %d runs, want %d", restart+1, len(runs), want)
		}
		if want == 1 {
			missed := time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC)
			if runs[0].Trigger != history.TriggerCatchUp || !runs[0].Scheduled.Equal(missed) || runs[0].Plan.Name != "yearly" {
				t.Errorf("catch-up run %+v, want trigger catch-up for %s", runs[0], missed)
			}
		}
	}
	if got, _ := marks.LastScheduled("nocatch"); !got.Equal(time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC)) {
		t.Errorf("nocatch mark %s, want the missed time recorded without a run", got)
	}
}

func TestFirstStartMarksWithoutRunning(t *testing.T) {
	t.Parallel()
	marks := &memMarks{m: map[string]time.Time{}}
	r := &recorder{}
	_, stop := start(t, r, []*plan.Plan{{Name: "new", Schedule: "@yearly", CatchUp: true}}, WithMarks(marks))
	time.Sleep(50 * time.Millisecond)
	stop()
	if runs, _, _, _ := r.snapshot(); len(runs) != 0 {
		t.Fatalf("first start ran %d times, want 0", len(runs))
	}
	if got, _ := marks.LastScheduled("new"); got.IsZero() {
		t.Error("first start left no mark; downtime before the first fire would go unnoticed")
	}
}

func TestPanickingRunDoesNotStopScheduling(t *testing.T) {
	t.Parallel()
	r := &recorder{hold: 10 * time.Millisecond, panicOn: 1}
	_, stop := start(t, r, []*plan.Plan{everySecond("p", plan.OverlapSkip)})
	time.Sleep(2200 * time.Millisecond)
	stop()
	if runs, _, _, _ := r.snapshot(); len(runs) < 2 {
		t.Fatalf("%d runs after the first panicked, want scheduling to go on", len(runs))
	}
}

func TestReloadKeepsOldPlanWhenScheduleInvalid(t *testing.T) {
	t.Parallel()
	r := &recorder{hold: time.Second}
	good := &plan.Plan{Name: "a", Schedule: "0 3 * * *", Location: time.UTC}
	s, _ := start(t, r, []*plan.Plan{good, {Name: "gone", Location: time.UTC}})
	ctx := context.Background()
	if _, _, err := s.Trigger(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	bad := &plan.Plan{Name: "a", Schedule: "TZ=0", Location: time.UTC}
	if err := s.Reload(ctx, []*plan.Plan{bad}); err == nil {
		t.Fatal("reload with schedule TZ=0: no error")
	}
	st, err := s.Plans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 2 || st[0].Schedule != "0 3 * * *" || st[0].Next.IsZero() {
		t.Fatalf("after bad reload: %+v, want plan a kept with its old schedule", st)
	}
	if st[1].Plan != "gone" || st[1].Running == "" || !st[1].Next.IsZero() {
		t.Fatalf("removed plan while running: %+v, want it listed until its run ends", st[1])
	}
	if _, _, err := s.Trigger(ctx, "gone"); !errors.Is(err, ErrUnknownPlan) {
		t.Errorf("trigger removed plan: %v, want ErrUnknownPlan", err)
	}
	if _, _, _, cancels := r.snapshot(); cancels != 0 {
		t.Errorf("reload cancelled %d runs, want 0", cancels)
	}
}

func TestCancelInterruptsOnlyThatRun(t *testing.T) {
	t.Parallel()
	r := &recorder{hold: time.Minute}
	s, _ := start(t, r, []*plan.Plan{{Name: "a"}, {Name: "b"}})
	ctx := context.Background()
	ida, _, _ := s.Trigger(ctx, "a")
	s.Trigger(ctx, "b")
	if err := s.CancelCause(ctx, ida, errors.New("test cancel")); err != nil {
		t.Fatal(err)
	}
	if err := s.CancelCause(ctx, "nope", errors.New("test cancel")); !errors.Is(err, ErrUnknownRun) {
		t.Errorf("cancel unknown run: %v", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		st, _ := s.Plans(ctx)
		if st[0].Running == "" {
			if st[1].Running == "" {
				t.Fatal("cancelling a also ended b")
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("cancelled run still running after 2s")
}

// TestParse checks the scheduler's view of schedules: plan.ParseSchedule, shared with validate.
func TestParse(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	lordHowe, err := time.LoadLocation("Australia/Lord_Howe")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		spec    string
		loc     *time.Location
		from    time.Time
		want    time.Time
		wantErr bool
	}{
		{"five fields in UTC", "0 2 * * *", nil, time.Date(2026, 5, 1, 3, 0, 0, 0, time.UTC), time.Date(2026, 5, 2, 2, 0, 0, 0, time.UTC), false},
		{"seconds field", "*/10 * * * * *", time.UTC, time.Date(2026, 5, 1, 3, 0, 1, 0, time.UTC), time.Date(2026, 5, 1, 3, 0, 10, 0, time.UTC), false},
		{"descriptor", "@daily", time.UTC, time.Date(2026, 5, 1, 3, 0, 0, 0, time.UTC), time.Date(2026, 5, 2, 0, 0, 0, 0, time.UTC), false},
		{"plan zone", "0 2 * * *", ny, time.Date(2026, 5, 1, 3, 0, 0, 0, time.UTC), time.Date(2026, 5, 1, 6, 0, 0, 0, time.UTC), false},
		// DST, spring forward: 02:30 does not exist on 2027-03-14 in New York; it runs at
		// the jump (03:00 EDT), as cronie does, so the night is not lost.
		{"spring-forward gap runs at the jump", "30 2 * * *", ny, time.Date(2027, 3, 13, 12, 0, 0, 0, ny), time.Date(2027, 3, 14, 3, 0, 0, 0, ny), false},
		{"after the jump, the next day", "30 2 * * *", ny, time.Date(2027, 3, 14, 3, 0, 0, 0, ny), time.Date(2027, 3, 15, 2, 30, 0, 0, ny), false},
		{"hourly across spring forward", "0 * * * *", ny, time.Date(2027, 3, 14, 1, 30, 0, 0, ny), time.Date(2027, 3, 14, 3, 0, 0, 0, ny), false},
		// Fall back: 01:30 happens twice on 2027-11-07 (EDT, then EST); it fires at the
		// first only, as systemd timers and Vixie cron do.
		{"fall-back hour fires once", "30 1 * * *", ny, time.Date(2027, 11, 7, 5, 29, 0, 0, time.UTC), time.Date(2027, 11, 7, 5, 30, 0, 0, time.UTC), false},
		{"fall-back hour's second occurrence does not fire", "30 1 * * *", ny, time.Date(2027, 11, 7, 5, 31, 0, 0, time.UTC), time.Date(2027, 11, 8, 6, 30, 0, 0, time.UTC), false},
		// Lord Howe's 30-minute change (02:00 -> 02:30 on 2026-10-04): robfig/cron's own
		// Next skipped the day after it.
		{"30-minute change", "0 5 * * *", lordHowe, time.Date(2026, 10, 3, 19, 0, 0, 0, time.UTC), time.Date(2026, 10, 4, 18, 0, 0, 0, time.UTC), false},
		{"nightly", "@nightly", time.UTC, time.Date(2026, 5, 1, 3, 0, 0, 0, time.UTC), time.Date(2026, 5, 2, 0, 0, 0, 0, time.UTC), false},
		// A zone prefix would silently override the plan's timezone: it is refused.
		{"zone prefix refused", "CRON_TZ=UTC 0 2 * * *", ny, time.Time{}, time.Time{}, true},
		{"TZ= that made robfig/cron panic", "TZ=0", nil, time.Time{}, time.Time{}, true},
		{"negative @every", "@every -1s", nil, time.Time{}, time.Time{}, true},
		{"@every 1s", "@every 1s", nil, time.Date(2026, 5, 1, 3, 0, 0, 0, time.UTC), time.Date(2026, 5, 1, 3, 0, 1, 0, time.UTC), false},
		{"bad field", "61 * * * *", nil, time.Time{}, time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := plan.ParseSchedule(tt.spec, tt.loc)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Parse(%q) err = %v, wantErr %v", tt.spec, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if got := s.Next(tt.from); !got.Equal(tt.want) {
				t.Errorf("Next(%s) = %s, want %s", tt.from, got, tt.want)
			}
		})
	}
}

// A plan added by a reload gets its mark at once, not at its first fire: downtime right
// after adding it is caught up.
func TestReloadMarksAddedPlan(t *testing.T) {
	t.Parallel()
	marks := &memMarks{m: map[string]time.Time{}}
	s, _ := start(t, &recorder{}, nil, WithMarks(marks))
	added := &plan.Plan{Name: "added", Schedule: "@yearly", Location: time.UTC, CatchUp: true}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Reload(ctx, []*plan.Plan{added}); err != nil {
		t.Fatal(err)
	}
	if got, _ := marks.LastScheduled("added"); got.IsZero() {
		t.Error("a plan added by reload has no mark until its first fire")
	}
}

// TestQueuedRunDropped checks that a queued run that will never start is handed to
// Runner.Dropped with why, whichever way it goes: cancelled, its plan removed by a
// reload, or the scheduler stopping. Without it, `run --wait` on that run waits forever.
func TestQueuedRunDropped(t *testing.T) {
	t.Parallel()
	errCause := errors.New("cancelled by test")
	for _, tc := range []struct {
		name string
		drop func(ctx context.Context, s *Scheduler, queued string, stop func()) error
		want string // the cause the runner is given
	}{
		{"cancelled", func(ctx context.Context, s *Scheduler, queued string, _ func()) error {
			return s.CancelCause(ctx, queued, errCause)
		}, "cancelled by test"},
		{"plan removed by reload", func(ctx context.Context, s *Scheduler, _ string, _ func()) error {
			return s.Reload(ctx, nil)
		}, "plan q removed by a reload"},
		{"scheduler stopping", func(ctx context.Context, s *Scheduler, _ string, stop func()) error {
			stop()
			return nil
		}, context.Canceled.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{hold: time.Minute}
			s, stop := start(t, r, []*plan.Plan{{Name: "q", Overlap: plan.OverlapQueue}})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, _, err := s.Trigger(ctx, "q"); err != nil {
				t.Fatal(err)
			}
			queued, isQueued, err := s.Trigger(ctx, "q")
			if err != nil || !isQueued {
				t.Fatalf("second trigger: queued %v, err %v; want queued", isQueued, err)
			}
			if err := tc.drop(ctx, s, queued, stop); err != nil {
				t.Fatal(err)
			}
			// Dropped runs on the owner goroutine before the call above returns (or, for a
			// stop, before Run returns), so there is nothing to wait for.
			want := []string{queued + ": " + tc.want}
			if got := r.droppedRuns(); len(got) != 1 || got[0] != want[0] {
				t.Errorf("dropped = %q, want %q", got, want)
			}
			if runs, _, _, _ := r.snapshot(); len(runs) != 1 {
				t.Errorf("%d runs started, want only the first", len(runs))
			}
		})
	}
}

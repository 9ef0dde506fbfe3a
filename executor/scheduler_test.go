package executor

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/redact"
	"github.com/refreshd/refreshd/plan"
)

// nopStore keeps nothing: the scheduler's tests look at the recorder's record itself.
type nopStore struct{}

func (nopStore) SaveRun(*history.Run) error                            { return nil }
func (nopStore) SaveProgress(*history.Run, map[int]history.Step) error { return nil }

// fakeInstances runs a scheduler's instances without processes, from the instances'
// goroutines as the engine does: it records each start and end through the recorder,
// checks that every need ended before an instance starts, and counts what runs at once.
type fakeInstances struct {
	rec   *recorder
	fail  map[string]bool // these fail
	sleep time.Duration   // how long each non-cleanup instance runs, unless cancelled

	mu                    sync.Mutex
	ended                 map[string]history.Status
	order                 []string // starts, in order
	running, maxRunning   int
	perKey, maxPerKey     map[string]int
	startedBeforeNeedDone []string
}

func (f *fakeInstances) run(ctx context.Context, i int, inst *plan.Instance) finished {
	f.mu.Lock()
	for _, n := range inst.Needs {
		if _, ok := f.ended[n]; !ok && !when(inst).Cleanup() {
			f.startedBeforeNeedDone = append(f.startedBeforeNeedDone, inst.ID+" before "+n)
		}
	}
	f.order = append(f.order, inst.ID)
	f.running++
	f.perKey[inst.ConcurrencyKey]++
	f.maxRunning = max(f.maxRunning, f.running)
	f.maxPerKey[inst.ConcurrencyKey] = max(f.maxPerKey[inst.ConcurrencyKey], f.perKey[inst.ConcurrencyKey])
	f.mu.Unlock()
	f.rec.update(i, func(s *history.Step) { s.Status = history.StatusRunning })

	st, d := history.StatusSucceeded, f.sleep
	if when(inst).Cleanup() {
		d = 0 // a cleanup step is not stopped with the run: it must end by itself
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
		st = history.StatusInterrupted
	}
	if f.fail[inst.ID] {
		st = history.StatusFailed
	}
	f.rec.update(i, func(s *history.Step) { s.Status = st })
	f.mu.Lock()
	f.running--
	f.perKey[inst.ConcurrencyKey]--
	f.ended[inst.ID] = st
	f.mu.Unlock()
	return finished{i: i, status: st}
}

// newTestScheduler is a scheduler of g whose instances fake runs, with a recorder that
// saves nowhere.
func newTestScheduler(g *plan.Graph, fake *fakeInstances) *scheduler {
	env := &runEnv{e: &Engine{cfg: Config{Tools: &Tools{}}}, p: g.Plan, spec: RunSpec{ID: "r-1"},
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), red: redact.New()}
	rec := &history.Run{ID: "r-1", Plan: g.Plan.Name, Status: history.StatusRunning}
	for _, inst := range g.Instances {
		rec.Steps = append(rec.Steps, history.Step{Instance: inst.ID, Status: history.StatusWaiting})
	}
	fake.rec = newRecorder(nopStore{}, nil, env.red, env.log, rec)
	fake.ended, fake.perKey, fake.maxPerKey = map[string]history.Status{}, map[string]int{}, map[string]int{}
	return newScheduler(env, g, fake.rec, newSkipDecider(env, g, fake.rec), fake.run)
}

// keyed is a run instance of step st (sharing its step's budget, concurrency c) named id.
func keyed(id, st string, c int) *plan.Instance {
	return &plan.Instance{ID: id, Step: &plan.Step{ID: st, Concurrency: c}, ConcurrencyKey: st, Action: &plan.RunAction{Argv: []string{"true"}}}
}

func cleanup(inst *plan.Instance, w plan.When) *plan.Instance {
	inst.Step.When = w
	return inst
}

// TestScheduler runs graphs through the scheduler with instances that report back from
// goroutines of their own (go test -race checks that nothing but the scheduling goroutine
// touches the scheduler's state): budgets are held and used, needs come first, a failure
// skips what needs it and runs the cleanup that follows it.
func TestScheduler(t *testing.T) {
	t.Parallel()
	fan := func(n int) []*plan.Instance {
		var out []*plan.Instance
		for i := range n {
			out = append(out, keyed(fmt.Sprintf("build-%d", i), "build", 2), keyed(fmt.Sprintf("test-%d", i), "test", 0))
		}
		return out
	}
	cases := []struct {
		name        string
		concurrency int
		insts       []*plan.Instance
		fail        []string
		want        map[string]history.Status
		wantBad     map[string]bool
		maxRunning  int
		maxPerKey   map[string]int
	}{
		{
			name: "budgets", concurrency: 3, insts: fan(6),
			maxRunning: 3, maxPerKey: map[string]int{"build": 2},
		},
		{
			name: "failure skips dependents, cleanup runs after",
			insts: []*plan.Instance{
				keyed("a", "a", 0),
				needs(keyed("b", "b", 0), "a"),
				needs(keyed("c", "c", 0), "b"),
				keyed("d", "d", 0),
				cleanup(keyed("tidy", "tidy", 0), plan.WhenAlways),
				cleanup(keyed("alert", "alert", 0), plan.WhenFailure),
				needs(cleanup(keyed("after-b", "after-b", 0), plan.WhenFailure), "d"),
			},
			fail: []string{"b"},
			want: map[string]history.Status{"a": history.StatusSucceeded, "b": history.StatusFailed, "c": history.StatusSkipped,
				"d": history.StatusSucceeded, "tidy": history.StatusSucceeded, "alert": history.StatusSucceeded, "after-b": history.StatusSkipped},
			wantBad: map[string]bool{"b": true, "c": true},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			g := graph(&plan.Plan{Name: "sched", Concurrency: c.concurrency}, c.insts...)
			fake := &fakeInstances{sleep: 20 * time.Millisecond, fail: map[string]bool{}} // long enough to overlap under load
			for _, f := range c.fail {
				fake.fail[f] = true
			}
			sc := newTestScheduler(g, fake)
			bad := sc.run(t.Context())

			if len(fake.startedBeforeNeedDone) > 0 {
				t.Errorf("started before their needs ended: %v", fake.startedBeforeNeedDone)
			}
			if c.maxRunning > 0 && fake.maxRunning != c.maxRunning {
				t.Errorf("at most %d ran at once, want the plan's concurrency %d (held, and used)", fake.maxRunning, c.maxRunning)
			}
			for k, want := range c.maxPerKey {
				if got := fake.maxPerKey[k]; got != want {
					t.Errorf("at most %d of %s ran at once, want its step's concurrency %d", got, k, want)
				}
			}
			var steps []history.Step
			fake.rec.view(func(r *history.Run) { steps = append(steps, r.Steps...) })
			for i, s := range steps {
				want, ok := c.want[s.Instance]
				if !ok {
					want = history.StatusSucceeded
				}
				if s.Status != want {
					t.Errorf("%s %s (%s), want %s", s.Instance, s.Status, s.Reason, want)
				}
				if bad[i] != c.wantBad[s.Instance] {
					t.Errorf("%s counts against the run: %v, want %v", s.Instance, bad[i], c.wantBad[s.Instance])
				}
			}
			if c.want["tidy"] != "" && fake.order[len(fake.order)-1] != "tidy" && fake.order[len(fake.order)-1] != "alert" {
				t.Errorf("cleanup did not run last: %v", fake.order)
			}
		})
	}
}

// TestSchedulerCancel: once the run's context ends nothing new starts but cleanup, and
// what never started is recorded interrupted.
func TestSchedulerCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	g := graph(&plan.Plan{Name: "sched", Concurrency: 1},
		keyed("a", "a", 0), keyed("b", "b", 0), keyed("c", "c", 0), cleanup(keyed("tidy", "tidy", 0), plan.WhenAlways))
	fake := &fakeInstances{sleep: time.Minute}
	sc := newTestScheduler(g, fake)
	go func() {
		for {
			fake.mu.Lock()
			n := len(fake.order)
			fake.mu.Unlock()
			if n > 0 {
				cancel()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	sc.run(ctx)
	var got []string
	fake.rec.view(func(r *history.Run) {
		for _, s := range r.Steps {
			got = append(got, s.Instance+"="+string(s.Status))
		}
	})
	want := fmt.Sprint([]string{"a=interrupted", "b=interrupted", "c=interrupted", "tidy=succeeded"})
	if fmt.Sprint(got) != want {
		t.Errorf("steps %v, want %v", got, want)
	}
}

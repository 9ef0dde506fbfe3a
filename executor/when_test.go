package executor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/plan"
)

// cleanupStep is a run instance of its own step with a when: condition.
func cleanupStep(id string, w plan.When, argv ...string) *plan.Instance {
	inst := step(id, argv...)
	inst.Step.When = w
	return inst
}

// TestWhenConditions: a gate that fails skips what needs it with a reason naming it; a
// failure step runs only when something failed; an always step runs either way; the run's
// status is the gate's, not the cleanup steps'.
func TestWhenConditions(t *testing.T) {
	for _, tc := range []struct {
		name                         string
		gate                         string
		wantRun                      history.Status
		wantPublish, wantNotify      history.Status
		wantAfter, wantPublishReason string
	}{
		{name: "gate passes", gate: "true", wantRun: history.StatusSucceeded,
			wantPublish: history.StatusSucceeded, wantNotify: history.StatusSkipped,
			wantAfter: "everything it follows succeeded"},
		{name: "gate fails", gate: "false", wantRun: history.StatusFailed,
			wantPublish: history.StatusSkipped, wantNotify: history.StatusSucceeded,
			wantAfter: "gate failed", wantPublishReason: "needs gate which failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngineT(t, time.Second)
			marks := t.TempDir()
			touch := func(name string) []string { return []string{"touch", filepath.Join(marks, name)} }
			build := step("build", touch("build")...)
			gate := needs(step("gate", tc.gate), "build")
			publish := needs(step("publish", touch("publish")...), "gate")
			notify := cleanupStep("notify", plan.WhenFailure, touch("notify")...)
			always := cleanupStep("stop-node", plan.WhenAlways, touch("stop-node")...)
			// What needs a failure step that did not run is skipped too, without failing the run.
			afterNotify := needs(step("after-notify", "true"), "notify")
			r := e.run(t, context.Background(), graph(nil, build, gate, publish, notify, always, afterNotify))
			if r.Status != tc.wantRun {
				t.Errorf("run %s (%s), want %s", r.Status, r.Reason, tc.wantRun)
			}
			if tc.wantRun == history.StatusFailed && !strings.Contains(r.Reason, "step gate failed") {
				t.Errorf("run reason %q does not name the gate", r.Reason)
			}
			if s := stepOf(t, r, "publish"); s.Status != tc.wantPublish || !strings.Contains(s.Reason, tc.wantPublishReason) {
				t.Errorf("publish %s %q, want %s %q", s.Status, s.Reason, tc.wantPublish, tc.wantPublishReason)
			}
			if s := stepOf(t, r, "notify"); s.Status != tc.wantNotify || s.When != "failure" {
				t.Errorf("notify %+v, want %s", s, tc.wantNotify)
			}
			s := stepOf(t, r, "stop-node")
			if s.Status != history.StatusSucceeded || s.When != "always" || s.After != tc.wantAfter {
				t.Errorf("stop-node %s when=%q after=%q, want succeeded always %q", s.Status, s.When, s.After, tc.wantAfter)
			}
			// The cleanup steps started only once every other step had ended.
			if !s.Start.After(stepOf(t, r, "gate").End) && !s.Start.Equal(stepOf(t, r, "gate").End) {
				t.Errorf("stop-node started %s, before the gate ended %s", s.Start, stepOf(t, r, "gate").End)
			}
			for name, want := range map[string]bool{"build": true, "publish": tc.gate == "true", "notify": tc.gate == "false", "stop-node": true} {
				if _, err := os.Stat(filepath.Join(marks, name)); (err == nil) != want {
					t.Errorf("%s ran = %v, want %v", name, err == nil, want)
				}
			}
		})
	}
}

// TestCleanupRunsAfterCancelAndTimeout: cancelling the run, or the plan's timeout, stops
// the running step and starts nothing new, except the cleanup steps, which run to their
// end and are recorded with what they ran after.
func TestCleanupRunsAfterCancelAndTimeout(t *testing.T) {
	for _, tc := range []struct {
		name      string
		timeout   time.Duration // the plan's; 0: cancel the run instead
		wantRun   history.Status
		wantAfter string
	}{
		{name: "cancel", wantRun: history.StatusInterrupted, wantAfter: "the run ended: cancelled by the test"},
		{name: "plan timeout", timeout: 300 * time.Millisecond, wantRun: history.StatusFailed, wantAfter: "the run ended: plan timeout 300ms exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngineT(t, time.Second)
			marks := t.TempDir()
			long := step("long", "sleep", "30")
			later := needs(step("later", "true"), "long")
			notify := cleanupStep("notify", plan.WhenFailure, "sh", "-c", "sleep 0.2; touch "+filepath.Join(marks, "notify"))
			always := needs(cleanupStep("always", plan.WhenAlways, "touch", filepath.Join(marks, "always")), "later")
			p := &plan.Plan{Name: "test", Timeout: tc.timeout}
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			if tc.timeout == 0 {
				time.AfterFunc(300*time.Millisecond, func() { cancel(errCancelledByTest) })
			}
			start := time.Now()
			r := e.run(t, ctx, graph(p, long, later, notify, always))
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("run took %s", d)
			}
			if r.Status != tc.wantRun {
				t.Errorf("run %s (%s), want %s", r.Status, r.Reason, tc.wantRun)
			}
			if s := stepOf(t, r, "later"); s.Status != history.StatusInterrupted || len(s.Attempts) != 0 {
				t.Errorf("later: %+v, want interrupted without an attempt", s)
			}
			for _, id := range []string{"notify", "always"} {
				s := stepOf(t, r, id)
				if s.Status != history.StatusSucceeded || s.After != tc.wantAfter {
					t.Errorf("%s: %s %q after=%q, want succeeded after %q", id, s.Status, s.Reason, s.After, tc.wantAfter)
				}
				if _, err := os.Stat(filepath.Join(marks, id)); err != nil {
					t.Errorf("%s did not run: %v", id, err)
				}
			}
		})
	}
}

type cancelCause string

func (c cancelCause) Error() string { return string(c) }

const errCancelledByTest = cancelCause("cancelled by the test")

// TestCleanupBoundedAfterCancel: once the run is cancelled, a cleanup step that does not
// end is stopped after its own timeout, and recorded so.
func TestCleanupBoundedAfterCancel(t *testing.T) {
	e := newEngineT(t, 200*time.Millisecond)
	hang := cleanupStep("hang", plan.WhenAlways, "sleep", "30")
	hang.Timeout = 400 * time.Millisecond
	ctx, cancel := context.WithCancelCause(context.Background())
	time.AfterFunc(100*time.Millisecond, func() { cancel(errCancelledByTest) })
	start := time.Now()
	r := e.run(t, ctx, graph(nil, step("long", "sleep", "30"), hang))
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("run took %s; the cleanup step was not bounded", d)
	}
	s := stepOf(t, r, "hang")
	if s.Status == history.StatusSucceeded || len(s.Attempts) != 1 {
		t.Errorf("hang: %+v, want stopped after one attempt", s)
	}
	if r.Status != history.StatusInterrupted {
		t.Errorf("run %s (%s)", r.Status, r.Reason)
	}
}

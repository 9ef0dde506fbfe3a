package executor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/plan"
)

// TestRunFailsBeforeStart: what newRunEnv cannot prepare (a secret, the plan's
// DOCKER_CONFIG, the default workdir) fails the run before any step starts, with the
// reason on the run and every step skipped.
func TestRunFailsBeforeStart(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		plan   func(e *engineT) *plan.Plan
		reason string
	}{
		{"secret without a value", func(*engineT) *plan.Plan {
			return &plan.Plan{Name: "sec", Secrets: map[string]plan.Secret{"token": {Env: "REFRESHD_TEST_NO_SUCH_VARIABLE"}}}
		}, "secret token"},
		{"relative DOCKER_CONFIG", func(*engineT) *plan.Plan {
			return &plan.Plan{Name: "dc", Env: map[string]string{"DOCKER_CONFIG": "docker"}}
		}, "env DOCKER_CONFIG"},
		{"default workdir cannot be made", func(e *engineT) *plan.Plan {
			// STATE/work is a file: STATE/work/PLAN cannot be created under it.
			if err := os.WriteFile(filepath.Join(e.dir, "work"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return &plan.Plan{Name: "wd"}
		}, "create workdir " + "WORK"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEngineT(t, 0)
			marker := filepath.Join(t.TempDir(), "ran")
			p := c.plan(e)
			r := e.run(t, t.Context(), graph(p, step("a", "touch", marker), needs(step("b", "true"), "a")))
			want := strings.ReplaceAll(c.reason, "WORK", e.dir)
			if r.Status != history.StatusFailed || !strings.Contains(r.Reason, want) {
				t.Fatalf("run %s %q, want failed with %q", r.Status, r.Reason, want)
			}
			for _, s := range r.Steps {
				if s.Status != history.StatusSkipped || s.Reason != "run failed before it started" {
					t.Errorf("step %s: %s %q, want skipped before the start", s.Instance, s.Status, s.Reason)
				}
			}
			if _, err := os.Stat(marker); err == nil {
				t.Error("a step ran")
			}
		})
	}
}

package executor

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/teststack"
	"github.com/refreshd/refreshd/plan"
)

// TestEngineSkipIf runs plans with skip_if through the engine against a real bare repository
// and a real registry: a fresh branch records the run as skipped with the reason and runs
// nothing; a condition that cannot be checked (missing image, unreachable branch) is a
// warning on the run, which then refreshes as if nothing were fresh.
func TestEngineSkipIf(t *testing.T) {
	teststack.Require(t)
	reg := teststack.StartRegistry(t, teststack.RegistryOptions{})
	fresh := bareRepoWithCommit(t, "constraints-main", time.Now().Add(-time.Hour))
	pos := plan.Pos{File: "plan.yaml", Line: 4, Col: 5}
	for _, tc := range []struct {
		name     string
		cond     plan.SkipCondition
		status   history.Status
		reason   string // substring of the run's reason
		warning  string // substring of the run's one warning; "" for none
		stepRuns bool
	}{
		{name: "fresh branch skips",
			cond:   plan.SkipCondition{Pos: pos, Branch: &plan.BranchFreshness{Repo: fresh, Branch: "constraints-main", Within: 6 * time.Hour}},
			status: history.StatusSkipped, reason: "skip_if: branch constraints-main last commit 1h0m"},
		{name: "missing image refreshes",
			cond:   plan.SkipCondition{Pos: pos, Image: &plan.ImageFreshness{Ref: reg.Host + "/airflow/ci:latest", Within: time.Hour}},
			status: history.StatusSucceeded, warning: "skip_if at plan.yaml:4:5: cannot tell whether image " + reg.Host + "/airflow/ci:latest is fresh, refreshing", stepRuns: true},
		{name: "unreachable branch refreshes",
			cond:   plan.SkipCondition{Pos: pos, Branch: &plan.BranchFreshness{Repo: "file://" + filepath.Join(t.TempDir(), "gone.git"), Branch: "constraints-main", Within: time.Hour}},
			status: history.StatusSucceeded, warning: "skip_if at plan.yaml:4:5: cannot tell whether branch constraints-main is fresh, refreshing", stepRuns: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			e, st := newRegistryEngine(t, dir)
			marker := filepath.Join(dir, "refreshed")
			g := graph(&plan.Plan{Name: "skip", SkipIf: []plan.SkipCondition{tc.cond}}, step("refresh", "touch", marker))
			r, err := e.Run(t.Context(), g, RunSpec{Trigger: history.TriggerManual})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			stored, err := st.Run(r.ID)
			if err != nil {
				t.Fatalf("stored run: %v", err)
			}
			if stored.Status != tc.status || !strings.Contains(stored.Reason, tc.reason) {
				t.Errorf("run %s %q, want %s with %q", stored.Status, stored.Reason, tc.status, tc.reason)
			}
			switch {
			case tc.warning == "" && len(stored.Warnings) != 0:
				t.Errorf("warnings %q, want none", stored.Warnings)
			case tc.warning != "" && (len(stored.Warnings) != 1 || !strings.Contains(stored.Warnings[0], tc.warning)):
				t.Errorf("warnings %q, want one containing %q", stored.Warnings, tc.warning)
			}
			if _, err := os.Stat(marker); (err == nil) != tc.stepRuns {
				t.Errorf("step ran: %v, want %v", err == nil, tc.stepRuns)
			}
			if s := stepOf(t, stored, "refresh"); !tc.stepRuns && s.Status != history.StatusSkipped {
				t.Errorf("step %s, want skipped", s.Status)
			}
		})
	}
}

// newRegistryEngine is an engine on dir with its own store, reaching registries on 127.0.0.1
// over plain HTTP with one try per request, logging warnings to the test.
func newRegistryEngine(t *testing.T, dir string) (*Engine, *history.Store) {
	t.Helper()
	st, err := history.Open(filepath.Join(dir, "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e, err := New(Config{StateDir: dir, Store: st, KillGrace: time.Second,
		Tools:  &Tools{PlainHTTPRegistries: []string{"127.0.0.1"}, DockerConfig: teststack.DockerConfig(t), RegistryAttempts: 1},
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	return e, st
}

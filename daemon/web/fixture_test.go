package web

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/refreshd/refreshd/daemon/control"
	"github.com/refreshd/refreshd/history"
)

// source is a control.Service's read side made of fixed records: the dashboard's handlers
// are tested on it, and the daemon's own implementation by the end-to-end test.
type source struct {
	status *control.Status
	runs   []*history.Run // newest first
	// live, when set, serves Logs of a running run: it is called with the writer and
	// returns when the run's output ends.
	live func(ctx context.Context, id, step string, w control.LineWriter) error

	mu      sync.Mutex
	follows int // Logs calls with follow

	pins   []history.Pin
	caches []control.CacheTag
}

// Pins filters the fixture's pins by package prefix and branch, as the store does.
func (s *source) Pins(ctx context.Context, q history.PinQuery) ([]history.Pin, error) {
	var out []history.Pin
	for _, p := range s.pins {
		if strings.HasPrefix(strings.ToLower(p.Package), strings.ToLower(q.Package)) && (q.Branch == "" || p.Branch == q.Branch) {
			out = append(out, p)
		}
	}
	return out, nil
}

func (s *source) Caches(ctx context.Context) ([]control.CacheTag, error) { return s.caches, nil }

func (s *source) StepTimeouts(ctx context.Context, plan string) (map[string]time.Duration, error) {
	return map[string]time.Duration{"build-ci-images": 20 * time.Minute, "refresh-cache": time.Hour}, nil
}

func (s *source) Status(ctx context.Context) (*control.Status, error) { return s.status, nil }

func (s *source) Runs(ctx context.Context, plan string, limit int) ([]*history.Run, error) {
	var out []*history.Run
	for _, r := range s.runs {
		if plan == "" || r.Plan == plan {
			h := header(r)
			h.Summary.Groups = nil
			out = append(out, h)
		}
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (s *source) run(id string) (*history.Run, error) {
	for _, r := range s.runs {
		if r.ID == id {
			return r, nil
		}
	}
	return nil, fmt.Errorf("%w: no run %q in history", control.ErrNotFound, id)
}

// header is r as the store lists it: no steps, its steps counted.
func header(r *history.Run) *history.Run {
	h := *r
	h.Steps, h.Summary = nil, history.Summarize(r.Steps)
	return &h
}

func (s *source) RunHead(ctx context.Context, id string) (*history.Run, error) {
	r, err := s.run(id)
	if err != nil {
		return nil, err
	}
	h := header(r)
	h.Summary.Groups = nil
	return h, nil
}

func (s *source) RunPart(ctx context.Context, id string, offset, limit int) (*history.Run, error) {
	if offset < 0 || limit <= 0 { // as the store (history.Store.RunPart) answers
		return nil, fmt.Errorf("read run %s: steps from %d, %d of them: want offset >= 0 and limit > 0", id, offset, limit)
	}
	r, err := s.run(id)
	if err != nil {
		return nil, err
	}
	h := header(r)
	if offset < len(r.Steps) {
		h.Steps = r.Steps[offset:min(len(r.Steps), offset+limit)]
	}
	return h, nil
}

func (s *source) RunStep(ctx context.Context, id, instance string) (int, *history.Step, error) {
	r, err := s.run(id)
	if err != nil {
		return -1, nil, err
	}
	for i := range r.Steps {
		if r.Steps[i].Instance == instance {
			return i, &r.Steps[i], nil
		}
	}
	return -1, nil, nil
}

func (s *source) Logs(ctx context.Context, id, step string, follow bool, w control.LineWriter) error {
	s.mu.Lock()
	if follow {
		s.follows++
	}
	s.mu.Unlock()
	if s.live != nil {
		return s.live(ctx, id, step, w)
	}
	return w.WriteLine("no live output in this fixture")
}

// now is the fixture's clock: every age and running bar is measured to it.
var fixtureNow = time.Date(2026, 11, 28, 9, 30, 0, 0, time.UTC)

func at(sec float64) time.Time {
	return time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC).Add(time.Duration(sec * float64(time.Second)))
}

// writeLog writes an attempt log under dir and returns its path.
func writeLog(t testing.TB, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// demoRun is a run shaped like plans/demo.yaml's (one Python): set-up, an upgrade build
// that needed a retry after a backoff, constraints, publish with every kind of change,
// per-platform cache builds in parallel on two nodes, checks, a warning, a skipped step.
func demoRun(t testing.TB, dir string) *history.Run {
	ok := func(n int, a, b float64, log string) history.Attempt {
		return history.Attempt{N: n, Start: at(a), End: at(b), ExitCode: 0, Log: log}
	}
	registry := "127.0.0.1:5000/demo/main/ci/python3.11"
	return &history.Run{
		ID: "demo-20261128T030000.000Z-a1b2", Plan: "demo", Trigger: history.TriggerSchedule,
		Scheduled: at(0), Start: at(0), End: at(14.5), Status: history.StatusSucceeded,
		Warnings: []string{"skip_if: branch constraints-main could not be read: connection refused; refreshing"},
		Source: &history.Source{Step: "checkout", Repo: "https://github.com/example/sample", Ref: "main",
			Commit: "4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c", Previous: "0123456789abcdef0123456789abcdef01234567", Changed: true, Path: "/tmp/src"},
		Params: map[string]string{"branch": "main", "python": "3.11"},
		Vars:   []history.RunVar{{Name: "airflow_version", Step: "read-version", Value: "3.1.0"}, {Name: "providers", Step: "read-version", Values: []string{"amazon", "http"}, List: true}},
		Steps: []history.Step{
			{Instance: "provision[demo_cache]", Status: history.StatusSucceeded, Start: at(0.1), End: at(0.4),
				Attempts: []history.Attempt{{N: 1, Start: at(0.1), End: at(0.4)}}},
			{Instance: "build-ci-images[python=3.11]", Status: history.StatusSucceeded, Start: at(0.4), End: at(6),
				Attempts: []history.Attempt{
					{N: 1, Start: at(0.4), End: at(1.5), ExitCode: 1, Error: "exit code 1: failed to export cache: i/o timeout",
						Log: writeLog(t, dir, "build.1.log", "#1 [internal] load build definition\nERROR: failed to export cache: i/o timeout\n")},
					ok(2, 3.5, 6, writeLog(t, dir, "build.2.log", "#1 [internal] load build definition\n#9 DONE 2.1s\n<script>alert(1)</script>\n")),
				}},
			{Instance: "generate-constraints[python=3.11,mode=constraints]", Status: history.StatusSucceeded, Start: at(6), End: at(7),
				Attempts: []history.Attempt{ok(1, 6, 7, writeLog(t, dir, "gen.1.log", "exported\n"))}},
			{Instance: "publish-constraints", Status: history.StatusSucceeded, Start: at(7), End: at(7.3),
				Attempts: []history.Attempt{{N: 1, Start: at(7), End: at(7.3)}},
				Publish: &history.Publish{Repo: "/tmp/refreshd-demo/constraints.git", Branch: "constraints-main",
					Commit: "0daec9843aec5b7a1c6f0e2d9b8a7c6d5e4f3a2b", Changed: true,
					Summary: "1 upgraded, 1 downgraded, 1 added, 1 removed across 1 file", PushAttempts: 2,
					Changes: []history.PackageChange{
						{File: "constraints-3.11.txt", Package: "attrs", Old: "23.1.0", New: "24.2.0"},
						{File: "constraints-3.11.txt", Package: "httpx", Old: "0.28.1", New: "0.27.2"},
						{File: "constraints-3.11.txt", Package: "rich", New: "13.9.4"},
						{File: "constraints-3.11.txt", Package: "six", Old: "1.16.0"},
					},
					Outside: []history.OutsideCommit{{Commit: "0a7517de0a7517de0a7517de0a7517de0a7517de", Author: `Mallory "><b>x</b> <m@example.com>`, At: at(-3600),
						Changes: []history.PackageChange{{File: "constraints-3.11.txt", Package: "httpx", Old: "0.27.0", New: "0.28.1"}}}}}},
			{Instance: "refresh-cache[python=3.11][linux/amd64]", Status: history.StatusSucceeded, Start: at(7.3), End: at(9.1), Node: "demo_cache0",
				Attempts: []history.Attempt{ok(1, 7.3, 9.1, writeLog(t, dir, "amd64.1.log", "pushed\n"))},
				Caches:   []history.Cache{{Ref: registry + ":cache-linux-amd64", Before: "sha256:" + strings.Repeat("1", 64), After: "sha256:" + strings.Repeat("a", 64), Changed: true, Verified: true}}},
			{Instance: "refresh-cache[python=3.11][linux/386]", Status: history.StatusSucceeded, Start: at(7.3), End: at(13.9), Node: "demo_cache1",
				Attempts: []history.Attempt{ok(1, 7.3, 13.9, writeLog(t, dir, "386.1.log", "pushed\n"))},
				Caches:   []history.Cache{{Ref: registry + ":cache-linux-386", After: "sha256:" + strings.Repeat("b", 64), Changed: true, Verified: true}},
				Warnings: []string{"node demo_cache1 builds linux/386 by its amd64 worker's compatibility (no emulation)"}},
			{Instance: "verify-cache[python=3.11,platform=linux/amd64]", Status: history.StatusSucceeded, Start: at(14), End: at(14),
				Attempts: []history.Attempt{{N: 1, Start: at(14), End: at(14)}},
				Caches:   []history.Cache{{Ref: registry + ":cache-linux-amd64", Before: "sha256:" + strings.Repeat("a", 64), After: "sha256:" + strings.Repeat("a", 64), Verified: true}}},
			{Instance: "notify-release", Status: history.StatusSkipped, Reason: "needs verify-cache[python=3.11,platform=linux/386], which failed"},
			{Instance: "cleanup", Status: history.StatusSucceeded, Start: at(14.2), End: at(14.5), When: "always", After: "the run ended",
				Attempts: []history.Attempt{ok(1, 14.2, 14.5, writeLog(t, dir, "cleanup.1.log", "removed\n"))}},
		},
	}
}

// fixture is a source with the demo plan, a plan that failed last and never succeeded, a
// plan load error, and the demo's run history: the demo run above and older ones.
func fixture(t testing.TB, older int) *source {
	dir := t.TempDir()
	run := demoRun(t, dir)
	s := &source{status: &control.Status{
		PID: 1, Version: "v1.2.3", Started: fixtureNow.Add(-50 * time.Hour), PlansDir: "/etc/refreshd/plans",
		LastReload: fixtureNow.Add(-2 * time.Hour),
		Plans: []control.PlanStatus{
			{Plan: "airflow-main", File: "/etc/refreshd/plans/airflow.yaml", Schedule: "0 2 * * *",
				Timezone: "Europe/Amsterdam", Overlap: "skip", Next: time.Date(2026, 11, 29, 1, 0, 0, 0, time.UTC),
				Running: "airflow-main-20261128T092900.000Z-ffff"},
			{Plan: "demo", File: "/etc/refreshd/plans/demo.yaml", Schedule: "0 3 * * *",
				Timezone: "UTC", Overlap: "queue", Next: time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)},
			{Plan: "manual", File: "/etc/refreshd/plans/manual.yaml"},
		},
		LoadErrors: []control.LoadError{{File: "/etc/refreshd/plans/broken.yaml",
			Error: `/etc/refreshd/plans/broken.yaml:22:10: overlap "sometimes": want skip or queue`}},
	}}
	s.runs = append(s.runs, &history.Run{ID: "airflow-main-20261128T092900.000Z-ffff", Plan: "airflow-main",
		Trigger: history.TriggerManual, Start: fixtureNow.Add(-time.Minute), Status: history.StatusRunning,
		Steps: []history.Step{{Instance: "build-ci-images[python=3.9]", Status: history.StatusRunning, Start: fixtureNow.Add(-time.Minute),
			Attempts: []history.Attempt{{N: 1, Start: fixtureNow.Add(-time.Minute), ExitCode: -1, Log: writeLog(t, dir, "running.1.log", "so far\n")}}}}})
	s.runs = append(s.runs, &history.Run{ID: "airflow-main-20261127T010000.000Z-eeee", Plan: "airflow-main",
		Trigger: history.TriggerSchedule, Start: at(-26 * 3600), End: at(-26*3600 + 60), Status: history.StatusFailed,
		Reason: "step build-ci-images[python=3.9] failed: exit code 1"})
	s.runs = append(s.runs, run)
	s.pins = []history.Pin{
		{At: at(-3600), Plan: "demo", Run: run.ID, Branch: "constraints-main", Repo: "/srv/c.git", Commit: "4f248a6d8eb5a1b2c3d4e5f6a7b8c9d0e1f2a3b4",
			Source: "9c0ffee9c0ffee9c0ffee9c0ffee9c0ffee9c0ff", File: "constraints-3.12.txt", Package: "httpx", Old: "0.27.2", New: "0.28.1"},
		{At: at(-3600), Plan: "demo", Run: run.ID, Branch: "constraints-main", Repo: "/srv/c.git", Commit: "4f248a6d8eb5a1b2c3d4e5f6a7b8c9d0e1f2a3b4",
			File: "constraints-3.12.txt", Package: "<script>alert(1)</script>", New: "1.0"},
		{At: at(-7200), Branch: "constraints-main", Repo: "/srv/c.git", Commit: "0a7517de0a7517de0a7517de0a7517de0a7517de", File: "constraints-3.12.txt",
			Package: "httpx", Old: "0.27.0", New: "0.27.2", Outside: true, Author: `Mallory "><img src=x onerror=alert(1)> <m@example.com>`},
		{At: at(-90000), Plan: "demo", Run: "demo-20261127T030000.000Z-0000", Branch: "constraints-1-0", Repo: "/srv/c.git", Commit: "1111111111111111111111111111111111111111",
			File: "constraints-3.11.txt", Package: "httpcore", Old: "1.0.6"},
	}
	s.caches = []control.CacheTag{
		{Ref: "127.0.0.1:5000/demo/main/ci/python3.12:cache-linux-amd64", Plan: "demo", Digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			Checked: at(-600), Changed: at(-3600), PushedBy: run.ID, Within: "12h"},
		{Ref: "127.0.0.1:5000/demo/main/ci/python3.11:cache-linux-amd64", Plan: "demo", Digest: "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
			Checked: at(-600), Changed: at(-50 * 3600), Within: "12h", Stale: true},
		{Ref: "127.0.0.1:5000/demo/main/ci/python3.13:cache-linux-amd64", Plan: "demo", Checked: at(-600), Within: "12h", Stale: true},
	}
	for i := range older {
		start := at(-float64(i+1) * 86400)
		status := history.StatusSucceeded
		if i%7 == 3 {
			status = history.StatusSkipped
		}
		s.runs = append(s.runs, &history.Run{ID: fmt.Sprintf("demo-%05d", older-i), Plan: "demo", Trigger: history.TriggerSchedule,
			Start: start, End: start.Add(9 * time.Second), Status: status})
	}
	s.runs = append(s.runs, &history.Run{ID: "gone-20261101T000000.000Z-0000", Plan: "gone", Trigger: history.TriggerManual,
		Start: at(-27 * 86400), End: at(-27*86400 + 3), Status: history.StatusSucceeded})
	return s
}

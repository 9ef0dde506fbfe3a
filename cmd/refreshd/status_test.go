package main

import (
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/daemon/control"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/testkit"
)

// The status table shows, for a last run that did not succeed, when it ended and why, on
// its one line; a reason with newlines or a terminal escape from a step's output stays on
// that line and cannot repaint the terminal.
func TestStatusText(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 7, 3, 4, 5, 0, time.UTC)
	long := "step refresh-cache[python=3.12] failed: attempt 3 of 3: exit code 1: ERROR: failed to solve: failed to push 127.0.0.1:5000/demo/main/ci/python3.12:cache-linux-amd64: 503 Service Unavailable"
	st := &control.Status{PID: 42, Version: "refreshd v1.2.3 go1.26.8", Started: at.Add(-3 * time.Hour), PlansDir: "/etc/refreshd/plans",
		Plans: []control.PlanStatus{
			{Plan: "airflow/main", Schedule: "0 2 * * *", Next: at.Add(23 * time.Hour), Last: &control.RunSummary{ID: "airflow-main-20261207T020000Z-ab12", Status: history.StatusFailed, End: at, Reason: long}},
			{Plan: "demo/main", Schedule: "30 2 * * *", Timezone: "Europe/Berlin", Next: at.Add(time.Hour), Running: "demo-main-1", Queued: "demo-main-2"},
			{Plan: "failing", Last: &control.RunSummary{ID: "failing-1", Status: history.StatusFailed, End: at, Reason: "step fails failed:\nattempt 1 of 1: exit code 3\x1b[2J\x1b]0;owned\x07"}},
			{Plan: "fresh", Last: &control.RunSummary{ID: "fresh-1", Status: history.StatusSkipped, End: at, Reason: "skip_if: every tag pushed within 12h"}},
			{Plan: "good", Last: &control.RunSummary{ID: "good-1", Status: history.StatusSucceeded, End: at}},
		}}
	var b strings.Builder
	writeStatus(&b, st, at, time.UTC)
	if strings.ContainsAny(b.String(), "\x1b\x07") {
		t.Errorf("a control character reached the terminal:\n%q", b.String())
	}
	testkit.Golden(t, "testdata/status.golden", b.String())
}

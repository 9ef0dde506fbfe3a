package control

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/testkit"
)

// TestStatusWire pins the JSON of GET /v1/status that clients (refreshd status -o json,
// scripts, the dashboard) read: the control API's own types, not the scheduler's, make it.
func TestStatusWire(t *testing.T) {
	at := time.Date(2026, 11, 28, 9, 29, 0, 0, time.UTC)
	st := &Status{
		PID: 42, Version: "refreshd v1.2.3", Started: at.Add(-time.Hour), PlansDir: "/etc/refreshd/plans", LastReload: at,
		Plans: []PlanStatus{
			{Plan: "airflow-main", File: "/etc/refreshd/plans/airflow.yaml", Schedule: "0 2 * * *", Timezone: "Europe/Amsterdam",
				Overlap: "skip", Next: at.Add(17 * time.Hour), Running: "airflow-main-1", Queued: "airflow-main-2",
				Last: &RunSummary{ID: "airflow-main-0", Status: history.StatusFailed, End: at.Add(-time.Minute), Reason: "step build failed"}},
			{Plan: "manual"},
		},
		LoadErrors: []LoadError{{File: "/etc/refreshd/plans/broken.yaml", Error: "/etc/refreshd/plans/broken.yaml:3:1: bad"}},
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	testkit.Golden(t, "testdata/status.json", string(b)+"\n")
}

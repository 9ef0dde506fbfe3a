package daemon

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/testkit"
	"github.com/refreshd/refreshd/plan"
)

// TestMetricsAcrossReload: a plan added by a reload gets its series at 0 and its last run
// and last success restored from history, as a plan loaded at start-up does; a plan a
// reload removes is no longer exported; a skip because the plan was fresh advances "last
// fresh" and is counted by reason.
func TestMetricsAcrossReload(t *testing.T) {
	dir := t.TempDir()
	// first has a builder with a pool of two linux/amd64 nodes and one linux/386 node.
	first := parsePlan(t, dir, "first", `plan: first
builders:
  - name: cache
    driver: remote
    nodes:
      - { name: cache0, endpoint: "tcp://10.0.0.5:1234", platform: linux/amd64 }
      - { name: cache1, endpoint: "tcp://10.0.0.6:1234", platform: linux/386 }
      - { name: cache2, endpoint: "tcp://10.0.0.7:1234", platform: linux/amd64 }
steps:
  - id: s
    builder: cache
    run: ["true"]
`)
	late := parsePlan(t, dir, "late", "plan: late\nsteps:\n  - id: s\n    run: [\"true\"]\n")
	store, eng, attach := realEngine(t, dir)
	// History from an earlier daemon: late succeeded, then failed, then was skipped fresh.
	for _, r := range []*history.Run{
		{ID: "late-1", Plan: "late", Status: history.StatusSucceeded, Start: time.Unix(1000, 0), End: time.Unix(1100, 0)},
		{ID: "late-2", Plan: "late", Status: history.StatusFailed, Start: time.Unix(2000, 0), End: time.Unix(2100, 0)},
		{ID: "late-3", Plan: "late", Status: history.StatusSkipped, Reason: "skip_if: branch x updated 1h ago", Start: time.Unix(3000, 0), End: time.Unix(3000, 0)},
	} {
		if err := store.SaveRun(r); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	plans := []*plan.Plan{first}
	load := func(string) ([]*plan.Plan, error) { mu.Lock(); defer mu.Unlock(); return plans, nil }
	addr := testkit.FreeAddr(t)
	d, err := New(Config{PlansDir: dir, Load: load, Engine: eng, Store: store, Socket: filepath.Join(dir, "s.sock"),
		MetricsAddr: addr, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	attach(d)
	serve(t, d)
	scrape := func() string {
		t.Helper()
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	testkit.WaitFor(t, "metrics", 5*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	if body := scrape(); !strings.Contains(body, `refreshd_runs_total{plan="first",status="failed"} 0`) || strings.Contains(body, `plan="late"`) {
		t.Fatalf("before the reload: want first at 0 and no late:\n%s", grepMetrics(body))
	}
	// The pool's nodes exist at 0 from the load (cache1, alone on its platform, is no pool);
	// a pool node a run finds down is counted through the engine's observer.
	d.Observer().NodeDown("first-1", history.NodeDown{Builder: "cache", Node: "cache2", Platform: "linux/amd64", Found: history.NodeFoundAtProvisioning})
	body := scrape()
	for _, want := range []string{
		`refreshd_pool_nodes_down_total{builder="cache",found="provisioning",node="cache2",platform="linux/amd64"} 1`,
		`refreshd_pool_nodes_down_total{builder="cache",found="build",node="cache2",platform="linux/amd64"} 0`,
		`refreshd_pool_nodes_down_total{builder="cache",found="provisioning",node="cache0",platform="linux/amd64"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("before the reload: no %s", want)
		}
	}
	if strings.Contains(body, `node="cache1"`) {
		t.Errorf("cache1 is alone on linux/386, not in a pool, yet exported")
	}

	mu.Lock()
	plans = []*plan.Plan{late}
	mu.Unlock()
	if _, err := d.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	body = scrape()
	for _, want := range []string{
		`refreshd_runs_total{plan="late",status="failed"} 0`,
		`refreshd_runs_skipped_total{plan="late",reason="fresh"} 0`,
		`refreshd_last_success_timestamp_seconds{plan="late"} 1100`,
		`refreshd_last_run_timestamp_seconds{plan="late"} 2100`,
		`refreshd_last_run_status{plan="late",status="failed"} 1`,
		`refreshd_last_fresh_timestamp_seconds{plan="late"} 3000`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("after the reload: no %s", want)
		}
	}
	if strings.Contains(body, `plan="first"`) || strings.Contains(body, `refreshd_pool_nodes_down_total{`) {
		t.Errorf("plan first, with the only pool, was removed by the reload but is still exported")
	}
	if t.Failed() {
		t.Logf("exposition:\n%s", grepMetrics(body))
	}
}

func grepMetrics(body string) string {
	var b strings.Builder
	for line := range strings.Lines(body) {
		if strings.HasPrefix(line, "refreshd_") {
			b.WriteString(line)
		}
	}
	return b.String()
}

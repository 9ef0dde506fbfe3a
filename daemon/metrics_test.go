package daemon

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
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
	// Watched tags: the age of a dated change, read from the store at each scrape; a tag
	// refreshd has seen only one digest of has no age yet.
	const dated, undated = "127.0.0.1:5000/ci/python3.12:cache-linux-amd64", "127.0.0.1:5000/ci/python3.13:cache-linux-amd64"
	changed := time.Now().Add(-2 * time.Hour)
	for _, o := range []struct {
		ref, digest string
		at          time.Time
	}{{dated, "sha256:a", changed.Add(-time.Hour)}, {dated, "sha256:b", changed}, {undated, "sha256:c", changed}} {
		if _, err := store.ObserveTagBy(o.ref, o.digest, o.at, history.Sighting{Plan: "first", Run: "first-1", Pushed: true}); err != nil {
			t.Fatal(err)
		}
	}
	age := regexp.MustCompile(`(?m)^refreshd_cache_tag_age_seconds\{plan="first",ref="` + regexp.QuoteMeta(dated) + `"\} ([0-9.e+]+)$`).FindStringSubmatch(scrape())
	if age == nil {
		t.Errorf("no refreshd_cache_tag_age_seconds for %s:\n%s", dated, grepMetrics(scrape()))
	} else if v, _ := strconv.ParseFloat(age[1], 64); v < 7200 || v > 7200+60 {
		t.Errorf("refreshd_cache_tag_age_seconds of %s = %s, want about 7200", dated, age[1])
	}
	if strings.Contains(scrape(), undated) {
		t.Errorf("%s, seen with one digest only, has an age", undated)
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

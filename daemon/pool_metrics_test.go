package daemon

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/executor"
	"github.com/refreshd/refreshd/executor/buildx"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/testkit"
	"github.com/refreshd/refreshd/internal/teststack"
	"github.com/refreshd/refreshd/plan"
)

// TestPoolNodeDownMetric, end to end on the real stack: a builder of two buildkitd nodes
// pinned to linux/amd64, one of them killed. The daemon's run provisions the builder, skips
// the dead node with a warning and succeeds on the other; the daemon's /metrics, scraped
// over HTTP, counts that node once as found down at provisioning, and the live one not.
func TestPoolNodeDownMetric(t *testing.T) {
	teststack.Require(t)
	dir := t.TempDir()
	n0 := teststack.StartBuildkitd(t, "pool0")
	n1 := teststack.StartBuildkitd(t, "pool1")
	p := parsePlan(t, dir, "pooled", `plan: pooled
env:
  DOCKER_CONFIG: `+teststack.DockerConfig(t)+`
builders:
  - name: pool
    driver: remote
    emulation: forbid
    nodes:
      - { name: pool0, endpoint: "`+n0.Endpoint+`", platform: linux/amd64 }
      - { name: pool1, endpoint: "`+n1.Endpoint+`", platform: linux/amd64 }
steps:
  - id: use
    builder: pool
    run: ["true"]
`)
	store, err := history.Open(filepath.Join(dir, "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ex := &Executor{}
	addr := testkit.FreeAddr(t)
	d, err := New(Config{PlansDir: dir, Load: func(string) ([]*plan.Plan, error) { return []*plan.Plan{p}, nil },
		Engine: ex, Store: store, Socket: filepath.Join(dir, "s.sock"), MetricsAddr: addr,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	// Short node waits: the dead node is given up on after 2 checks and one 3 s bootstrap.
	ex.Engine, err = executor.New(executor.Config{StateDir: dir, Store: store, Observer: d.Observer(), KillGrace: time.Second,
		Tools:  &executor.Tools{NodeWait: buildx.WaitPolicy{Attempts: 2, Backoff: 200 * time.Millisecond, BootstrapTimeout: 3 * time.Second}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, d)
	scrape := func() string {
		t.Helper()
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	const (
		pool1 = `refreshd_pool_nodes_down_total{builder="pool",found="provisioning",node="pool1",platform="linux/amd64"}`
		pool0 = `refreshd_pool_nodes_down_total{builder="pool",found="provisioning",node="pool0",platform="linux/amd64"}`
	)
	testkit.WaitFor(t, "the metrics, pool nodes at 0", 10*time.Second, func() bool {
		return strings.Contains(scrape(), pool1+" 0")
	})

	n1.Kill()
	tr, err := d.Trigger(context.Background(), "pooled", nil)
	if err != nil {
		t.Fatal(err)
	}
	var r *history.Run
	testkit.WaitFor(t, "the run to end", 90*time.Second, func() bool {
		r, err = d.RunRecord(context.Background(), tr.Run)
		return err == nil && r.End.After(r.Start)
	})
	if r.Status != history.StatusSucceeded {
		t.Fatalf("run %s: %s", r.Status, r.Reason)
	}
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "node pool1") || !strings.Contains(r.Warnings[0], "skipped by this run") {
		t.Errorf("warnings %q, want pool1 skipped", r.Warnings)
	}
	body := scrape()
	for _, want := range []string{pool1 + " 1", pool0 + " 0"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s:\n%s", want, grepMetrics(body))
		}
	}
}

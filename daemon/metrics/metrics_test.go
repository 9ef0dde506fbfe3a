package metrics

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/testkit"
)

func TestListenAddr(t *testing.T) {
	tests := []struct {
		in, want, wantErr string
	}{
		{"9464", "127.0.0.1:9464", ""},
		{":9464", "127.0.0.1:9464", ""},
		{"127.0.0.1:9000", "127.0.0.1:9000", ""},
		{"0.0.0.0:9464", "0.0.0.0:9464", ""},
		{"[::1]:9464", "[::1]:9464", ""},
		{"localhost:", "", "no port"},
		{"a:b:c", "", "too many colons"},
	}
	for _, tt := range tests {
		got, err := ListenAddr(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "--metrics-addr") {
				t.Errorf("ListenAddr(%q) = %q, %v; want an error about --metrics-addr with %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ListenAddr(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// scrape serves m on a real loopback port and returns one scrape of /metrics.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx, l, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("metrics server did not stop")
		}
	}()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + l.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scrape: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

func TestMetricsExposition(t *testing.T) {
	m := New(BuildInfo{Version: "v1.2.3", Revision: "abc123"})
	for _, p := range []string{"idle", "nightly", "broken", "old"} {
		m.PlanKnown(p)
	}
	m.RunStarted("nightly")
	m.StepFinished("nightly", "build[platform=linux/amd64]", 90*time.Second)
	m.StepFinished("nightly", "build[platform=linux/arm64]", 3*time.Second)
	m.RunFinished(RunEnd{Plan: "nightly", Status: "succeeded", End: time.Unix(1700000000, 500e6)}, true)
	m.RunFinished(RunEnd{Plan: "nightly", Status: "skipped", SkipReason: SkipOverlap, End: time.Unix(1700000001, 0)}, false)
	m.RunFinished(RunEnd{Plan: "nightly", Status: "skipped", SkipReason: SkipFresh, End: time.Unix(1700000100, 0)}, false)
	m.RunStarted("broken")
	m.RunFinished(RunEnd{Plan: "broken", Status: "failed", End: time.Unix(1700000002, 0)}, true)
	m.CacheTags("nightly", 3, 1)
	m.LoadErrors([]string{"/etc/refreshd/plans/a.yaml", "/etc/refreshd/plans/b.yaml"})
	m.LoadErrors([]string{"/etc/refreshd/plans/b.yaml"}) // a reload fixed a.yaml
	m.PlanRemoved("old")
	m.PlanKnown("nightly") // a reload keeps the plan: nothing resets
	amd0 := PoolNode{Builder: "cache", Node: "cache0", Platform: "linux/amd64"}
	amd2 := PoolNode{Builder: "cache", Node: "cache2", Platform: "linux/amd64"}
	gone := PoolNode{Builder: "cache", Node: "cache4", Platform: "linux/amd64"}
	m.PoolNodes([]PoolNode{amd0, amd2, gone})
	m.PoolNodeDown(amd2, history.NodeFoundAtProvisioning)
	m.PoolNodeDown(amd2, history.NodeFoundAtProvisioning)
	m.PoolNodeDown(amd0, history.NodeFoundInBuild)
	m.PoolNodes([]PoolNode{amd0, amd2}) // a reload dropped cache4 from the builder

	body := scrape(t, m)
	for _, want := range []string{
		`refreshd_runs_total{plan="nightly",status="succeeded"} 1`,
		`refreshd_runs_total{plan="nightly",status="skipped"} 2`,
		`refreshd_runs_total{plan="broken",status="failed"} 1`,
		// Every status of every plan exists at 0 before its first run: increase() sees the first.
		`refreshd_runs_total{plan="idle",status="failed"} 0`,
		`refreshd_runs_total{plan="idle",status="succeeded"} 0`,
		`refreshd_runs_total{plan="idle",status="interrupted"} 0`,
		`refreshd_runs_skipped_total{plan="nightly",reason="fresh"} 1`,
		`refreshd_runs_skipped_total{plan="nightly",reason="overlap"} 1`,
		`refreshd_runs_skipped_total{plan="idle",reason="fresh"} 0`,
		`refreshd_runs_in_progress{plan="nightly"} 0`,
		`refreshd_runs_in_progress{plan="idle"} 0`,
		`refreshd_last_success_timestamp_seconds{plan="nightly"} 1.7000000005e+09`,
		`refreshd_last_success_timestamp_seconds{plan="idle"} 0`,
		`refreshd_last_success_timestamp_seconds{plan="broken"} 0`,
		// A fresh skip advances "last fresh", not "last success"; an overlap skip neither.
		`refreshd_last_fresh_timestamp_seconds{plan="nightly"} 1.7000001e+09`,
		`refreshd_last_fresh_timestamp_seconds{plan="broken"} 0`,
		`refreshd_last_run_timestamp_seconds{plan="broken"} 1.700000002e+09`,
		`refreshd_last_run_timestamp_seconds{plan="nightly"} 1.7000000005e+09`,
		`refreshd_last_run_status{plan="broken",status="failed"} 1`,
		`refreshd_last_run_status{plan="broken",status="succeeded"} 0`,
		`refreshd_last_run_status{plan="nightly",status="succeeded"} 1`,
		`refreshd_last_run_status{plan="idle",status="failed"} 0`,
		// Both instances fold into the step id: bounded cardinality.
		`refreshd_step_duration_seconds_count{plan="nightly",step="build"} 2`,
		`refreshd_step_duration_seconds_bucket{plan="nightly",step="build",le="5"} 1`,
		`refreshd_cache_tags{plan="nightly",state="verified"} 3`,
		`refreshd_cache_tags{plan="nightly",state="missing"} 1`,
		`refreshd_pool_nodes_down_total{builder="cache",found="provisioning",node="cache2",platform="linux/amd64"} 2`,
		`refreshd_pool_nodes_down_total{builder="cache",found="build",node="cache0",platform="linux/amd64"} 1`,
		// Every declared pool node exists at 0 from the load: the first time it is down alerts.
		`refreshd_pool_nodes_down_total{builder="cache",found="provisioning",node="cache0",platform="linux/amd64"} 0`,
		`refreshd_pool_nodes_down_total{builder="cache",found="build",node="cache2",platform="linux/amd64"} 0`,
		`refreshd_plan_load_errors 1`,
		`refreshd_plan_load_error{file="/etc/refreshd/plans/b.yaml"} 1`,
		`refreshd_build_info{goversion="go`,
		`revision="abc123",version="v1.2.3"} 1`,
		`go_goroutines`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("exposition lacks %s", want)
		}
	}
	for _, absent := range []string{`file="/etc/refreshd/plans/a.yaml"`, `plan="old"`, `[platform=`, `node="cache4"`} {
		if strings.Contains(body, absent) {
			t.Errorf("exposition has %s", absent)
		}
	}

	if pt := testkit.Optional(t, "promtool", "promtool check metrics"); pt != "" {
		cmd := exec.Command(pt, "check", "metrics")
		cmd.Stdin = strings.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	}
}

// Restore sets each gauge from the newest run of its kind in history, whatever order the
// kinds come in; counters stay at 0.
func TestRestore(t *testing.T) {
	m := New(BuildInfo{Version: "v1"})
	m.PlanKnown("p")
	m.Restore("p", []RunEnd{ // newest first, as history lists them
		{Status: "skipped", SkipReason: SkipOverlap, End: time.Unix(500, 0)},
		{Status: "skipped", SkipReason: SkipFresh, End: time.Unix(400, 0)},
		{Status: "failed", End: time.Unix(300, 0)},
		{Status: "succeeded", End: time.Unix(200, 0)},
		{Status: "failed", End: time.Unix(100, 0)},
	})
	body := scrape(t, m)
	for _, want := range []string{
		`refreshd_last_run_status{plan="p",status="failed"} 1`,
		`refreshd_last_run_status{plan="p",status="succeeded"} 0`,
		`refreshd_last_run_timestamp_seconds{plan="p"} 300`,
		`refreshd_last_success_timestamp_seconds{plan="p"} 200`,
		`refreshd_last_fresh_timestamp_seconds{plan="p"} 400`,
		`refreshd_runs_total{plan="p",status="failed"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("exposition lacks %s", want)
		}
	}
}

// Each Metrics has its own registry: two daemons (or tests) in one process do not collide.
func TestRegistriesAreIndependent(t *testing.T) {
	a, b := New(BuildInfo{Version: "a"}), New(BuildInfo{Version: "b"})
	a.RunFinished(RunEnd{Plan: "p", Status: "succeeded", End: time.Now()}, false)
	if body := scrape(t, b); strings.Contains(body, `refreshd_runs_total{plan="p"`) {
		t.Error("a run recorded on one Metrics shows on another")
	}
}

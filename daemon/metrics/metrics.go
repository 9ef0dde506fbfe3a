// Package metrics holds refreshd's Prometheus metrics, on a registry of their own (no
// global state), served only when the daemon is given --metrics-addr.
package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/httpserve"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Run statuses and skip reasons, every one of them exported at 0 from the moment a plan is
// known: a counter that first appears at 1 has no increase, so the first failure after a
// restart (or of a plan added by a reload) would never alert.
var (
	runStatuses = []string{"succeeded", "failed", "interrupted", "skipped"}
	// lastStatuses are the outcomes of runs that ran; a skipped trigger changes no last run.
	lastStatuses = []string{"succeeded", "failed", "interrupted"}
)

// Skip reasons, the values of refreshd_runs_skipped_total's reason label.
const (
	SkipFresh   = "fresh"   // skip_if held: the project's own CI refreshed recently
	SkipOverlap = "overlap" // the plan was still running (overlap: skip)
	SkipOther   = "other"   // any other recorded skip
)

var skipReasons = []string{SkipFresh, SkipOverlap, SkipOther}

// BuildInfo labels refreshd_build_info. Version is the release alone ("v1.2.3"), so that
// alerts and dashboards can group by it.
type BuildInfo struct {
	Version, Revision string
}

// Metrics is the daemon's set of metrics.
type Metrics struct {
	reg            *prometheus.Registry
	runs           *prometheus.CounterVec
	skips          *prometheus.CounterVec
	stepDuration   *prometheus.HistogramVec
	lastSuccess    *prometheus.GaugeVec
	lastFresh      *prometheus.GaugeVec
	lastRun        *prometheus.GaugeVec
	lastRunStatus  *prometheus.GaugeVec
	inProgress     *prometheus.GaugeVec
	loadErrors     prometheus.Gauge
	loadError      *prometheus.GaugeVec
	cacheTags      *prometheus.GaugeVec
	tagAges        *tagAges
	storeRecovered prometheus.Gauge
	poolNodesDown  *prometheus.CounterVec
	poolNodes      map[PoolNode]bool // the pool nodes the loaded plans declare
	planCollectors []*prometheus.MetricVec
}

// PoolNode is one node of a builder's pool: a platform with more than one node.
type PoolNode struct {
	Builder, Node, Platform string
}

// New registers the metrics on a fresh registry.
func New(build BuildInfo) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refreshd_runs_total", Help: "Runs finished (or skipped), by plan and final status; every status at 0 from the plan's load.",
		}, []string{"plan", "status"}),
		skips: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refreshd_runs_skipped_total", Help: "Skipped runs by plan and reason: fresh (skip_if held), overlap (the plan was running), other.",
		}, []string{"plan", "reason"}),
		// Labelled by step id, not instance, so that matrices do not multiply series.
		stepDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "refreshd_step_duration_seconds",
			Help:    "Duration of finished step instances, by plan and step id.",
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400},
		}, []string{"plan", "step"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "refreshd_last_success_timestamp_seconds", Help: "End time of the last successful run of a plan; 0 if it never succeeded.",
		}, []string{"plan"}),
		lastFresh: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "refreshd_last_fresh_timestamp_seconds", Help: "When a plan's output was last known fresh: a successful run, or a run skipped because skip_if found it fresh; 0 if never.",
		}, []string{"plan"}),
		lastRun: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "refreshd_last_run_timestamp_seconds", Help: "End time of the last run of a plan that ran (not skipped); 0 if none.",
		}, []string{"plan"}),
		lastRunStatus: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "refreshd_last_run_status", Help: "1 for the status of the last run of a plan that ran (succeeded, failed, interrupted), 0 for the others.",
		}, []string{"plan", "status"}),
		inProgress: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "refreshd_runs_in_progress", Help: "Runs in progress, by plan.",
		}, []string{"plan"}),
		loadErrors: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "refreshd_plan_load_errors", Help: "Plan files that failed to load at the last (re)load.",
		}),
		loadError: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "refreshd_plan_load_error", Help: "1 for each plan file that failed to load at the last (re)load.",
		}, []string{"file"}),
		cacheTags: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "refreshd_cache_tags", Help: "Cache tags checked by the last run of a plan, by state (verified, missing).",
		}, []string{"plan", "state"}),
	}
	m.storeRecovered = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "refreshd_history_store_recovered_timestamp_seconds",
		Help: "When the history store was found corrupt at start-up and moved aside (0: it was not).",
	})
	// Labelled by builder and node, not plan: plans share builders, and a node down is
	// the node's business whichever plan found it.
	m.poolNodesDown = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "refreshd_pool_nodes_down_total",
		Help: "Times a run found a node of a builder's pool down and went on without it (found: provisioning, skipped; build, lost mid-build and the build moved), by builder, node and platform; every pool node at 0 from the plans' load.",
	}, []string{"builder", "node", "platform", "found"})
	m.poolNodes = map[PoolNode]bool{}
	m.tagAges = newTagAges()
	m.planCollectors = []*prometheus.MetricVec{m.runs.MetricVec, m.skips.MetricVec, m.stepDuration.MetricVec,
		m.lastSuccess.MetricVec, m.lastFresh.MetricVec, m.lastRun.MetricVec, m.lastRunStatus.MetricVec,
		m.inProgress.MetricVec, m.cacheTags.MetricVec}
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "refreshd_build_info", Help: "refreshd version, VCS revision and Go version; always 1.",
	}, []string{"version", "revision", "goversion"})
	info.WithLabelValues(build.Version, build.Revision, runtime.Version()).Set(1)
	m.reg.MustRegister(m.runs, m.skips, m.stepDuration, m.lastSuccess, m.lastFresh, m.lastRun, m.lastRunStatus,
		m.inProgress, m.loadErrors, m.loadError, m.cacheTags, m.storeRecovered, m.poolNodesDown, info, m.tagAges,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// StoreRecovered records that the history store was corrupt and moved aside at t.
func (m *Metrics) StoreRecovered(t time.Time) { m.storeRecovered.Set(float64(t.Unix())) }

// PlanKnown makes every series of a plan exist before its first run: counters at 0 for
// each status and skip reason, the timestamps at 0 ("never"). Values already there (a
// plan kept across a reload) are left as they are.
func (m *Metrics) PlanKnown(plan string) {
	for _, s := range runStatuses {
		m.runs.WithLabelValues(plan, s).Add(0)
	}
	for _, r := range skipReasons {
		m.skips.WithLabelValues(plan, r).Add(0)
	}
	for _, s := range lastStatuses {
		m.lastRunStatus.WithLabelValues(plan, s).Add(0)
	}
	m.lastSuccess.WithLabelValues(plan).Add(0)
	m.lastFresh.WithLabelValues(plan).Add(0)
	m.lastRun.WithLabelValues(plan).Add(0)
	m.inProgress.WithLabelValues(plan).Add(0)
}

// PlanRemoved drops every series of a plan a reload removed: a plan that no longer exists
// must not go on looking stale.
func (m *Metrics) PlanRemoved(plan string) {
	for _, v := range m.planCollectors {
		v.DeletePartialMatch(prometheus.Labels{"plan": plan})
	}
}

// RunStarted counts a run in progress.
func (m *Metrics) RunStarted(plan string) { m.inProgress.WithLabelValues(plan).Inc() }

// RunEnd is a finished (or skipped) run as the metrics see it.
type RunEnd struct {
	Plan   string
	Status string // a history.Status
	// SkipReason is one of SkipFresh, SkipOverlap, SkipOther for a skipped run.
	SkipReason string
	End        time.Time
}

// RunFinished records a finished run; started says whether RunStarted was called for it.
func (m *Metrics) RunFinished(r RunEnd, started bool) {
	if started {
		m.inProgress.WithLabelValues(r.Plan).Dec()
	}
	m.runs.WithLabelValues(r.Plan, r.Status).Inc()
	if r.Status == "skipped" {
		reason := r.SkipReason
		if !slices.Contains(skipReasons, reason) {
			reason = SkipOther
		}
		m.skips.WithLabelValues(r.Plan, reason).Inc()
	}
	m.setLast(r)
}

// Restore sets a plan's last run, last success and last fresh times from history (at
// start-up, and for a plan a reload adds): gauges must survive a restart, or an alert on
// their age fires for no reason and one on the last status forgets a failure. The runs are
// given newest first; counters are not restored (Prometheus counters restart at 0).
func (m *Metrics) Restore(plan string, runs []RunEnd) {
	// Oldest first, so that the newest of each kind is set last.
	for _, r := range slices.Backward(runs) {
		r.Plan = plan
		m.setLast(r)
	}
}

func (m *Metrics) setLast(r RunEnd) {
	at := float64(r.End.UnixNano()) / 1e9
	if slices.Contains(lastStatuses, r.Status) {
		m.lastRun.WithLabelValues(r.Plan).Set(at)
		for _, s := range lastStatuses {
			v := 0.0
			if s == r.Status {
				v = 1
			}
			m.lastRunStatus.WithLabelValues(r.Plan, s).Set(v)
		}
	}
	if r.Status == "succeeded" {
		m.lastSuccess.WithLabelValues(r.Plan).Set(at)
	}
	if r.Status == "succeeded" || (r.Status == "skipped" && r.SkipReason == SkipFresh) {
		m.lastFresh.WithLabelValues(r.Plan).Set(at)
	}
}

// StepFinished records a finished step instance. instance is reduced to its step id.
func (m *Metrics) StepFinished(plan, instance string, d time.Duration) {
	step, _, _ := strings.Cut(instance, "[")
	m.stepDuration.WithLabelValues(plan, step).Observe(d.Seconds())
}

// CacheTags records the cache tags the last run of plan checked.
func (m *Metrics) CacheTags(plan string, verified, missing int) {
	m.cacheTags.WithLabelValues(plan, "verified").Set(float64(verified))
	m.cacheTags.WithLabelValues(plan, "missing").Set(float64(missing))
}

// PoolNodes sets the pool nodes the loaded plans declare: each one's series exist at 0
// from now on (a counter first seen at 1 has no increase, so a node down right after a
// restart would not alert), and those of nodes no plan declares any more are dropped.
func (m *Metrics) PoolNodes(nodes []PoolNode) {
	want := map[PoolNode]bool{}
	for _, n := range nodes {
		want[n] = true
		for _, f := range history.NodeFounds() {
			m.poolNodesDown.WithLabelValues(n.Builder, n.Node, n.Platform, string(f)).Add(0)
		}
	}
	for n := range m.poolNodes {
		if !want[n] {
			m.poolNodesDown.DeletePartialMatch(prometheus.Labels{"builder": n.Builder, "node": n.Node, "platform": n.Platform})
		}
	}
	m.poolNodes = want
}

// PoolNodeDown counts a pool node a run found down (where it was found: a value of
// history.NodeFounds; anything else is counted as found in a build).
func (m *Metrics) PoolNodeDown(n PoolNode, found history.NodeFound) {
	if !slices.Contains(history.NodeFounds(), found) {
		found = history.NodeFoundInBuild
	}
	m.poolNodesDown.WithLabelValues(n.Builder, n.Node, n.Platform, string(found)).Inc()
}

// LoadErrors replaces the set of plan files that failed to load.
func (m *Metrics) LoadErrors(files []string) {
	m.loadError.Reset()
	for _, f := range files {
		m.loadError.WithLabelValues(f).Set(1)
	}
	m.loadErrors.Set(float64(len(files)))
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ListenAddr resolves a --metrics-addr value: a bare port ("9464" or ":9464") binds
// 127.0.0.1; anything else must name its host. A non-loopback host is allowed, because
// the operator wrote it explicitly.
func ListenAddr(addr string) (string, error) { return ResolveAddr("--metrics-addr", addr) }

// ResolveAddr is ListenAddr for any flag naming a TCP listen address (the dashboard's
// --http too, which may share the metrics listener); its errors name flag.
func ResolveAddr(flag, addr string) (string, error) {
	if !strings.Contains(addr, ":") {
		addr = ":" + addr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%s %q: %w", flag, addr, err)
	}
	if port == "" {
		return "", fmt.Errorf("%s %q: no port", flag, addr)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// Serve serves /metrics on l until ctx is done, within httpserve's bounds.
func (m *Metrics) Serve(ctx context.Context, l net.Listener, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	log.Info("serving metrics", "addr", l.Addr().String())
	return httpserve.Serve(ctx, l, mux, httpserve.DefaultLimits(), "metrics on "+l.Addr().String())
}

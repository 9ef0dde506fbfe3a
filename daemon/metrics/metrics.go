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
	"strings"
	"time"

	"github.com/refreshd/refreshd/internal/httpserve"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the daemon's set of metrics.
type Metrics struct {
	reg          *prometheus.Registry
	runs         *prometheus.CounterVec
	stepDuration *prometheus.HistogramVec
	lastSuccess  *prometheus.GaugeVec
	inProgress   *prometheus.GaugeVec
	loadErrors   prometheus.Gauge
	loadError    *prometheus.GaugeVec
	cacheTags    *prometheus.GaugeVec
}

// New registers the metrics on a fresh registry.
func New(version string) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refreshd_runs_total", Help: "Runs finished (or skipped), by plan and final status.",
		}, []string{"plan", "status"}),
		// Labelled by step id, not instance, so that matrices do not multiply series.
		stepDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "refreshd_step_duration_seconds",
			Help:    "Duration of finished step instances, by plan and step id.",
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400},
		}, []string{"plan", "step"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "refreshd_last_success_timestamp_seconds", Help: "End time of the last successful run of a plan.",
		}, []string{"plan"}),
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
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "refreshd_build_info", Help: "refreshd version and Go version; always 1.",
	}, []string{"version", "goversion"})
	info.WithLabelValues(version, runtime.Version()).Set(1)
	m.reg.MustRegister(m.runs, m.stepDuration, m.lastSuccess, m.inProgress, m.loadErrors, m.loadError, m.cacheTags, info,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// PlanKnown makes a plan's series exist (at zero) before its first run.
func (m *Metrics) PlanKnown(plan string) { m.inProgress.WithLabelValues(plan).Add(0) }

// RunStarted counts a run in progress.
func (m *Metrics) RunStarted(plan string) { m.inProgress.WithLabelValues(plan).Inc() }

// RunFinished records a finished run; started says whether RunStarted was called for it.
func (m *Metrics) RunFinished(plan, status string, end time.Time, started bool) {
	if started {
		m.inProgress.WithLabelValues(plan).Dec()
	}
	m.runs.WithLabelValues(plan, status).Inc()
	if status == "succeeded" {
		m.lastSuccess.WithLabelValues(plan).Set(float64(end.UnixNano()) / 1e9)
	}
}

// LastSuccess sets a plan's last-success time, as read from history at start-up: the gauge
// must survive a restart or an alert on its age fires for no reason.
func (m *Metrics) LastSuccess(plan string, end time.Time) {
	m.lastSuccess.WithLabelValues(plan).Set(float64(end.UnixNano()) / 1e9)
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

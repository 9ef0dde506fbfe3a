package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/refreshd/refreshd/daemon"
	"github.com/refreshd/refreshd/daemon/control"
	"github.com/refreshd/refreshd/daemon/metrics"
	"github.com/refreshd/refreshd/daemon/tagwatch"
	"github.com/refreshd/refreshd/daemon/webhook"
	"github.com/refreshd/refreshd/executor"
	"github.com/refreshd/refreshd/internal/journald"
	"github.com/refreshd/refreshd/plan"
)

// defaultMemoryLimit is the daemon's soft memory limit unless GOMEMLIMIT sets one.
const defaultMemoryLimit = 48 << 20

// cmdDaemon is `refreshd daemon`: the long-running scheduler behind the control socket, as
// systemd runs it. SIGTERM (the context) stops it; SIGHUP reloads the plans.
func cmdDaemon(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("daemon", "", "Schedule every plan in --plans and serve the control socket until SIGTERM; SIGHUP re-reads the plans.")
	plansDir := fs.String("plans", "/etc/refreshd/plans", "`DIR` of plan files (*.yaml, *.yml)")
	state := fs.String("state", "/var/lib/refreshd", "state `DIR`: history, logs, locks, workdirs")
	socket := fs.String("socket", control.DefaultSocket, "control socket `PATH` (mode 0660)")
	group := fs.String("socket-group", "", "`GROUP` owning the control socket (default: the daemon's)")
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus /metrics on `ADDR` (a bare port binds 127.0.0.1)")
	httpAddr := fs.String("http", "", "serve the read-only web dashboard on `ADDR` (a bare port binds 127.0.0.1; the --metrics-addr address shares its listener)")
	var httpHosts []string
	fs.Func("http-host", "a name (host or host:port) the --http and --metrics-addr listeners answer to besides their own address and localhost; any other Host header gets 421 (DNS rebinding); repeatable or a comma list", func(s string) error {
		for _, h := range strings.Split(s, ",") {
			if h = strings.TrimSpace(h); h == "" || strings.ContainsAny(h, "/ \t@") {
				return fmt.Errorf("%q: want a host name or host:port", s)
			}
			httpHosts = append(httpHosts, strings.TrimSpace(h))
		}
		return nil
	})
	grace := killGraceFlag(fs)
	stopTimeout := fs.Duration("stop-timeout", daemon.DefaultStopTimeout, "longest a stop (SIGTERM) may take; every kill grace is capped to fit in it. Keep it below the unit's TimeoutStopSec")
	httpURL := fs.String("http-url", "", "the dashboard's `URL` as operators reach it (behind a proxy, say): notifications link each run's page under it, and its host is one --http-host")
	hookFormat := fs.String("webhook-format", "json", "payload `FORMAT` of the --webhook targets: json or slack")
	var hooks []string
	fs.Func("webhook", "global webhook `URL` notified on every plan's failures and recoveries; @FILE reads the URL from FILE (keeps it out of ps and the unit); repeatable", func(s string) error {
		hooks = append(hooks, s)
		return nil
	})
	plainHTTP := plainHTTPFlag(fs)
	watchTags := fs.Duration("watch-tags", tagwatch.DefaultEvery, "look at the registry tags skip_if conditions watch this often between runs, so a push is dated within this interval (0: only when a run looks)")
	logLevel := fs.String("log-level", "info", "log `LEVEL`: debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usageErrorf("--log-level %q: want debug, info, warn or error", *logLevel)
	}
	if *hookFormat != "json" && *hookFormat != "slack" {
		return usageErrorf("--webhook-format %q: want json or slack", *hookFormat)
	}
	if err := checkKillGrace(*grace); err != nil {
		return err
	}
	if *stopTimeout < time.Second {
		return usageErrorf("--stop-timeout %s: want at least 1s", *stopTimeout)
	}
	if *watchTags != 0 && *watchTags < time.Minute {
		return usageErrorf("--watch-tags %s: want 0 (off) or at least 1m (each look is one registry request per watched tag)", *watchTags)
	}
	// Flags are checked before the state lock and the socket are taken.
	for _, f := range []struct{ flag, addr string }{{"--metrics-addr", *metricsAddr}, {"--http", *httpAddr}} {
		if f.addr == "" {
			continue
		}
		if _, err := metrics.ResolveAddr(f.flag, f.addr); err != nil {
			return &usageError{err: err}
		}
	}
	if *httpURL != "" {
		host, err := checkHTTPURL(*httpURL)
		if err != nil {
			return usageErrorf("--http-url %q: %v", *httpURL, err)
		}
		httpHosts = append(httpHosts, host)
	}
	targets, err := webhookTargets(hooks, *hookFormat)
	if err != nil {
		return &usageError{err: err}
	}
	logger := daemonLogger(stderr, level)
	return runDaemon(ctx, logger, daemonOptions{
		plans: *plansDir, state: *state, socket: *socket, group: *group,
		metricsAddr: *metricsAddr, httpAddr: *httpAddr, grace: *grace, stopTimeout: *stopTimeout, webhooks: targets, plainHTTP: *plainHTTP,
		watchTags: *watchTags, httpHosts: httpHosts, httpURL: *httpURL,
	})
}

// daemonLogger logs in the journal's native protocol when stderr is the journal stream
// systemd gave the service (each line with its priority, plan/run/step/attempt as fields),
// and as logfmt text elsewhere (a terminal, a file, a test).
func daemonLogger(stderr io.Writer, level slog.Level) *slog.Logger {
	text := slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})
	if stderr != os.Stderr || !journald.StderrIsJournal() {
		return slog.New(text)
	}
	return slog.New(journald.NewHandler(journald.Options{Level: level, Identifier: "refreshd", Fallback: text}))
}

type daemonOptions struct {
	plans, state, socket, group, metricsAddr, httpAddr string
	grace, stopTimeout, watchTags                      time.Duration
	webhooks                                           []webhook.Target
	plainHTTP, httpHosts                               []string
	httpURL                                            string
}

// runDaemon holds the state directory, recovers what a crash left behind, wires the engine
// into the daemon and runs it until ctx is cancelled.
func runDaemon(ctx context.Context, log *slog.Logger, o daemonOptions) error {
	if os.Getenv("GOMEMLIMIT") == "" {
		// A soft limit keeps the daemon small on a build box: left alone, the runtime lets
		// the heap grow to twice what is live before it collects (109 MiB resident for a
		// 10,000-instance run, 69 MiB with this limit; bench/scale.sh). It only makes the
		// collector work harder near the limit, never fails an allocation. GOMEMLIMIT
		// (the unit's environment) overrides it.
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	if fi, err := os.Stat(o.plans); err != nil {
		return fmt.Errorf("plans directory: %w", err)
	} else if !fi.IsDir() {
		return fmt.Errorf("plans directory %s: not a directory", o.plans)
	}
	branches := newRemoteBranches(ctx, log)
	load := func(dir string) ([]*plan.Plan, error) {
		return plan.LoadDirWith(dir, plan.LoadOptions{Branches: branches.List})
	}
	st, done, err := bootstrap(ctx, log, o.state, planTokens(o.plans, load, log))
	if err != nil {
		return err
	}
	defer done()
	store := st.Store

	eng := &daemon.Executor{}
	b := buildInfo()
	d, err := daemon.New(daemon.Config{
		PlansDir:    o.plans,
		Load:        load,
		Engine:      eng,
		Store:       store,
		Logger:      log,
		Version:     versionString(),
		Build:       metrics.BuildInfo{Version: b.Version, Revision: b.Revision},
		Socket:      o.socket,
		SocketGroup: o.group,
		MetricsAddr: o.metricsAddr,
		HTTPAddr:    o.httpAddr,
		HTTPHosts:   o.httpHosts,
		HTTPURL:     o.httpURL,
		Webhooks:    o.webhooks,
		Notify:      daemon.SystemdNotifier{Log: log},
		StopTimeout: o.stopTimeout,
		RunID:       executor.NewRunID,
	})
	if err != nil {
		return err
	}
	cfg := engineConfig(st, log, o.plainHTTP, o.grace)
	cfg.Observer, cfg.MaxKillGrace = d.Observer(), daemon.MaxKillGrace(o.stopTimeout)
	tools := cfg.Tools
	e, err := executor.New(cfg)
	if err != nil {
		return err
	}
	eng.Engine = e
	if o.watchTags > 0 {
		// Between runs, with the engine's registry settings; stopped (and waited for)
		// before the store closes.
		wlog := log.With("component", "tagwatch")
		w := &tagwatch.Watcher{Store: store, Lookup: tools.TagLookup(wlog), Every: o.watchTags, Log: wlog}
		wctx, stopWatching := context.WithCancel(ctx)
		watching := make(chan struct{})
		go func() { defer close(watching); w.Run(wctx) }()
		defer func() { stopWatching(); <-watching }()
	}
	// instances_from: look at the remotes' branches again every hour, so a release branch
	// cut between reloads becomes an instance without anyone reloading.
	go branches.watch(ctx, instancesWatch, log, func(ctx context.Context) error {
		_, err := d.Reload(ctx)
		return err
	})
	return d.Run(ctx)
}

// webhookTargets turns --webhook values into targets. A URL read from a file (@FILE) is a
// secret: it is redacted wherever the daemon logs about the target.
func webhookTargets(values []string, format string) ([]webhook.Target, error) {
	var out []webhook.Target
	for _, v := range values {
		t := webhook.Target{URL: v, Format: format}
		if path, ok := strings.CutPrefix(v, "@"); ok {
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("--webhook @%s: %w", path, err)
			}
			t.URL = strings.TrimSpace(string(b))
			t.Secrets = []string{t.URL}
		}
		if err := webhook.CheckURL(t.URL); err != nil {
			return nil, fmt.Errorf("--webhook %s: %w", webhook.Redact(t.URL, t.Secrets), err)
		}
		out = append(out, t)
	}
	return out, nil
}

// instancesWatch is how often the daemon lists the branches of the repositories its plans
// derive instances from (instances_from), between reloads.
const instancesWatch = time.Hour

// planTokens resolves the publish token of a plan in dir for the reconciliation of
// interrupted publishes at start-up; the plans are read on the first call only.
func planTokens(dir string, load daemon.Loader, log *slog.Logger) func(planName, repo string) string {
	var plans map[string]*plan.Plan
	return func(planName, repo string) string {
		if plans == nil {
			plans = map[string]*plan.Plan{}
			loaded, err := load(dir)
			if err != nil {
				log.Warn("reading the plans for their publish tokens", "err", err)
			}
			for _, p := range loaded {
				plans[p.Name] = p
			}
		}
		if p := plans[planName]; p != nil {
			return executor.PublishToken(p, repo)
		}
		return ""
	}
}

// checkHTTPURL accepts the dashboard's external URL (http or https, a host, a path at most:
// the run pages hang under it) and returns its host, which the dashboard must answer to.
func checkHTTPURL(raw string) (host string, err error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", errors.New("want a URL like https://refreshd.example.com/")
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("scheme %q: want http or https", u.Scheme)
	case u.Host == "" || u.User != nil:
		return "", errors.New("want a host, without user information")
	case u.RawQuery != "" || u.Fragment != "":
		return "", errors.New("want no query or fragment: run pages are appended to its path")
	}
	return u.Host, nil
}

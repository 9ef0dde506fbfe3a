package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/refreshd/refreshd/daemon/control"
	"github.com/refreshd/refreshd/daemon/control/apitest"
	"github.com/refreshd/refreshd/daemon/webhook"
	"github.com/refreshd/refreshd/executor"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/testkit"
	"github.com/refreshd/refreshd/plan"
)

// realEngine gives a daemon test the real pieces: a bbolt history store and the executor
// in dir. attach wires the engine to the daemon's observer once the daemon exists.
func realEngine(t *testing.T, dir string) (*history.Store, *Executor, func(d *Daemon)) {
	t.Helper()
	store, err := history.Open(filepath.Join(dir, "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ex := &Executor{}
	attach := func(d *Daemon) {
		e, err := executor.New(executor.Config{StateDir: dir, Store: store, Observer: d.Observer(),
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), KillGrace: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ex.Engine = e
	}
	return store, ex, attach
}

// testDaemon is a daemon of the tests, on a real engine and store, serving until the test
// ends (or shutdown is called).
type testDaemon struct {
	*Daemon
	store    *history.Store
	sock     string
	shutdown func()
}

// startDaemon makes a daemon from cfg in dir, with a real engine and store and, unless cfg
// says otherwise, the socket dir/refreshd.sock, PlansDir dir and a discarding logger, and
// serves it.
func startDaemon(t *testing.T, dir string, cfg Config) *testDaemon {
	t.Helper()
	store, eng, attach := realEngine(t, dir)
	if cfg.Socket == "" {
		cfg.Socket = filepath.Join(dir, "refreshd.sock")
	}
	if cfg.PlansDir == "" {
		cfg.PlansDir = dir
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg.Engine, cfg.Store = eng, store
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	attach(d)
	td := &testDaemon{Daemon: d, store: store, sock: cfg.Socket, shutdown: serve(t, d)}
	// The daemon loads its plans before it listens: a test that calls its methods directly
	// must not see it half started (TestCaches once read the windows of no plan).
	waitSocket(t, control.NewClient(cfg.Socket))
	return td
}

// plansOf is a Config.Load that always loads plans.
func plansOf(plans ...*plan.Plan) func(string) ([]*plan.Plan, error) {
	return func(string) ([]*plan.Plan, error) { return plans, nil }
}

// waitSocket waits until the daemon answers status on c.
func waitSocket(t *testing.T, c *control.Client) {
	t.Helper()
	testkit.WaitFor(t, "the control socket", 5*time.Second, func() bool { _, err := c.Status(t.Context()); return err == nil })
}

// serve runs d until the test ends, or until the returned shutdown is called, which stops
// it and waits (at most 10 s) for it to stop.
func serve(t *testing.T, d *Daemon) (shutdown func()) {
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := d.Run(ctx); err != nil {
			t.Errorf("daemon: %v", err)
		}
	}()
	shutdown = sync.OnceFunc(func() {
		stop()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("daemon did not stop within 10s")
		}
	})
	t.Cleanup(shutdown)
	return shutdown
}

// parsePlan loads a plan from YAML as the daemon's loader would, so the executor gets a
// plan with every default applied.
func parsePlan(t *testing.T, dir, name, src string) *plan.Plan {
	t.Helper()
	file := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := plan.LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDaemonControlNotifyMetricsWebhooks(t *testing.T) {
	notify := testkit.NotifySocket(t)
	t.Setenv("NOTIFY_SOCKET", notify.Path)
	notified := notify.String
	var hookMu sync.Mutex
	var hooks []string
	hookCalls := 0
	hookSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hookMu.Lock()
		defer hookMu.Unlock()
		hookCalls++
		if hookCalls == 1 {
			http.Error(w, "try again", http.StatusServiceUnavailable) // the retry must cover it
			return
		}
		b, _ := io.ReadAll(r.Body)
		hooks = append(hooks, string(b))
	}))
	defer hookSrv.Close()

	dir := t.TempDir()
	good := parsePlan(t, dir, "echo", `plan: echo
schedule: "0 3 1 1 *"
overlap: skip
steps:
  - id: say
    run: [sh, -c, "echo one; sleep 0.3; echo two"]
`)
	failing := parsePlan(t, dir, "fails", `plan: fails
steps:
  - id: boom
    run: [sh, -c, "echo bad; exit 3"]
`)
	var loadMu sync.Mutex
	loadErr := error(nil)
	load := func(string) ([]*plan.Plan, error) {
		loadMu.Lock()
		defer loadMu.Unlock()
		if loadErr != nil {
			return []*plan.Plan{failing}, loadErr
		}
		return []*plan.Plan{good, failing}, nil
	}
	sock := filepath.Join(dir, "run", "refreshd.sock")
	metricsAddr := testkit.FreeAddr(t)
	td := startDaemon(t, dir, Config{Load: load, Socket: sock, MetricsAddr: metricsAddr, Version: "test",
		Notify: SystemdNotifier{Log: slog.Default()}, Webhooks: []webhook.Target{{URL: hookSrv.URL + "/hook/s3cr3t"}},
		HTTPURL: "https://refreshd.example.com/ci/"})
	store, shutdown := td.store, td.shutdown
	testkit.WaitFor(t, "READY=1", 5*time.Second, func() bool { return strings.Contains(notified(), "READY=1") })

	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o660 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket %s: %v mode %v, want a 0660 socket", sock, err, fi.Mode())
	}
	c, _ := apitest.Client(t, sock)
	bg := context.Background()

	// run --wait: trigger, follow the live lines to the end.
	tr := triggerAndFollow(t, c, "echo", "say | one\nsay | two")
	r, err := c.Run(bg, tr.Run)
	if err != nil || r.Status != history.StatusSucceeded {
		t.Fatalf("run %s: %+v %v", tr.Run, r, err)
	}
	if _, err := c.Trigger(bg, "nope"); err == nil || !strings.Contains(err.Error(), "no such plan") {
		t.Errorf("trigger unknown plan: %v", err)
	}
	var apiErr *control.APIError
	if _, err := c.Run(bg, "missing-run"); !errors.As(err, &apiErr) || apiErr.Code != 404 {
		t.Errorf("unknown run: %v, want a 404", err)
	}

	// Failure then webhook (after one 503).
	ft, _ := c.Trigger(bg, "fails")
	testkit.WaitFor(t, "failed run", 5*time.Second, func() bool { r, _ := store.Run(ft.Run); return r != nil && r.Status == history.StatusFailed })
	testkit.WaitFor(t, "webhook", 10*time.Second, func() bool { hookMu.Lock(); defer hookMu.Unlock(); return len(hooks) == 1 })
	var ev webhook.Event
	if err := json.Unmarshal([]byte(hooks[0]), &ev); err != nil || ev.Event != "failure" || ev.Plan != "fails" || ev.Run != ft.Run {
		t.Errorf("webhook payload %s (%v), want a failure event for %s", hooks[0], err, ft.Run)
	}
	if want := "https://refreshd.example.com/ci/runs/" + ft.Run; ev.URL != want {
		t.Errorf("webhook payload url %q, want the run's page %q", ev.URL, want)
	}
	// The recovery of fails, by a run that published constraints: the payload names the
	// branch, its commit, the summary and the changes.
	fixed := &history.Run{ID: "fails-fixed", Plan: "fails", Status: history.StatusSucceeded, Start: time.Now(), End: time.Now(),
		Steps: []history.Step{{Instance: "publish", Status: history.StatusSucceeded, Publish: &history.Publish{Branch: "constraints-main", Commit: "c0ffee", Changed: true,
			Summary: "1 upgraded", Changes: []history.PackageChange{{File: "constraints-3.12.txt", Package: "httpx", Old: "0.27.2", New: "0.28.1"}}}}}}
	td.Observer().RunFinished(fixed)
	testkit.WaitFor(t, "recovery webhook", 10*time.Second, func() bool { hookMu.Lock(); defer hookMu.Unlock(); return len(hooks) == 2 })
	var rec webhook.Event
	if err := json.Unmarshal([]byte(hooks[1]), &rec); err != nil || rec.Event != "recovery" || len(rec.Constraints) != 1 ||
		rec.Constraints[0].Branch != "constraints-main" || rec.Constraints[0].Commit != "c0ffee" || len(rec.Constraints[0].Changes) != 1 || rec.Constraints[0].Changes[0].New != "0.28.1" {
		t.Errorf("recovery payload %s (%v), want the published constraints", hooks[1], err)
	}

	// Reload with a broken file: the old version of echo stays scheduled, the error shows.
	loadMu.Lock()
	loadErr = plan.ErrorList{{Pos: plan.Pos{File: good.File, Line: 3, Col: 11}, Msg: "schedule: expected 5 or 6 fields"}}
	loadMu.Unlock()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// Status is read once the reload is over (READY=1 after RELOADING=1), not in between.
	testkit.WaitFor(t, "READY=1 after RELOADING=1", 5*time.Second, func() bool {
		all := notified()
		i := strings.Index(all, "RELOADING=1")
		return i >= 0 && strings.Contains(all[i:], "READY=1")
	})
	st, err := c.Status(bg)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Plans) != 2 || st.Plans[0].Plan != "echo" || st.Plans[0].Next.IsZero() {
		t.Errorf("status after broken reload: %+v, want echo still scheduled", st.Plans)
	}
	if len(st.LoadErrors) != 1 || !strings.Contains(st.LoadErrors[0].Error, "echo.yaml:3:11: schedule") {
		t.Errorf("load errors %+v, want echo.yaml:3:11", st.LoadErrors)
	}

	// Metrics: promtool must accept the exposition.
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`refreshd_runs_total{plan="echo",status="succeeded"} 1`, `refreshd_runs_total{plan="fails",status="failed"} 1`,
		`refreshd_plan_load_errors 1`, `refreshd_last_success_timestamp_seconds{plan="echo"}`, `refreshd_step_duration_seconds_count{plan="echo",step="say"} 1`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if promtool := testkit.Optional(t, "promtool", "promtool check metrics"); promtool != "" {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(string(body))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	}

	shutdown()
	testkit.WaitFor(t, "STOPPING=1", 2*time.Second, func() bool { return strings.Contains(notified(), "STOPPING=1") })
	if _, err := c.Status(bg); !errors.Is(err, control.ErrNoDaemon) {
		t.Errorf("status after stop: %v, want ErrNoDaemon", err)
	}
}

// TestCancelQueuedRunEndsWait cancels a run queued behind a running one, over the real
// socket: a follower of the queued run (`run --wait`) returns, and the run is in history,
// interrupted with the reason, instead of "has not started yet" forever.
func TestCancelQueuedRunEndsWait(t *testing.T) {
	dir := t.TempDir()
	p := parsePlan(t, dir, "q", `plan: q
overlap: queue
steps:
  - id: wait
    run: [sleep, "30"]
`)
	td := startDaemon(t, dir, Config{Load: plansOf(p)})
	c, _ := apitest.Client(t, td.sock)
	bg, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waitSocket(t, c)

	first, err := c.Trigger(bg, "q")
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Trigger(bg, "q")
	if err != nil || !second.Queued {
		t.Fatalf("second trigger: %+v %v, want queued", second, err)
	}
	followed := make(chan error, 1)
	go func() { followed <- c.Logs(bg, second.Run, "", true, func(string) error { return nil }) }()
	if err := c.Cancel(bg, second.Run); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-followed:
		if err != nil {
			t.Fatalf("follow queued run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follower of the cancelled queued run still waiting after 5s")
	}
	r, err := c.Run(bg, second.Run)
	if err != nil {
		t.Fatalf("record of the dropped run: %v", err)
	}
	if r.Status != history.StatusInterrupted || !strings.Contains(r.Reason, errCancelled.Error()) {
		t.Errorf("dropped run recorded %s %q, want interrupted, %q", r.Status, r.Reason, errCancelled)
	}
	if err := c.Cancel(bg, first.Run); err != nil {
		t.Fatal(err)
	}
}

// TestPlanWebhookURLs: a plan's webhook URLs are rendered by the plan's template engine from
// secrets read the one way the engine reads them (file without its final newline, env). A
// URL whose secret has no value is not sent, and the log names the secret, never a value.
func TestPlanWebhookURLs(t *testing.T) {
	dir := t.TempDir()
	urlFile := filepath.Join(dir, "hook-url")
	if err := os.WriteFile(urlFile, []byte("https://hooks.example/T0K3N\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("REFRESHD_TEST_HOOK_KEY", "k3y-2")
	p := parsePlan(t, dir, "p", `plan: p
secrets:
  URL: { file: `+urlFile+` }
  KEY: { env: REFRESHD_TEST_HOOK_KEY }
  GONE: { env: REFRESHD_TEST_UNSET_HOOK_VARIABLE }
notify:
  - { url: "{{ .secrets.URL }}", format: slack }
  - { url: "https://hooks.example/x?key={{ .secrets.KEY }}" }
  - { url: "https://hooks.example/y/{{ .secrets.GONE }}" }
steps:
  - id: a
    run: ["true"]
`)
	var logs strings.Builder
	d := &Daemon{log: slog.New(slog.NewTextHandler(&logs, nil))}
	global := webhook.Target{URL: "https://global.example/"}
	targets, secrets := d.planTargets(p, []webhook.Target{global})
	var urls []string
	for _, tg := range targets {
		urls = append(urls, tg.URL)
	}
	want := []string{"https://global.example/", "https://hooks.example/T0K3N", "https://hooks.example/x?key=k3y-2"}
	if strings.Join(urls, " ") != strings.Join(want, " ") {
		t.Errorf("targets %q, want %q", urls, want)
	}
	if targets[1].Format != "slack" || len(targets[1].Secrets) != 2 {
		t.Errorf("plan target %+v: want format slack and both secret values to mask", targets[1])
	}
	if len(secrets) != 2 {
		t.Errorf("secrets to mask: %d, want the 2 that have values", len(secrets))
	}
	if !strings.Contains(logs.String(), "GONE") || !strings.Contains(logs.String(), "REFRESHD_TEST_UNSET_HOOK_VARIABLE") {
		t.Errorf("the log does not name the secret without a value:\n%s", logs.String())
	}
	for _, v := range []string{"T0K3N", "k3y-2"} {
		if strings.Contains(logs.String(), v) {
			t.Errorf("the log holds the secret value %q:\n%s", v, logs.String())
		}
	}
}

// TestWaitThenTriggerAgain is `refreshd run --wait P && refreshd run P`: a follower of a run
// returns only once the plan takes a new trigger, so the second trigger is never refused as
// overlapping the run it waited for (the stream used to end as the run recorded its end,
// before the scheduler let go of it: under load, now and then, "plan is already running").
func TestWaitThenTriggerAgain(t *testing.T) {
	dir := t.TempDir()
	p := parsePlan(t, dir, "again", "plan: again\nsteps:\n  - id: s\n    run: [\"true\"]\n")
	td := startDaemon(t, dir, Config{Load: plansOf(p)})
	c, _ := apitest.Client(t, td.sock)
	bg, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	waitSocket(t, c)
	tr, err := c.Trigger(bg, "again")
	for i := range 30 {
		if err != nil {
			t.Fatalf("trigger %d, right after the follower of the run before returned: %v", i+1, err)
		}
		if err := c.Logs(bg, tr.Run, "", true, func(string) error { return nil }); err != nil {
			t.Fatalf("follow %s: %v", tr.Run, err)
		}
		tr, err = c.Trigger(bg, "again")
	}
	if err != nil {
		t.Fatalf("last trigger: %v", err)
	}
}

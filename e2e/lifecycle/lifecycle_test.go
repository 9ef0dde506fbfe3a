package lifecycle

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/refreshd/refreshd/daemon/webhook"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/testkit"
	"github.com/refreshd/refreshd/proc"
)

// stubbornPlan is a plan whose one step ignores SIGTERM, so only SIGKILL after the grace
// ends it; its shell writes the pid of its child to pidFile.
func stubbornPlan(name, grace, pidFile string) string {
	return fmt.Sprintf(`plan: %s
kill_grace: %s
steps:
  - id: hold
    run: ["sh", "-c", "trap '' TERM; sleep 60 & echo $! > %s; wait"]
`, name, grace, pidFile)
}

// waitRun waits (bounded) for the run to end, read through the daemon.
func (e *env) waitRun(plan, id string, within time.Duration) *history.Run {
	e.t.Helper()
	var got *history.Run
	testkit.WaitFor(e.t, "run "+id+" to end", within, func() bool {
		for _, r := range e.runs(plan) {
			if r.ID == id && r.Status != history.StatusRunning && r.Status != "" {
				got = r
				return true
			}
		}
		return false
	})
	// The listing has headers; the whole record has the steps.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	full, err := e.client().Run(ctx, got.ID)
	if err != nil {
		e.t.Fatalf("read run %s: %v", id, err)
	}
	return full
}

// runStubborn starts plan stubborn through the CLI and waits until its step wrote the pid
// of its child to child; it returns the run id, the pid and the step's process group, which
// the test's cleanup kills whatever happens.
func (e *env) runStubborn(child string) (id string, pid, group int) {
	e.t.Helper()
	out, _, code := e.cli("run", "stubborn")
	if code != 0 {
		e.t.Fatalf("run stubborn: exit %d", code)
	}
	pid = e.readPID(child)
	group = pgid(e.t, pid)
	e.t.Cleanup(func() { syscall.Kill(-group, syscall.SIGKILL) })
	return strings.TrimSpace(out), pid, group
}

// The daemon's --kill-grace is only the fallback: a plan's own kill_grace (1s here) wins
// over it (30s, as the unit used to pass), and `refreshd cancel` is the recorded reason.
func TestPlanKillGraceBeatsDaemonFlag(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	child := filepath.Join(e.dir, "child.pid")
	e.writePlan("stubborn", stubbornPlan("stubborn", "1s", child))
	e.start(nil, "--kill-grace", "30s")
	id, _, group := e.runStubborn(child)

	t0 := time.Now()
	if _, errOut, code := e.cli("cancel", id); code != 0 {
		t.Fatalf("cancel %s: exit %d: %s", id, code, errOut)
	}
	r := e.waitRun("stubborn", id, 8*time.Second)
	took := time.Since(t0)
	if r.Status != history.StatusInterrupted || r.Reason != "cancelled by refreshd cancel" {
		t.Errorf("cancelled run: %s %q, want interrupted %q", r.Status, r.Reason, "cancelled by refreshd cancel")
	}
	if n := proc.LiveMembers(group); n > 0 {
		t.Errorf("process group %d still has %d live processes", group, n)
	}
	t.Logf("cancel took %s with the plan's kill_grace 1s and --kill-grace 30s", took.Round(time.Millisecond))

	// The CLI's exit codes through the daemon, one per kind (docs/operations.md's table): a param
	// the plan refuses and an unknown plan are invalid (2), as with run --local; cancelling
	// a run that has ended is refused by its state (4).
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"run", "stubborn", "--param", "nope=1"}, 2, "nope"},
		{[]string{"run", "no-such-plan"}, 2, `no such plan: "no-such-plan"`},
		{[]string{"cancel", id}, 4, "has already ended (interrupted)"},
		{[]string{"logs", id, "no-such-step"}, 2, `has no step "no-such-step"`},
	} {
		_, errOut, code := e.cli(tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) || strings.Contains(errOut, "not found:") || strings.Contains(errOut, "conflict:") {
			t.Errorf("refreshd %s: exit %d, stderr %q; want %d and %q, without the API's category", strings.Join(tc.args, " "), code, errOut, tc.code, tc.msg)
		}
	}
}

// A plan's kill_grace longer than the stop budget is capped on shutdown, so the daemon
// exits within --stop-timeout (below the unit's TimeoutStopSec) and records why.
func TestStopTimeoutCapsKillGrace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	child := filepath.Join(e.dir, "child.pid")
	e.writePlan("stubborn", stubbornPlan("stubborn", "5m", child))
	const stopTimeout = 3 * time.Second
	d := e.start(nil, "--stop-timeout", stopTimeout.String())
	id, _, group := e.runStubborn(child)

	took := d.Stop(syscall.SIGTERM, stopTimeout+2*time.Second)
	if d.Err() != nil {
		t.Errorf("daemon exit: %v, want 0", d.Err())
	}
	if n := proc.LiveMembers(group); n > 0 {
		t.Errorf("process group %d still has %d live processes after the daemon exited", group, n)
	}
	r := e.storeRuns("stubborn")
	if len(r) != 1 || r[0].ID != id || r[0].Status != history.StatusInterrupted || r[0].Reason != "refreshd stopping (SIGTERM)" {
		t.Fatalf("runs after SIGTERM: %+v, want %s interrupted: refreshd stopping (SIGTERM)", r, id)
	}
	t.Logf("daemon exited %s after SIGTERM (plan kill_grace 5m, --stop-timeout %s)", took.Round(time.Millisecond), stopTimeout)
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", addr, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// After a restart the last-success gauge still says when the plan last succeeded: an
// alert on its age must not fire just because the daemon restarted.
func TestLastSuccessSurvivesRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.writePlan("quick", "plan: quick\nsteps:\n  - id: say\n    run: [\"true\"]\n")
	addr := testkit.FreeAddr(t)
	d := e.start(nil, "--metrics-addr", addr)
	if out, errOut, code := e.cli("run", "--wait", "quick"); code != 0 {
		t.Fatalf("run --wait quick: exit %d\n%s%s", code, out, errOut)
	}
	d.Stop(syscall.SIGTERM, 10*time.Second)
	runs := e.storeRuns("quick")
	if len(runs) != 1 || runs[0].Status != history.StatusSucceeded {
		t.Fatalf("runs before restart: %+v", runs)
	}

	e.start(nil, "--metrics-addr", addr)
	body := scrape(t, addr)
	m := regexp.MustCompile(`(?m)^refreshd_last_success_timestamp_seconds\{plan="quick"\} (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no last-success gauge for quick after a restart:\n%s", body)
	}
	got, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	if want := float64(runs[0].End.UnixNano()) / 1e9; got < want-0.001 || got > want+0.001 {
		t.Errorf("last success %f after restart, want the run's end %f", got, want)
	}
}

// A failing run then a succeeding one: a real HTTP server receives a "recovery" event
// (after the "failure" one) from the daemon process.
func TestRecoveryWebhook(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var events []webhook.Event
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev webhook.Event
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	e := newEnv(t)
	marker := filepath.Join(e.dir, "failed-once")
	e.writePlan("flaky", fmt.Sprintf(`plan: flaky
steps:
  - id: work
    run: ["sh", "-c", "if [ -e %[1]s ]; then exit 0; fi; touch %[1]s; echo first run fails; exit 1"]
`, marker))
	e.start(nil, "--webhook", srv.URL+"/hook")
	var ids []string
	for _, want := range []int{1, 0} {
		out, errOut, code := e.cli("run", "--wait", "flaky")
		if code != want {
			t.Fatalf("run --wait flaky: exit %d, want %d\n%s%s", code, want, out, errOut)
		}
		ids = append(ids, strings.SplitN(out, "\n", 2)[0])
	}
	testkit.WaitFor(e.t, "the failure and recovery webhooks", 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(events) >= 2
	})
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 2 || events[0].Event != webhook.OnFailure || events[0].Run != ids[0] ||
		events[1].Event != webhook.OnRecovery || events[1].Run != ids[1] || events[1].Previous != string(history.StatusFailed) {
		t.Errorf("webhooks %+v, want failure of %s then recovery of %s", events, ids[0], ids[1])
	}
}

// A plans directory whose path holds ':' still gets its load errors by file, and the
// plan of a file that breaks on reload stays scheduled in its old version.
func TestPlansDirWithColon(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.plans = filepath.Join(e.dir, "team:a", "plans")
	if err := os.MkdirAll(e.plans, 0o755); err != nil {
		t.Fatal(err)
	}
	file := e.writePlan("nightly", "plan: nightly\nschedule: \"0 3 * * *\"\nsteps:\n  - id: say\n    run: [\"true\"]\n")
	d := e.start(nil)
	if err := os.WriteFile(file, []byte("plan: nightly\nschedule: \"61 * * * *\"\nsteps:\n  - id: say\n    run: [\"true\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := e.cli("reload"); code != 1 {
		t.Fatalf("reload with a broken plan: exit %d, want 1\n%s", code, errOut)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := e.client().Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.LoadErrors) != 1 || st.LoadErrors[0].File != file || !strings.HasPrefix(st.LoadErrors[0].Error, file+":2:11: ") {
		t.Errorf("load errors %+v, want one for %s", st.LoadErrors, file)
	}
	if len(st.Plans) != 1 || st.Plans[0].Schedule != "0 3 * * *" {
		t.Errorf("plans %+v, want nightly kept at its old schedule", st.Plans)
	}
	d.Stop(syscall.SIGTERM, 10*time.Second)
}

// A webhook receiver that never answers does not hold up a stop: sends in flight get
// at most 5s after SIGTERM, then are cancelled and logged as failed.
func TestHungWebhookDoesNotHoldStop(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	got := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	e := newEnv(t)
	e.writePlan("fails", "plan: fails\nsteps:\n  - id: boom\n    run: [\"false\"]\n")
	d := e.start(nil, "--webhook", srv.URL+"/hook")
	if _, _, code := e.cli("run", "--wait", "fails"); code != 1 {
		t.Fatalf("run --wait fails: exit %d, want 1", code)
	}
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the failure webhook never arrived")
	}
	took := d.Stop(syscall.SIGTERM, 8*time.Second)
	if !strings.Contains(d.Log(), "webhooks still sending; cancelling them") || !strings.Contains(d.Log(), `msg="webhook failed" plan=fails`) {
		t.Errorf("the dropped webhook was not logged:\n%s", d.Log())
	}
	t.Logf("daemon exited %s after SIGTERM with a webhook hung", took.Round(time.Millisecond))
}

// CLI errors: an unknown run is named once; a bad --metrics-addr is refused before the
// state lock and the socket are taken (a second daemon can still start on them).
func TestCLIErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.writePlan("quick", "plan: quick\nsteps:\n  - id: say\n    run: [\"true\"]\n")
	_, errOut, code := e.cli("daemon", "--plans", e.plans, "--state", e.state, "--socket", e.socket, "--metrics-addr", "127.0.0.1:notaport:1")
	if code != 2 || !strings.Contains(errOut, "--metrics-addr") {
		t.Errorf("bad --metrics-addr: exit %d, want 2 naming the flag\n%s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(e.state, "refreshd.lock")); err == nil {
		t.Errorf("bad --metrics-addr: the state lock file was created before the flags were checked")
	}
	e.start(nil)
	_, errOut, code = e.cli("logs", "no-such-run")
	if code == 0 || strings.Count(errOut, "no-such-run") != 1 {
		t.Errorf("logs of an unknown run: exit %d, stderr %q: want one clean error naming it once", code, errOut)
	}
}

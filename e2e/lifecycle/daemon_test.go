package lifecycle

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/refreshd/refreshd/daemon/control"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/testkit"
	"github.com/refreshd/refreshd/proc"
)

// A per-second schedule fires on the second; a 2.5 s step on the same schedule with
// overlap: skip never runs twice at once, and the triggers it overlaps are recorded skipped.
func TestPerSecondScheduleAndOverlapSkip(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.writePlan("tick", `plan: tick
schedule: "* * * * * *"
steps:
  - id: say
    run: ["sh", "-c", "echo tick"]
`)
	e.writePlan("slow", `plan: slow
schedule: "* * * * * *"
overlap: skip
steps:
  - id: wait
    run: ["sleep", "2.5"]
`)
	d := e.start(nil)
	testkit.WaitFor(e.t, "2 tick runs, 1 finished slow run and 2 skipped triggers", 12*time.Second, func() bool {
		slow := e.runs("slow")
		return countStatus(e.runs("tick"), history.StatusSucceeded) >= 2 &&
			countStatus(slow, history.StatusSucceeded) >= 1 && countStatus(slow, history.StatusSkipped) >= 2
	})
	d.Stop(syscall.SIGTERM, 10*time.Second)

	for _, r := range e.storeRuns("tick") {
		if r.Status == history.StatusInterrupted {
			continue // cut by the stop
		}
		if r.Trigger != history.TriggerSchedule || r.Status != history.StatusSucceeded {
			t.Errorf("tick run %s: %s %s, want a succeeded scheduled run", r.ID, r.Trigger, r.Status)
		}
		if r.Scheduled.IsZero() || !r.Scheduled.Equal(r.Scheduled.Truncate(time.Second)) || r.Start.Before(r.Scheduled) {
			t.Errorf("tick run %s scheduled %v started %v: want a whole second, started after it", r.ID, r.Scheduled, r.Start)
		}
	}
	// Never two runs of slow at once: the runs that really ran do not overlap in time.
	var ran []*history.Run
	skipped := 0
	for _, r := range e.storeRuns("slow") {
		switch r.Status {
		case history.StatusSkipped:
			skipped++
			if !strings.Contains(r.Reason, "already running") {
				t.Errorf("skipped run %s: reason %q, want it to name the running run", r.ID, r.Reason)
			}
		default:
			ran = append(ran, r)
		}
	}
	slices.SortFunc(ran, func(a, b *history.Run) int { return a.Start.Compare(b.Start) })
	for i := 1; i < len(ran); i++ {
		if ran[i].Start.Before(ran[i-1].End) {
			t.Errorf("slow runs %s and %s overlap: %v < %v", ran[i-1].ID, ran[i].ID, ran[i].Start, ran[i-1].End)
		}
	}
	if skipped < 2 {
		t.Errorf("%d skipped triggers of slow, want at least 2", skipped)
	}
}

// A catch_up plan whose scheduled time passed while the daemon was down runs once at
// start-up, and not again at the next start; a plan without catch_up does not run.
func TestCatchUpRunsOnceAcrossRestarts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, name := range []string{"daily", "nocatch"} {
		e.writePlan(name, fmt.Sprintf(`plan: %s
schedule: "0 3 * * *"
timezone: UTC
catch_up: %t
steps:
  - id: say
    run: ["sh", "-c", "echo caught up"]
`, name, name == "daily"))
	}
	// Simulated downtime: the last scheduled times are two days old.
	if err := os.MkdirAll(e.state, 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := history.Open(filepath.Join(e.state, "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().UTC().Add(-48 * time.Hour).Truncate(24 * time.Hour).Add(3 * time.Hour)
	for _, name := range []string{"daily", "nocatch"} {
		if err := s.SetLastScheduled(name, old); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	missed := time.Now().UTC().Truncate(24 * time.Hour).Add(3 * time.Hour)
	if missed.After(time.Now()) {
		missed = missed.Add(-24 * time.Hour)
	}

	d := e.start(nil)
	testkit.WaitFor(e.t, "the catch-up run to finish", 10*time.Second, func() bool {
		return countStatus(e.runs("daily"), history.StatusSucceeded) == 1
	})
	d.Stop(syscall.SIGTERM, 10*time.Second)
	d = e.start(nil)
	time.Sleep(time.Second) // a second catch-up would start right away; give it the chance
	d.Stop(syscall.SIGTERM, 10*time.Second)

	runs := e.storeRuns("daily")
	if len(runs) != 1 {
		t.Fatalf("daily has %d runs after two starts, want exactly 1 (the catch-up): %+v", len(runs), runs)
	}
	if r := runs[0]; r.Trigger != history.TriggerCatchUp || !r.Scheduled.Equal(missed) {
		t.Errorf("catch-up run: trigger %s scheduled %v, want catch-up for the missed %v", r.Trigger, r.Scheduled, missed)
	}
	if runs := e.storeRuns("nocatch"); len(runs) != 0 {
		t.Errorf("nocatch (catch_up: false) ran %d times, want 0", len(runs))
	}
}

// SIGHUP with a broken plan keeps the old version scheduled and shows the error with
// FILE:LINE:COL in `refreshd status`; the notify socket sees READY, STATUS, WATCHDOG,
// RELOADING (with MONOTONIC_USEC), READY again and STOPPING.
func TestReloadBrokenPlanAndNotify(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	notify := testkit.NotifySocket(t)
	file := e.writePlan("nightly", `plan: nightly
schedule: "0 3 * * *"
steps:
  - id: say
    run: ["true"]
`)
	d := e.start([]string{"NOTIFY_SOCKET=" + notify.Path, "WATCHDOG_USEC=400000"})
	testkit.WaitFor(e.t, "READY=1 and WATCHDOG=1", 5*time.Second, func() bool {
		all := strings.Join(notify.Messages(), "\n")
		return strings.Contains(all, "READY=1") && strings.Contains(all, "WATCHDOG=1")
	})
	before, _, code := e.cli("status", "-o", "json")
	if code != 0 {
		t.Fatalf("status exit %d", code)
	}
	var st control.Status
	if err := json.Unmarshal([]byte(before), &st); err != nil || len(st.Plans) != 1 || st.Plans[0].Next.IsZero() {
		t.Fatalf("status before reload: %v %s", err, before)
	}
	next := st.Plans[0].Next

	if err := os.WriteFile(file, []byte("plan: nightly\nschedule: \"61 * * * *\"\nsteps:\n  - id: say\n    run: [\"true\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(e.t, "READY=1 after RELOADING=1", 5*time.Second, func() bool {
		all := strings.Join(notify.Messages(), "\n")
		i := strings.Index(all, "RELOADING=1")
		return i >= 0 && strings.Contains(all[i:], "READY=1")
	})
	out, _, code := e.cli("status")
	if code != 1 {
		t.Errorf("status with a load error: exit %d, want 1", code)
	}
	wantErr := file + `:2:11: bad schedule "61 * * * *"`
	if !strings.Contains(out, wantErr) {
		t.Errorf("status output lacks %q:\n%s", wantErr, out)
	}
	if !strings.Contains(out, "nightly") || !strings.Contains(out, "0 3 * * *") {
		t.Errorf("status after a broken reload does not show the old nightly schedule:\n%s", out)
	}
	after, _, _ := e.cli("status", "-o", "json")
	st = control.Status{}
	if err := json.Unmarshal([]byte(after), &st); err != nil || len(st.Plans) != 1 || !st.Plans[0].Next.Equal(next) || st.Plans[0].Schedule != "0 3 * * *" {
		t.Errorf("old plan not kept scheduled (next %v): %v %s", next, err, after)
	}
	if strings.Contains(d.Log(), `level=ERROR msg="plan did not load"`) == false {
		t.Errorf("the load error was not logged")
	}

	d.Stop(syscall.SIGTERM, 10*time.Second)
	// The daemon sent STOPPING=1 before it exited; the socket's reader may not have read it yet.
	all := notify.Sync(t)
	joined := strings.Join(all, "\n")
	for _, want := range []string{"READY=1", "STATUS=1 plans, 0 running", "WATCHDOG=1", "RELOADING=1", "MONOTONIC_USEC=", "STOPPING=1"} {
		if !strings.Contains(joined, want) {
			t.Errorf("notify messages lack %q: %q", want, all)
		}
	}
	if d.Err() != nil {
		t.Errorf("daemon exit after SIGTERM: %v, want 0", d.Err())
	}
}

// SIGTERM during a step whose processes ignore SIGTERM: the daemon kills the step's
// process group after the grace period, records the run interrupted, and exits in time.
func TestSIGTERMDuringStep(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	child := filepath.Join(e.dir, "child.pid")
	e.writePlan("stubborn", fmt.Sprintf(`plan: stubborn
kill_grace: 1s
steps:
  - id: hold
    run: ["sh", "-c", "trap '' TERM; sleep 60 & echo $! > %s; wait"]
`, child))
	const grace = time.Second
	d := e.start(nil) // the plan's kill_grace applies; --kill-grace is only a fallback
	runID, pid, group := e.runStubborn(child)
	if group == pid || group == d.Pid() {
		t.Fatalf("step pgid %d: want the group of the step's own shell", group)
	}

	took := d.Stop(syscall.SIGTERM, grace+5*time.Second)
	if d.Err() != nil {
		t.Errorf("daemon exit: %v, want 0", d.Err())
	}
	if n := proc.LiveMembers(group); n > 0 {
		t.Errorf("process group %d still has %d live processes after the daemon exited", group, n)
	}
	r := e.storeRuns("stubborn")
	if len(r) != 1 || r[0].ID != runID || r[0].Status != history.StatusInterrupted {
		t.Fatalf("runs after SIGTERM: %+v, want %s interrupted", r, runID)
	}
	t.Logf("daemon exited %s after SIGTERM (grace %s)", took.Round(time.Millisecond), grace)
}

// kill -9 leaves the run recorded running and the socket file behind; the next daemon
// marks the run interrupted, replaces the stale socket, and the next run succeeds.
func TestKill9ThenRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	marker, pidFile := filepath.Join(e.dir, "ran-once"), filepath.Join(e.dir, "step.pid")
	e.writePlan("flaky", fmt.Sprintf(`plan: flaky
steps:
  - id: work
    run: ["sh", "-c", "if [ -e %[1]s ]; then echo second run; exit 0; fi; touch %[1]s; echo $$ > %[2]s; exec sleep 60"]
`, marker, pidFile))
	d := e.start(nil)
	out, _, code := e.cli("run", "flaky")
	if code != 0 {
		t.Fatalf("run flaky: exit %d", code)
	}
	first := strings.TrimSpace(out)
	group := pgid(t, e.readPID(pidFile))
	t.Cleanup(func() { syscall.Kill(-group, syscall.SIGKILL) })
	d.Stop(syscall.SIGKILL, 5*time.Second)
	syscall.Kill(-group, syscall.SIGKILL) // the orphaned step: what systemd's KillMode would do

	e.start(nil)
	r, err := e.client().Run(t.Context(), first)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != history.StatusInterrupted || !strings.Contains(r.Reason, "kill -9") {
		t.Errorf("run %s after kill -9 and restart: %s %q, want interrupted with the reason", first, r.Status, r.Reason)
	}
	out, stderr, code := e.cli("run", "--wait", "flaky")
	if code != 0 {
		t.Fatalf("run --wait flaky after restart: exit %d\n%s%s", code, out, stderr)
	}
	if !strings.Contains(out, "work | second run") || !strings.Contains(out, "succeeded") {
		t.Errorf("run --wait output %q, want the step's line and succeeded", out)
	}
	hist, _, code := e.cli("history", "flaky")
	if code != 0 || strings.Count(hist, "interrupted") != 1 || strings.Count(hist, "succeeded") != 1 {
		t.Errorf("history through the daemon (exit %d):\n%s", code, hist)
	}
}

// The socket refuses a user who is neither root nor in its group, with a message that says
// so; with no daemon at all the CLI says nothing listens.
func TestSocketAccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, stderr, code := e.cli("status")
	want := "refreshd: no daemon listening on " + e.socket + " (is refreshd.service running?)"
	if code != 3 || strings.TrimSpace(stderr) != want {
		t.Errorf("status with no daemon: exit %d, stderr %q, want %q", code, stderr, want)
	}
	u := testkit.OtherUser(t)
	e.writePlan("p", "plan: p\nsteps:\n  - id: s\n    run: [\"true\"]\n")
	e.start(nil)
	os.Chmod(filepath.Dir(e.socket), 0o755) // only the socket's own mode decides
	cmd := testkit.CommandAs(u, refreshd.Path(t), "status", "--socket", e.socket)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "permission denied on "+e.socket) {
		t.Errorf("status as %s: %v %q, want permission denied", u.Username, err, out)
	}
	if _, _, code := e.cli("status"); code != 0 {
		t.Errorf("status as root: exit %d", code)
	}
}

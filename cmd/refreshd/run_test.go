package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/testkit"
	"github.com/refreshd/refreshd/proc"
	"github.com/refreshd/refreshd/statedir"
)

// refreshd is the binary under test, built on first use: these tests kill it with signals.
var refreshd testkit.Refreshd

func TestMain(m *testing.M) { os.Exit(refreshd.Main(m)) }

// firstRunPlan blocks in its first run (until killed) and succeeds in later ones: a marker
// file in the plan's default workdir tells them apart.
const firstRunPlan = `plan: crashy
steps:
  - id: prepare
    run: ["true"]
  - id: work
    needs: [prepare]
    run: [sh, -c, "if [ -e marker ]; then echo second run; exit 0; fi; touch marker; sleep 60 & echo pid $$ child $!; wait"]
  - id: after
    needs: [work]
    run: [echo, done]
`

// waitForPid waits (bounded) until a log file under dir says "pid N child M" and returns N
// (the step's leader).
func waitForPid(t *testing.T, dir string) int {
	t.Helper()
	pid, _ := waitForPids(t, dir)
	return pid
}

// waitForPids is waitForPid, also returning M: the leader's background child.
func waitForPids(t *testing.T, dir string) (leader, child int) {
	t.Helper()
	re := regexp.MustCompile(`pid (\d+) child (\d+)`)
	for range 200 {
		matches, _ := filepath.Glob(filepath.Join(dir, "logs", "*", "work.1.log"))
		for _, m := range matches {
			data, _ := os.ReadFile(m)
			if sm := re.FindSubmatch(data); sm != nil {
				leader, _ = strconv.Atoi(string(sm[1]))
				child, _ = strconv.Atoi(string(sm[2]))
				return leader, child
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the step never started")
	return 0, 0
}

// processRunning reports whether pid is a live process: not gone, not a zombie (an orphan
// killed under a PID 1 that does not reap stays one).
func processRunning(pid int) bool {
	st, err := proc.ReadStat(pid)
	return err == nil && st.State != "Z"
}

func historyJSON(t *testing.T, bin, state string) []history.Run { // every run: history lists 20 by default
	t.Helper()
	out, err := exec.Command(bin, "history", "--state", state, "-o", "json", "--limit", "0").Output()
	if err != nil {
		t.Fatalf("refreshd history: %v", err)
	}
	var runs []history.Run
	if err := json.Unmarshal(out, &runs); err != nil {
		t.Fatalf("history -o json: %v\n%s", err, out)
	}
	// history lists headers (the steps counted, not listed): the tests read the steps of
	// the whole records, from the store no process holds any more.
	store, err := history.OpenReadOnly(statedir.Dir{Root: state}.History())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for i, h := range runs {
		full, err := store.Run(h.ID)
		if err != nil {
			t.Fatalf("read run %s: %v", h.ID, err)
		}
		if h.Summary == nil || h.Summary.Total != len(full.Steps) || h.Steps != nil {
			t.Errorf("history -o json: run %s lists %d steps and counts %+v; want its %d steps counted, not listed", h.ID, len(h.Steps), h.Summary, len(full.Steps))
		}
		runs[i] = *full
	}
	return runs
}

// localPlan writes plan NAME.yaml into a new temp directory and returns the binary, a state
// directory beside the plan and the plan's path, for `refreshd run --local`.
func localPlan(t *testing.T, name, yaml string) (bin, state, planFile string) {
	t.Helper()
	dir := t.TempDir()
	planFile = filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(planFile, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return refreshd.Path(t), filepath.Join(dir, "state"), planFile
}

func TestRunLocalKill9ThenNewRun(t *testing.T) {
	t.Parallel()
	bin, state, planFile := localPlan(t, "crashy", firstRunPlan)

	first := exec.Command(bin, "run", "--local", "--state", state, planFile)
	var firstErr bytes.Buffer
	first.Stderr = &firstErr
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	stepPid, childPid := waitForPids(t, state)
	// Should the fix fail, do not leave the sleep behind.
	t.Cleanup(func() { syscall.Kill(-stepPid, syscall.SIGKILL) })
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	// Pdeathsig kills the leader; its background child lives on until the next start.
	for range 100 {
		if !processRunning(stepPid) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if processRunning(stepPid) {
		t.Errorf("step leader %d survives kill -9 of refreshd (no Pdeathsig?)", stepPid)
	}
	if !processRunning(childPid) {
		t.Fatalf("background child %d died with refreshd: the test no longer reproduces an orphaned group", childPid)
	}

	second := exec.Command(bin, "run", "--local", "--state", state, planFile)
	out, err := second.CombinedOutput()
	if err != nil {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "marked interrupted") {
		t.Errorf("second run did not report the interrupted run:\n%s", out)
	}
	if processRunning(childPid) {
		t.Errorf("background child %d of the killed run's step still runs after the next start:\n%s", childPid, out)
	}
	runs := historyJSON(t, bin, state)
	if len(runs) != 2 {
		t.Fatalf("want 2 runs, got %d", len(runs))
	}
	newer, older := runs[0], runs[1]
	if newer.Status != history.StatusSucceeded {
		t.Errorf("new run %s: %s", newer.Status, newer.Reason)
	}
	if older.Status != history.StatusInterrupted || older.End.IsZero() {
		t.Errorf("killed run %s, end %v; want interrupted", older.Status, older.End)
	}
	want := map[string]history.Status{"prepare": history.StatusSucceeded, "work": history.StatusInterrupted, "after": history.StatusInterrupted}
	for _, s := range older.Steps {
		if s.Status != want[s.Instance] {
			t.Errorf("killed run, step %s: %s, want %s", s.Instance, s.Status, want[s.Instance])
		}
	}
}

func TestRunLocalCtrlC(t *testing.T) {
	t.Parallel()
	bin, state, planFile := localPlan(t, "crashy", firstRunPlan)
	cmd := exec.Command(bin, "run", "--local", "--state", state, "--kill-grace", "2s", planFile)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stepPid := waitForPid(t, state)
	t.Cleanup(func() { syscall.Kill(-stepPid, syscall.SIGKILL) })
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("exit: %v, want code 130", err)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(stepPid)); err == nil {
		t.Errorf("step process %d survives Ctrl-C", stepPid)
	}
	runs := historyJSON(t, bin, state)
	if len(runs) != 1 || runs[0].Status != history.StatusInterrupted {
		t.Errorf("runs: %+v", runs)
	}
}

func TestRunLocalExitCodes(t *testing.T) {
	t.Parallel()
	bin := refreshd.Path(t)
	dir := t.TempDir()
	tests := []struct {
		name, plan string
		code       int
		stderr     string
	}{
		{"succeeded", "plan: ok\nsteps:\n  - id: a\n    run: [\"true\"]\n", 0, ""},
		{"failed", "plan: bad\nsteps:\n  - id: a\n    run: [\"false\"]\n", 1, ""},
		{"invalid", "plan: inv\nsteps:\n  - id: a\n    runn: [\"true\"]\n", 2, "inv.yaml:4:5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := filepath.Join(dir, tt.name+".yaml")
			if tt.name == "invalid" {
				f = filepath.Join(dir, "inv.yaml")
			}
			os.WriteFile(f, []byte(tt.plan), 0o644)
			cmd := exec.Command(bin, "run", "--local", "--state", filepath.Join(dir, "state"), f)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			}
			if code != tt.code || !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
		})
	}
}

func TestLogsUnknownStep(t *testing.T) {
	t.Parallel()
	bin, state, planFile := localPlan(t, "ok", "plan: ok\nsteps:\n  - id: a\n    run: [\"true\"]\n")
	if out, err := exec.Command(bin, "run", "--local", "--state", state, planFile).CombinedOutput(); err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	id := historyJSON(t, bin, state)[0].ID
	tests := []struct {
		step   string
		code   int
		stderr string
	}{
		{"a", 0, ""},
		{"nosuch", 2, `refreshd: run ` + id + ` has no step "nosuch" (its steps: a)`},
	}
	for _, tt := range tests {
		for _, format := range []string{"text", "json"} {
			// A named --state is read directly: no daemon is asked.
			cmd := exec.Command(bin, "logs", "--state", state, "-o", format, id, tt.step)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			}
			if code != tt.code || strings.TrimSpace(stderr.String()) != tt.stderr {
				t.Errorf("logs %s -o %s: exit %d, want %d; stderr %q, want %q", tt.step, format, code, tt.code, stderr.String(), tt.stderr)
			}
		}
	}
}

// TestOperatorMessages checks messages an operator meets first: errors always prefixed
// "refreshd:", and an empty state directory is not an error.
func TestOperatorMessages(t *testing.T) {
	t.Parallel()
	bin := refreshd.Path(t)
	dir := t.TempDir()
	socket := filepath.Join(dir, "no-daemon.sock")
	tests := []struct {
		name           string
		args           []string
		code           int
		stdout, stderr string // prefixes
	}{
		{"validate missing file", []string{"validate", "/nope.yaml"}, 2, "", "refreshd: "},
		{"plan missing file", []string{"plan", "/nope.yaml"}, 2, "", "refreshd: "},
		{"run --local missing file", []string{"run", "--local", "--state", filepath.Join(dir, "s"), "/nope.yaml"}, 2, "", "refreshd: "},
		{"history of an empty state dir", []string{"history", "--state", dir}, 0, "no runs recorded (read from the store in " + dir + ")\n", ""},
		{"history from a named socket nobody listens on", []string{"history", "--socket", socket, "--state", dir}, 3, "", "refreshd: no daemon listening on " + socket},
		{"logs from a named socket nobody listens on", []string{"logs", "--socket", socket, "some-run"}, 3, "", "refreshd: no daemon listening on " + socket},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, tt.args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			}
			if code != tt.code || !strings.HasPrefix(stdout.String(), tt.stdout) || !strings.HasPrefix(stderr.String(), tt.stderr) ||
				(tt.stderr == "" && stderr.Len() > 0) {
				t.Errorf("exit %d, want %d\nstdout: %q (want prefix %q)\nstderr: %q (want prefix %q)", code, tt.code, stdout.String(), tt.stdout, stderr.String(), tt.stderr)
			}
		})
	}
}

package executor

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/redact"
	"github.com/refreshd/refreshd/internal/testkit"
	"github.com/refreshd/refreshd/plan"
	"github.com/refreshd/refreshd/proc"
	"github.com/refreshd/refreshd/statedir"
)

// engineT is an engine on a fresh state directory, logging into a buffer.
type engineT struct {
	*Engine
	store *history.Store
	dir   string
	logs  *testkit.Buffer
	out   *testkit.Buffer
}

func newEngineT(t testing.TB, grace time.Duration) *engineT {
	t.Helper()
	dir := t.TempDir()
	st, err := history.Open(filepath.Join(dir, "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	logs, out := &testkit.Buffer{}, &testkit.Buffer{}
	e, err := New(Config{StateDir: dir, Store: st, KillGrace: grace, Output: out,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	return &engineT{Engine: e, store: st, dir: dir, logs: logs, out: out}
}

// step is a run instance of its own step.
func step(id string, argv ...string) *plan.Instance {
	return &plan.Instance{ID: id, Step: &plan.Step{ID: id}, ConcurrencyKey: id, Action: &plan.RunAction{Argv: argv}}
}

func needs(inst *plan.Instance, ids ...string) *plan.Instance {
	inst.Needs = ids
	return inst
}

func graph(p *plan.Plan, insts ...*plan.Instance) *plan.Graph {
	if p == nil {
		p = &plan.Plan{Name: "test"}
	}
	return &plan.Graph{Plan: p, Instances: insts}
}

func (e *engineT) run(t *testing.T, ctx context.Context, g *plan.Graph) *history.Run {
	t.Helper()
	r, err := e.Run(ctx, g, RunSpec{Trigger: history.TriggerManual})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	stored, err := e.store.Run(r.ID)
	if err != nil {
		t.Fatalf("stored run: %v", err)
	}
	if stored.Status != r.Status || len(stored.Steps) != len(r.Steps) {
		t.Fatalf("stored run %s differs from the returned one %s", stored.Status, r.Status)
	}
	return stored
}

func stepOf(t *testing.T, r *history.Run, id string) history.Step {
	t.Helper()
	for _, s := range r.Steps {
		if s.Instance == id {
			return s
		}
	}
	t.Fatalf("run %s has no step %s", r.ID, id)
	return history.Step{}
}

// pidsIn returns the numbers printed as "pid N" in the attempt's log file.
func pidsIn(t *testing.T, path string) []int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, m := range regexp.MustCompile(`pid (\d+)`).FindAllStringSubmatch(string(data), -1) {
		n, _ := strconv.Atoi(m[1])
		pids = append(pids, n)
	}
	return pids
}

// alive reports whether pid exists at all: running, stopped or zombie.
func alive(pid int) (bool, string) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false, ""
	}
	return true, string(data)
}

func TestTermIgnoringStepKilledAfterGrace(t *testing.T) {
	t.Parallel()
	const grace = 700 * time.Millisecond
	e := newEngineT(t, grace)
	inst := step("stubborn", "sh", "-c", `trap "" TERM; echo pid $$; sleep 30 & echo pid $!; wait; wait`)
	inst.Timeout = 300 * time.Millisecond
	start := time.Now()
	r := e.run(t, context.Background(), graph(nil, inst))
	took := time.Since(start)

	s := stepOf(t, r, "stubborn")
	if r.Status != history.StatusFailed || s.Status != history.StatusFailed {
		t.Fatalf("run %s, step %s, want failed", r.Status, s.Status)
	}
	a := s.Attempts[0]
	if a.Signal != "killed" || a.ExitCode != -1 {
		t.Errorf("attempt ended with code %d signal %q, want SIGKILL", a.ExitCode, a.Signal)
	}
	if !strings.Contains(s.Reason, "timed out after 300ms") {
		t.Errorf("reason %q does not say it timed out", s.Reason)
	}
	if took < inst.Timeout+grace {
		t.Errorf("killed after %s, before timeout+grace %s", took, inst.Timeout+grace)
	}
	pids := pidsIn(t, a.Log)
	if len(pids) != 2 {
		t.Fatalf("want 2 pids in the log, got %v", pids)
	}
	for _, pid := range pids {
		if ok, stat := alive(pid); ok {
			t.Errorf("pid %d survives: %s", pid, stat)
		}
	}
	t.Logf("SIGTERM ignored: killed %s after start (timeout %s + grace %s)", took.Round(time.Millisecond), inst.Timeout, grace)
}

func TestNoProcessOutlivesItsStep(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		argv    []string
		timeout time.Duration
		status  history.Status
	}{
		{"grandchildren after timeout", []string{"sh", "-c", "sleep 100 & echo pid $!; sleep 100 & echo pid $!; sh -c 'sleep 100 & echo pid $!; wait' & wait"}, 400 * time.Millisecond, history.StatusFailed},
		{"background children of a step that exited", []string{"sh", "-c", "sleep 100 & echo pid $!; (sleep 100; echo never) & echo pid $!; echo done"}, 0, history.StatusSucceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngineT(t, 2*time.Second)
			inst := step("spawner", tt.argv...)
			inst.Timeout = tt.timeout
			r := e.run(t, context.Background(), graph(nil, inst))
			s := stepOf(t, r, "spawner")
			if s.Status != tt.status {
				t.Fatalf("step %s (%s), want %s", s.Status, s.Reason, tt.status)
			}
			pids := pidsIn(t, s.Attempts[0].Log)
			if len(pids) < 2 {
				t.Fatalf("want the children's pids in the log, got %v", pids)
			}
			// Checked at once: Run returns only after the group is gone and reaped.
			for _, pid := range pids {
				if ok, stat := alive(pid); ok {
					t.Errorf("pid %d is left behind: %s", pid, stat)
				}
			}
		})
	}
}

func TestRetryOnTransientFailure(t *testing.T) {
	t.Parallel()
	// The step fails with message on its first attempt(s) and succeeds on the third.
	script := `n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; if [ $n -lt 3 ]; then echo "$MSG" >&2; exit $CODE; fi; echo fine`
	tests := []struct {
		name     string
		msg      string
		code     int
		retry    plan.Retry
		attempts int
		status   history.Status
	}{
		{"default transient pattern", "ERROR: failed to export cache: 503 Service Unavailable", 1, plan.Retry{Attempts: 3}, 3, history.StatusSucceeded},
		{"registry reset", "read tcp 127.0.0.1:5000: connection reset by peer", 1, plan.Retry{Attempts: 4}, 3, history.StatusSucceeded},
		{"non-matching failure", "Dockerfile:3: unknown instruction: RUNN", 1, plan.Retry{Attempts: 3}, 1, history.StatusFailed},
		{"listed exit code", "flaky", 75, plan.Retry{Attempts: 3, ExitCodes: []int{75}}, 3, history.StatusSucceeded},
		{"exit code not listed", "flaky", 2, plan.Retry{Attempts: 3, ExitCodes: []int{75}}, 1, history.StatusFailed},
		{"own pattern", "lock held by pid 12", 1, plan.Retry{Attempts: 3, Output: []*regexp.Regexp{regexp.MustCompile(`lock held`)}}, 3, history.StatusSucceeded},
		{"attempts exhausted", "i/o timeout", 1, plan.Retry{Attempts: 2}, 2, history.StatusFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEngineT(t, time.Second)
			tt.retry.Backoff, tt.retry.MaxBackoff, tt.retry.Jitter = 20*time.Millisecond, 50*time.Millisecond, 0.5
			inst := step("flaky", "sh", "-c", script)
			inst.Retry = tt.retry
			inst.Env = map[string]string{"MSG": tt.msg, "CODE": strconv.Itoa(tt.code)}
			p := &plan.Plan{Name: "test", Workdir: t.TempDir()}
			r := e.run(t, context.Background(), graph(p, inst))
			s := stepOf(t, r, "flaky")
			if s.Status != tt.status || len(s.Attempts) != tt.attempts {
				t.Fatalf("step %s after %d attempts, want %s after %d (reason %q)", s.Status, len(s.Attempts), tt.status, tt.attempts, s.Reason)
			}
			for i, a := range s.Attempts {
				if a.N != i+1 || a.Start.IsZero() || a.End.Before(a.Start) || a.Log == "" {
					t.Errorf("attempt %d record: %+v", i+1, a)
				}
				want := tt.code
				if i == 2 {
					want = 0
				}
				if a.ExitCode != want {
					t.Errorf("attempt %d exit code %d, want %d", a.N, a.ExitCode, want)
				}
				if i > 0 && a.Start.Sub(s.Attempts[i-1].End) < 10*time.Millisecond {
					t.Errorf("attempt %d started %s after the previous one: no backoff", a.N, a.Start.Sub(s.Attempts[i-1].End))
				}
			}
			if tt.status == history.StatusFailed && tt.attempts == 1 && !strings.Contains(s.Reason, "not retried") {
				t.Errorf("reason %q does not say why it was not retried", s.Reason)
			}
		})
	}
}

func TestSecretNeverWritten(t *testing.T) {
	t.Parallel()
	const secret = "tok/en+s3cr3t value"
	secretFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEngineT(t, time.Second)
	p := &plan.Plan{Name: "test", Secrets: map[string]plan.Secret{"TOKEN": {File: secretFile}}}
	leak := step("leak", "sh", "-c", `echo "token=$TOKEN"; printf %s "$TOKEN" | base64; echo "url=$(printf %s "$TOKEN" | sed 's|/|%2F|; s|+|%2B|; s| |+|')"; echo "$TOKEN" >&2; exit 3`)
	leak.Env = map[string]string{"LC_ALL": "C"}
	leak.Step.Secrets = []string{"TOKEN"}
	failing := step("missing-command", "no-such-program-"+"x")
	r := e.run(t, context.Background(), graph(p, leak, failing))
	if stepOf(t, r, "leak").Status != history.StatusFailed {
		t.Fatalf("leak step: %+v", stepOf(t, r, "leak"))
	}
	logData, err := os.ReadFile(stepOf(t, r, "leak").Attempts[0].Log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logData), "token=***") || strings.Count(string(logData), "***") < 4 {
		t.Errorf("log file lacks the redacted lines:\n%s", logData)
	}
	forms := []string{secret, url.QueryEscape(secret), base64.StdEncoding.EncodeToString([]byte(secret)), "s3cr3t"}
	check := func(where, text string) {
		t.Helper()
		for _, f := range forms {
			if strings.Contains(text, f) {
				t.Errorf("%s contains the secret (as %q)", where, f)
			}
		}
	}
	// Every file in the state directory: attempt logs and the store file itself.
	filepath.WalkDir(e.dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			data, _ := os.ReadFile(path)
			check(path, string(data))
		}
		return nil
	})
	check("slog output", e.logs.String())
	check("Config.Output", e.out.String())
	check("run record", func() string { b, _ := jsonString(r); return b }())
	if !strings.Contains(e.out.String(), "leak | token=***") {
		t.Errorf("Config.Output lacks the redacted line:\n%s", e.out.String())
	}
}

func TestMissingSecretFailsTheRun(t *testing.T) {
	t.Parallel()
	e := newEngineT(t, time.Second)
	p := &plan.Plan{Name: "test", Secrets: map[string]plan.Secret{"GITHUB_TOKEN": {Env: "REFRESHD_TEST_UNSET_VARIABLE"}}}
	r := e.run(t, context.Background(), graph(p, step("a", "true")))
	if r.Status != history.StatusFailed || !strings.Contains(r.Reason, "secret GITHUB_TOKEN") || !strings.Contains(r.Reason, "REFRESHD_TEST_UNSET_VARIABLE is not set") {
		t.Errorf("run %s: %q", r.Status, r.Reason)
	}
	if s := stepOf(t, r, "a"); s.Status != history.StatusSkipped || len(s.Attempts) != 0 {
		t.Errorf("step ran or was not skipped: %+v", s)
	}
}

func TestParallelAndSerialised(t *testing.T) {
	t.Parallel()
	const nap = "0.3"
	matrix := func(id string, conc int) []*plan.Instance {
		st := &plan.Step{ID: id, Concurrency: conc}
		var out []*plan.Instance
		for i := range 3 {
			out = append(out, &plan.Instance{ID: id + "[n=" + strconv.Itoa(i) + "]", Step: st, ConcurrencyKey: id, Action: &plan.RunAction{Argv: []string{"sleep", nap}}})
		}
		return out
	}
	e := newEngineT(t, time.Second)
	insts := append(matrix("parallel", 0), matrix("serial", 1)...)
	r := e.run(t, context.Background(), graph(nil, insts...))
	if r.Status != history.StatusSucceeded {
		t.Fatalf("run %s: %s", r.Status, r.Reason)
	}
	byStep := map[string][]history.Step{}
	for _, s := range r.Steps {
		id := s.Instance[:strings.IndexByte(s.Instance, '[')]
		byStep[id] = append(byStep[id], s)
	}
	// Parallel: every instance started before any ended.
	par := byStep["parallel"]
	for _, a := range par {
		for _, b := range par {
			if !a.Start.Before(b.End) {
				t.Errorf("parallel %s started %s after %s ended", a.Instance, a.Start.Sub(b.End), b.Instance)
			}
		}
	}
	// Serialised: no two instances overlap.
	ser := byStep["serial"]
	for i, a := range ser {
		for _, b := range ser[i+1:] {
			if a.Start.Before(b.End) && b.Start.Before(a.End) {
				t.Errorf("serial %s [%s, %s] overlaps %s [%s, %s]", a.Instance, a.Start.Format("05.000"), a.End.Format("05.000"), b.Instance, b.Start.Format("05.000"), b.End.Format("05.000"))
			}
		}
	}
}

func TestPlanConcurrencyCap(t *testing.T) {
	t.Parallel()
	e := newEngineT(t, time.Second)
	var insts []*plan.Instance
	for i := range 4 {
		insts = append(insts, step("s"+strconv.Itoa(i), "sleep", "0.2"))
	}
	r := e.run(t, context.Background(), graph(&plan.Plan{Name: "test", Concurrency: 2}, insts...))
	// At every instance's start, at most 2 instances (itself included) are running.
	for _, a := range r.Steps {
		n := 0
		for _, b := range r.Steps {
			if !b.Start.After(a.Start) && b.End.After(a.Start) {
				n++
			}
		}
		if n > 2 {
			t.Errorf("%d instances running when %s started, plan concurrency is 2", n, a.Instance)
		}
	}
}

func TestFailedNeedSkipsDependents(t *testing.T) {
	t.Parallel()
	e := newEngineT(t, time.Second)
	g := graph(nil,
		step("a", "false"),
		needs(step("b", "true"), "a"),
		needs(step("c", "true"), "b"),
		step("d", "true"),
		needs(step("e", "true"), "d"),
	)
	r := e.run(t, context.Background(), g)
	want := map[string]struct {
		status history.Status
		reason string
	}{
		"a": {history.StatusFailed, "attempt 1 of 1: exit code 1"},
		"b": {history.StatusSkipped, "needs a which failed"},
		"c": {history.StatusSkipped, "needs b which was skipped"},
		"d": {history.StatusSucceeded, ""},
		"e": {history.StatusSucceeded, ""},
	}
	for id, w := range want {
		s := stepOf(t, r, id)
		if s.Status != w.status || !strings.HasPrefix(s.Reason, w.reason) {
			t.Errorf("%s: %s %q, want %s %q", id, s.Status, s.Reason, w.status, w.reason)
		}
	}
	if r.Status != history.StatusFailed || !strings.HasPrefix(r.Reason, "step a failed") {
		t.Errorf("run %s %q", r.Status, r.Reason)
	}
	// A failure is an error in the log (journalctl -p err), with its reason; a step skipped
	// for it and a success are not.
	logs := e.logs.String()
	for _, want := range []string{
		`level=ERROR msg="step finished" .*step=a status=failed .*reason="attempt 1 of 1: exit code 1"`,
		`level=ERROR msg="run finished" .*status=failed .*reason="step a failed`,
		`level=INFO msg="step skipped" .*step=b`,
		`level=INFO msg="step finished" .*step=d status=succeeded`,
	} {
		if !regexp.MustCompile(want).MatchString(logs) {
			t.Errorf("the log lacks %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "level=WARN") {
		t.Errorf("a warning in the log of a plain failure:\n%s", logs)
	}
}

func TestCancelInterrupts(t *testing.T) {
	t.Parallel()
	e := newEngineT(t, 500*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	g := graph(nil, step("long", "sh", "-c", "echo pid $$; sleep 30"), needs(step("after", "true"), "long"))
	start := time.Now()
	r := e.run(t, ctx, g)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("cancel took %s", took)
	}
	if r.Status != history.StatusInterrupted {
		t.Errorf("run %s, want interrupted", r.Status)
	}
	long, after := stepOf(t, r, "long"), stepOf(t, r, "after")
	if long.Status != history.StatusInterrupted || long.Attempts[0].Signal != "terminated" {
		t.Errorf("long: %s, attempt %+v", long.Status, long.Attempts[0])
	}
	if after.Status != history.StatusInterrupted || len(after.Attempts) != 0 {
		t.Errorf("after: %+v", after)
	}
	for _, pid := range pidsIn(t, long.Attempts[0].Log) {
		if ok, _ := alive(pid); ok {
			t.Errorf("pid %d survives the cancel", pid)
		}
	}
	if logs := e.logs.String(); !regexp.MustCompile(`level=WARN msg="run finished" .*status=interrupted`).MatchString(logs) {
		t.Errorf("an interrupted run is not a warning in the log:\n%s", logs)
	}
}

func TestPlanTimeoutFailsTheRun(t *testing.T) {
	t.Parallel()
	e := newEngineT(t, 200*time.Millisecond)
	r := e.run(t, context.Background(), graph(&plan.Plan{Name: "test", Timeout: 300 * time.Millisecond}, step("long", "sleep", "30")))
	if r.Status != history.StatusFailed || r.Reason != "plan timeout 300ms exceeded" {
		t.Errorf("run %s %q", r.Status, r.Reason)
	}
}

func TestEnvironmentAndWorkdir(t *testing.T) {
	t.Setenv("REFRESHD_TEST_LEAK", "from the daemon")
	e := newEngineT(t, time.Second)
	inst := step("env", "sh", "-c", `pwd; echo "A=$A B=$B LEAK=${REFRESHD_TEST_LEAK:-unset} PATH_SET=${PATH:+yes}"`)
	inst.Env = map[string]string{"A": "1", "B": "two words"}
	r := e.run(t, context.Background(), graph(nil, inst))
	data, err := os.ReadFile(stepOf(t, r, "env").Attempts[0].Log)
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(e.dir, "work", "test") + "\nA=1 B=two words LEAK=unset PATH_SET=yes\n"
	if string(data) != want {
		t.Errorf("output:\n%s\nwant:\n%s", data, want)
	}
}

// TestMissingWorkdirNamed: a plan's or a step's workdir that does not exist fails the step
// with a reason naming the directory and the setting, not "fork/exec /usr/bin/sh: no such
// file or directory".
func TestMissingWorkdirNamed(t *testing.T) {
	t.Parallel()
	e := newEngineT(t, time.Second)
	missing := filepath.Join(t.TempDir(), "not-there")
	p := &plan.Plan{Name: "test", Workdir: missing}
	fromPlan := step("plan-workdir", "sh", "-c", "pwd")
	fromStep := step("step-workdir", "sh", "-c", "pwd")
	fromStep.Step.Workdir, fromStep.Workdir = missing+"-step", missing+"-step"
	r := e.run(t, context.Background(), graph(p, fromPlan, fromStep))
	for id, want := range map[string]string{
		"plan-workdir": "workdir " + missing + " (workdir: of plan test) does not exist",
		"step-workdir": "workdir " + missing + "-step (workdir: of step step-workdir) does not exist",
	} {
		if s := stepOf(t, r, id); s.Status != history.StatusFailed || !strings.Contains(s.Reason, want) || strings.Contains(s.Reason, "fork/exec") {
			t.Errorf("step %s: %s %q, want failed naming %q", id, s.Status, s.Reason, want)
		}
	}
}

// TestMissingProgramNamed: a program that does not exist, in a workdir that does, fails the
// step naming the program, not the workdir.
func TestMissingProgramNamed(t *testing.T) {
	t.Parallel()
	e := newEngineT(t, time.Second)
	prog := filepath.Join(t.TempDir(), "no-such-prog")
	r := e.run(t, context.Background(), graph(&plan.Plan{Name: "test"}, step("a", prog), step("b", "no-such-prog-on-path")))
	for id, want := range map[string]string{"a": prog, "b": "no-such-prog-on-path"} {
		if s := stepOf(t, r, id); s.Status != history.StatusFailed || !strings.Contains(s.Reason, want) || strings.Contains(s.Reason, "workdir") {
			t.Errorf("step %s: %s %q, want failed naming %q and no workdir", id, s.Status, s.Reason, want)
		}
	}
}

func TestRetention(t *testing.T) {
	t.Parallel()
	e := newEngineT(t, time.Second)
	p := &plan.Plan{Name: "test", KeepRuns: 2}
	var ids []string
	for range 4 {
		r := e.run(t, context.Background(), graph(p, step("a", "echo", "hi")))
		ids = append(ids, r.ID)
	}
	runs, _ := e.store.Runs("test", 0)
	if len(runs) != 2 || runs[0].ID != ids[3] || runs[1].ID != ids[2] {
		t.Fatalf("kept %d runs", len(runs))
	}
	for i, id := range ids {
		_, err := os.Stat(statedir.Dir{Root: e.dir}.RunLogs(id))
		if kept := i >= 2; kept != (err == nil) {
			t.Errorf("run %d: logs present %v, want %v", i, err == nil, kept)
		}
	}
}

func TestLongLinesKeepSecretsWhole(t *testing.T) {
	t.Parallel()
	red := redact.New("abcdef")
	var lines []string
	w := newLineWriter(red, nil, func(l string) { lines = append(lines, l) })
	// The secret straddles the forced break at proc.MaxLine.
	long := strings.Repeat("x", proc.MaxLine-3) + "abcdef" + "tail\nnext"
	w.Write([]byte(long))
	w.Flush()
	joined := strings.Join(lines, "|")
	if strings.Contains(joined, "abc") || strings.Contains(joined, "def") || !strings.Contains(joined, "***tail|next") {
		t.Errorf("lines: %d, tail %q", len(lines), joined[len(joined)-20:])
	}
}

func jsonString(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// TestLongLinesInTheAttemptLog: a step writing one line of ~170 KB (with and without a final
// newline) gets it in its attempt log as pieces of at most proc.MaxLine bytes, each but the
// last ending in proc.Continued; joined without the markers they are the line, byte for byte.
func TestLongLinesInTheAttemptLog(t *testing.T) {
	t.Parallel()
	var want strings.Builder
	for i := range 30000 {
		fmt.Fprintf(&want, "%d,", i)
	}
	const script = `i=0; while [ $i -lt 30000 ]; do printf '%d,' $i; i=$((i+1)); done; printf "$END"`
	e := newEngineT(t, time.Second)
	withNL, withoutNL := step("newline", "sh", "-c", script), step("no-newline", "sh", "-c", script)
	withNL.Env, withoutNL.Env = map[string]string{"END": `\nnext\n`}, map[string]string{"END": ""}
	r := e.run(t, context.Background(), graph(nil, withNL, withoutNL))
	for id, after := range map[string]string{"newline": "\nnext\n", "no-newline": "\n"} {
		data, err := os.ReadFile(stepOf(t, r, id).Attempts[0].Log)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitAfter(string(data), "\n")
		for _, l := range lines {
			if len(strings.TrimSuffix(l, "\n")) > proc.MaxLine+len(proc.Continued) {
				t.Errorf("%s: a log line of %d bytes", id, len(l))
			}
		}
		if got := strings.ReplaceAll(string(data), proc.Continued+"\n", ""); got != want.String()+after {
			t.Errorf("%s: the log joined without markers is %d bytes, want %d (%d lines, %d markers)",
				id, len(got), want.Len()+len(after), len(lines), strings.Count(string(data), proc.Continued))
		}
		if n := strings.Count(string(data), proc.Continued); n != want.Len()/proc.MaxLine {
			t.Errorf("%s: %d markers, want %d", id, n, want.Len()/proc.MaxLine)
		}
	}
}

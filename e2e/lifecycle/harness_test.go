package lifecycle

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/daemon/control"
	"github.com/refreshd/refreshd/daemon/control/apitest"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/testkit"
	"github.com/refreshd/refreshd/proc"
)

// refreshd is the binary under test, built on first use (the socket access test runs it
// as another user, so its directory is readable by all).
var refreshd testkit.Refreshd

func TestMain(m *testing.M) { os.Exit(refreshd.Main(m)) }

// env is one test's world: plans, state and socket paths of its own.
type env struct {
	t      *testing.T
	dir    string // traversable by other users (0755)
	plans  string
	state  string
	socket string
	api    *control.Client // checks every exchange against the API's OpenAPI description
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir, err := os.MkdirTemp("", "refreshd-dt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	e := &env{t: t, dir: dir, plans: filepath.Join(dir, "plans"), state: filepath.Join(dir, "state"), socket: filepath.Join(dir, "run", "refreshd.sock")}
	e.api, _ = apitest.Client(t, e.socket)
	if err := os.MkdirAll(e.plans, 0o755); err != nil {
		t.Fatal(err)
	}
	return e
}

// writePlan writes plans/NAME.yaml.
func (e *env) writePlan(name, yaml string) string {
	e.t.Helper()
	path := filepath.Join(e.plans, name+".yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// start runs the daemon on this env's plans, state and socket and waits (bounded) until its
// socket answers.
func (e *env) start(extraEnv []string, args ...string) *testkit.Daemon {
	e.t.Helper()
	return testkit.StartDaemon(e.t, refreshd.Path(e.t), testkit.DaemonOptions{
		Args:        append([]string{"--plans", e.plans, "--state", e.state, "--socket", e.socket}, args...),
		Env:         extraEnv,
		Ready:       func(ctx context.Context) error { _, err := e.client().Status(ctx); return err },
		ReadyWithin: 10 * time.Second,
	})
}

// cli runs the refreshd CLI against this env's socket and state.
func (e *env) cli(args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, refreshd.Path(e.t), args...)
	cmd.Env = append(os.Environ(), "REFRESHD_SOCKET="+e.socket)
	var o, er bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &er
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		e.t.Fatalf("refreshd %s: %v", strings.Join(args, " "), err)
	}
	return o.String(), er.String(), code
}

// client is a control client whose every exchange is checked against the API's OpenAPI
// description.
func (e *env) client() *control.Client { return e.api }

// runs lists the runs of plan through the daemon.
func (e *env) runs(plan string) []*history.Run {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	runs, err := e.client().Runs(ctx, plan, 0)
	if err != nil {
		e.t.Fatalf("list runs of %s: %v", plan, err)
	}
	return runs
}

// storeRuns reads the runs of plan from the store directly (no daemon running).
func (e *env) storeRuns(plan string) []*history.Run {
	e.t.Helper()
	s, err := history.OpenReadOnly(filepath.Join(e.state, "history.db"))
	if err != nil {
		e.t.Fatal(err)
	}
	defer s.Close()
	runs, err := s.Runs(plan, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return runs
}

// readPID waits for a step to write its pid to path.
func (e *env) readPID(path string) int {
	e.t.Helper()
	var pid int
	testkit.WaitFor(e.t, "the step to write "+filepath.Base(path), 10*time.Second, func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	})
	return pid
}

// pgid is the process group of pid.
func pgid(t *testing.T, pid int) int {
	t.Helper()
	st, err := proc.ReadStat(pid)
	if err != nil {
		t.Fatalf("process group of %d: %v", pid, err)
	}
	return st.PGID
}

func countStatus(runs []*history.Run, s history.Status) int {
	n := 0
	for _, r := range runs {
		if r.Status == s {
			n++
		}
	}
	return n
}

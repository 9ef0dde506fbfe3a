package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/refreshd/refreshd/daemon/control"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/teststack"
)

// bin is the refreshd binary built once by TestMain, in a directory other users can read
// (the socket access test runs it as another user).
var bin string

func TestMain(m *testing.M) { os.Exit(teststack.RunWithRefreshd(m, &bin)) }

// env is one test's world: plans, state and socket paths of its own.
type env struct {
	t      *testing.T
	dir    string // traversable by other users (0755)
	plans  string
	state  string
	socket string
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

// daemon is a running `refreshd daemon` process.
type daemon struct {
	t      *testing.T
	cmd    *exec.Cmd
	log    *syncBuffer
	exited chan struct{}
	err    error // Wait's result, once exited is closed
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs the daemon and waits (bounded) until its socket answers.
func (e *env) start(extraEnv []string, args ...string) *daemon {
	e.t.Helper()
	argv := append([]string{"daemon", "--plans", e.plans, "--state", e.state, "--socket", e.socket}, args...)
	cmd := exec.Command(bin, argv...)
	cmd.Env = append(os.Environ(), extraEnv...)
	d := &daemon{t: e.t, cmd: cmd, log: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = d.log, d.log
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		d.err = cmd.Wait()
		close(d.exited)
	}()
	e.t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			cmd.Process.Kill()
			<-d.exited
		}
		if e.t.Failed() {
			e.t.Logf("daemon log:\n%s", d.log.String())
		}
	})
	c := control.NewClient(e.socket)
	e.waitFor("the daemon to answer on its socket", 10*time.Second, func() bool {
		select {
		case <-d.exited:
			e.t.Fatalf("daemon exited at start-up: %v\n%s", d.err, d.log.String())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := c.Status(ctx)
		return err == nil
	})
	return d
}

// stop sends sig and waits at most within for the daemon to exit; it returns how long it took.
func (d *daemon) stop(sig syscall.Signal, within time.Duration) time.Duration {
	d.t.Helper()
	t0 := time.Now()
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatalf("signal daemon: %v", err)
	}
	select {
	case <-d.exited:
		return time.Since(t0)
	case <-time.After(within):
		d.t.Fatalf("daemon did not exit within %s of %v\n%s", within, sig, d.log.String())
		return 0
	}
}

// cli runs the refreshd CLI against this env's socket and state.
func (e *env) cli(args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
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

func (e *env) client() *control.Client { return control.NewClient(e.socket) }

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

// waitFor polls cond every 50ms until it holds or d passes.
func (e *env) waitFor(what string, d time.Duration, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readPID waits for a step to write its pid to path.
func (e *env) readPID(path string) int {
	e.t.Helper()
	var pid int
	e.waitFor("the step to write "+filepath.Base(path), 10*time.Second, func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	})
	return pid
}

// pgid is the process group of pid, from /proc/PID/stat (field 5).
func pgid(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("read /proc/%d/stat: %v", pid, err)
	}
	// The command name (field 2) may hold spaces; fields after its closing ')' do not.
	rest := string(b[bytes.LastIndexByte(b, ')')+2:])
	f := strings.Fields(rest)
	g, err := strconv.Atoi(f[2])
	if err != nil {
		t.Fatalf("parse pgid of %d: %v", pid, err)
	}
	return g
}

// groupMembers lists the live (non-zombie) processes of process group g.
func groupMembers(g int) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, en := range entries {
		pid, err := strconv.Atoi(en.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", en.Name(), "stat"))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) {
			continue
		}
		f := strings.Fields(string(b[i+2:]))
		if len(f) > 2 && f[0] != "Z" && f[2] == strconv.Itoa(g) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// notifySocket is a NOTIFY_SOCKET as systemd offers one; messages returns every datagram
// received so far.
func notifySocket(t *testing.T, dir string) (path string, messages func() []string) {
	t.Helper()
	path = filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var msgs []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			mu.Lock()
			msgs = append(msgs, string(buf[:n]))
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return path, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), msgs...)
	}
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

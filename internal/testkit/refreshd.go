package testkit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Refreshd is the refreshd binary of the tree under test, built on first use (at most once
// per test binary), so a package whose tests all skip under -short builds nothing. Declare
// one per package and hand TestMain to Main, which removes the build at the end:
//
//	var refreshd testkit.Refreshd
//	func TestMain(m *testing.M) { os.Exit(refreshd.Main(m)) }
type Refreshd struct {
	once sync.Once
	path string
	dir  string
	err  error
}

// Main runs the package's tests and removes the binary; its result is for os.Exit.
func (r *Refreshd) Main(m *testing.M) int {
	code := m.Run()
	if r.dir != "" {
		os.RemoveAll(r.dir)
	}
	return code
}

// Path builds the binary if no test has yet, and returns its path. The directory holding
// it is readable by every user: a socket access test runs the binary as another user.
func (r *Refreshd) Path(t testing.TB) string {
	t.Helper()
	r.once.Do(func() { r.path, r.dir, r.err = buildRefreshd() })
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.path
}

func buildRefreshd() (bin, dir string, err error) {
	dir, err = os.MkdirTemp("", "refreshd-bin-")
	if err != nil {
		return "", "", fmt.Errorf("build refreshd: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", "", fmt.Errorf("build refreshd: %w", err)
	}
	bin = filepath.Join(dir, "refreshd")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/refreshd/refreshd/cmd/refreshd").CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		return "", "", fmt.Errorf("build refreshd: %w\n%s", err, out)
	}
	return bin, dir, nil
}

// DaemonOptions say how StartDaemon runs `refreshd daemon`.
type DaemonOptions struct {
	// Args follow `refreshd daemon` (--plans, --state, --socket, ...).
	Args []string
	// Env is added to the test's environment.
	Env []string
	// Ready answers nil once the daemon serves (a status call on its socket); StartDaemon
	// polls it. testkit imports no refreshd package, so the caller brings the client.
	Ready func(ctx context.Context) error
	// ReadyWithin bounds the start-up; 15 s when zero.
	ReadyWithin time.Duration
	// StopWithin bounds the graceful stop at the end of the test (SIGTERM, then SIGKILL and
	// an error); 30 s when zero.
	StopWithin time.Duration
}

// Daemon is a running `refreshd daemon` process of a test, in its own process group.
type Daemon struct {
	t      testing.TB
	cmd    *exec.Cmd
	log    Buffer
	exited chan struct{}
	err    error // Wait's result, once exited is closed
}

// StartDaemon runs `BIN daemon ARGS...` and waits (bounded) until opts.Ready answers. When
// the test ends a daemon still running gets SIGTERM and, after opts.StopWithin, SIGKILL and
// a test error; a failed test's log shows the daemon's output.
func StartDaemon(t testing.TB, bin string, opts DaemonOptions) *Daemon {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"daemon"}, opts.Args...)...)
	cmd.Env = append(os.Environ(), opts.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	d := &Daemon{t: t, cmd: cmd, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &d.log, &d.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start refreshd daemon: %v", err)
	}
	go func() {
		d.err = cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		d.stopAtEnd(orDefault(opts.StopWithin, 30*time.Second))
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.log.String())
		}
	})
	within := orDefault(opts.ReadyWithin, 15*time.Second)
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := opts.Ready(ctx)
		cancel()
		if err == nil {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon did not answer within %s: %v\n%s", within, err, d.log.String())
		}
		select {
		case <-d.exited:
			t.Fatalf("daemon exited at start-up: %v\n%s", d.err, d.log.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func orDefault(d, fallback time.Duration) time.Duration {
	if d == 0 {
		return fallback
	}
	return d
}

// Log is everything the daemon wrote to stdout and stderr so far.
func (d *Daemon) Log() string { return d.log.String() }

// Pid is the daemon's process id (and its process group's).
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// Exited is closed when the daemon has exited; Err is then Wait's result.
func (d *Daemon) Exited() <-chan struct{} { return d.exited }

// Err is how the daemon exited (nil for status 0); valid once Exited is closed.
func (d *Daemon) Err() error { return d.err }

// Stop sends sig and waits at most within for the daemon to exit, failing the test
// otherwise; it returns how long the exit took.
func (d *Daemon) Stop(sig syscall.Signal, within time.Duration) time.Duration {
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

// stopAtEnd is the cleanup: SIGTERM to a daemon still running; SIGKILL to its process
// group, and a test error, when it ignores that for within.
func (d *Daemon) stopAtEnd(within time.Duration) {
	select {
	case <-d.exited:
		return
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(within):
		d.t.Errorf("daemon ignored SIGTERM for %s; SIGKILL\n%s", within, d.log.String())
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.exited
	}
}

// Signal sends sig to the daemon (SIGHUP to reload, say) without waiting.
func (d *Daemon) Signal(sig syscall.Signal) error { return d.cmd.Process.Signal(sig) }

// Package teststack starts the real build stack for Go tests: buildkitd nodes, a
// docker-registry server, a private DOCKER_CONFIG and small build contexts. Everything listens
// on 127.0.0.1 on a port the kernel chose, lives under the test's temp directories, and is
// stopped and removed in t.Cleanup.
//
// Tests that need the stack call Require first: it applies testkit's rule for tests that
// need outside programs (skip under -short; skip with the reason when one is missing, fail
// instead when REFRESHD_REQUIRE_STACK is set, as CI does).
package teststack

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/refreshd/refreshd/internal/testkit"
)

// Programs are the executables the stack needs on PATH.
var programs = []string{"docker", "buildkitd", "buildctl", "runc", "docker-registry", "htpasswd"}

// Require ends the test unless the stack can run: it skips under -short, and when a
// program of the stack is missing or the test is not running as root (buildkitd's OCI worker
// needs it here) it skips with the reason, or fails with REFRESHD_REQUIRE_STACK set.
func Require(t testing.TB) {
	t.Helper()
	testkit.Need(t, programs...)
	if os.Geteuid() != 0 {
		testkit.SkipOrFail(t, "buildkitd's OCI worker needs root")
	}
}

// DockerConfig returns a fresh DOCKER_CONFIG directory for the test, so builder state
// ($DOCKER_CONFIG/buildx) and credentials never leak between tests or into the user's home.
// The buildx plugin is found through the system plugin directory.
func DockerConfig(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "docker-config")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatalf("create DOCKER_CONFIG: %v", err)
	}
	return dir
}

// Env is os.Environ() with DOCKER_CONFIG set to dir, for every docker invocation of a test.
func Env(dir string) []string {
	return append(os.Environ(), "DOCKER_CONFIG="+dir)
}

// process is a started server that Cleanup stops: SIGTERM to its process group, then SIGKILL.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func start(t testing.TB, logPath string, argv ...string) *process {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("create %s: %v", logPath, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", argv[0], err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop() })
	return p
}

// stop ends the process group and waits, bounded: SIGTERM, 5 s, then SIGKILL.
func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// kill ends the process group at once and waits for it.
func (p *process) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// exited reports whether the process has already ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitUntil polls ready every 50 ms until it returns nil, the process exits, or timeout passes.
func waitUntil(t testing.TB, what string, p *process, logPath string, timeout time.Duration, ready func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if p.exited() {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("%s exited during startup; log:\n%s", what, tail(log, 2000))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		last = ready(ctx)
		cancel()
		if last == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	log, _ := os.ReadFile(logPath)
	t.Fatalf("%s not ready after %s: %v; log:\n%s", what, timeout, last, tail(log, 2000))
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

package teststack

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/internal/testkit"
)

// Demo is one scripts/stack.sh stack, the one `make demo` runs: a registry, two buildkitd
// nodes, a bare constraints repository, a copy of the sample project and its rendered plan,
// under a temp directory of the test, on free ports. Cleanup runs `stack.sh down`.
type Demo struct {
	Dir string            // the stack's directory (stack.sh's DIR)
	Env map[string]string // `stack.sh env`: DOCKER_CONFIG, REGISTRY, CONSTRAINTS_REPO, ...

	t      testing.TB
	script string
}

// UpDemo requires the stack (Require; busybox and git by testkit.Need) and runs
// `stack.sh up` with extraEnv added after the free ports it picks.
func UpDemo(t testing.TB, extraEnv ...string) *Demo {
	t.Helper()
	Require(t)
	testkit.Need(t, "busybox", "git")
	d := &Demo{Dir: t.TempDir(), t: t, script: repoFile(t, "scripts", "stack.sh")}
	t.Cleanup(func() {
		if out, err := d.Try("down"); err != nil {
			t.Errorf("stack.sh down: %v\n%s", err, out)
		}
	})
	// A free port can be taken by a test of another package (go test runs packages at once)
	// between the kernel naming it and stack.sh binding it; stack.sh then stops what it
	// started and fails, and another try with new ports succeeds. Three tries at most.
	for try := 1; ; try++ {
		env := append([]string{
			"STACK_REGISTRY_PORT=" + strconv.Itoa(testkit.FreePort(t)),
			"STACK_NODE0_PORT=" + strconv.Itoa(testkit.FreePort(t)),
			"STACK_NODE1_PORT=" + strconv.Itoa(testkit.FreePort(t)),
		}, extraEnv...)
		out, err := d.Try("up", env...)
		if err == nil {
			break
		}
		if try == 3 {
			t.Fatalf("stack.sh up %s: %v\n%s", d.Dir, err, out)
		}
		t.Logf("stack.sh up, try %d: %v\n%s", try, err, out)
		os.Remove(filepath.Join(d.Dir, "stack.env")) // forget the ports it chose
	}
	d.Env = map[string]string{}
	for _, line := range strings.Split(d.Run("env"), "\n") {
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "="); ok {
			d.Env[k] = v
		}
	}
	return d
}

// Run runs `stack.sh CMD DIR` with env added, and fails the test when it fails.
func (d *Demo) Run(cmd string, env ...string) string {
	d.t.Helper()
	out, err := d.Try(cmd, env...)
	if err != nil {
		d.t.Fatalf("stack.sh %s %s: %v\n%s", cmd, d.Dir, err, out)
	}
	return out
}

// Try runs `stack.sh CMD DIR` with env added (at most 2 minutes) and returns its output.
func (d *Demo) Try(cmd string, env ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, "bash", d.script, cmd, d.Dir)
	c.Env = append(os.Environ(), env...)
	out, err := c.CombinedOutput()
	return string(out), err
}

// Pid is the pid stack.sh recorded for one of its processes (registry, node0, node1).
func (d *Demo) Pid(name string) int {
	d.t.Helper()
	b, err := os.ReadFile(filepath.Join(d.Dir, "pids", name+".pid"))
	if err != nil {
		d.t.Fatalf("read pid of %s: %v", name, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		d.t.Fatalf("pid file of %s: %v", name, err)
	}
	return pid
}

// repoFile is the path of a file of the repository, found from the test's working
// directory (its package directory) up to go.mod.
func repoFile(t testing.TB, elem ...string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("find the repository: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(append([]string{dir}, elem...)...)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod above the test's directory")
		}
		dir = parent
	}
}

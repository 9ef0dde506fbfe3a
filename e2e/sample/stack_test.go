package sample

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/refreshd/refreshd/internal/testkit"
	"github.com/refreshd/refreshd/internal/teststack"
)

// stack is one scripts/stack.sh stack under a test's temp directory.
type stack struct {
	t   *testing.T
	dir string
	env map[string]string // from `stack.sh env`
}

func stackScript(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "scripts", "stack.sh"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// sh runs `stack.sh CMD DIR` with extra environment; it fails the test on error.
func (s *stack) sh(env []string, cmd string) string {
	s.t.Helper()
	out, err := s.try(env, cmd)
	if err != nil {
		s.t.Fatalf("stack.sh %s %s: %v\n%s", cmd, s.dir, err, out)
	}
	return out
}

func (s *stack) try(env []string, cmd string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, "bash", stackScript(s.t), cmd, s.dir)
	c.Env = append(os.Environ(), env...)
	out, err := c.CombinedOutput()
	return string(out), err
}

func (s *stack) pid(name string) int {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dir, "pids", name+".pid"))
	if err != nil {
		s.t.Fatalf("read pid of %s: %v", name, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		s.t.Fatalf("pid file of %s: %v", name, err)
	}
	return pid
}

// processesUsing lists the processes whose command line names the stack's directory.
func (s *stack) processesUsing() []string {
	s.t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		s.t.Fatal(err)
	}
	var found []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmd, s.dir+"/") {
			found = append(found, e.Name()+": "+cmd)
		}
	}
	return found
}

func upStack(t *testing.T, extraEnv ...string) *stack {
	t.Helper()
	teststack.Require(t)
	testkit.Need(t, "busybox")
	s := &stack{t: t, dir: t.TempDir()}
	t.Cleanup(func() {
		if out, err := s.try(nil, "down"); err != nil {
			t.Errorf("stack.sh down: %v\n%s", err, out)
		}
	})
	// A free port can be taken by a test of another package (go test runs packages at once)
	// between the kernel naming it and stack.sh binding it; stack.sh then stops what it
	// started and fails, and another try with new ports succeeds. Three tries at most, as
	// in e2e/refresh.
	for try := 1; ; try++ {
		env := append([]string{
			"STACK_REGISTRY_PORT=" + strconv.Itoa(testkit.FreePort(t)),
			"STACK_NODE0_PORT=" + strconv.Itoa(testkit.FreePort(t)),
			"STACK_NODE1_PORT=" + strconv.Itoa(testkit.FreePort(t)),
		}, extraEnv...)
		out, err := s.try(env, "up")
		if err == nil {
			break
		}
		if try == 3 {
			t.Fatalf("stack.sh up %s: %v\n%s", s.dir, err, out)
		}
		t.Logf("stack.sh up, try %d: %v\n%s", try, err, out)
		os.Remove(filepath.Join(s.dir, "stack.env")) // forget the ports it chose
	}
	s.env = map[string]string{}
	for _, line := range strings.Split(s.sh(nil, "env"), "\n") {
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if ok {
			s.env[k] = v
		}
	}
	return s
}

// TestStackLifecycle: up starts everything on the ports asked for (moving off a busy one),
// seeds the branch and renders the plan; up again changes nothing; up after a node died
// restarts only that node; down leaves no process behind.
func TestStackLifecycle(t *testing.T) {
	// A busy preferred port: the registry must move to another one and record it.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	s := upStack(t, "STACK_REGISTRY_PORT="+strconv.Itoa(busyPort))

	registry := s.env["REGISTRY"]
	if registry == "" || registry == fmt.Sprintf("127.0.0.1:%d", busyPort) {
		t.Fatalf("REGISTRY = %q; want a port other than the busy %d", registry, busyPort)
	}
	recorded, err := os.ReadFile(filepath.Join(s.dir, "stack.env"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(recorded), "REGISTRY_PORT="+strings.TrimPrefix(registry, "127.0.0.1:")) {
		t.Fatalf("stack.env does not record the registry port of %s:\n%s", registry, recorded)
	}

	// The base is there for both platforms.
	req, _ := http.NewRequest("GET", "http://"+registry+"/v2/base/busybox/manifests/1", nil)
	req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var index struct {
		Manifests []struct {
			Platform struct{ OS, Architecture string }
		}
	}
	err = json.NewDecoder(resp.Body).Decode(&index)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("decode base index: %v", err)
	}
	var platforms []string
	for _, m := range index.Manifests {
		if m.Platform.OS != "unknown" {
			platforms = append(platforms, m.Platform.OS+"/"+m.Platform.Architecture)
		}
	}
	sort.Strings(platforms)
	if strings.Join(platforms, ",") != "linux/386,linux/amd64" {
		t.Fatalf("base platforms %v, want linux/386 and linux/amd64", platforms)
	}

	// The constraints branch: one seed commit with the six published files.
	files := gitOut(t, s.env["CONSTRAINTS_REPO"], "ls-tree", "--name-only", "constraints-main")
	wantFiles := "constraints-3.11.txt constraints-3.12.txt constraints-no-providers-3.11.txt " +
		"constraints-no-providers-3.12.txt constraints-source-providers-3.11.txt constraints-source-providers-3.12.txt"
	if got := strings.Join(strings.Fields(files), " "); got != wantFiles {
		t.Fatalf("constraints-main holds %q, want %q", got, wantFiles)
	}
	if n := gitOut(t, s.env["CONSTRAINTS_REPO"], "rev-list", "--count", "constraints-main"); strings.TrimSpace(n) != "1" {
		t.Fatalf("constraints-main has %s commits, want 1", n)
	}

	// The rendered plan names this stack, not the shipped defaults.
	plan, err := os.ReadFile(filepath.Join(s.dir, "plans", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{registry + "/demo/main/ci", s.env["BUILDKIT_NODE0"], s.env["BUILDKIT_NODE1"],
		"repo: " + s.dir + "/constraints.git", "workdir: " + s.dir + "/project"} {
		if !strings.Contains(string(plan), want) {
			t.Errorf("rendered plan lacks %q", want)
		}
	}
	if bytes.Contains(plan, []byte("/tmp/refreshd-demo")) {
		t.Errorf("rendered plan still names /tmp/refreshd-demo")
	}

	// Idempotent: a second up keeps every process.
	before := map[string]int{"registry": s.pid("registry"), "node0": s.pid("node0"), "node1": s.pid("node1")}
	s.sh(nil, "up")
	for name, pid := range before {
		if got := s.pid(name); got != pid {
			t.Fatalf("second up replaced %s: pid %d -> %d", name, pid, got)
		}
	}

	// A node killed: up restarts it alone, on its recorded port.
	if err := syscall.Kill(before["node1"], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, before["node1"])
	if st := s.sh(nil, "status"); !strings.Contains(st, "node1     stopped") {
		t.Fatalf("status after killing node1:\n%s", st)
	}
	s.sh(nil, "up")
	if s.pid("node1") == before["node1"] || s.pid("node0") != before["node0"] || s.pid("registry") != before["registry"] {
		t.Fatalf("up after node1 died: pids %d %d %d, before %v", s.pid("registry"), s.pid("node0"), s.pid("node1"), before)
	}
	if env := s.sh(nil, "env"); !strings.Contains(env, "BUILDKIT_NODE1="+s.env["BUILDKIT_NODE1"]) {
		t.Fatalf("node1 moved off its recorded endpoint %s:\n%s", s.env["BUILDKIT_NODE1"], env)
	}

	// down: nothing left, pid files gone; a second down is a no-op.
	s.sh(nil, "down")
	if left := s.processesUsing(); len(left) > 0 {
		t.Fatalf("processes left after down:\n%s", strings.Join(left, "\n"))
	}
	if pids, _ := filepath.Glob(filepath.Join(s.dir, "pids", "*.pid")); len(pids) > 0 {
		t.Fatalf("pid files left after down: %v", pids)
	}
	s.sh(nil, "down")
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("pid %d still there 5 s after SIGKILL", pid)
}

func gitOut(t *testing.T, gitDir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"--git-dir", gitDir}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}

package sample

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
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

// stack is the demo stack of scripts/stack.sh (teststack.Demo) for one test.
type stack struct {
	*teststack.Demo
	t *testing.T
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
		if strings.Contains(cmd, s.Dir+"/") {
			found = append(found, e.Name()+": "+cmd)
		}
	}
	return found
}

func upStack(t *testing.T, extraEnv ...string) *stack {
	t.Helper()
	return &stack{Demo: teststack.UpDemo(t, extraEnv...), t: t}
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

	registry := s.Env["REGISTRY"]
	if registry == "" || registry == fmt.Sprintf("127.0.0.1:%d", busyPort) {
		t.Fatalf("REGISTRY = %q; want a port other than the busy %d", registry, busyPort)
	}
	recorded, err := os.ReadFile(filepath.Join(s.Dir, "stack.env"))
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
	files := gitOut(t, s.Env["CONSTRAINTS_REPO"], "ls-tree", "--name-only", "constraints-main")
	wantFiles := "constraints-3.11.txt constraints-3.12.txt constraints-no-providers-3.11.txt " +
		"constraints-no-providers-3.12.txt constraints-source-providers-3.11.txt constraints-source-providers-3.12.txt"
	if got := strings.Join(strings.Fields(files), " "); got != wantFiles {
		t.Fatalf("constraints-main holds %q, want %q", got, wantFiles)
	}
	if n := gitOut(t, s.Env["CONSTRAINTS_REPO"], "rev-list", "--count", "constraints-main"); strings.TrimSpace(n) != "1" {
		t.Fatalf("constraints-main has %s commits, want 1", n)
	}

	// The rendered plan names this stack, not the shipped defaults.
	plan, err := os.ReadFile(filepath.Join(s.Dir, "plans", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{registry + "/demo/main/ci", s.Env["BUILDKIT_NODE0"], s.Env["BUILDKIT_NODE1"],
		"repo: " + s.Dir + "/constraints.git", "workdir: " + s.Dir + "/project"} {
		if !strings.Contains(string(plan), want) {
			t.Errorf("rendered plan lacks %q", want)
		}
	}
	if bytes.Contains(plan, []byte("/tmp/refreshd-demo")) {
		t.Errorf("rendered plan still names /tmp/refreshd-demo")
	}

	// Idempotent: a second up keeps every process.
	before := map[string]int{"registry": s.Pid("registry"), "node0": s.Pid("node0"), "node1": s.Pid("node1")}
	s.Run("up")
	for name, pid := range before {
		if got := s.Pid(name); got != pid {
			t.Fatalf("second up replaced %s: pid %d -> %d", name, pid, got)
		}
	}

	// A node killed: up restarts it alone, on its recorded port.
	if err := syscall.Kill(before["node1"], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, before["node1"])
	if st := s.Run("status"); !strings.Contains(st, "node1     stopped") {
		t.Fatalf("status after killing node1:\n%s", st)
	}
	s.Run("up")
	if s.Pid("node1") == before["node1"] || s.Pid("node0") != before["node0"] || s.Pid("registry") != before["registry"] {
		t.Fatalf("up after node1 died: pids %d %d %d, before %v", s.Pid("registry"), s.Pid("node0"), s.Pid("node1"), before)
	}
	if env := s.Run("env"); !strings.Contains(env, "BUILDKIT_NODE1="+s.Env["BUILDKIT_NODE1"]) {
		t.Fatalf("node1 moved off its recorded endpoint %s:\n%s", s.Env["BUILDKIT_NODE1"], env)
	}

	// down: nothing left, pid files gone; a second down is a no-op.
	s.Run("down")
	if left := s.processesUsing(); len(left) > 0 {
		t.Fatalf("processes left after down:\n%s", strings.Join(left, "\n"))
	}
	if pids, _ := filepath.Glob(filepath.Join(s.Dir, "pids", "*.pid")); len(pids) > 0 {
		t.Fatalf("pid files left after down: %v", pids)
	}
	s.Run("down")
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
	return testkit.Git(t, "", append([]string{"--git-dir", gitDir}, args...)...)
}

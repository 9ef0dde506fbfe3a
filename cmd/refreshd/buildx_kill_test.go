package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/internal/testkit"
)

// silentListener accepts connections and never answers: a builder node that hangs every
// client (buildx bootstrap, buildctl) until it gives up or is killed.
func silentListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// withEnv lists the live processes whose environment holds marker (DOCKER_CONFIG=...).
func withEnv(marker string) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || !processRunning(pid) {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !strings.Contains(string(env), marker) {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		out = append(out, fmt.Sprintf("%d: %s", pid, strings.ReplaceAll(string(cmdline), "\x00", " ")))
	}
	return out
}

// A kill -9 of refreshd while `docker buildx ls` (a query whose output refreshd parses)
// waits on a builder node that never answers: after the next start nothing of docker or its
// buildx plugin is left running (Pdeathsig on the docker CLI, the group recorded on the
// provision attempt and stopped by the recovery).
func TestKill9DuringBuildxLeavesNothing(t *testing.T) {
	testkit.Need(t, "docker")
	if out, err := exec.Command("docker", "buildx", "version").CombinedOutput(); err != nil {
		testkit.SkipOrFail(t, "docker buildx: "+strings.TrimSpace(string(out)))
	}
	dir := t.TempDir()
	state, dockerConfig := filepath.Join(dir, "state"), filepath.Join(dir, "docker-config")
	os.MkdirAll(dockerConfig, 0o700)
	planFile, noop := filepath.Join(dir, "bx.yaml"), filepath.Join(dir, "noop.yaml")
	os.WriteFile(planFile, []byte(fmt.Sprintf(`plan: bx
env:
  DOCKER_CONFIG: %s
builders:
  - name: silent
    driver: remote
    emulation: allow
    nodes:
      - { name: silent0, endpoint: "tcp://%s", platform: linux/amd64 }
steps:
  - id: use
    builder: silent
    run: ["true"]
`, dockerConfig, silentListener(t))), 0o644)
	os.WriteFile(noop, []byte("plan: noop\nsteps:\n  - id: a\n    run: [\"true\"]\n"), 0o644)

	run := exec.Command(refreshd.Path(t), "run", "--local", "--state", state, planFile)
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	marker := "DOCKER_CONFIG=" + dockerConfig
	// buildx create, then ls, each wait for the node (about 20 s here) before they give up.
	testkit.WaitFor(t, "docker buildx ls to hang on the silent node", 90*time.Second, func() bool {
		for _, p := range withEnv(marker) {
			if strings.Contains(p, "buildx ls") {
				return true
			}
		}
		return false
	})
	time.Sleep(500 * time.Millisecond) // well inside the query
	kill9(run)
	time.Sleep(200 * time.Millisecond)
	t.Logf("left by the killed refreshd: %v", withEnv(marker))

	cmd := exec.Command(refreshd.Path(t), "run", "--local", "--state", state, noop)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("recovering run: %v\n%s", err, out)
	}
	if left := withEnv(marker); len(left) > 0 {
		t.Errorf("docker/buildx processes of the killed run survive the next start:\n%s\n%s", strings.Join(left, "\n"), out)
	}
	runs := historyJSON(t, refreshd.Path(t), state)
	for _, r := range runs {
		if r.Plan == "bx" && (r.Status != "interrupted" || !strings.Contains(string(out), "marked interrupted")) {
			t.Errorf("killed run: %s %q", r.Status, r.Reason)
		}
	}
}

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
	"github.com/refreshd/refreshd/internal/teststack"
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

// builderPlan is a plan whose one step uses a remote-driver builder with one node at
// endpoint (so a provision step runs first), its builder state in dockerConfig.
func builderPlan(dockerConfig, endpoint string) string {
	return fmt.Sprintf(`plan: bx
env:
  DOCKER_CONFIG: %s
builders:
  - name: bx
    driver: remote
    emulation: allow
    nodes:
      - { name: bx0, endpoint: "%s", platform: linux/amd64 }
steps:
  - id: use
    builder: bx
    run: ["true"]
`, dockerConfig, endpoint)
}

// killDuring runs plan (a builderPlan on dockerConfig) under run --local with env, waits
// (bounded) until a process of it whose command line holds match runs, kills refreshd with
// SIGKILL, and starts refreshd again on the same state. Nothing with that DOCKER_CONFIG may
// be left running then, and the run is recorded interrupted.
func killDuring(t *testing.T, plan, dockerConfig string, env []string, match string, within time.Duration) {
	t.Helper()
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	planFile, noop := filepath.Join(dir, "bx.yaml"), filepath.Join(dir, "noop.yaml")
	os.WriteFile(planFile, []byte(plan), 0o644)
	os.WriteFile(noop, []byte("plan: noop\nsteps:\n  - id: a\n    run: [\"true\"]\n"), 0o644)

	run := exec.Command(refreshd.Path(t), "run", "--local", "--state", state, planFile)
	run.Env = env
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	marker := "DOCKER_CONFIG=" + dockerConfig
	testkit.WaitFor(t, match+" to hang on the silent node", within, func() bool {
		for _, p := range withEnv(marker) {
			if strings.Contains(p, match) {
				return true
			}
		}
		return false
	})
	time.Sleep(500 * time.Millisecond) // well inside the call
	kill9(run)
	time.Sleep(200 * time.Millisecond)
	t.Logf("left by the killed refreshd: %v", withEnv(marker))

	cmd := exec.Command(refreshd.Path(t), "run", "--local", "--state", state, noop)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("recovering run: %v\n%s", err, out)
	}
	if left := withEnv(marker); len(left) > 0 {
		t.Errorf("processes of the killed run survive the next start:\n%s\n%s", strings.Join(left, "\n"), out)
	}
	for _, r := range historyJSON(t, refreshd.Path(t), state) {
		if r.Plan == "bx" && r.Status != "interrupted" {
			t.Errorf("killed run: %s %q", r.Status, r.Reason)
		}
	}
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
	dockerConfig := filepath.Join(t.TempDir(), "docker-config")
	os.MkdirAll(dockerConfig, 0o700)
	// buildx create, then ls, each wait for the node (about 20 s here) before they give up.
	killDuring(t, builderPlan(dockerConfig, "tcp://"+silentListener(t)), dockerConfig, os.Environ(), "buildx ls", 90*time.Second)
}

// The same for buildctl: the builder's node is a real buildkitd, so provisioning reaches the
// emulation guard's `buildctl debug workers`; a buildctl first in PATH sends that real call
// to a node that never answers, and refreshd is killed while it hangs.
func TestKill9DuringBuildctlLeavesNothing(t *testing.T) {
	teststack.Require(t)
	real, err := exec.LookPath("buildctl")
	if err != nil {
		t.Fatal(err)
	}
	node := teststack.StartBuildkitd(t, "kill")
	dockerConfig := filepath.Join(t.TempDir(), "docker-config")
	os.MkdirAll(dockerConfig, 0o700)
	bin := t.TempDir()
	wrapper := fmt.Sprintf("#!/bin/sh\nexec %s --addr tcp://%s debug workers\n", real, silentListener(t))
	if err := os.WriteFile(filepath.Join(bin, "buildctl"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "PATH="+bin+string(filepath.ListSeparator)+os.Getenv("PATH"))
	killDuring(t, builderPlan(dockerConfig, node.Endpoint), dockerConfig, env, "debug workers", 90*time.Second)
}

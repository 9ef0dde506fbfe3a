package refresh

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/refreshd/refreshd/daemon/control"
	"github.com/refreshd/refreshd/daemon/control/apitest"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/testkit"
	"github.com/refreshd/refreshd/internal/teststack"
)

// refreshd is the binary under test, built on first use.
var refreshd testkit.Refreshd

func TestMain(m *testing.M) { os.Exit(refreshd.Main(m)) }

// stack is the demo stack of scripts/stack.sh (teststack.Demo) for one test.
type stack struct {
	*teststack.Demo
	t *testing.T
}

func upStack(t *testing.T) *stack {
	t.Helper()
	return &stack{Demo: teststack.UpDemo(t), t: t}
}

func (s *stack) registry() string { return s.Env["REGISTRY"] }
func (s *stack) repo() string     { return s.Env["CONSTRAINTS_REPO"] }
func (s *stack) project() string  { return s.Env["REFRESHD_DEMO_PROJECT"] }
func (s *stack) plans() string    { return s.Env["REFRESHD_DEMO_PLANS"] }

// stop stops one process of the stack (registry, node0, node1) the way an outage does:
// SIGKILL to its process group, then waits (bounded) until it is gone. `stack.sh up`
// restarts it.
func (s *stack) stop(name string) {
	s.t.Helper()
	pid := s.Pid(name)
	syscall.Kill(-pid, syscall.SIGKILL)
	for range 100 {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("%s (pid %d) still running 5 s after SIGKILL", name, pid)
}

// editPlan rewrites the stack's rendered plan; every old string must be present.
func (s *stack) editPlan(pairs ...string) {
	s.t.Helper()
	p := filepath.Join(s.plans(), "demo.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		s.t.Fatal(err)
	}
	text := string(b)
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(text, pairs[i]) {
			s.t.Fatalf("plan %s has no %q to replace", p, pairs[i])
		}
		text = strings.Replace(text, pairs[i], pairs[i+1], 1)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// onePython cuts the main branch's Python list (python-versions.txt in sample.git, which
// the plan's checkout fetches and python-versions reads) to 3.11 so a drill builds half as
// much; the shapes (matrix, two platforms, three modes, gate, publish, verify) stay.
func (s *stack) onePython() {
	s.t.Helper()
	s.commitSample("main", "main: Python 3.11 only", func(dir string) {
		if err := os.WriteFile(filepath.Join(dir, "python-versions.txt"), []byte("3.11\n"), 0o644); err != nil {
			s.t.Fatal(err)
		}
	})
}

// release appends a line to the package index in the sample's main branch: a simulated
// upstream release, which the next run's checkout brings in.
func (s *stack) release(line string) {
	s.t.Helper()
	s.commitSample("main", "index: "+line, func(dir string) {
		f, err := os.OpenFile(filepath.Join(dir, "index", "packages.txt"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			s.t.Fatal(err)
		}
		defer f.Close()
		if _, err := fmt.Fprintln(f, line); err != nil {
			s.t.Fatal(err)
		}
	})
}

// commitSample changes branch of the stack's sample.git as a developer would: a clone, the
// edit, a commit and a push. The demo plan's checkout step fetches it at the next run: no
// test writes into a workdir refreshd owns.
func (s *stack) commitSample(branch, message string, edit func(dir string)) {
	s.t.Helper()
	dir := s.t.TempDir()
	testkit.Git(s.t, dir, "clone", "--quiet", "--branch", branch, s.Env["REFRESHD_DEMO_DIR"]+"/sample.git", ".")
	edit(dir)
	testkit.Git(s.t, dir, "commit", "--quiet", "--allow-empty", "-am", message)
	testkit.Git(s.t, dir, "push", "--quiet", "origin", "HEAD:"+branch)
}

// sampleHead is the commit at the tip of branch in the stack's sample.git.
func (s *stack) sampleHead(branch string) string {
	s.t.Helper()
	return testkit.Git(s.t, "", "--git-dir", s.Env["REFRESHD_DEMO_DIR"]+"/sample.git", "rev-parse", "refs/heads/"+branch)
}

// digest asks the registry itself (not refreshd's client) for the manifest digest of a
// cache ref, "" when the tag does not exist.
func (s *stack) digest(ref string) string {
	s.t.Helper()
	repo, tag, ok := strings.Cut(strings.TrimPrefix(ref, s.registry()+"/"), ":")
	if !ok {
		s.t.Fatalf("ref %q has no tag", ref)
	}
	req, _ := http.NewRequest(http.MethodHead, "http://"+s.registry()+"/v2/"+repo+"/manifests/"+tag, nil)
	req.Header.Set("Accept", strings.Join([]string{
		"application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
		"application/vnd.docker.distribution.manifest.list.v2+json",
		"application/vnd.docker.distribution.manifest.v2+json"}, ", "))
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		s.t.Fatalf("HEAD %s: %v", ref, err)
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return resp.Header.Get("Docker-Content-Digest")
	case http.StatusNotFound:
		return ""
	}
	s.t.Fatalf("HEAD %s: %s", ref, resp.Status)
	return ""
}

// git runs git against the bare constraints repository.
func (s *stack) git(args ...string) string {
	s.t.Helper()
	return testkit.Git(s.t, "", append([]string{"--git-dir", s.repo()}, args...)...)
}

func (s *stack) head() string { return s.git("rev-parse", "refs/heads/constraints-main") }

// pinByHand replaces old with new in file on the constraints branch, as a release manager
// would by hand (outside refreshd), and returns the commit it pushed.
func (s *stack) pinByHand(file, old, new string) string {
	s.t.Helper()
	dir := s.t.TempDir()
	testkit.Git(s.t, dir, "clone", "--quiet", "--branch", "constraints-main", s.repo(), ".")
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil || !strings.Contains(string(b), old+"\n") {
		s.t.Fatalf("%s on constraints-main has no line %q (%v)", file, old, err)
	}
	if err := os.WriteFile(filepath.Join(dir, file), []byte(strings.Replace(string(b), old+"\n", new+"\n", 1)), 0o644); err != nil {
		s.t.Fatal(err)
	}
	testkit.Git(s.t, dir, "commit", "--quiet", "-am", "pin "+new+" by hand", "--author", "Release Manager <rm@sample-project.example.org>")
	testkit.Git(s.t, dir, "push", "--quiet", "origin", "HEAD:constraints-main")
	return testkit.Git(s.t, dir, "rev-parse", "HEAD")
}

// daemon is a real `refreshd daemon` process on the stack.
type daemon struct {
	*testkit.Daemon
	t      *testing.T
	socket string
	api    *control.Client // checks every exchange against the API's OpenAPI description
}

// startDaemon starts `refreshd daemon` with the stack's environment (and any extra flags)
// and waits (at most 15 s) until it answers on its socket. Cleanup stops it with SIGTERM
// (SIGKILL after 30 s).
func startDaemon(t *testing.T, s *stack, state string, extra ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, socket: filepath.Join(s.Dir, "refreshd.sock")}
	d.api, _ = apitest.Client(t, d.socket)
	d.Daemon = testkit.StartDaemon(t, refreshd.Path(t), testkit.DaemonOptions{
		Args: append([]string{"--plans", s.plans(), "--state", state, "--socket", d.socket,
			"--plain-http-registry", s.registry(), "--kill-grace", "5s"}, extra...),
		Env:   []string{"DOCKER_CONFIG=" + s.Env["DOCKER_CONFIG"], "TZ=UTC"},
		Ready: func(ctx context.Context) error { _, err := d.client().Status(ctx); return err },
	})
	return d
}

// client is a control client whose every exchange is checked against the API's OpenAPI
// description.
func (d *daemon) client() *control.Client { return d.api }

// runCLI is `refreshd run --wait -o json demo/main` through the daemon's socket: the
// documented command. It returns the finished run and the command's exit code.
func (d *daemon) runCLI() (*history.Run, int) {
	d.t.Helper()
	return d.runPlan("demo/main")
}

// runPlan is `refreshd run --wait -o json ARGS... PLAN`.
func (d *daemon) runPlan(plan string, args ...string) (*history.Run, int) {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	argv := append([]string{"run", "--wait", "--socket", d.socket, "-o", "json"}, args...)
	c := exec.CommandContext(ctx, refreshd.Path(d.t), append(argv, plan)...)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	err := c.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		d.t.Fatalf("refreshd run: %v\n%s", err, stderr.String())
	}
	var r history.Run
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil || r.ID == "" {
		d.t.Fatalf("refreshd run (exit %d) printed no run record: %v\nstdout: %s\nstderr: %s\ndaemon:\n%s",
			code, err, stdout.String(), stderr.String(), d.Log())
	}
	return &r, code
}

// mustSucceed runs the plan and fails the test unless the run succeeded.
func (d *daemon) mustSucceed() *history.Run {
	d.t.Helper()
	r, code := d.runCLI()
	if r.Status != history.StatusSucceeded || code != 0 {
		logFailed(d.t, r)
		d.t.Fatalf("run %s: %s (exit %d): %s\n%s", r.ID, r.Status, code, r.Reason, describe(r))
	}
	return r
}

// describe is a run's steps, one line each, for failure messages.
func describe(r *history.Run) string {
	var b strings.Builder
	for _, s := range r.Steps {
		fmt.Fprintf(&b, "  %s: %s %s\n", s.Instance, s.Status, s.Reason)
	}
	return b.String()
}

// failedLogLines bounds how much of each failed attempt's log logFailed prints: the end of
// a buildx log holds the error, the start only its setup.
const failedLogLines = 60

// logFailed prints the log of every attempt of every failed step of r (the last
// failedLogLines lines of STATE/logs/RUN/INSTANCE.N.log), so an unexpected outcome, above
// all an intermittent one, can be diagnosed from the test output alone.
func logFailed(t *testing.T, r *history.Run) {
	t.Helper()
	for _, st := range r.Steps {
		if st.Status != history.StatusFailed {
			continue
		}
		for _, a := range st.Attempts {
			if a.Log == "" {
				t.Logf("%s attempt %d (exit %d, %s): no log file", st.Instance, a.N, a.ExitCode, a.Error)
				continue
			}
			b, err := os.ReadFile(a.Log)
			if err != nil {
				t.Logf("%s attempt %d (exit %d, %s): read log: %v", st.Instance, a.N, a.ExitCode, a.Error, err)
				continue
			}
			lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
			cut := ""
			if len(lines) > failedLogLines {
				cut = fmt.Sprintf(" (last %d of %d lines)", failedLogLines, len(lines))
				lines = lines[len(lines)-failedLogLines:]
			}
			t.Logf("%s attempt %d (exit %d, %s), log %s%s:\n%s", st.Instance, a.N, a.ExitCode, a.Error,
				a.Log, cut, strings.Join(lines, "\n"))
		}
	}
}

func step(t *testing.T, r *history.Run, instance string) history.Step {
	t.Helper()
	for _, s := range r.Steps {
		if s.Instance == instance {
			return s
		}
	}
	t.Fatalf("run %s has no step %s; it has:\n%s", r.ID, instance, describe(r))
	return history.Step{}
}

// caches is every cache ref a run recorded, with its digest after the run (the refresh-cache
// record, which verify-cache confirms).
func caches(r *history.Run) map[string]history.Cache {
	out := map[string]history.Cache{}
	for _, s := range r.Steps {
		for _, c := range s.Caches {
			prev, ok := out[c.Ref]
			if !ok || c.After != "" {
				c.Changed = c.Changed || prev.Changed
				c.Verified = c.Verified || prev.Verified
				out[c.Ref] = c
			} else {
				prev.Verified = prev.Verified || c.Verified
				out[c.Ref] = prev
			}
		}
	}
	return out
}

func publishOf(t *testing.T, r *history.Run) *history.Publish {
	t.Helper()
	p := step(t, r, "publish-constraints").Publish
	if p == nil {
		t.Fatalf("run %s: publish-constraints recorded nothing", r.ID)
	}
	return p
}

// stepProcesses lists live processes, other than the pids in skip, started with this stack's
// DOCKER_CONFIG: the daemon passes it to every step (docker, docker-buildx), while the
// stack's own servers never get it.
func stepProcesses(t *testing.T, s *stack, skip ...int) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	want := []byte("DOCKER_CONFIG=" + s.Env["DOCKER_CONFIG"] + "\x00")
	var found []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || slices.Contains(skip, pid) {
			continue
		}
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if _, rest, ok := strings.Cut(string(stat), ") "); !ok || strings.HasPrefix(rest, "Z") {
			continue // gone, or a zombie: no running process
		}
		environ, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if bytes.Contains(environ, want) {
			cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			found = append(found, e.Name()+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return found
}

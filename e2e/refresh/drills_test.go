package refresh

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/testkit"
)

// Fault drills: each breaks one real piece of the stack at a chosen point, then checks that
// nothing was lost (no stale publish, no cache or commit gone, nothing left running), that
// the history says clearly what happened, and that the next run, with the piece back,
// succeeds. Each drill has its own stack and daemon and refreshes Python 3.11 only.

// TestDrillBuilderNodeDown: the linux/386 node is down when the run starts. Provisioning
// fails naming that node, so no build runs (none would silently fall back to emulation on
// the other node), nothing is published and no cache is touched.
func TestDrillBuilderNodeDown(t *testing.T) {
	t.Parallel()
	s := upStack(t)
	s.onePython()
	seed := s.head()
	d := startDaemon(t, s, filepath.Join(s.Dir, "state"))

	s.stop("node1")
	r, code := d.runCLI()
	if r.Status != history.StatusFailed || code != 1 {
		logFailed(t, r)
		t.Fatalf("run with a node down: %s (exit %d), want failed (exit 1)\n%s", r.Status, code, describe(r))
	}
	t.Logf("run %s %s in %s: %s", r.ID, r.Status, r.End.Sub(r.Start).Round(time.Millisecond), r.Reason)
	prov := step(t, r, "provision[demo_cache]")
	if prov.Status != history.StatusFailed || !strings.Contains(prov.Reason, "demo_cache1") {
		t.Errorf("provision: %s, reason %q; want failed naming node demo_cache1", prov.Status, prov.Reason)
	}
	if !strings.Contains(r.Reason, "demo_cache1") {
		t.Errorf("run reason %q does not name the node demo_cache1", r.Reason)
	}
	for _, st := range r.Steps {
		// checkout and python-versions only fetch and read the tree (they build nothing, on
		// no builder): they run before the builder is provisioned, since the steps that use
		// the builder expand from their values.
		if st.Instance == "checkout" || st.Instance == "python-versions" {
			if st.Status != history.StatusSucceeded {
				t.Errorf("%s: %s; want succeeded (it uses no builder)", st.Instance, st.Status)
			}
			continue
		}
		if st.Instance != prov.Instance && (st.Status != history.StatusSkipped || len(st.Attempts) != 0) {
			t.Errorf("%s: %s with %d attempts; want skipped, never started", st.Instance, st.Status, len(st.Attempts))
		}
	}
	if s.head() != seed {
		t.Errorf("constraints-main moved to %s with a node down", s.head())
	}
	for _, ref := range cacheRefs(s, "3.11") {
		if dg := s.digest(ref); dg != "" {
			t.Errorf("%s exists (%s) though no cache build ran", ref, dg)
		}
	}

	s.Run("up") // restarts only node1, on its port
	r2 := d.mustSucceed()
	checkCaches(t, s, r2, "3.11")
	if p := publishOf(t, r2); p.Commit == "" || s.git("rev-parse", p.Commit+"^") != seed {
		t.Errorf("the run after the node came back published %q, not one commit on the seed", p.Commit)
	}
}

// TestDrillRegistryDownDuringVerify: the registry dies after the cache builds pushed and
// before verification. A step of the plan itself kills it, so the outage lands exactly
// there. verify-cache retries, then fails naming the ref; the run is failed with that
// reason. With the registry back, the pushed caches are all there and the next run succeeds.
func TestDrillRegistryDownDuringVerify(t *testing.T) {
	t.Parallel()
	s := upStack(t)
	s.onePython()
	outage := "  - id: registry-outage\n    needs: [refresh-cache]\n" +
		`    run: [sh, -c, "kill -s KILL $(cat ` + filepath.Join(s.Dir, "pids", "registry.pid") + `)"]` + "\n\n"
	planFile := filepath.Join(s.plans(), "demo.yaml")
	good, err := os.ReadFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	s.editPlan("  - id: verify-cache\n    needs: [refresh-cache]",
		outage+"  - id: verify-cache\n    needs: [refresh-cache, registry-outage]")
	d := startDaemon(t, s, filepath.Join(s.Dir, "state"))

	r, code := d.runCLI()
	if r.Status != history.StatusFailed || code != 1 {
		logFailed(t, r)
		t.Fatalf("run with the registry down: %s (exit %d), want failed\n%s", r.Status, code, describe(r))
	}
	t.Logf("run %s %s in %s: %s", r.ID, r.Status, r.End.Sub(r.Start).Round(time.Millisecond), r.Reason)
	if st := step(t, r, "registry-outage"); st.Status != history.StatusSucceeded {
		t.Fatalf("the outage step did not run: %s %s", st.Status, st.Reason)
	}
	pushed := map[string]string{}
	for _, c := range caches(r) {
		if c.After != "" {
			pushed[c.Ref] = c.After
		}
	}
	for _, ref := range cacheRefs(s, "3.11") {
		if pushed[ref] == "" {
			t.Errorf("refresh-cache recorded no digest for %s before the outage", ref)
		}
	}
	for _, pl := range []string{"linux/amd64", "linux/386"} {
		v := step(t, r, "verify-cache[python=3.11,platform="+pl+"]")
		ref := s.registry() + "/demo/main/ci/python3.11:cache-" + strings.ReplaceAll(pl, "/", "-")
		if v.Status != history.StatusFailed || !strings.Contains(v.Reason, ref) {
			t.Errorf("verify %s: %s, reason %q; want failed naming %s", pl, v.Status, v.Reason, ref)
		}
	}
	// The check was retried before it failed (the daemon logs each failed try).
	n := 0
	for _, line := range strings.Split(d.Log(), "\n") {
		if strings.Contains(line, "registry: request failed") && strings.Contains(line, "/manifests/cache-linux-amd64") {
			n++
		}
	}
	if n < 2 {
		t.Errorf("verify of cache-linux-amd64 was tried %d times before failing, want retries:\n%s", n, d.Log())
	}
	if !strings.Contains(r.Reason, "verify-cache") {
		t.Errorf("run reason %q does not say verification failed", r.Reason)
	}
	// The constraints came from this run's own successful upgrade build, before the outage:
	// publishing them was right, and they stay.
	published := publishOf(t, r).Commit
	if published == "" || s.head() != published {
		t.Errorf("publish before the outage: commit %q, branch at %s", published, s.head())
	}

	s.Run("up") // the registry comes back on its port with its data
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := os.WriteFile(planFile, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if res, err := d.client().Reload(ctx); err != nil || len(res.LoadErrors) > 0 {
		t.Fatalf("reload the plan without the outage step: %v %v", err, res)
	}
	for ref, dg := range pushed {
		if got := s.digest(ref); got != dg {
			t.Errorf("%s after the outage: %q, pushed %q (lost)", ref, got, dg)
		}
	}
	r2 := d.mustSucceed()
	checkCaches(t, s, r2, "3.11")
	if p := publishOf(t, r2); p.Changed || s.head() != published {
		t.Errorf("next run: publish changed %v, branch %s; want no new commit on %s", p.Changed, s.head(), published)
	}
}

// TestDrillBranchMovedByOthers: someone pushes to constraints-main from another clone after
// refreshd's last run. The next run's commit goes on top of theirs: their commit and file
// stay, nothing is forced.
func TestDrillBranchMovedByOthers(t *testing.T) {
	t.Parallel()
	s := upStack(t)
	s.onePython()
	d := startDaemon(t, s, filepath.Join(s.Dir, "state"))
	ours := publishOf(t, d.mustSucceed()).Commit

	other := filepath.Join(t.TempDir(), "other")
	gitIn := func(dir string, args ...string) {
		t.Helper()
		testkit.Git(t, dir, args...) // as testkit's "other" identity
	}
	gitIn(filepath.Dir(other), "clone", "-q", "--branch", "constraints-main", "file://"+s.repo(), other)
	if err := os.WriteFile(filepath.Join(other, "README.md"), []byte("constraints of the sample project\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitIn(other, "add", "README.md")
	gitIn(other, "commit", "-q", "-m", "Add a README (pushed by someone else)")
	gitIn(other, "push", "-q", "origin", "constraints-main")
	theirs := s.head()

	s.release("httpx                     0.28.1")
	r := d.mustSucceed()
	p := publishOf(t, r)
	if p.Commit == "" || p.Commit != s.head() {
		t.Fatalf("publish recorded %q, branch at %s", p.Commit, s.head())
	}
	t.Logf("constraints-main:\n%s", s.git("log", "--format=%h %an: %s", "-4", "constraints-main"))
	if parent := s.git("rev-parse", p.Commit+"^"); parent != theirs {
		t.Errorf("refreshd's commit has parent %s, want the other clone's %s", parent, theirs)
	}
	// Both earlier commits are in the new one's history (git fails the test otherwise).
	s.git("merge-base", "--is-ancestor", ours, p.Commit)
	s.git("merge-base", "--is-ancestor", theirs, p.Commit)
	if s.git("show", p.Commit+":README.md") != "constraints of the sample project" {
		t.Error("the other clone's README.md is gone")
	}
	if got := s.git("show", p.Commit+":constraints-3.11.txt"); !strings.Contains(got, "httpx==0.28.1") {
		t.Error("constraints-3.11.txt on the branch lacks httpx==0.28.1")
	}
	if diff := pinDiff(s, theirs, p.Commit); len(diff) != 2 {
		t.Errorf("refreshd's commit changed pins in %v, want the two files that list httpx", diff)
	}
}

// TestDrillDaemonKilledMidBuild: the daemon is killed with SIGKILL while build-ci-images
// runs a long build. Its step processes die with it (nothing keeps building or pushing for
// a daemon that is gone); the restarted daemon records the run interrupted, and the next run
// succeeds.
func TestDrillDaemonKilledMidBuild(t *testing.T) {
	t.Parallel()
	s := upStack(t)
	s.onePython()
	// About a minute of "installing" in the upgrade build: far longer than the drill.
	planFile := filepath.Join(s.plans(), "demo.yaml")
	good, err := os.ReadFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	slow := `--build-arg, "UPGRADE={{ .params.upgrade }}",
          --label,`
	s.editPlan(slow, `--build-arg, "UPGRADE={{ .params.upgrade }}", --build-arg, "INSTALL_WORK_MB=30000",
          --label,`)
	state := filepath.Join(s.Dir, "state")
	d := startDaemon(t, s, state)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr, err := d.client().Trigger(ctx, "demo/main")
	if err != nil {
		t.Fatal(err)
	}
	var building []string
	for range 300 {
		if building = stepProcesses(t, s, d.Pid()); len(building) > 0 {
			r, err := d.client().Run(ctx, tr.Run)
			// The checkout's git runs first, and the build step exists only once
			// python-versions has given the run its values.
			if err == nil && slices.ContainsFunc(r.Steps, func(st history.Step) bool {
				return st.Instance == "build-ci-images[python=3.11]" && st.Status == history.StatusRunning
			}) {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(building) == 0 {
		t.Fatalf("build-ci-images never started within 30 s:\n%s", d.Log())
	}
	time.Sleep(time.Second) // well inside the build
	d.Stop(syscall.SIGKILL, 10*time.Second)

	// The steps die with the daemon: within seconds, not when the build would have ended.
	var left []string
	for range 100 {
		if left = stepProcesses(t, s); len(left) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Errorf("step processes still running 10 s after the daemon was killed:\n%s", strings.Join(left, "\n"))
		for _, l := range left {
			pid, _, _ := strings.Cut(l, ":")
			exec.Command("kill", "-KILL", pid).Run()
		}
	}

	if err := os.WriteFile(planFile, good, 0o644); err != nil {
		t.Fatal(err)
	}
	d2 := startDaemon(t, s, state)
	r, err := d2.client().Run(ctx, tr.Run)
	if err != nil {
		t.Fatalf("the killed run is not in the history: %v", err)
	}
	t.Logf("run %s %s: %s", r.ID, r.Status, r.Reason)
	if r.Status != history.StatusInterrupted || r.End.IsZero() || !strings.Contains(r.Reason, "kill -9") {
		t.Errorf("killed run: %s, end %v, reason %q; want interrupted, ended, saying why", r.Status, r.End, r.Reason)
	}
	if b := step(t, r, "build-ci-images[python=3.11]"); b.Status != history.StatusInterrupted {
		t.Errorf("killed run's build: %s", b.Status)
	}
	if p := step(t, r, "publish-constraints"); p.Publish != nil && p.Publish.Commit != "" {
		t.Errorf("the killed run published %s", p.Publish.Commit)
	}
	if !strings.Contains(d2.Log(), tr.Run) {
		t.Errorf("the restarted daemon did not log the interrupted run %s:\n%s", tr.Run, d2.Log())
	}
	r2 := d2.mustSucceed()
	checkCaches(t, s, r2, "3.11")
}

// TestDrillInvalidPlanReload: the plan is edited into an invalid state and reloaded (SIGHUP
// and `refreshd reload`). The error names FILE:LINE:COL, status shows it, and the old plan
// keeps running; fixing the file clears the error.
func TestDrillInvalidPlanReload(t *testing.T) {
	t.Parallel()
	s := upStack(t)
	s.onePython()
	d := startDaemon(t, s, filepath.Join(s.Dir, "state"))
	planFile := filepath.Join(s.plans(), "demo.yaml")
	good, err := os.ReadFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	line := 1 + bytes.Count(good[:bytes.Index(good, []byte("overlap: skip"))], []byte("\n"))
	// The invalid edit also moves main's cache path: a run of the invalid plan would show.
	s.editPlan("overlap: skip", "overlap: sometimes", "/demo/main/ci,", "/demo/edited/ci,")

	cli := func(args ...string) (string, int) {
		c := exec.Command(refreshd.Path(t), append(args[:1:1], append([]string{"--socket", d.socket}, args[1:]...)...)...)
		out, err := c.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	at := planFile + ":" + strconv.Itoa(line) + ":"
	// SIGHUP first, as systemctl reload does; then the command.
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var out string
	var code int
	for range 100 {
		if out, code = cli("status"); code == 1 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code != 1 || !strings.Contains(out, at) || !strings.Contains(out, "sometimes") {
		t.Errorf("status after SIGHUP (exit %d) does not show the error at %s:\n%s", code, at, out)
	}
	t.Logf("refreshd status after SIGHUP (exit %d):\n%s", code, out)
	if out, code = cli("reload"); code != 1 || !strings.Contains(out, at) {
		t.Errorf("reload (exit %d) does not report the error at %s:\n%s", code, at, out)
	}

	// The old plan (one Python, valid) still runs.
	r := d.mustSucceed()
	if _, ok := caches(r)[s.registry()+"/demo/edited/ci/python3.11:cache-linux-amd64"]; ok {
		t.Error("the run used the invalid edit (cache path demo/edited), not the old plan")
	}
	checkCaches(t, s, r, "3.11")

	if err := os.WriteFile(planFile, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code = cli("reload"); code != 0 {
		t.Errorf("reload of the fixed plan: exit %d\n%s", code, out)
	}
	if out, code = cli("status"); code != 0 || strings.Contains(out, "load errors") {
		t.Errorf("status after the fix (exit %d):\n%s", code, out)
	}
}

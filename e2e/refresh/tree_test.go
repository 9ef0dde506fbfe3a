package refresh

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/refreshd/refreshd/history"
)

// TestVersionAddedInTheTree is the promise of values from the tree: the plan lists no
// Python version; adding one to the release branch's python-versions.txt makes the next run
// of demo/v1-0-test build it, publish its constraints to constraints-1-0, refresh and verify
// its cache tags, with the plan file untouched. The --param given is recorded. A value
// outside the plan's rules fails the run at the step that read it, before any build, and
// leaves the branch and the registry as they were.
func TestVersionAddedInTheTree(t *testing.T) {
	t.Parallel()
	s := upStack(t)
	d := startDaemon(t, s, t.TempDir())
	release := s.Env["REFRESHD_DEMO_DIR"] + "/project-v1-0"
	planFile := filepath.Join(s.plans(), "demo.yaml")
	planBefore, err := os.ReadFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	cache := func(py, platform string) string {
		return s.registry() + "/demo/v1-0-test/ci/python" + py + ":cache-" + platform
	}
	branchFiles := func() []string {
		return strings.Fields(s.git("ls-tree", "--name-only", "refs/heads/constraints-1-0"))
	}
	pythons := func(r *history.Run) []string {
		for _, v := range r.Vars {
			if v.Name == "python" && v.Step == "python-versions" {
				return v.Values
			}
		}
		return nil
	}

	r1, code := d.runPlan("demo/v1-0-test", "--param", "upgrade=true")
	if code != 0 {
		logFailed(t, r1)
		t.Fatalf("run 1 of demo/v1-0-test: exit %d, %s", code, describe(r1))
	}
	if got := pythons(r1); !slices.Equal(got, []string{"3.11"}) {
		t.Errorf("run 1 read python %q from the release branch's tree, want [3.11]", got)
	}
	if r1.Plan != "demo/v1-0-test" || r1.Params["upgrade"] != "true" {
		t.Errorf("run 1 recorded plan %q params %v", r1.Plan, r1.Params)
	}
	for _, st := range r1.Steps {
		if strings.Contains(st.Instance, "3.12") {
			t.Errorf("run 1 has a 3.12 step before the tree lists 3.12: %s", st.Instance)
		}
	}
	seeded := branchFiles()

	// A value the plan's pattern refuses: the run fails at python-versions, naming it.
	setVersions := func(list string) {
		t.Helper()
		s.commitSample("v1-0-test", "v1-0-test: Python "+list, func(dir string) {
			if err := os.WriteFile(filepath.Join(dir, "python-versions.txt"), []byte(list), 0o644); err != nil {
				t.Fatal(err)
			}
		})
	}
	setVersions("3.11\n--push\n")
	head := s.git("rev-parse", "refs/heads/constraints-1-0")
	bad, code := d.runPlan("demo/v1-0-test")
	if code != 1 || bad.Status != history.StatusFailed || !strings.Contains(bad.Reason, "step python-versions failed") || !strings.Contains(bad.Reason, `"--push"`) {
		t.Errorf("run with a bad value: exit %d, %s", code, describe(bad))
	}
	for _, st := range bad.Steps {
		if st.Instance != "checkout" && st.Instance != "python-versions" && (st.Status != history.StatusSkipped || len(st.Attempts) > 0) {
			t.Errorf("run with a bad value: %s %s (attempts %d); want skipped without an attempt", st.Instance, st.Status, len(st.Attempts))
		}
	}
	if s.git("rev-parse", "refs/heads/constraints-1-0") != head {
		t.Error("run with a bad value moved constraints-1-0")
	}

	// The release line adds Python 3.12: one line in its tree, nothing in the plan.
	setVersions("3.11\n3.12\n")
	r2, code := d.runPlan("demo/v1-0-test", "--param", "upgrade=true")
	if code != 0 {
		logFailed(t, r2)
		t.Fatalf("run 2 of demo/v1-0-test: exit %d, %s", code, describe(r2))
	}
	if got := pythons(r2); !slices.Equal(got, []string{"3.11", "3.12"}) {
		t.Errorf("run 2 read python %q, want [3.11 3.12]", got)
	}
	// The run's checkout brought the release workdir to the branch's tip and recorded it.
	tip := s.sampleHead("v1-0-test")
	if r2.Source == nil || r2.Source.Commit != tip || r2.Source.Ref != "v1-0-test" || !r2.Source.Changed {
		t.Errorf("run 2 source %+v, want v1-0-test at %s, changed", r2.Source, tip)
	}
	if b, err := os.ReadFile(filepath.Join(release, "python-versions.txt")); err != nil || string(b) != "3.11\n3.12\n" {
		t.Errorf("release workdir python-versions.txt %q (%v) after run 2", b, err)
	}
	for _, id := range []string{"build-ci-images[python=3.12]", "refresh-cache[python=3.12][linux/amd64]",
		"refresh-cache[python=3.12][linux/386]", "verify-cache[python=3.12,platform=linux/386]"} {
		if st := step(t, r2, id); st.Status != history.StatusSucceeded {
			t.Errorf("run 2: %s %s", id, st.Status)
		}
	}
	got := caches(r2)
	for _, platform := range platforms {
		ref := cache("3.12", platform)
		c, ok := got[ref]
		if !ok || !c.Verified || c.After == "" || c.After != s.digest(ref) {
			t.Errorf("run 2: cache %s recorded %+v, registry has %q", ref, c, s.digest(ref))
		}
	}
	files := branchFiles()
	for _, f := range constraintFiles("3.12") {
		if !slices.Contains(files, f) {
			t.Errorf("constraints-1-0 has no %s after the run that added 3.12 (files: %v; before: %v)", f, files, seeded)
		}
	}
	if p := publishOf(t, r2); p.Branch != "constraints-1-0" || p.Commit == "" {
		t.Errorf("run 2 published %+v", p)
	}
	if after, _ := os.ReadFile(planFile); !bytes.Equal(after, planBefore) {
		t.Error("the plan file changed")
	}
	// The main instance is untouched by all of this: its branch and its cache path.
	if s.git("rev-parse", "refs/heads/constraints-main") != s.git("rev-list", "--max-parents=0", "refs/heads/constraints-main") {
		t.Error("runs of demo/v1-0-test moved constraints-main")
	}
	if s.digest(s.registry()+"/demo/main/ci/python3.12:cache-linux-amd64") != "" {
		t.Error("runs of demo/v1-0-test pushed a cache under demo/main")
	}
}

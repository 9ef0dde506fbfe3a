package executor

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/teststack"
	"github.com/refreshd/refreshd/plan"
)

// TestSkipIfTagsOutsidePushes: BuildKit registry-cache tags pushed by someone else (buildctl
// exporting a registry cache to a real registry, never through refreshd), watched by a
// skip_if tags condition over both tags. The run is skipped only once every watched tag was
// pushed (a new digest seen) within the window; a push to only some of them, a tag refreshd
// has seen only one digest of, or pushes older than the window all make the run refresh.
func TestSkipIfTagsOutsidePushes(t *testing.T) {
	teststack.Require(t)
	reg := teststack.StartRegistry(t, teststack.RegistryOptions{})
	node := teststack.StartBuildkitd(t, "outside")
	refs := map[string]string{}
	for _, py := range []string{"3.11", "3.12"} {
		refs[py] = fmt.Sprintf("%s/ci/python%s:cache-linux-amd64", reg.Host, py)
	}
	push := func(ref string) { node.PushCache(t, ref) }
	dir := t.TempDir()
	e, st := newRegistryEngine(t, dir)
	marker := filepath.Join(dir, "refreshed")
	load := func(within string) *plan.Graph {
		t.Helper()
		p, err := plan.Parse(filepath.Join(dir, "plan.yaml"), []byte(`plan: cache
vars: { python: ["3.11", "3.12"] }
skip_if:
  - tags:
      refs: ["`+reg.Host+`/ci/python{{ .python }}:cache-linux-amd64"]
      matrix: { python: "{{ .vars.python }}" }
      within: `+within+`
steps:
  - { id: refresh, run: [touch, `+marker+`] }
`))
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Warnings) != 0 {
			t.Fatalf("warnings for a tags condition: %v", p.Warnings)
		}
		g, err := plan.Expand(p)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	// run runs the plan and checks whether it was skipped, with the reason and one warning
	// containing the given texts ("" for no warning).
	run := func(name string, g *plan.Graph, wantSkip bool, reason, warning string) {
		t.Helper()
		os.Remove(marker)
		r, err := e.Run(t.Context(), g, RunSpec{Trigger: history.TriggerSchedule})
		if err != nil {
			t.Fatal(err)
		}
		_, statErr := os.Stat(marker)
		switch {
		case wantSkip && (r.Status != history.StatusSkipped || statErr == nil):
			t.Errorf("%s: run %s %q (step ran: %v), want skipped", name, r.Status, r.Reason, statErr == nil)
		case !wantSkip && (r.Status != history.StatusSucceeded || statErr != nil):
			t.Errorf("%s: run %s %q (step ran: %v), want a refresh", name, r.Status, r.Reason, statErr == nil)
		}
		if !strings.Contains(r.Reason, reason) {
			t.Errorf("%s: reason %q, want it to contain %q", name, r.Reason, reason)
		}
		if warning == "" && len(r.Warnings) > 0 || warning != "" && (len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], warning)) {
			t.Errorf("%s: warnings %q, want one containing %q", name, r.Warnings, warning)
		}
	}
	hour, short := load("1h"), load("2s")

	push(refs["3.11"])
	push(refs["3.12"])
	run("first look", hour, false, "", "refreshd has seen only one digest of "+refs["3.11"]+", "+refs["3.12"])
	push(refs["3.11"])
	run("push to one tag of two", hour, false, "", "refreshd has seen only one digest of "+refs["3.12"])
	push(refs["3.12"])
	run("every tag pushed since the last look", hour, true, "skip_if: all 2 tags pushed within 1h0m0s", "")

	time.Sleep(2100 * time.Millisecond)
	run("pushes older than the window", short, false, "", "")
	push(refs["3.11"])
	run("a fresh push to one tag, the other old", short, false, "", "")
	push(refs["3.11"])
	push(refs["3.12"])
	run("a fresh push to every tag", short, true, "skip_if: all 2 tags pushed within 2s", "")

	// The record: each tag's digest is the registry's, with when refreshd saw it change.
	tags, err := st.Tags()
	if err != nil {
		t.Fatal(err)
	}
	for py, ref := range refs {
		tag := tags[ref]
		if tag.Digest == "" || tag.ChangedBy.IsZero() || !tag.ChangedAfter.Before(tag.ChangedBy) {
			t.Errorf("python %s: tag record %+v", py, tag)
		}
	}
}

// TestSkipIfTagsFromTreeValues: the watched tags come from values a step reads from the
// tree at run time (the Python versions), so the condition is decided once that step has
// succeeded. A fresh push to every tag skips the rest of the run (the when: always step
// still runs, the when: failure one does not); a push to only some does not; a version
// added to the tree adds its tag, which is missing, so the run refreshes without the plan
// changing.
func TestSkipIfTagsFromTreeValues(t *testing.T) {
	teststack.Require(t)
	reg := teststack.StartRegistry(t, teststack.RegistryOptions{})
	node := teststack.StartBuildkitd(t, "outside")
	push := func(ref string) { node.PushCache(t, ref) }
	ref := func(py string) string { return fmt.Sprintf("%s/ci/python%s:cache-linux-amd64", reg.Host, py) }

	dir := t.TempDir()
	e, _ := newRegistryEngine(t, dir)
	versions, setVersions := versionsFile(t, dir)
	p, err := plan.Parse(filepath.Join(dir, "plan.yaml"), []byte(`plan: cache
skip_if:
  - tags:
      refs: ["`+reg.Host+`/ci/python{{ .python }}:cache-linux-amd64"]
      matrix: { python: "{{ .vars.python }}" }
      within: 1h
steps:
  - id: versions
    run: [cat, `+versions+`]
    outputs: { vars: { python: { pattern: '3\.[0-9]+' } } }
  - id: refresh
    needs: [versions]
    matrix: { python: "{{ .vars.python }}" }
    run: [touch, "`+dir+`/refreshed-{{ .python }}"]
  - { id: on-failure, needs: [refresh], when: failure, run: [touch, `+dir+`/failure-ran] }
  - { id: cleanup, when: always, run: [touch, `+dir+`/cleanup-ran] }
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.SkipIf[0].Tags.After; len(got) != 1 || got[0] != "versions" {
		t.Fatalf("condition decided after %v, want [versions]", got)
	}
	// run checks the run's status and reason, and which of refresh, failure, cleanup ran.
	run := func(name string, want history.Status, reason string, refreshed ...string) {
		t.Helper()
		for _, f := range []string{"failure-ran", "cleanup-ran", "refreshed-3.11", "refreshed-3.12", "refreshed-3.13"} {
			os.Remove(filepath.Join(dir, f))
		}
		g, err := plan.Expand(p)
		if err != nil {
			t.Fatal(err)
		}
		r, err := e.Run(t.Context(), g, RunSpec{Trigger: history.TriggerSchedule})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != want || !strings.Contains(r.Reason, reason) {
			t.Errorf("%s: run %s %q, want %s with %q", name, r.Status, r.Reason, want, reason)
		}
		var ran []string
		for _, py := range []string{"3.11", "3.12", "3.13"} {
			if _, err := os.Stat(filepath.Join(dir, "refreshed-"+py)); err == nil {
				ran = append(ran, py)
			}
		}
		if strings.Join(ran, " ") != strings.Join(refreshed, " ") {
			t.Errorf("%s: refreshed %v, want %v", name, ran, refreshed)
		}
		if _, err := os.Stat(filepath.Join(dir, "cleanup-ran")); err != nil {
			t.Errorf("%s: the when: always step did not run", name)
		}
		if _, err := os.Stat(filepath.Join(dir, "failure-ran")); err == nil {
			t.Errorf("%s: the when: failure step ran", name)
		}
		steps := map[string]history.Step{}
		for _, s := range r.Steps {
			steps[s.Instance] = s
		}
		if s := steps["versions"]; s.Status != history.StatusSucceeded {
			t.Errorf("%s: versions %s %q", name, s.Status, s.Reason)
		}
		if want == history.StatusSkipped {
			for id, s := range steps {
				if strings.HasPrefix(id, "refresh[") && (s.Status != history.StatusSkipped || !strings.HasPrefix(s.Reason, SkipIfReasonPrefix)) {
					t.Errorf("%s: %s %s %q, want skipped by skip_if", name, id, s.Status, s.Reason)
				}
			}
		}
	}

	setVersions(`"3.11", "3.12"`)
	push(ref("3.11"))
	push(ref("3.12"))
	run("first look", history.StatusSucceeded, "", "3.11", "3.12")
	push(ref("3.11"))
	run("push to one tag of two", history.StatusSucceeded, "", "3.11", "3.12")
	push(ref("3.12"))
	run("every tag of the tree's versions pushed", history.StatusSkipped, "skip_if: all 2 tags pushed within 1h0m0s")
	setVersions(`"3.11", "3.12", "3.13"`)
	run("a version added to the tree", history.StatusSucceeded, "", "3.11", "3.12", "3.13")
}

// versionsFile is a file a plan's step cats as its outputs (`{"python": [...]}`), and the
// function that sets the versions it lists (`"3.11", "3.12"`).
func versionsFile(t *testing.T, dir string) (string, func(string)) {
	path := filepath.Join(dir, "versions.json")
	return path, func(v string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(`{"python": [`+v+`]}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

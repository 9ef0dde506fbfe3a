package executor

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/teststack"
	"github.com/refreshd/refreshd/plan"
)

// TestStepSkipIf: a skip_if on the cache step, over the cache tags of the Python versions a
// step reads at run time (the airflow plan's shape). When every tag was pushed within the
// window, only that step and the step that needs it (verify) are skipped, with the
// condition's reason; the constraints steps before it and beside it still run, and the run
// succeeds. Every decision, held or not, is recorded on the run with why: the tags refreshd
// has not dated yet, and a version added to the tree whose tag is missing.
func TestStepSkipIf(t *testing.T) {
	teststack.Require(t)
	reg := teststack.StartRegistry(t, teststack.RegistryOptions{})
	node := teststack.StartBuildkitd(t, "outside")
	ref := func(py string) string { return fmt.Sprintf("%s/ci/python%s:cache-linux-amd64", reg.Host, py) }

	dir := t.TempDir()
	e, st := newRegistryEngine(t, dir)
	versions, setVersions := versionsFile(t, dir)
	p, err := plan.Parse(filepath.Join(dir, "plan.yaml"), []byte(`plan: nightly
steps:
  - id: versions
    run: [cat, `+versions+`]
    outputs: { vars: { python: { pattern: '3\.[0-9]+' } } }
  - id: constraints
    needs: [versions]
    run: [touch, `+dir+`/ran-constraints]
  - id: publish
    needs: [constraints]
    run: [touch, `+dir+`/ran-publish]
  - id: cache
    needs: [publish]
    matrix: { python: "{{ .vars.python }}" }
    run: [touch, "`+dir+`/ran-cache-{{ .python }}"]
    skip_if:
      - tags:
          refs: ["`+reg.Host+`/ci/python{{ .python }}:cache-linux-amd64"]
          matrix: { python: "{{ .vars.python }}" }
          within: 1h
  - { id: verify, needs: [cache], run: [touch, `+dir+`/ran-verify] }
  - { id: on-failure, when: failure, run: [touch, `+dir+`/ran-failure] }
  - { id: cleanup, when: always, run: [touch, `+dir+`/ran-cleanup] }
`))
	if err != nil {
		t.Fatal(err)
	}
	run := func(name string, wantRan []string, fresh bool, why string) {
		t.Helper()
		old, _ := filepath.Glob(filepath.Join(dir, "ran-*"))
		for _, f := range old {
			os.Remove(f)
		}
		g, err := plan.Expand(p)
		if err != nil {
			t.Fatal(err)
		}
		r, err := e.Run(t.Context(), g, RunSpec{Trigger: history.TriggerSchedule})
		if err != nil {
			t.Fatal(err)
		}
		if r, err = st.Run(r.ID); err != nil {
			t.Fatal(err)
		}
		if r.Status != history.StatusSucceeded {
			t.Errorf("%s: run %s %q, want succeeded", name, r.Status, r.Reason)
		}
		ranFiles, _ := filepath.Glob(filepath.Join(dir, "ran-*"))
		var ran []string
		for _, f := range ranFiles {
			ran = append(ran, strings.TrimPrefix(filepath.Base(f), "ran-"))
		}
		slices.Sort(ran)
		if !slices.Equal(ran, wantRan) {
			t.Errorf("%s: ran %v, want %v", name, ran, wantRan)
		}
		if len(r.Freshness) != 1 || r.Freshness[0].Step != "cache" || r.Freshness[0].Fresh != fresh || !strings.Contains(r.Freshness[0].Why, why) {
			t.Errorf("%s: freshness %+v, want one decision of step cache, fresh %v, why containing %q", name, r.Freshness, fresh, why)
		}
		if !fresh {
			return
		}
		for _, s := range r.Steps {
			switch {
			case strings.HasPrefix(s.Instance, "cache["):
				if s.Status != history.StatusSkipped || !strings.HasPrefix(s.Reason, SkipIfReasonPrefix+"all ") {
					t.Errorf("%s: %s %s %q, want skipped by its skip_if", name, s.Instance, s.Status, s.Reason)
				}
			case s.Instance == "verify":
				if s.Status != history.StatusSkipped || !strings.Contains(s.Reason, "its skip_if held (cache is fresh)") {
					t.Errorf("%s: verify %s %q, want skipped after the fresh cache", name, s.Status, s.Reason)
				}
			}
		}
	}

	setVersions(`"3.11", "3.12"`)
	node.PushCache(t, ref("3.11"))
	node.PushCache(t, ref("3.12"))
	all := []string{"cache-3.11", "cache-3.12", "cleanup", "constraints", "publish", "verify"}
	run("first look", all, false, "cannot tell")
	node.PushCache(t, ref("3.11"))
	node.PushCache(t, ref("3.12"))
	run("every tag pushed", []string{"cleanup", "constraints", "publish"}, true, "all 2 tags pushed within 1h0m0s")
	setVersions(`"3.11", "3.12", "3.13"`)
	run("a version added to the tree", append([]string{"cache-3.11", "cache-3.12", "cache-3.13"}, all[2:]...), false, "missing in the registry: "+ref("3.13"))
}

package executor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/plan"
)

// TestExpect: a value read from the tree (the branch its branch_defaults.py names) must be
// the instance's. A run of instance main on a tree of v3-3-test fails the checked step
// without running it, naming both values, and the publish that needs it never runs; the
// same run on main's tree goes through.
func TestExpect(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		tree    string
		status  history.Status
		reason  string
		publish bool
	}{
		{tree: "main", status: history.StatusSucceeded, publish: true},
		{tree: "v3-3-test", status: history.StatusFailed,
			reason: `step build failed: expect at `, publish: false},
	} {
		t.Run(tc.tree, func(t *testing.T) {
			t.Parallel()
			e := newEngineT(t, time.Second)
			work := t.TempDir()
			tree := filepath.Join(work, "tree.json")
			if err := os.WriteFile(tree, []byte(`{"airflow_branch": "`+tc.tree+`"}`), 0o644); err != nil {
				t.Fatal(err)
			}
			plans, err := plan.ParsePlans(filepath.Join(work, "plan.yaml"), []byte(`plan: p
workdir: "`+work+`/{{ .instance }}"
instances: { main: {}, v3-3-test: {} }
steps:
  - id: tree-branch
    run: [cat, "`+tree+`"]
    outputs: { vars: { airflow_branch: { type: string, pattern: '[a-z0-9-]+' } } }
  - id: build
    needs: [tree-branch]
    expect:
      - { that: "{{ .vars.airflow_branch }}", equals: "{{ .instance }}", why: the tree's AIRFLOW_BRANCH must be the instance's branch }
    run: [touch, built]
  - { id: publish, needs: [build], run: [touch, published] }
`))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(work, "main"), 0o755); err != nil {
				t.Fatal(err)
			}
			g, err := plan.Expand(plans[0])
			if err != nil {
				t.Fatal(err)
			}
			r := e.run(t, t.Context(), g)
			if r.Status != tc.status || !strings.Contains(r.Reason, tc.reason) {
				t.Errorf("run %s %q, want %s with %q", r.Status, r.Reason, tc.status, tc.reason)
			}
			if tc.status == history.StatusFailed {
				want := `"v3-3-test", want "main" (the tree's AIRFLOW_BRANCH must be the instance's branch)`
				if !strings.HasSuffix(r.Reason, want) || !strings.Contains(r.Reason, "plan.yaml:11:9") {
					t.Errorf("reason %q, want the place and both values: %s", r.Reason, want)
				}
				if len(stepOf(t, r, "build").Attempts) != 0 {
					t.Error("the checked step ran an attempt")
				}
			}
			for file, want := range map[string]bool{"built": tc.publish, "published": tc.publish} {
				if _, err := os.Stat(filepath.Join(work, "main", file)); (err == nil) != want {
					t.Errorf("%s exists: %v, want %v", file, err == nil, want)
				}
			}
		})
	}
}

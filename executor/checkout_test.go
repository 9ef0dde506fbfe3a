package executor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/testkit"
	"github.com/refreshd/refreshd/plan"
)

// TestEngineCheckoutSourceInCommit runs a plan from YAML on real bare repositories: the
// checkout step brings the workdir to the branch tip and records it as the run's source, a
// run step sees it in its environment and builds from the checked-out tree, and the
// constraints commit names the source ref and commit, the params and the author the plan
// set. A second run with nothing new changes neither the tree nor the branch.
func TestEngineCheckoutSourceInCommit(t *testing.T) {
	testkit.Need(t, "git")
	tmp := t.TempDir()
	src, srcWork, constraints := filepath.Join(tmp, "src.git"), filepath.Join(tmp, "src-work"), filepath.Join(tmp, "c.git")
	testkit.Git(t, "", "init", "--quiet", "--bare", "--initial-branch=main", src)
	testkit.Git(t, "", "init", "--quiet", "--bare", constraints)
	testkit.Git(t, "", "clone", "--quiet", src, srcWork)
	writeT(t, filepath.Join(srcWork, "pins.txt"), "a==1.0\n")
	testkit.Git(t, srcWork, "add", "-A")
	testkit.Git(t, srcWork, "commit", "--quiet", "-m", "first")
	testkit.Git(t, srcWork, "push", "--quiet", "origin", "HEAD:main")
	head := testkit.Git(t, srcWork, "rev-parse", "HEAD")

	yaml := `plan: checkout-test
workdir: ` + filepath.Join(tmp, "work") + `
params:
  upgrade: { default: "true", values: ["true", "false"] }
env: { GIT_CONFIG_GLOBAL: /dev/null, GIT_CONFIG_NOSYSTEM: "1" }
steps:
  - id: checkout
    checkout: { repo: ` + src + `, ref: main, keep: [files] }
  - id: generate
    needs: [checkout]
    env: { FROM_REF: "{{ .source.ref }}" }
    run: [sh, -c, 'mkdir -p files && { echo "# from $1 $FROM_REF ($REFRESHD_SOURCE_COMMIT)"; cat pins.txt; } > files/constraints-3.12.txt', sh, "{{ .source.commit }}"]
  - id: publish
    needs: [generate]
    publish_constraints:
      repo: ` + constraints + `
      branch: constraints-main
      files: "files/constraints-*.txt"
      author_name: "Release bot ({{ .plan }})"
      author_email: release-bot@example.org
      message: "Update constraints from {{ .source.ref }} at {{ .source.commit }} (upgrade={{ .params.upgrade }})\n\n{{ .summary }}"
`
	p, err := plan.Parse(filepath.Join(tmp, "plan.yaml"), []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	e := newEngineT(t, time.Second)
	runPlan := func() *history.Run {
		t.Helper()
		g, err := plan.Expand(p)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		r := e.run(t, ctx, g)
		if r.Status != history.StatusSucceeded {
			t.Fatalf("run %s: %s\n%s", r.Status, r.Reason, e.out.String())
		}
		return r
	}
	r := runPlan()
	if s := r.Source; s == nil || s.Commit != head || s.Ref != "main" || s.Repo != src || !s.Changed || s.Step != "checkout" {
		t.Fatalf("run source %+v, want %s main %s, changed", s, head, src)
	}
	// The step names the source in its argv and env templates (it expands once the checkout
	// succeeded) and gets it in REFRESHD_SOURCE_COMMIT.
	if got := testkit.Git(t, constraints, "show", "constraints-main:constraints-3.12.txt"); got != "# from "+head+" main ("+head+")\na==1.0" {
		t.Errorf("published file %q: the step did not see the source commit", got)
	}
	msg := testkit.Git(t, constraints, "log", "-1", "--format=%an <%ae>%n%B", "constraints-main")
	want := "Release bot (checkout-test) <release-bot@example.org>\nUpdate constraints from main at " + head + " (upgrade=true)"
	if !strings.HasPrefix(msg, want) {
		t.Errorf("commit:\n%s\nwant it to start with:\n%s", msg, want)
	}
	published := testkit.Git(t, constraints, "rev-parse", "constraints-main")

	// Nothing new upstream: the tree stays at the commit, unchanged, and nothing is committed.
	r = runPlan()
	if s := r.Source; s == nil || s.Commit != head || s.Changed || s.Previous != head {
		t.Errorf("second run source %+v, want %s unchanged", s, head)
	}
	if got := testkit.Git(t, constraints, "rev-parse", "constraints-main"); got != published {
		t.Errorf("second run committed %s", got)
	}
	if _, err := os.Stat(filepath.Join(tmp, "work", "files", "constraints-3.12.txt")); err != nil {
		t.Errorf("keep: files/ was cleaned: %v", err)
	}
}

package refresh

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/testkit"
)

// TestUpstreamFailureNothingPublished runs, with the real engine (`refreshd run --local`)
// and a real bare repository, a plan whose constraint generation writes new constraint
// files and then fails: publish needs it, so nothing may reach the branch, although the
// files on disk differ from the branch (Airflow's rule, apache/airflow#17939: constraints come
// only from a run whose build succeeded). The control case, a generation that succeeds, does publish, so the
// test would see a publish that should not have happened.
func TestUpstreamFailureNothingPublished(t *testing.T) {
	testkit.Need(t, "git")
	write := `mkdir -p files/constraints-{{ .python }} && printf '# generated\nattrs==99.0\n' >files/constraints-{{ .python }}/constraints-{{ .python }}.txt`
	cases := []struct {
		name       string
		generate   string // shell run by each generate instance (python 3.11 and 3.12)
		wantStatus history.Status
		wantFailed []string // generate instances that fail; the publish skip names one of them
	}{
		{"every generator fails after writing", write + ` && exit 3`, history.StatusFailed, []string{"generate[python=3.11]", "generate[python=3.12]"}},
		{"one generator of the matrix fails", write + ` && [ {{ .python }} = 3.11 ]`, history.StatusFailed, []string{"generate[python=3.12]"}},
		{"control: generators succeed", write, history.StatusSucceeded, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			bare := seedBareRepo(t, dir)
			before := gitOut(t, "--git-dir", bare, "for-each-ref")
			planFile := filepath.Join(dir, "plan.yaml")
			plan := fmt.Sprintf(`plan: upstream-fails
workdir: %s
steps:
  - id: generate
    matrix: { python: ["3.11", "3.12"] }
    run: [sh, -c, %q]
  - id: publish
    needs: [generate]
    publish_constraints:
      repo: %s
      branch: constraints-main
      files: "files/constraints-*/constraints*.txt"
      author_name: refreshd test
      author_email: refreshd@localhost
`, filepath.Join(dir, "work"), tc.generate, bare)
			if err := os.MkdirAll(filepath.Join(dir, "work"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(planFile, []byte(plan), 0o644); err != nil {
				t.Fatal(err)
			}
			state := filepath.Join(dir, "state")
			run := exec.Command(refreshd.Path(t), "run", "--local", "--state", state, planFile)
			out, _ := run.CombinedOutput()
			r := lastRun(t, state)
			if r.Status != tc.wantStatus {
				t.Fatalf("run %s, want %s\n%s", r.Status, tc.wantStatus, out)
			}
			after := gitOut(t, "--git-dir", bare, "for-each-ref")
			pub := step(t, r, "publish")
			if len(tc.wantFailed) == 0 {
				if after == before || pub.Publish == nil || pub.Publish.Commit == "" {
					t.Fatalf("control run did not publish (refs %q -> %q)", before, after)
				}
				return
			}
			if after != before {
				t.Errorf("the branch moved although generation failed:\nbefore %s\nafter  %s", before, after)
			}
			if pub.Status != history.StatusSkipped || len(pub.Attempts) != 0 || pub.Publish != nil {
				t.Errorf("publish: %s, %d attempts, publish record %+v; want skipped, never started", pub.Status, len(pub.Attempts), pub.Publish)
			}
			named := false
			for _, f := range tc.wantFailed {
				named = named || strings.Contains(pub.Reason, f)
				if g := step(t, r, f); g.Status != history.StatusFailed {
					t.Errorf("%s: %s, want failed", f, g.Status)
				}
			}
			if !named {
				t.Errorf("publish skip reason %q names none of %v", pub.Reason, tc.wantFailed)
			}
		})
	}
}

// seedBareRepo makes DIR/constraints.git with branch constraints-main holding one file.
func seedBareRepo(t *testing.T, dir string) string {
	t.Helper()
	bare := filepath.Join(dir, "constraints.git")
	clone := filepath.Join(dir, "seed")
	gitOut(t, "init", "-q", "--bare", "--initial-branch=constraints-main", bare)
	gitOut(t, "init", "-q", "--initial-branch=constraints-main", clone)
	if err := os.WriteFile(filepath.Join(clone, "constraints-3.11.txt"), []byte("# seed\nattrs==23.1.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitOut(t, "-C", clone, "add", ".")
	gitOut(t, "-C", clone, "-c", "user.name=seed", "-c", "user.email=seed@localhost", "commit", "-q", "-m", "seed")
	gitOut(t, "-C", clone, "push", "-q", bare, "constraints-main")
	return bare
}

func gitOut(t *testing.T, args ...string) string {
	t.Helper()
	return testkit.Git(t, "", args...)
}

// lastRun reads the newest run of a state directory as the CLI documents it: `refreshd
// history -o json --limit 1` lists run headers (step counts, no steps), so the whole
// record, steps and attempts included, comes from `refreshd logs -o json RUN`. The
// header's counts must agree with the record's steps.
func lastRun(t *testing.T, state string) *history.Run {
	t.Helper()
	var runs []*history.Run
	if out := cliJSON(t, "history", "--state", state, "-o", "json", "--limit", "1"); json.Unmarshal(out, &runs) != nil || len(runs) != 1 {
		t.Fatalf("refreshd history printed %d runs:\n%s", len(runs), out)
	}
	head := runs[0]
	var logs struct {
		Run *history.Run `json:"run"`
	}
	out := cliJSON(t, "logs", "--state", state, "-o", "json", head.ID)
	if err := json.Unmarshal(out, &logs); err != nil || logs.Run == nil || logs.Run.ID != head.ID {
		t.Fatalf("refreshd logs %s printed no record of that run (%v):\n%s", head.ID, err, out)
	}
	if head.Summary == nil || head.Summary.Total != len(logs.Run.Steps) {
		t.Fatalf("refreshd history's step summary %+v, but run %s has %d steps", head.Summary, head.ID, len(logs.Run.Steps))
	}
	return logs.Run
}

// cliJSON is the standard output of a refreshd command that must succeed.
func cliJSON(t *testing.T, args ...string) []byte {
	t.Helper()
	c := exec.Command(refreshd.Path(t), args...)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		t.Fatalf("refreshd %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

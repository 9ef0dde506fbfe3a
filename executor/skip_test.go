package executor

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/internal/teststack"
	"github.com/refreshd/refreshd/plan"
)

// bareRepoWithCommit makes a bare repository whose branch has one commit dated at.
func bareRepoWithCommit(t *testing.T, branch string, at time.Time) string {
	t.Helper()
	dir := t.TempDir()
	bare, work := filepath.Join(dir, "remote.git"), filepath.Join(dir, "work")
	date := at.Format(time.RFC3339)
	env := append(os.Environ(), "GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date,
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.invalid", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.invalid")
	for _, args := range [][]string{
		{"init", "--quiet", "--bare", bare},
		{"init", "--quiet", "-b", branch, work},
		{"-C", work, "commit", "--quiet", "--allow-empty", "-m", "constraints"},
		{"-C", work, "push", "--quiet", bare, branch},
	} {
		cmd := exec.Command("git", args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return "file://" + bare
}

func TestCheckSkip(t *testing.T) {
	teststack.Require(t)
	reg := teststack.StartRegistry(t, teststack.RegistryOptions{})
	fresh := bareRepoWithCommit(t, "constraints-main", time.Now().Add(-time.Hour))
	stale := bareRepoWithCommit(t, "constraints-main", time.Now().Add(-48*time.Hour))
	tools := &Tools{PlainHTTPRegistries: []string{"127.0.0.1"}, DockerConfig: teststack.DockerConfig(t)}
	branch := func(repo string, within time.Duration) plan.SkipCondition {
		return plan.SkipCondition{Branch: &plan.BranchFreshness{Repo: repo, Branch: "constraints-main", Within: within}}
	}
	tests := []struct {
		name       string
		conds      []plan.SkipCondition
		skip       bool
		reason     string
		errContain string
	}{
		{name: "no conditions"},
		{name: "branch fresh", conds: []plan.SkipCondition{branch(fresh, 6*time.Hour)}, skip: true, reason: "branch constraints-main last commit 1h0m"},
		{name: "branch stale", conds: []plan.SkipCondition{branch(stale, 6*time.Hour)}},
		{name: "second condition holds", conds: []plan.SkipCondition{branch(stale, 6*time.Hour), branch(fresh, 2*time.Hour)}, skip: true, reason: "within 2h0m0s"},
		{name: "missing image", conds: []plan.SkipCondition{{Pos: plan.Pos{File: "p.yaml", Line: 7, Col: 5}, Image: &plan.ImageFreshness{Ref: reg.Host + "/none:latest", Within: time.Hour}}},
			errContain: "skip_if at p.yaml:7:5: read image " + reg.Host + "/none:latest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			skip, reason, err := tools.checkSkip(t.Context(), &plan.Plan{SkipIf: tt.conds}, nil)
			if tt.errContain != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errContain) {
					t.Fatalf("error %v, want %q", err, tt.errContain)
				}
				return
			}
			if err != nil || skip != tt.skip || !strings.Contains(reason, tt.reason) {
				t.Fatalf("checkSkip = %v, %q, %v; want %v, %q", skip, reason, err, tt.skip, tt.reason)
			}
		})
	}
}

package executor

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/internal/testkit"
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
		cmd := testkit.GitCmd(t.Context(), "", args...)
		cmd.Env = append(cmd.Env, env...)
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
	missing := plan.SkipCondition{Pos: plan.Pos{File: "p.yaml", Line: 7, Col: 5}, Image: &plan.ImageFreshness{Ref: reg.Host + "/none:latest", Within: time.Hour}}
	unreachable := branch("file://"+filepath.Join(t.TempDir(), "no-such.git"), time.Hour)
	unreachable.Pos = plan.Pos{File: "p.yaml", Line: 9, Col: 5}
	tests := []struct {
		name     string
		conds    []plan.SkipCondition
		skip     bool
		reason   string
		warnings []string // substrings, one per warning
	}{
		{name: "no conditions"},
		{name: "branch fresh", conds: []plan.SkipCondition{branch(fresh, 6*time.Hour)}, skip: true, reason: "branch constraints-main last commit 1h0m"},
		{name: "branch stale", conds: []plan.SkipCondition{branch(stale, 6*time.Hour)}, reason: "branch constraints-main last commit 48h0m"},
		{name: "second condition holds", conds: []plan.SkipCondition{branch(stale, 6*time.Hour), branch(fresh, 2*time.Hour)}, skip: true, reason: "within 2h0m0s"},
		{name: "missing image is not fresh", conds: []plan.SkipCondition{missing},
			warnings: []string{"skip_if at p.yaml:7:5: cannot tell whether image " + reg.Host + "/none:latest is fresh, refreshing: read image"}},
		{name: "unreachable branch is not fresh", conds: []plan.SkipCondition{unreachable},
			warnings: []string{"skip_if at p.yaml:9:5: cannot tell whether branch constraints-main is fresh, refreshing: last commit of constraints-main"}},
		{name: "a later condition still holds", conds: []plan.SkipCondition{missing, branch(fresh, 2*time.Hour)}, skip: true, reason: "branch constraints-main",
			warnings: []string{"p.yaml:7:5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The run's rule: the first condition that holds skips; the reason of each that does
			// not is recorded too (item 8), so the last one's is kept here.
			var skip bool
			var reason string
			var warnings []string
			for _, c := range tt.conds {
				fresh, why, warn := tools.checkCond(t.Context(), &plan.Graph{Plan: &plan.Plan{SkipIf: tt.conds}}, c, nil, nil, nil, nil, nil, slog.New(slog.NewTextHandler(t.Output(), nil)))
				if warn != "" {
					warnings = append(warnings, warn)
				}
				skip, reason = fresh, why
				if fresh {
					break
				}
			}
			if skip != tt.skip || !strings.Contains(reason, tt.reason) {
				t.Errorf("checkCond = %v, %q; want %v, %q", skip, reason, tt.skip, tt.reason)
			}
			if len(warnings) != len(tt.warnings) {
				t.Fatalf("warnings %q, want %d", warnings, len(tt.warnings))
			}
			for i, w := range tt.warnings {
				if !strings.Contains(warnings[i], w) {
					t.Errorf("warning %q, want it to contain %q", warnings[i], w)
				}
			}
		})
	}
}

// TestBranchToken: a skip_if branch is read with the token of the plan's publish step to the
// same repository, and with none otherwise.
func TestBranchToken(t *testing.T) {
	const repo = "https://github.com/apache/airflow.git"
	g := &plan.Graph{Instances: []*plan.Instance{
		{ID: "build", Action: &plan.RunAction{Argv: []string{"true"}}},
		{ID: "publish-fork", Action: &plan.PublishAction{PublishConstraints: plan.PublishConstraints{Repo: "https://github.com/fork/airflow.git", Branch: "constraints-main", Token: "FORK_TOKEN"}}},
		{ID: "publish", Action: &plan.PublishAction{PublishConstraints: plan.PublishConstraints{Repo: repo, Branch: "constraints-main", Token: "GH_TOKEN"}}},
	}}
	secrets := map[string]string{"GH_TOKEN": "ghs_main", "FORK_TOKEN": "ghs_fork"}
	for _, tt := range []struct{ repo, want string }{
		{repo, "ghs_main"},
		{"https://github.com/fork/airflow.git", "ghs_fork"},
		{"https://github.com/other/repo.git", ""},
	} {
		if got := branchToken(g, tt.repo, secrets); got != tt.want {
			t.Errorf("branchToken(%s) = %q, want %q", tt.repo, got, tt.want)
		}
	}
}

package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/executor/git"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/testkit"
	"github.com/refreshd/refreshd/plan"
)

func writeT(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// seededRemote is a bare remote whose branch constraints-main holds constraints-3.12.txt
// pinning a==1.0 and b==2.0.
func seededRemote(t *testing.T) string {
	t.Helper()
	remote := filepath.Join(t.TempDir(), "c.git")
	testkit.Git(t, "", "init", "--quiet", "--bare", remote)
	seed := t.TempDir()
	testkit.Git(t, seed, "init", "--quiet", "-b", "constraints-main")
	writeT(t, filepath.Join(seed, "constraints-3.12.txt"), "# 2024\na==1.0\nb==2.0\n")
	testkit.Git(t, seed, "add", ".")
	testkit.Git(t, seed, "commit", "--quiet", "-m", "seed")
	testkit.Git(t, seed, "push", "--quiet", remote, "HEAD:refs/heads/constraints-main")
	return remote
}

// TestPublishGlue runs the publish action through the Attempt contract against a real bare
// remote: the history record, the rendered message, the downgrade warning, the dry run, and
// the plan token never reaching output, record or warnings.
func TestPublishGlue(t *testing.T) {
	testkit.Need(t, "git")
	const secret = "glue-s3cret-token"
	remote := seededRemote(t)
	seedHead := testkit.Git(t, remote, "rev-parse", "constraints-main")

	work, state := t.TempDir(), t.TempDir()
	writeT(t, filepath.Join(work, "files/constraints-3.12/constraints-3.12.txt"), "# 2025\na==1.1\nb==1.9\n")

	for _, dry := range []bool{true, false} {
		var out bytes.Buffer
		var rec history.Step
		var warnings []string
		act := &plan.PublishAction{PublishConstraints: plan.PublishConstraints{
			Repo: remote, Branch: "constraints-main", Files: "files/constraints-*/constraints*.txt",
			AuthorName: "bot", AuthorEmail: "bot@example.com", Token: "GH",
			Message: "Constraints {{ .plan }}/{{ .run }}: {{ .summary }}",
		}}
		a := &Attempt{
			RunID: "r-42", Plan: &plan.Plan{Name: "airflow-main", Workdir: work},
			Instance: &plan.Instance{ID: "publish-constraints", Workdir: work,
				Env: map[string]string{"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}},
			Workdir: work, N: 1, Log: slog.New(slog.DiscardHandler), Output: &out,
			Secrets:  map[string]string{"GH": secret},
			Record:   func(f func(*history.Step)) { f(&rec) },
			Warn:     func(m string) { warnings = append(warnings, m) },
			StateDir: state, DryRun: dry,
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := publish{act}.run(ctx, &Tools{}, a)
		cancel()
		if err != nil {
			t.Fatalf("dry=%v: publish: %v\n%s", dry, err, out.String())
		}
		p := rec.Publish
		if p == nil || !p.Changed || p.Summary != "1 upgraded, 1 downgraded in 1 file" || len(p.Changes) != 2 {
			t.Fatalf("dry=%v: record = %+v", dry, p)
		}
		head := testkit.Git(t, remote, "rev-parse", "constraints-main")
		if dry {
			if p.Commit != "" || head != seedHead || !strings.Contains(out.String(), "b: 2.0 -> 1.9 (DOWNGRADE)") {
				t.Errorf("dry run: commit %q, head moved %v, output:\n%s", p.Commit, head != seedHead, out.String())
			}
		} else {
			if p.Commit != head || p.PushAttempts != 1 {
				t.Errorf("record %+v, remote head %s", p, head)
			}
			if msg := testkit.Git(t, remote, "log", "-1", "--format=%an|%s", head); msg != "bot|Constraints airflow-main/r-42: 1 upgraded, 1 downgraded in 1 file" {
				t.Errorf("commit = %q", msg)
			}
		}
		if len(warnings) != 1 || !strings.Contains(warnings[0], "b downgraded 2.0 -> 1.9") {
			t.Errorf("dry=%v: warnings = %q, want one downgrade warning", dry, warnings)
		}
		js, _ := json.Marshal(rec)
		if strings.Contains(out.String()+string(js)+strings.Join(warnings, ""), secret) {
			t.Errorf("the token leaked")
		}
	}
}

func TestPublishMissingSecret(t *testing.T) {
	act := &plan.PublishAction{PublishConstraints: plan.PublishConstraints{Repo: "/nonexistent", Branch: "b", Files: "*.txt", Token: "GH"}}
	a := &Attempt{Plan: &plan.Plan{Name: "p"}, Secrets: map[string]string{}, StateDir: t.TempDir()}
	err := publish{act}.run(context.Background(), &Tools{}, a)
	if err == nil || !strings.Contains(err.Error(), "secret GH") {
		t.Fatalf("err = %v, want one naming the missing secret", err)
	}
}

func TestDescribePublishHidesCredentials(t *testing.T) {
	act := &plan.PublishAction{PublishConstraints: plan.PublishConstraints{
		Repo: "https://x:tok123456@github.com/apache/airflow.git", Branch: "constraints-main", Files: "files/*.txt"}}
	ops := strings.Join(Describe(nil, &plan.Instance{Action: act}, nil), "\n")
	if strings.Contains(ops, "tok123456") || !strings.Contains(ops, "never --force") || !strings.Contains(ops, "https://github.com/apache/airflow.git") {
		t.Errorf("describePublish:\n%s", ops)
	}
}

// TestEnginePublishDefaultWorkdir runs a plan that sets no workdir through the engine: its run
// step writes the constraints into the default workdir (STATE/work/PLAN), and the publish
// step must find them there and push them to a real bare remote.
func TestEnginePublishDefaultWorkdir(t *testing.T) {
	testkit.Need(t, "git")
	remote := filepath.Join(t.TempDir(), "c.git")
	testkit.Git(t, "", "init", "--quiet", "--bare", remote)
	e := newEngineT(t, time.Second)
	gen := step("generate", "sh", "-c", `mkdir -p files && printf '# generated\na==1.1\n' > files/constraints-3.12.txt`)
	pub := needs(&plan.Instance{ID: "publish", Step: &plan.Step{ID: "publish"}, ConcurrencyKey: "publish",
		Env: map[string]string{"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"},
		Action: &plan.PublishAction{PublishConstraints: plan.PublishConstraints{
			Repo: remote, Branch: "constraints-main", Files: "files/constraints-*.txt"}}}, "generate")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := e.run(t, ctx, graph(&plan.Plan{Name: "no-workdir"}, gen, pub))
	if r.Status != history.StatusSucceeded {
		t.Fatalf("run %s %q; publish step: %+v\n%s", r.Status, r.Reason, stepOf(t, r, "publish"), e.out.String())
	}
	if got := testkit.Git(t, remote, "show", "constraints-main:constraints-3.12.txt"); got != "# generated\na==1.1" {
		t.Errorf("published file = %q", got)
	}
	if p := stepOf(t, r, "publish").Publish; p == nil || p.Commit != testkit.Git(t, remote, "rev-parse", "constraints-main") {
		t.Errorf("publish record %+v does not name the remote head", p)
	}
	// The commit message is the plan package's default, rendered.
	want := "Update constraints (1 added in 1 file)\n\nrun " + r.ID + " of plan no-workdir"
	if msg := testkit.Git(t, remote, "log", "-1", "--format=%B", "constraints-main"); msg != want {
		t.Errorf("commit message %q, want %q", msg, want)
	}
}

// TestPublishErrorSaysItOnce checks that the executor adds nothing to git's error: the
// repository and branch are named once, followed by the failed operation.
func TestPublishErrorSaysItOnce(t *testing.T) {
	testkit.Need(t, "git")
	remote := filepath.Join(t.TempDir(), "c.git")
	testkit.Git(t, "", "init", "--quiet", "--bare", remote)
	work := t.TempDir()
	act := &plan.PublishAction{PublishConstraints: plan.PublishConstraints{Repo: remote, Branch: "constraints-main", Files: "files/*.txt"}}
	a := &Attempt{RunID: "r-1", Plan: &plan.Plan{Name: "p"}, Instance: &plan.Instance{ID: "publish",
		Env: map[string]string{"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}},
		Workdir: work, Log: slog.New(slog.DiscardHandler), Output: &bytes.Buffer{},
		Record: func(func(*history.Step)) {}, Warn: func(string) {}, StateDir: t.TempDir()}
	err := publish{act}.run(t.Context(), &Tools{}, a)
	want := "publish constraints to " + remote + " branch constraints-main: files files/*.txt: no file matches in " + work +
		" (the generation produced nothing to publish)"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant   %s", err, want)
	}
}

// A publish step retried after a failed push keeps, on its record, the commits made outside
// refreshd that its first attempt found: the first attempt marked the branch head seen, so
// the retry finds none, and its record must not drop what the first one found.
func TestPublishRetryKeepsOutsideCommits(t *testing.T) {
	testkit.Need(t, "git")
	remote := seededRemote(t)

	e := newEngineT(t, time.Second)
	work := t.TempDir()
	p := &plan.Plan{Name: "outside", Workdir: work}
	pub := func(retry plan.Retry) *plan.Graph {
		return graph(p, &plan.Instance{ID: "publish", Step: &plan.Step{ID: "publish"}, ConcurrencyKey: "publish", Retry: retry,
			Env: map[string]string{"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"},
			Action: &plan.PublishAction{PublishConstraints: plan.PublishConstraints{
				Repo: remote, Branch: "constraints-main", Files: "files/constraints-*.txt"}}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	writeT(t, filepath.Join(work, "files/constraints-3.12.txt"), "# 2025\na==1.1\nb==2.0\n")
	if r := e.run(t, ctx, pub(plan.Retry{})); r.Status != history.StatusSucceeded {
		t.Fatalf("first run %s %q\n%s", r.Status, r.Reason, e.out.String())
	}

	// Someone pins b by hand; then the remote refuses refreshd's next push once, with an
	// error the default retry patterns take as transient.
	other := t.TempDir()
	testkit.Git(t, other, "clone", "--quiet", "--branch", "constraints-main", remote, ".")
	writeT(t, filepath.Join(other, "constraints-3.12.txt"), "# 2025\na==1.1\nb==2.1\n")
	testkit.Git(t, other, "commit", "--quiet", "--author", "Jane Human <jane@example.com>", "-am", "pin b")
	testkit.Git(t, other, "push", "--quiet", "origin", "HEAD:constraints-main")
	human := testkit.Git(t, other, "rev-parse", "HEAD")
	marker := filepath.Join(t.TempDir(), "refused")
	hook := filepath.Join(remote, "hooks", "pre-receive")
	writeT(t, hook, "#!/bin/sh\nif [ ! -e "+marker+" ]; then : > "+marker+"; echo '503 Service Unavailable' >&2; exit 1; fi\n")
	if err := os.Chmod(hook, 0o755); err != nil {
		t.Fatal(err)
	}

	writeT(t, filepath.Join(work, "files/constraints-3.12.txt"), "# 2026\na==1.2\nb==2.1\n")
	r := e.run(t, ctx, pub(plan.Retry{Attempts: 2, Backoff: 10 * time.Millisecond}))
	st := stepOf(t, r, "publish")
	if r.Status != history.StatusSucceeded || len(st.Attempts) != 2 {
		t.Fatalf("second run %s %q, %d attempts; want it pushed on its second attempt\n%s", r.Status, r.Reason, len(st.Attempts), e.out.String())
	}
	if st.Publish == nil || len(st.Publish.Outside) != 1 || st.Publish.Outside[0].Commit != human ||
		st.Publish.Outside[0].Author != "Jane Human <jane@example.com>" {
		t.Errorf("publish record %+v: want the outside commit %s the first attempt found", st.Publish, human)
	}
}

// The commits made outside refreshd that a step's attempts found are merged on its record
// (the newest first, each once) and stay within the API's bound, MaxOutsideCommits.
func TestPublishRecordMergesOutside(t *testing.T) {
	commits := func(from, n int) []git.OutsideCommit {
		out := make([]git.OutsideCommit, n)
		for i := range out {
			out[i] = git.OutsideCommit{Commit: fmt.Sprint("c", from+i), Author: "a <a@x>"}
		}
		return out
	}
	for _, tc := range []struct {
		name            string
		earlier, later  []git.OutsideCommit
		wantN           int
		wantFirst, note string
	}{
		{"retry found none", commits(10, 3), nil, 3, "c10", ""},
		{"both found some, one twice", commits(10, 3), commits(12, 2), 4, "c12", ""},
		{"more than the bound", commits(100, 40), commits(200, 20), git.MaxOutsideCommits, "c200", "the attempts found more than 50 commits"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prev := publishRecord(&git.Result{Outside: tc.earlier}, nil)
			p := publishRecord(&git.Result{Outside: tc.later}, prev)
			seen := map[string]bool{}
			for _, oc := range p.Outside {
				if seen[oc.Commit] {
					t.Errorf("%s recorded twice", oc.Commit)
				}
				seen[oc.Commit] = true
			}
			if len(p.Outside) != tc.wantN || p.Outside[0].Commit != tc.wantFirst || !strings.HasPrefix(p.OutsideNote, tc.note) {
				t.Errorf("%d commits, first %s, note %q; want %d, %s, %q", len(p.Outside), p.Outside[0].Commit, p.OutsideNote, tc.wantN, tc.wantFirst, tc.note)
			}
		})
	}
}

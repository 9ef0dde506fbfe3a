package git

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/refreshd/refreshd/internal/testkit"
)

// Reconcile tells a pushed commit (head or ancestor after others pushed on top) from one the
// remote refused or never got, and from a branch that does not exist.
func TestReconcile(t *testing.T) {
	f := newFixture(t)
	var pushing []string
	o := f.options()
	o.Pushing = func(res *Result) { pushing = append(pushing, res.Pushing) }
	f.generate(t, "2024-02-01T00:00:00Z", append(seedPins[:3:3], "requests==2.32.0"), []string{"requests==2.32.0"})
	res, err := Publish(testCtx(t), o)
	if err != nil || res.Commit == "" || len(pushing) != 1 || pushing[0] != res.Commit {
		t.Fatalf("publish: %+v, %v; Pushing saw %v", res, err, pushing)
	}
	published := res.Commit

	// The remote refuses the next push: its commit exists only in refreshd's clone.
	hook := filepath.Join(f.remote, "hooks", "pre-receive")
	writeFile(t, hook, "#!/bin/sh\necho refused >&2\nexit 1\n")
	os.Chmod(hook, 0o755)
	f.generate(t, "2024-03-01T00:00:00Z", append(seedPins[:3:3], "requests==2.33.0"), []string{"requests==2.33.0"})
	res, err = Publish(testCtx(t), o)
	if err == nil || res.Pushing == "" || res.Commit != "" {
		t.Fatalf("refused publish: %+v, %v", res, err)
	}
	refused := res.Pushing
	os.Remove(hook)

	// Someone else pushes on top of the published commit.
	other := t.TempDir()
	testkit.Git(t, other, "clone", "--quiet", "-b", branch, f.remote, ".")
	writeFile(t, filepath.Join(other, "README.md"), "changed by someone else\n")
	testkit.Git(t, other, "commit", "--quiet", "-am", "someone else")
	testkit.Git(t, other, "push", "--quiet", "origin", branch)

	for _, tt := range []struct {
		name, branch, commit string
		want                 bool
	}{
		{"published, others pushed on top", branch, published, true},
		{"the branch head", branch, f.head(t), true},
		{"refused by the remote", branch, refused, false},
		{"unknown commit", branch, "0123456789abcdef0123456789abcdef01234567", false},
		{"branch does not exist", "no-such-branch", published, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Reconcile(testCtx(t), ReconcileOptions{Repo: f.remote, Branch: tt.branch, Commit: tt.commit, StateDir: f.state, Env: testkit.GitEnv()})
			if err != nil || got != tt.want {
				t.Errorf("Reconcile = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	if _, err := Reconcile(testCtx(t), ReconcileOptions{Repo: filepath.Join(t.TempDir(), "gone.git"), Branch: branch, Commit: published, StateDir: f.state, Env: testkit.GitEnv()}); err == nil {
		t.Error("Reconcile against a missing remote: no error")
	}
}

// A push cut short while the branch is still at the commit's parent may yet land (the
// remote's receive-pack is not refreshd's to stop): Reconcile finishes it, never forced,
// and reports what the remote then holds. A remote that refuses the finishing push too
// leaves the commit off the branch, and says so.
func TestReconcileFinishesAnInterruptedPush(t *testing.T) {
	f := newFixture(t)
	o := f.options()
	f.generate(t, "2024-02-01T00:00:00Z", append(seedPins[:3:3], "requests==2.32.0"), []string{"requests==2.32.0"})
	if _, err := Publish(testCtx(t), o); err != nil {
		t.Fatal(err)
	}
	base := f.head(t)
	// The commit refreshd handed to git push, which never reached the remote: here the
	// remote refuses it, which leaves it in refreshd's clone only, as a cut push does.
	hook := filepath.Join(f.remote, "hooks", "pre-receive")
	writeFile(t, hook, "#!/bin/sh\necho refused >&2\nexit 1\n")
	os.Chmod(hook, 0o755)
	f.generate(t, "2024-03-01T00:00:00Z", append(seedPins[:3:3], "requests==2.33.0"), []string{"requests==2.33.0"})
	res, err := Publish(testCtx(t), o)
	if err == nil || res.Pushing == "" {
		t.Fatalf("refused publish: %+v, %v", res, err)
	}
	reconcile := func() bool {
		t.Helper()
		got, err := Reconcile(testCtx(t), ReconcileOptions{Repo: f.remote, Branch: branch, Commit: res.Pushing, StateDir: f.state, Env: testkit.GitEnv()})
		if err != nil {
			t.Fatalf("Reconcile: %v", err)
		}
		return got
	}
	if reconcile() || f.head(t) != base {
		t.Fatalf("a remote still refusing: the commit is reported on the branch, or the branch moved (head %s, was %s)", f.head(t), base)
	}
	os.Remove(hook)
	if !reconcile() || f.head(t) != res.Pushing {
		t.Fatalf("the branch at the commit's parent: Reconcile did not finish the push (head %s, want %s)", f.head(t), res.Pushing)
	}
	assertNoForce(t, f.remote)
}

package git

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/gofrs/flock"

	"github.com/refreshd/refreshd/internal/testkit"
)

func TestPublishOnlyHeaderChangedMakesNoCommit(t *testing.T) {
	f := newFixture(t)
	f.generate(t, "2025-06-01T02:00:00Z", seedPins, []string{"requests==2.31.0"})
	var out bytes.Buffer
	o := f.options()
	o.Output = &out
	res, err := Publish(testCtx(t), o)
	if err != nil {
		t.Fatalf("publish: %v\n%s", err, out.String())
	}
	if res.Changed || res.Commit != "" || res.Summary != "no change" || res.PushAttempts != 0 {
		t.Errorf("result = %+v, want unchanged with no commit", res)
	}
	if got := f.head(t); got != f.seed {
		t.Errorf("remote head moved to %s; a header-only change must not commit", got)
	}
}

func TestPublishPinsChangedMakesOneCommit(t *testing.T) {
	f := newFixture(t)
	pins := []string{"apache-beam==2.51.0", "boto3==1.27.9", "flask==3.0.0", "requests==2.31.0"} // celery removed
	f.generate(t, "2025-06-01T02:00:00Z", pins, []string{"requests==2.31.0"})                    // header only
	o := f.options()
	o.Message = func(s string) string { return "Updating constraints. Run r-1 of plan airflow-main: " + s }
	res, err := Publish(testCtx(t), o)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	want := "1 upgraded, 1 downgraded, 1 added, 1 removed in 1 file"
	if !res.Changed || res.Summary != want || res.PushAttempts != 1 || res.Commit == "" {
		t.Fatalf("result = %+v, want changed, summary %q, one push", res, want)
	}
	head := f.head(t)
	if head != res.Commit {
		t.Errorf("remote head %s, result commit %s", head, res.Commit)
	}
	if n := testkit.Git(t, f.remote, "rev-list", "--count", f.seed+".."+head); n != "1" {
		t.Errorf("%s commits on top of the seed, want exactly 1", n)
	}
	if files := testkit.Git(t, f.remote, "show", "--format=", "--name-only", head); files != "constraints-3.11.txt" {
		t.Errorf("commit touches %q, want only constraints-3.11.txt (header-only changes are not committed)", files)
	}
	if msg := testkit.Git(t, f.remote, "log", "-1", "--format=%an <%ae>|%s", head); msg != "refreshd-test <refreshd@example.com>|Updating constraints. Run r-1 of plan airflow-main: "+want {
		t.Errorf("commit = %q", msg)
	}
	if got := testkit.Git(t, f.remote, "show", head+":constraints-3.11.txt"); got+"\n" != constraints("2025-06-01T02:00:00Z", pins...) {
		t.Errorf("published file:\n%s", got)
	}
	tree := testkit.Git(t, f.remote, "ls-tree", "--name-only", head)
	if tree != "README.md\nconstraints-3.11.txt\nconstraints-no-providers-3.11.txt" {
		t.Errorf("branch files = %q: original-*/diff-* must not be published and README.md must stay", tree)
	}
	wantChanges := []Change{
		{File: "constraints-3.11.txt", Package: "apache-beam", Old: "2.50.0", New: "2.51.0", Kind: Upgraded},
		{File: "constraints-3.11.txt", Package: "boto3", Old: "1.28.0", New: "1.27.9", Kind: Downgraded},
		{File: "constraints-3.11.txt", Package: "celery", Old: "5.3.1", Kind: Removed},
		{File: "constraints-3.11.txt", Package: "flask", New: "3.0.0", Kind: Added},
	}
	if !reflect.DeepEqual(res.Changes(), wantChanges) {
		t.Errorf("changes = %+v\nwant %+v", res.Changes(), wantChanges)
	}

	// The next run with the same pins (new timestamp) finds nothing to do.
	f.generate(t, "2025-06-02T02:00:00Z", pins, []string{"requests==2.31.0"})
	res, err = Publish(testCtx(t), o)
	if err != nil || res.Changed {
		t.Fatalf("second publish: %+v, %v; want unchanged", res, err)
	}
	assertNoForce(t, f.remote)
}

func TestPublishIntoNewBranchAndSubdirectory(t *testing.T) {
	f := newFixture(t)
	f.generate(t, "2025-06-01T02:00:00Z", seedPins, []string{"requests==2.31.0"})
	o := f.options()
	o.Branch = "constraints-new"
	o.Dir = "py/3.11"
	res, err := Publish(testCtx(t), o)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if res.Summary != "5 added across 2 files" {
		t.Errorf("summary = %q", res.Summary)
	}
	tree := testkit.Git(t, f.remote, "ls-tree", "-r", "--name-only", "refs/heads/constraints-new")
	if tree != "py/3.11/constraints-3.11.txt\npy/3.11/constraints-no-providers-3.11.txt" {
		t.Errorf("new branch holds %q", tree)
	}
	if parents := testkit.Git(t, f.remote, "log", "-1", "--format=%P", "refs/heads/constraints-new"); parents != "" {
		t.Errorf("first commit of a new branch has parents %q, want a root commit", parents)
	}
}

// racingRunner pushes a commit from another clone just before refreshd's push, for the
// first `races` pushes.
type racingRunner struct {
	ExecRunner
	t     *testing.T
	other func(n int)
	races int
	mu    sync.Mutex
	n     int
}

func (r *racingRunner) Git(ctx context.Context, dir string, env []string, args ...string) ([]byte, error) {
	if len(args) > 0 && args[0] == "push" {
		r.mu.Lock()
		r.n++
		n := r.n
		r.mu.Unlock()
		if n <= r.races {
			r.other(n)
		}
	}
	return r.ExecRunner.Git(ctx, dir, env, args...)
}

func TestPublishRetriesWhenAnotherClonePushesFirst(t *testing.T) {
	newPins := []string{"apache-beam==2.51.0", "boto3==1.28.0", "celery==5.3.1", "requests==2.32.0"}
	tests := []struct {
		name        string
		races       int
		maxAttempts int
		otherWrites func(f *fixture) (name, data string)
		wantErr     string
		wantChanged bool
		wantPushes  int
	}{
		{
			name: "unrelated commit: both kept", races: 1,
			otherWrites: func(*fixture) (string, string) { return "README.md", "edited by a human\n" },
			wantChanged: true, wantPushes: 2,
		},
		{
			name: "other pushed the same pins: nothing left to do", races: 1,
			otherWrites: func(*fixture) (string, string) {
				return "constraints-3.11.txt", constraints("2025-06-01T01:00:00Z", newPins...)
			},
			wantChanged: false, wantPushes: 1,
		},
		{
			name: "branch keeps moving: bounded", races: 10, maxAttempts: 3,
			otherWrites: func(*fixture) (string, string) { return "README.md", "" },
			wantErr:     "moved on every one of 3 attempts", wantChanged: true, wantPushes: 3,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.generate(t, "2025-06-01T02:00:00Z", newPins, []string{"requests==2.31.0"})
			other := t.TempDir()
			testkit.Git(t, other, "clone", "--quiet", "--branch", branch, f.remote, ".")
			var otherCommits []string
			o := f.options()
			if tc.maxAttempts > 0 {
				o.MaxAttempts = tc.maxAttempts
			}
			o.Runner = &racingRunner{t: t, races: tc.races, other: func(n int) {
				name, data := tc.otherWrites(f)
				if data == "" {
					data = strings.Repeat("edit\n", n)
				}
				testkit.Git(t, other, "pull", "--quiet", "--ff-only")
				writeFile(t, filepath.Join(other, name), data)
				testkit.Git(t, other, "commit", "--quiet", "-am", "human edit")
				testkit.Git(t, other, "push", "--quiet", "origin", "HEAD")
				otherCommits = append(otherCommits, testkit.Git(t, other, "rev-parse", "HEAD"))
			}}
			res, err := Publish(testCtx(t), o)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatalf("publish: %v", err)
			}
			if res.Changed != tc.wantChanged || res.PushAttempts != tc.wantPushes {
				t.Errorf("changed=%v pushes=%d, want %v and %d", res.Changed, res.PushAttempts, tc.wantChanged, tc.wantPushes)
			}
			head := f.head(t)
			for _, c := range otherCommits {
				if out := testkit.Git(t, f.remote, "branch", "--contains", c); !strings.Contains(out, branch) {
					t.Errorf("the other clone's commit %s is not in the remote history", c)
				}
			}
			if tc.wantErr == "" && tc.wantChanged {
				if res.Commit != head {
					t.Errorf("remote head %s, refreshd commit %s", head, res.Commit)
				}
				if got := testkit.Git(t, f.remote, "show", head+":constraints-3.11.txt"); !strings.Contains(got, "requests==2.32.0") {
					t.Errorf("refreshd's change is not on the branch:\n%s", got)
				}
			}
			assertNoForce(t, f.remote)
		})
	}
}

func TestPublishRemoteUnreachableThenBack(t *testing.T) {
	f := newFixture(t)
	f.generate(t, "2025-06-01T02:00:00Z", seedPins, []string{"requests==2.31.0"})
	o := f.options()
	if _, err := Publish(testCtx(t), o); err != nil { // the clone exists from now on
		t.Fatalf("first publish: %v", err)
	}
	moved := f.remote + ".away"
	if err := os.Rename(f.remote, moved); err != nil {
		t.Fatal(err)
	}
	f.generate(t, "2025-06-02T02:00:00Z", []string{"apache-beam==2.52.0"}, []string{"requests==2.31.0"})
	_, err := Publish(testCtx(t), o)
	if err == nil {
		t.Fatal("publish to a missing remote succeeded")
	}
	t.Logf("error as shown: %v", err)
	for _, want := range []string{f.remote, branch, "after 2 tries"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if err := os.Rename(moved, f.remote); err != nil {
		t.Fatal(err)
	}
	res, err := Publish(testCtx(t), o)
	if err != nil || !res.Changed || f.head(t) != res.Commit {
		t.Fatalf("publish after the remote came back: %+v, %v", res, err)
	}
}

func TestPublishReplacesBrokenClone(t *testing.T) {
	breakers := map[string]func(t *testing.T, clone string){
		"stale index.lock": func(t *testing.T, c string) { writeFile(t, filepath.Join(c, ".git/index.lock"), "") },
		"half clone":       func(t *testing.T, c string) { os.RemoveAll(filepath.Join(c, ".git/objects")) },
		"no .git":          func(t *testing.T, c string) { os.RemoveAll(filepath.Join(c, ".git")) },
		"garbage HEAD":     func(t *testing.T, c string) { writeFile(t, filepath.Join(c, ".git/HEAD"), "garbage") },
	}
	for name, breakClone := range breakers {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.generate(t, "2025-06-01T02:00:00Z", seedPins, []string{"requests==2.31.0"})
			o := f.options()
			res, err := Publish(testCtx(t), o)
			if err != nil {
				t.Fatalf("first publish: %v", err)
			}
			breakClone(t, res.Clone)
			f.generate(t, "2025-06-02T02:00:00Z", []string{"apache-beam==2.52.0"}, []string{"requests==2.31.0"})
			res, err = Publish(testCtx(t), o)
			if err != nil || !res.Changed || f.head(t) != res.Commit {
				t.Fatalf("publish with a broken clone: %+v, %v", res, err)
			}
		})
	}
}

func TestPublishRefusesPathsOutsideWorkdir(t *testing.T) {
	f := newFixture(t)
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "constraints-evil.txt"), "evil==1\n")
	if err := os.Symlink(filepath.Join(outside, "constraints-evil.txt"), filepath.Join(f.workdir, "files/constraints-3.11/constraints-evil.txt")); err != nil {
		t.Fatal(err)
	}
	f.generate(t, "2025-06-01T02:00:00Z", []string{"apache-beam==2.52.0"}, nil)
	_, err := Publish(testCtx(t), f.options())
	if err == nil || !strings.Contains(err.Error(), "outside the workdir") || !strings.Contains(err.Error(), "constraints-evil.txt") {
		t.Fatalf("err = %v, want a refusal naming the symlink", err)
	}
	if f.head(t) != f.seed {
		t.Error("something was published despite the refusal")
	}
}

func TestPublishDryRunShowsDiffAndChangesNothing(t *testing.T) {
	f := newFixture(t)
	f.generate(t, "2025-06-01T02:00:00Z",
		[]string{"apache-beam==2.51.0", "boto3==1.28.0rc1", "Flask_Login==0.6.3", "requests==2.31.0", "mypkg @ https://example.com/mypkg-1.0.tar.gz#sha256=abc"},
		[]string{"requests==2.32.0"})
	var out bytes.Buffer
	o := f.options()
	o.DryRun = true
	o.Output = &out
	o.Runner = &ExecRunner{} // git's own output is not part of the golden diff
	res, err := Publish(testCtx(t), o)
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if !res.Changed || res.Commit != "" || res.PushAttempts != 0 {
		t.Errorf("result = %+v, want changed, no commit, no push", res)
	}
	if f.head(t) != f.seed {
		t.Error("the dry run moved the remote branch")
	}
	got := strings.ReplaceAll(out.String(), f.remote, "REMOTE")
	testkit.Golden(t, "testdata/dryrun.golden", got)
}

func TestPublishWaitsForBranchLock(t *testing.T) {
	f := newFixture(t)
	f.generate(t, "2025-06-01T02:00:00Z", seedPins, []string{"requests==2.31.0"})
	lock := flock.New(filepath.Join(f.state, "locks", "branch-"+Key(f.remote, branch)+".lock"))
	os.MkdirAll(filepath.Dir(lock.Path()), 0o700)
	if ok, err := lock.TryLock(); !ok || err != nil {
		t.Fatalf("take lock: %v %v", ok, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300e6)
	defer cancel()
	_, err := Publish(ctx, f.options())
	if err == nil || !strings.Contains(err.Error(), "wait for branch lock") {
		t.Fatalf("err = %v, want a lock wait error while another publisher holds the branch", err)
	}
	lock.Unlock()
	if _, err := Publish(testCtx(t), f.options()); err != nil {
		t.Fatalf("publish after the lock was released: %v", err)
	}
}

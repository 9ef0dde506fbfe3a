package git

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/refreshd/refreshd/internal/testkit"
)

// upstream is a bare repository with a work clone to commit to it from.
type upstream struct {
	bare, work string
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	testkit.Need(t, "git")
	dir := t.TempDir()
	u := &upstream{bare: filepath.Join(dir, "project.git"), work: filepath.Join(dir, "work")}
	testkit.Git(t, dir, "init", "--quiet", "--bare", "--initial-branch=main", u.bare)
	testkit.Git(t, dir, "clone", "--quiet", u.bare, u.work)
	u.commit(t, map[string]string{".gitignore": "build/\n", "versions.json": `["3.11","3.12"]`, "src/app.py": "print(1)\n"})
	return u
}

// commit writes files in the work clone, commits and pushes them; it returns the commit.
func (u *upstream) commit(t *testing.T, files map[string]string) string {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(u.work, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Git(t, u.work, "add", "-A")
	testkit.Git(t, u.work, "commit", "--quiet", "-m", "change")
	testkit.Git(t, u.work, "push", "--quiet", "origin", "HEAD:main")
	return testkit.Git(t, u.work, "rev-parse", "HEAD")
}

func checkout(t *testing.T, o CheckoutOptions) (*CheckoutResult, string, error) {
	t.Helper()
	var out bytes.Buffer
	o.Run = &ExecRunner{Output: &out}
	o.Env = append(o.Env, testkit.GitEnv()...)
	o.Log = slog.New(slog.NewTextHandler(&out, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := Checkout(ctx, o)
	return res, out.String(), err
}

// fileState is what tells a rewritten file from an untouched one.
type fileState struct {
	ino   uint64
	mtime time.Time
	data  string
}

func stateOf(t *testing.T, path string) fileState {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	return fileState{ino: fi.Sys().(*syscall.Stat_t).Ino, mtime: fi.ModTime(), data: string(data)}
}

func TestCheckoutBareRemote(t *testing.T) {
	u := newUpstream(t)
	first := testkit.Git(t, u.work, "rev-parse", "HEAD")
	dir := filepath.Join(t.TempDir(), "src")
	o := CheckoutOptions{Repo: u.bare, Ref: "main", Dir: dir, Keep: []string{"files", ".venv/"}}

	res, _, err := checkout(t, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Commit != first || res.Previous != "" || !res.Changed {
		t.Fatalf("first checkout: %+v, want commit %s, new", res, first)
	}

	// What a run leaves behind: a changed tracked file, untracked and ignored files, and
	// what the plan keeps.
	for name, data := range map[string]string{"src/app.py": "print('local edit')\n", "stray.txt": "x",
		"build/out.whl": "x", "files/constraints-3.11/constraints-3.11.txt": "pins", ".venv/bin/python": "x"} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res, _, err = checkout(t, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Commit != first || res.Changed {
		t.Errorf("second checkout with nothing new: %+v, want unchanged %s", res, first)
	}
	for name, want := range map[string]bool{"stray.txt": false, "build/out.whl": false,
		"files/constraints-3.11/constraints-3.11.txt": true, ".venv/bin/python": true, "versions.json": true} {
		if _, err := os.Stat(filepath.Join(dir, name)); (err == nil) != want {
			t.Errorf("%s present = %v, want %v", name, err == nil, want)
		}
	}
	if got := stateOf(t, filepath.Join(dir, "src/app.py")).data; got != "print(1)\n" {
		t.Errorf("tracked file not reset: %q", got)
	}

	// Nothing new upstream, nothing changed here: the checkout rewrites nothing.
	tracked := []string{"versions.json", "src/app.py", ".gitignore", ".git/HEAD"}
	before := map[string]fileState{}
	for _, f := range tracked {
		before[f] = stateOf(t, filepath.Join(dir, f))
	}
	time.Sleep(20 * time.Millisecond) // a rewrite would show in the mtime
	if res, _, err = checkout(t, o); err != nil || res.Changed {
		t.Fatalf("third checkout: %+v, %v", res, err)
	}
	for _, f := range tracked {
		if after := stateOf(t, filepath.Join(dir, f)); after != before[f] {
			t.Errorf("%s changed by a checkout with nothing new: %+v -> %+v", f, before[f], after)
		}
	}

	// Upstream moves: the next checkout takes the new commit.
	second := u.commit(t, map[string]string{"versions.json": `["3.11","3.12","3.13"]`})
	res, _, err = checkout(t, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Commit != second || res.Previous != first || !res.Changed {
		t.Errorf("after an upstream commit: %+v, want %s after %s", res, second, first)
	}
	if got := stateOf(t, filepath.Join(dir, "versions.json")).data; !strings.Contains(got, "3.13") {
		t.Errorf("versions.json not updated: %q", got)
	}

	// A tag and a commit id work as refs too.
	testkit.Git(t, u.work, "tag", "v1", first)
	testkit.Git(t, u.work, "push", "--quiet", "origin", "v1")
	for _, ref := range []string{"v1", first} {
		o.Ref = ref
		res, _, err = checkout(t, o)
		if err != nil || res.Commit != first {
			t.Errorf("checkout of %s: %+v, %v; want %s", ref, res, err, first)
		}
	}
}

func TestCheckoutRefusals(t *testing.T) {
	u := newUpstream(t)
	tests := []struct {
		name    string
		prepare func(dir string)
		ref     string
		want    string
	}{
		{name: "unknown ref", ref: "no-such-branch", want: "fetch: git fetch"},
		{name: "someone's directory", ref: "main", prepare: func(dir string) {
			os.MkdirAll(dir, 0o755)
			os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644)
		}, want: "is not empty and not a git checkout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "src")
			if tc.prepare != nil {
				tc.prepare(dir)
			}
			_, _, err := checkout(t, CheckoutOptions{Repo: u.bare, Ref: tc.ref, Dir: dir})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), u.bare) {
				t.Fatalf("err = %v; want one naming the repository and %q", err, tc.want)
			}
			if tc.prepare != nil {
				if _, err := os.Stat(filepath.Join(dir, "notes.txt")); err != nil {
					t.Errorf("the refused directory lost its file: %v", err)
				}
			}
		})
	}
}

// TestCheckoutSmartHTTPToken: over real smart HTTP with a token check, the plan's token
// gets in, a wrong one does not, and the token is never in the output, the error, argv
// (the output prints every command line) or the checkout's .git/config.
func TestCheckoutSmartHTTPToken(t *testing.T) {
	const token = "ghp_checkoutS3cretToken"
	u := newUpstream(t)
	url := testkit.ServeGit(t, u.bare, token)
	head := testkit.Git(t, u.work, "rev-parse", "HEAD")
	for _, tc := range []struct {
		name, repo, token string
		wantErr           bool
	}{
		{name: "plan token", repo: url, token: token},
		{name: "token in the URL", repo: strings.Replace(url, "http://", "http://x-access-token:"+token+"@", 1)},
		{name: "wrong token", repo: url, token: token + "-wrong", wantErr: true},
		{name: "no token", repo: url, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "src")
			res, out, err := checkout(t, CheckoutOptions{Repo: tc.repo, Ref: "main", Dir: dir, Token: tc.token})
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v\n%s", err, tc.wantErr, out)
			}
			if err == nil && res.Commit != head {
				t.Errorf("commit %s, want %s", res.Commit, head)
			}
			config, _ := os.ReadFile(filepath.Join(dir, ".git", "config"))
			for where, text := range map[string]string{"output": out, "error": errText(err), ".git/config": string(config), "result": resultString(res)} {
				if strings.Contains(text, "S3cretToken") {
					t.Errorf("the token is in the %s:\n%s", where, text)
				}
			}
			if !strings.Contains(out, "$ git fetch") {
				t.Errorf("the output does not show the commands:\n%s", out)
			}
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func resultString(r *CheckoutResult) string {
	if r == nil {
		return ""
	}
	return r.Repo + " " + r.Ref
}

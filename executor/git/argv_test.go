package git

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/refreshd/refreshd/internal/testkit"
)

// recorder is a Runner that starts nothing: it records every git argv and answers as a
// fresh repository would, so the argv builders run without git.
type recorder struct {
	calls [][]string
	stop  string // a subcommand that fails, ending the operation there
}

func (r *recorder) Git(ctx context.Context, dir string, env []string, args ...string) ([]byte, error) {
	r.calls = append(r.calls, slices.Clone(args))
	if len(args) > 0 && args[0] == r.stop {
		return nil, errors.New("stopped by the test")
	}
	if slices.Contains(args, "FETCH_HEAD^{commit}") {
		return []byte("0123456789abcdef0123456789abcdef01234567\n"), nil
	}
	return nil, nil
}

func (r *recorder) GitBounded(ctx context.Context, dir string, env []string, _ int, args ...string) ([]byte, error) {
	return r.Git(ctx, dir, env, args...)
}

// gitVocabulary is every subcommand and flag the builders may put before the end of options.
var gitVocabulary = []string{
	"init", "rev-parse", "config", "fetch", "update-ref", "checkout", "reset", "clean", "remote",
	"set-url", "add", "ls-remote", "push", "--quiet", "--no-tags", "--no-recurse-submodules",
	"--verify", "--force", "--detach", "--hard", "-ffdx", "--heads", "--porcelain", "--exclude=",
	"refs/refreshd/source", "HEAD^{commit}", "FETCH_HEAD^{commit}",
}

var objectArg = regexp.MustCompile(`^[0-9a-f]{40}$`)

// checkGitArgv checks one recorded git command: the commands that carry values (config,
// fetch, remote, ls-remote) end their options before them, and no value appears anywhere
// else (the other commands carry only fixed words and the fetched commit id).
func checkGitArgv(args []string, url string, values ...string) error {
	argv := append([]string{"git"}, args...)
	switch args[0] {
	case "config":
		return testkit.EndsOptions(argv, gitVocabulary, "--end-of-options", "remote.origin.url", url)
	case "fetch":
		return testkit.EndsOptions(argv, gitVocabulary, "--end-of-options", "origin", values[0])
	case "remote":
		return testkit.EndsOptions(argv, gitVocabulary, "--end-of-options", "origin", url)
	case "ls-remote":
		return testkit.EndsOptions(argv, gitVocabulary, "--end-of-options", "origin", "refs/heads/"+values[0])
	}
	var words []string
	for _, a := range args {
		if !objectArg.MatchString(a) {
			words = append(words, a)
		}
	}
	return testkit.EndsOptions(append([]string{"git"}, words...), gitVocabulary, "")
}

// hostileGit are repositories and refs that reach git from a plan: each must be refused
// before git starts (nothing recorded).
var hostileGit = []struct{ name, repo, ref, want string }{
	{"ref option", "/srv/u.git", "--upload-pack=touch /tmp/x; git-upload-pack", "it starts with \"-\""},
	{"ref short option", "/srv/u.git", "-q", "it starts with \"-\""},
	{"ref writes a local ref", "/srv/u.git", ":refs/heads/evil", "it holds \":\""},
	{"ref src:dst", "/srv/u.git", "main:refs/heads/evil", "it holds \":\""},
	{"ref forced", "/srv/u.git", "+main", "it starts with \"+\""},
	{"ref newline", "/srv/u.git", "main\nforged", "it holds the control character"},
	{"ref NUL", "/srv/u.git", "main\x00x", "it holds the control character"},
	{"repo option", "--upload-pack=touch /tmp/x", "main", "repository: it starts with \"-\""},
	{"repo ext", "ext::sh -c touch% /tmp/x", "main", `repository: it names git's remote helper "ext"`},
	{"repo fd", "fd::5", "main", `repository: it names git's remote helper "fd"`},
	{"repo ssh host option", "ssh://-oProxyCommand=touch%20x/r.git", "main", `repository: its host "-oProxyCommand=touch%20x" starts with "-"`},
	{"repo scp host option", "-oProxyCommand=x:r.git", "main", "repository: it starts with \"-\""},
	{"repo user@host option", "git@-oProxyCommand=x:r.git", "main", `its host "-oProxyCommand=x" starts with "-"`},
	{"repo newline", "/srv/u.git\nx", "main", "repository: it holds the control character"},
}

// TestArgvHostileRefused drives every git argv builder (the checkout, the publish, the
// freshness check) with the hostile values: each is refused before any git command.
func TestArgvHostileRefused(t *testing.T) {
	for _, h := range hostileGit {
		t.Run(h.name, func(t *testing.T) {
			rec := &recorder{}
			_, err := Checkout(context.Background(), CheckoutOptions{Repo: h.repo, Ref: h.ref, Dir: filepath.Join(t.TempDir(), "co"), Run: rec, Log: slog.New(slog.DiscardHandler)})
			if err == nil || !strings.Contains(err.Error(), h.want) {
				t.Errorf("checkout: %v, want %q", err, h.want)
			}
			o := publishOptions(t, rec)
			o.Repo, o.Branch = h.repo, h.ref
			if _, err := Publish(context.Background(), o); err == nil || !strings.Contains(err.Error(), h.want) {
				t.Errorf("publish: %v, want %q", err, h.want)
			}
			if _, err := LastCommitTime(context.Background(), nil, h.repo, h.ref, nil); err == nil || !strings.Contains(err.Error(), h.want) {
				t.Errorf("last commit: %v, want %q", err, h.want)
			}
			if len(rec.calls) > 0 {
				t.Errorf("git ran: %q", rec.calls)
			}
		})
	}
}

func publishOptions(t *testing.T, run Runner) Options {
	return Options{
		Branch: "constraints-main", StateDir: t.TempDir(), Files: []string{"*.txt"}, Workdir: t.TempDir(),
		Ignore: regexp.MustCompile("^#"), AuthorName: "a", AuthorEmail: "a@example.com",
		Message: func(string) string { return "m" }, MaxAttempts: 1, FetchAttempts: 1, Runner: run,
	}
}

// TestArgvEndsOptions: values git accepts reach it only after --end-of-options.
func TestArgvEndsOptions(t *testing.T) {
	for _, v := range []struct{ repo, ref string }{
		{"/srv/u.git", "main"},
		{"https://github.com/apache/airflow.git", "v3-1-test"},
		{"git@github.com:apache/airflow.git", "refs/pull/1/head"},
		{"ssh://[::1]:22/r.git", "0123456789abcdef0123456789abcdef01234567"},
		{"/srv/a repo with spaces/u.git", "origin"},
	} {
		if err := checkoutArgv(t, v.repo, v.ref); err != nil {
			t.Error(err)
		}
		if err := publishArgv(t, v.repo, v.ref); err != nil {
			t.Error(err)
		}
	}
}

// checkoutArgv runs Checkout against the recorder: it is refused before git starts, or every
// command it would run has the shape checkGitArgv wants.
func checkoutArgv(t *testing.T, repo, ref string) error {
	rec := &recorder{}
	_, err := Checkout(context.Background(), CheckoutOptions{Repo: repo, Ref: ref, Dir: filepath.Join(t.TempDir(), "co"), Run: rec, Log: slog.New(slog.DiscardHandler)})
	return checkRecorded("checkout", repo, ref, rec, err)
}

// publishArgv runs a publish against the recorder until the remote's branch is asked for.
func publishArgv(t *testing.T, repo, branch string) error {
	rec := &recorder{stop: "ls-remote"}
	o := publishOptions(t, rec)
	o.Repo, o.Branch = repo, branch
	_, err := Publish(context.Background(), o)
	return checkRecorded("publish", repo, branch, rec, err)
}

// checkRecorded: an operation that failed ran no git; one that went on (to the recorder's
// stop) ran only commands of the right shape.
func checkRecorded(what, repo, ref string, rec *recorder, err error) error {
	if err != nil && !strings.Contains(err.Error(), "stopped by the test") {
		if len(rec.calls) > 0 {
			return fmt.Errorf("%s %q %q failed (%v) after running git %q", what, repo, ref, err, rec.calls)
		}
		return nil
	}
	r, _ := parseRemote(repo, "")
	for _, args := range rec.calls {
		if err := checkGitArgv(args, r.URL, ref); err != nil {
			return fmt.Errorf("%s %q %q: %w", what, repo, ref, err)
		}
	}
	return nil
}

// FuzzGitArgv: whatever repository and ref a plan renders, the checkout and the publish
// either refuse them before git starts or hand them to git only after --end-of-options, as
// the operands they are.
func FuzzGitArgv(f *testing.F) {
	for _, h := range hostileGit {
		f.Add(h.repo, h.ref)
	}
	f.Add("/srv/u.git", "main")
	f.Add("https://x@github.com/a/b.git", "v1")
	f.Fuzz(func(t *testing.T, repo, ref string) {
		if err := checkoutArgv(t, repo, ref); err != nil {
			t.Fatal(err)
		}
		if err := publishArgv(t, repo, ref); err != nil {
			t.Fatal(err)
		}
	})
}

// TestHostileRefReachesRealGit: with real git, the hostile ref of issue 20 runs nothing:
// Checkout refuses it, and even handed to git as the fetch argv is built (the check
// skipped), git reads it after --end-of-options as a refspec and refuses it, so the command
// it carries never runs. A remote helper is refused by git itself (GIT_ALLOW_PROTOCOL).
func TestHostileRefReachesRealGit(t *testing.T) {
	u := newUpstream(t)
	marker := filepath.Join(t.TempDir(), "pwned")
	ref := "--upload-pack=touch " + marker + "; git-upload-pack"
	dir := filepath.Join(t.TempDir(), "co")
	if _, out, err := checkout(t, CheckoutOptions{Repo: u.bare, Ref: ref, Dir: dir}); err == nil || !strings.Contains(err.Error(), `ref: it starts with "-"`) {
		t.Errorf("checkout of ref %q: %v\n%s", ref, err, out)
	}
	if _, out, err := checkout(t, CheckoutOptions{Repo: u.bare, Ref: "main", Dir: dir}); err != nil {
		t.Fatalf("checkout main: %v\n%s", err, out)
	}
	run := &ExecRunner{}
	env := testkit.GitEnv()
	if _, err := run.Git(context.Background(), dir, env, fetchArgs(ref)...); err == nil || !strings.Contains(err.Error(), "invalid refspec") {
		t.Errorf("git %q: %v, want git to refuse it as a refspec", fetchArgs(ref), err)
	}
	helper := "ext::sh -c touch% " + marker
	if _, err := run.Git(context.Background(), dir, append(env, "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=protocol.ext.allow", "GIT_CONFIG_VALUE_0=always"),
		"fetch", "--quiet", "--end-of-options", helper, "main"); err == nil || !strings.Contains(err.Error(), "transport 'ext' not allowed") {
		t.Errorf("fetch from %q with protocol.ext.allow=always: %v, want git to refuse the transport", helper, err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatalf("%s exists: a hostile value ran a command", marker)
	}
	if refs := testkit.Git(t, dir, "for-each-ref", "--format=%(refname)"); refs != "refs/refreshd/source" {
		t.Errorf("refs in the checkout: %q, want only refs/refreshd/source", refs)
	}
}

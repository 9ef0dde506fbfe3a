package git

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/refreshd/refreshd/internal/safearg"
)

// CheckoutOptions says what to check out where.
type CheckoutOptions struct {
	Repo  string   // URL or path; credentials in it are taken out of argv and .git/config
	Ref   string   // branch, tag or commit id
	Dir   string   // absolute; created when missing
	Token string   // HTTPS token, or ""
	Keep  []string // paths relative to Dir that clean leaves alone
	Env   []string // extra environment for git ("K=V"): the step's env
	Run   Runner
	Log   *slog.Logger
}

// CheckoutResult is what a checkout did.
type CheckoutResult struct {
	Repo     string // without credentials
	Ref      string
	Commit   string // the fetched commit, now checked out
	Previous string // HEAD before, "" for a new checkout
	Changed  bool   // HEAD moved (or the checkout is new)
}

// Checkout makes o.Dir a checkout of o.Ref's commit: `git init` if it is not a work tree
// yet (refused when it is a non-empty directory that is not one: cleaning it would delete
// someone's files), fetch the ref from the repository, check out the fetched commit
// detached, `reset --hard` (tracked files changed by a previous run are restored) and
// `clean -ffdx` except Keep. With nothing new upstream and nothing changed in the tree, it
// fetches and changes nothing: git rewrites no file whose content and stat are unchanged.
//
// The caller holds the lock of o.Dir: two checkouts of one directory must not interleave.
func Checkout(ctx context.Context, o CheckoutOptions) (*CheckoutResult, error) {
	if err := checkRepoRef(o.Repo, o.Ref, "ref"); err != nil {
		return nil, fmt.Errorf("check out %s %q: %w", RedactURLs(o.Repo), o.Ref, err)
	}
	r, err := parseRemote(o.Repo, o.Token)
	if err != nil {
		return nil, err
	}
	url := r.URL
	env := append(r.env(), o.Env...)
	res := &CheckoutResult{Repo: RedactURLs(url), Ref: o.Ref}
	what := fmt.Sprintf("check out %s %s into %s", res.Repo, o.Ref, o.Dir)
	git := func(args ...string) (string, error) {
		out, err := o.Run.Git(ctx, o.Dir, env, args...)
		return strings.TrimSpace(string(out)), err
	}
	if err := prepareDir(o.Dir); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if _, err := os.Stat(filepath.Join(o.Dir, ".git")); errors.Is(err, fs.ErrNotExist) {
		if _, err := git("init", "--quiet"); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
	}
	res.Previous, _ = git("rev-parse", "--quiet", "--verify", "HEAD^{commit}")
	// The URL is set every run: a plan whose repo changed fetches from the new one.
	if _, err := git("config", "--end-of-options", "remote.origin.url", url); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if _, err := git(fetchArgs(o.Ref)...); err != nil {
		return nil, fmt.Errorf("%s: fetch: %w", what, err)
	}
	res.Commit, err = git("rev-parse", "--verify", "FETCH_HEAD^{commit}")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	// checkout and reset take no --end-of-options before a commit: it must be an object id.
	if !objectID.MatchString(res.Commit) {
		return nil, fmt.Errorf("%s: git rev-parse gave %q, not a commit id", what, res.Commit)
	}
	// A ref of our own keeps the commit from being pruned while it is checked out detached.
	steps := [][]string{
		{"update-ref", "refs/refreshd/source", res.Commit},
		{"checkout", "--quiet", "--force", "--detach", res.Commit},
		{"reset", "--quiet", "--hard", res.Commit},
		cleanArgs(o.Keep),
	}
	for _, args := range steps {
		if _, err := git(args...); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
	}
	res.Changed = res.Previous != res.Commit
	o.Log.Info("checked out", "repo", res.Repo, "ref", o.Ref, "commit", res.Commit, "previous", res.Previous, "changed", res.Changed)
	return res, nil
}

// objectID is a full SHA-1 or SHA-256 object name, as rev-parse prints it.
var objectID = regexp.MustCompile(`^(?:[0-9a-f]{40}|[0-9a-f]{64})$`)

// checkRepoRef refuses a repository or ref that git would read as an option, a refspec
// writing a local ref, or a transport running a program, before any git starts.
// what names the ref in the error: "ref", "branch".
func checkRepoRef(repo, ref, what string) error {
	if err := safearg.GitRepo(repo); err != nil {
		return fmt.Errorf("repository: %w", err)
	}
	if err := safearg.GitRef(ref); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// fetchArgs fetches ref from origin: the ref after --end-of-options, so it is never an
// option, and checked by safearg.GitRef, so it is never a refspec writing a local ref.
func fetchArgs(ref string) []string {
	return []string{"fetch", "--quiet", "--no-tags", "--no-recurse-submodules", "--end-of-options", "origin", ref}
}

// cleanArgs removes untracked and ignored files (build outputs included) but Keep, each
// anchored at the top of the checkout.
func cleanArgs(keep []string) []string {
	args := []string{"clean", "--quiet", "-ffdx"}
	for _, k := range keep {
		args = append(args, "--exclude=/"+strings.TrimPrefix(filepath.Clean(k), "/"))
	}
	return args
}

// prepareDir creates dir, or checks that an existing one may be made a checkout: a work
// tree already (it has .git) or empty.
func prepareDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("create directory: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("read directory: %w", err)
	}
	if len(entries) == 0 {
		return nil
	}
	fi, err := os.Stat(filepath.Join(dir, ".git"))
	if err != nil || !fi.IsDir() {
		return fmt.Errorf("%s is not empty and not a git checkout (no .git directory); refusing to clean it: empty it or check out elsewhere (path:)", dir)
	}
	return nil
}

package git

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Key names the clone and lock of one repository and branch: a hash of the repository URL
// (without credentials, so rotating a token keeps the clone) and the branch.
func Key(repo, branch string) string {
	r, err := parseRemote(repo, "")
	if err != nil {
		r.URL = RedactURLs(repo)
	}
	sum := sha256.Sum256([]byte(r.URL + "\x00" + branch))
	return hex.EncodeToString(sum[:8])
}

// clone is refreshd's own working copy of one branch, under the state directory.
type clone struct {
	dir    string
	remote remote
	branch string
	run    Runner
	env    []string // caller's env plus credentials
	log    *slog.Logger

	fetchAttempts int
	fetchBackoff  time.Duration
}

func (c *clone) git(ctx context.Context, args ...string) ([]byte, error) {
	return c.run.Git(ctx, c.dir, c.env, args...)
}

// ensure makes c.dir a git repository whose origin is the remote. A directory that is not a
// healthy repository (a crash mid-clone, a deleted .git) is replaced. Lock files left by a
// killed git are removed: the caller holds the branch lock, so no other git uses this clone.
func (c *clone) ensure(ctx context.Context) error {
	healthy := false
	if _, err := os.Stat(filepath.Join(c.dir, ".git", "HEAD")); err == nil {
		for _, lock := range []string{"index.lock", "HEAD.lock", "config.lock", "shallow.lock"} {
			os.Remove(filepath.Join(c.dir, ".git", lock))
		}
		out, err := c.git(ctx, "rev-parse", "--show-toplevel")
		healthy = err == nil && sameDir(strings.TrimSpace(string(out)), c.dir)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if !healthy {
		if _, err := os.Stat(c.dir); err == nil {
			c.log.Warn("replacing a broken constraints clone", "dir", c.dir)
		}
		return c.fresh(ctx)
	}
	if _, err := c.git(ctx, "remote", "set-url", "--end-of-options", "origin", c.remote.URL); err != nil {
		return fmt.Errorf("set origin of %s: %w", c.dir, err)
	}
	return nil
}

// fresh replaces c.dir with an empty repository whose origin is the remote.
func (c *clone) fresh(ctx context.Context) error {
	if err := os.RemoveAll(c.dir); err != nil {
		return fmt.Errorf("remove old clone %s: %w", c.dir, err)
	}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return fmt.Errorf("create clone %s: %w", c.dir, err)
	}
	for _, args := range [][]string{
		{"init", "--quiet"},
		{"remote", "add", "--end-of-options", "origin", c.remote.URL},
	} {
		if _, err := c.git(ctx, args...); err != nil {
			os.RemoveAll(c.dir)
			return fmt.Errorf("create clone %s: %w", c.dir, err)
		}
	}
	return nil
}

// remoteHead asks the remote for the branch head, retrying a few times with a growing
// delay: "" means the branch does not exist yet.
func (c *clone) remoteHead(ctx context.Context) (string, error) {
	var last error
	delay := c.fetchBackoff
	for i := 1; i <= c.fetchAttempts; i++ {
		out, err := c.git(ctx, "ls-remote", "--heads", "--end-of-options", "origin", "refs/heads/"+c.branch)
		if err == nil {
			sha, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\t")
			return sha, nil
		}
		last = err
		if ctx.Err() != nil || i == c.fetchAttempts {
			break
		}
		c.log.Warn("constraints remote unreachable, retrying", "branch", c.branch, "try", i, "delay", delay, "err", err)
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(delay):
		}
		delay *= 2
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	return "", fmt.Errorf("reach the remote after %d tries: %w", c.fetchAttempts, last)
}

// sync makes the working tree exactly the remote branch (or an empty orphan branch when
// the remote has none yet) and returns the remote head ("" for none).
func (c *clone) sync(ctx context.Context) (string, error) {
	if err := c.ensure(ctx); err != nil {
		return "", err
	}
	head, err := c.remoteHead(ctx)
	if err != nil {
		return "", err
	}
	if head == "" {
		return "", c.orphan(ctx)
	}
	if err := c.fetch(ctx); err != nil {
		// The remote just answered, so a failed fetch is this clone's fault: start over.
		c.log.Warn("fetch into the constraints clone failed; re-cloning", "branch", c.branch, "err", err)
		if err := c.fresh(ctx); err != nil {
			return "", err
		}
		if err := c.fetch(ctx); err != nil {
			return "", fmt.Errorf("fetch into the clone: %w", err)
		}
	}
	tracking := "refs/remotes/origin/" + c.branch
	for _, args := range [][]string{
		{"checkout", "--quiet", "--force", "-B", c.branch, tracking},
		{"reset", "--quiet", "--hard", tracking},
		{"clean", "-fdxq"},
	} {
		if _, err := c.git(ctx, args...); err != nil {
			return "", fmt.Errorf("reset the clone to the remote branch: %w", err)
		}
	}
	return head, nil
}

func (c *clone) fetch(ctx context.Context) error {
	_, err := c.git(ctx, "fetch", "--quiet", "--no-tags", "--end-of-options", "origin",
		"+refs/heads/"+c.branch+":refs/remotes/origin/"+c.branch)
	return err
}

// orphan starts the branch with no history: the first publish to a branch the remote does
// not have yet creates it with a root commit.
func (c *clone) orphan(ctx context.Context) error {
	for _, args := range [][]string{
		{"symbolic-ref", "HEAD", "refs/heads/" + c.branch},
		{"read-tree", "--empty"},
		{"clean", "-fdxq"},
	} {
		if _, err := c.git(ctx, args...); err != nil {
			return fmt.Errorf("start the branch: %w", err)
		}
	}
	// A local branch left from an earlier run would become the parent; the remote has none.
	if _, err := c.git(ctx, "rev-parse", "--verify", "--quiet", "refs/heads/"+c.branch); err == nil {
		if _, err := c.git(ctx, "update-ref", "-d", "refs/heads/"+c.branch); err != nil {
			return fmt.Errorf("start the branch: %w", err)
		}
	}
	return nil
}

// commit records the changed paths and returns the new commit.
func (c *clone) commit(ctx context.Context, paths []string, name, email, msg string) (string, error) {
	add := append([]string{"add", "--"}, paths...)
	if _, err := c.git(ctx, add...); err != nil {
		return "", fmt.Errorf("stage constraints: %w", err)
	}
	// What is committed is what git staged, not what was meant to be: they must agree.
	out, err := c.git(ctx, "diff", "--cached", "--name-only", "-z")
	if err != nil {
		return "", fmt.Errorf("list staged constraints: %w", err)
	}
	staged := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	want := slices.Sorted(slices.Values(paths))
	if slices.Sort(staged); !slices.Equal(staged, want) {
		return "", fmt.Errorf("stage constraints: git staged %q, not the files written (%q): nothing committed", staged, want)
	}
	// The environment, not -c user.name, so a GIT_AUTHOR_NAME inherited by the daemon cannot
	// override the configured author (os/exec keeps the last of duplicate variables).
	env := append(append([]string(nil), c.env...),
		"GIT_AUTHOR_NAME="+name, "GIT_AUTHOR_EMAIL="+email,
		"GIT_COMMITTER_NAME="+name, "GIT_COMMITTER_EMAIL="+email)
	if _, err := c.run.Git(ctx, c.dir, env, "-c", "commit.gpgsign=false",
		"commit", "--quiet", "--no-verify", "-m", msg); err != nil {
		return "", fmt.Errorf("commit constraints: %w", err)
	}
	out, err = c.git(ctx, "rev-parse", "HEAD")
	if err != nil {
		return "", fmt.Errorf("read new commit: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// errRaced is a push rejected because the branch moved since the fetch.
var errRaced = errors.New("branch moved on the remote")

// errRefused is a push the remote refused (a protected branch, a hook).
var errRefused = errors.New("refused by the remote (protected branch or hook)")

// push sends HEAD to the branch without force. A rejection because someone else pushed
// first is errRaced; any other failure is returned as is.
func (c *clone) push(ctx context.Context) error { return c.pushRev(ctx, "HEAD") }

// pushRev pushes rev (HEAD, or a commit id) to the branch, never forced.
func (c *clone) pushRev(ctx context.Context, rev string) error {
	out, err := c.git(ctx, "push", "--porcelain", "--end-of-options", "origin", rev+":refs/heads/"+c.branch)
	if err == nil {
		return nil
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		text := string(out) + "\n" + ee.Stderr
		if strings.Contains(text, "[rejected]") &&
			(strings.Contains(text, "fetch first") || strings.Contains(text, "non-fast-forward") || strings.Contains(text, "stale info")) {
			return errRaced
		}
		if strings.Contains(text, "[remote rejected]") {
			return fmt.Errorf("push: %w: %w", errRefused, err)
		}
	}
	return fmt.Errorf("push: %w", err)
}

func sameDir(a, b string) bool {
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	return err1 == nil && err2 == nil && ra == rb
}

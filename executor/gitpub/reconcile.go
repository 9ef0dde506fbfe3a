package gitpub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// ReconcileOptions name a commit a publish handed to git push before it was cut short.
type ReconcileOptions struct {
	Repo, Branch string // as recorded (credentials removed) or as in the plan
	Token        string // as for Publish; "" uses the user's git credentials
	Commit       string
	StateDir     string // the publish's: its clone of the branch is reused
	Env          []string
	Runner       Runner       // default an ExecRunner discarding output
	Log          *slog.Logger // default discards
}

// Reconcile tells whether commit reached branch: after a crash or kill -9 during a publish,
// the push may or may not have updated the remote. It fetches the branch into the publish's
// clone (holding the branch lock, so no publish runs meanwhile) and reports whether the
// commit is the branch head or one of its ancestors (others may have pushed on top since).
// A branch that does not exist holds no commit.
func Reconcile(ctx context.Context, o ReconcileOptions) (onBranch bool, err error) {
	rem, err := parseRemote(o.Repo, o.Token)
	if err != nil {
		return false, err
	}
	what := fmt.Sprintf("find commit %s on %s branch %s", o.Commit, rem.URL, o.Branch)
	if o.Commit == "" || o.StateDir == "" || o.Branch == "" {
		return false, fmt.Errorf("%s: commit, branch and state directory are required", what)
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Runner == nil {
		o.Runner = &ExecRunner{Output: io.Discard}
	}
	o.Runner = withRedactor(o.Runner, rem)
	key := Key(o.Repo, o.Branch)
	log := o.Log.With("branch", o.Branch, "repo", rem.URL)
	unlock, err := lockBranch(ctx, lockPath(o.StateDir, key), time.Second, log)
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	defer unlock()
	c := &clone{
		dir: clonePath(o.StateDir, key), remote: rem, branch: o.Branch, run: o.Runner, log: log,
		env:           append(append([]string(nil), o.Env...), rem.env()...),
		fetchAttempts: 3, fetchBackoff: time.Second,
	}
	if err := c.ensure(ctx); err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	head, err := c.remoteHead(ctx)
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	if head == "" {
		return false, nil
	}
	if head == o.Commit {
		return true, nil
	}
	if err := c.fetch(ctx); err != nil {
		return false, fmt.Errorf("%s: fetch: %w", what, err)
	}
	// The commit was made in this clone; if the clone was replaced since, a fetch brings it
	// only if the branch holds it. Either way a missing object means not on the branch.
	if _, err := c.git(ctx, "cat-file", "-e", o.Commit+"^{commit}"); err != nil {
		var ee *ExitError
		if errors.As(err, &ee) {
			return false, nil
		}
		return false, fmt.Errorf("%s: %w", what, err)
	}
	_, err = c.git(ctx, "merge-base", "--is-ancestor", o.Commit, "refs/remotes/origin/"+o.Branch)
	var ee *ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ee) && ee.Code == 1:
		return false, nil
	}
	return false, fmt.Errorf("%s: %w", what, err)
}

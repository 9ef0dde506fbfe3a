package git

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
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

// Reconcile tells whether commit reached branch: after a crash, kill -9 or a stop during a
// publish, the push may or may not have updated the remote. It fetches the branch into the
// publish's clone (holding the branch lock, so no publish runs meanwhile) and reports
// whether the commit is the branch head or one of its ancestors (others may have pushed on
// top since). A branch that does not exist holds no commit.
//
// Looking is not enough to know. Over a network (git daemon, smart HTTP, ssh) the remote's
// receive-pack is not refreshd's process: it outlives the killed git push, runs its hooks
// and may update the branch after this look. It can do so only while the branch is still
// where the push started from (it updates the ref from the old value the push saw, or not
// at all). So when the branch is there, at the commit's parent, Reconcile finishes the push
// itself (never forced): then either this push or the late one puts the commit on the
// branch, or the remote refuses both, and the second look is final. On any other head the
// late push can no longer land and the first look is final.
func Reconcile(ctx context.Context, o ReconcileOptions) (onBranch bool, err error) {
	rem, err := parseRemote(o.Repo, o.Token)
	if err != nil {
		return false, err
	}
	what := fmt.Sprintf("find commit %s on %s branch %s", o.Commit, rem.URL, o.Branch)
	if err := o.check(); err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
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
	onBranch, head, err := c.holds(ctx, o.Commit)
	if err == nil && !onBranch {
		onBranch, err = c.finishPush(ctx, o.Commit, head)
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	return onBranch, nil
}

// check refuses options Reconcile cannot act on. The commit comes from the store and
// reaches rev-list, merge-base and push: an object id only, never an option.
func (o *ReconcileOptions) check() error {
	if o.Commit == "" || o.StateDir == "" || o.Branch == "" {
		return errors.New("commit, branch and state directory are required")
	}
	if !objectID.MatchString(o.Commit) {
		return fmt.Errorf("%q is not a commit id", o.Commit)
	}
	return checkRepoRef(o.Repo, o.Branch, "branch")
}

// finishPush pushes commit, which the branch (at head) does not hold, when the branch is
// still where the interrupted push started from (the commit's parent), and looks again:
// see Reconcile. It reports whether the branch holds the commit.
func (c *clone) finishPush(ctx context.Context, commit, head string) (onBranch bool, err error) {
	parents, err := c.git(ctx, "rev-list", "--parents", "-n", "1", commit)
	if err != nil {
		var ee *ExitError
		if errors.As(err, &ee) {
			return false, nil // not in the clone (it was replaced since): nothing to finish
		}
		return false, err
	}
	parent := "" // a first commit on a new branch has none, and the branch is absent
	if f := strings.Fields(string(parents)); len(f) > 1 {
		parent = f[1]
	}
	if head != parent {
		return false, nil // the branch moved on from where the push started: it can no longer land
	}
	c.log.Warn("the branch is where the interrupted push started from; finishing the push (not forced)", "commit", commit)
	perr := c.pushRev(ctx, commit)
	if onBranch, _, err = c.holds(ctx, commit); err != nil {
		return false, fmt.Errorf("after finishing the push: %w", err)
	}
	if onBranch {
		return true, nil
	}
	if perr != nil && !errors.Is(perr, errRaced) && !errors.Is(perr, errRefused) {
		// Not an answer from the remote: the late push may still land.
		return false, fmt.Errorf("finish the interrupted push: %w", perr)
	}
	return false, nil
}

// holds reports whether commit is the remote branch's head or one of its ancestors, and
// the head ("" when the branch does not exist).
func (c *clone) holds(ctx context.Context, commit string) (bool, string, error) {
	head, err := c.remoteHead(ctx)
	if err != nil || head == "" || head == commit {
		return err == nil && head != "" && head == commit, head, err
	}
	if err := c.fetch(ctx); err != nil {
		return false, head, fmt.Errorf("fetch: %w", err)
	}
	// The commit was made in this clone; if the clone was replaced since, a fetch brings it
	// only if the branch holds it. Either way a missing object means not on the branch.
	if _, err := c.git(ctx, "cat-file", "-e", commit+"^{commit}"); err != nil {
		var ee *ExitError
		if errors.As(err, &ee) {
			return false, head, nil
		}
		return false, head, err
	}
	_, err = c.git(ctx, "merge-base", "--is-ancestor", commit, "refs/remotes/origin/"+c.branch)
	var ee *ExitError
	switch {
	case err == nil:
		return true, head, nil
	case errors.As(err, &ee) && ee.Code == 1:
		return false, head, nil
	}
	return false, head, err
}

// Package git publishes generated constraint files to a git branch with the real git CLI,
// so that the user's credential helpers and SSH keys work exactly as for their own git.
//
// Each repository and branch has its own clone under the state directory, fetched and reset
// to the remote branch on every publish; the user's checkout is never touched. Generated
// files are copied flat into the branch (or a subdirectory); a file counts as changed only
// when a line not matching the ignore pattern changed (the header holds a generation
// timestamp). Files on the branch that the run did not generate are never deleted. Changes
// become one commit, pushed without force; when someone else pushed first, the publish
// fetches, re-applies and tries again, so the remote keeps both commits. A lock per
// repository and branch keeps two plans or two daemons from publishing it at once.
package git

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/gofrs/flock"
)

// Options say what to publish where.
type Options struct {
	Repo   string // URL or path; credentials in it are used but never shown or stored
	Branch string
	// Token, if set, authenticates to HTTPS remotes (user "x-access-token") instead of the
	// user's credential helpers.
	Token   string
	Workdir string   // absolute; Files are relative to it
	Files   []string // glob patterns (filepath.Glob syntax)
	Dir     string   // subdirectory of the branch to copy into; "" is the root
	// Ignore matches lines that do not count as a change; required. The caller owns the
	// defaults of Ignore, AuthorName, AuthorEmail, Message and MaxAttempts (for refreshd,
	// the plan package), so they are written down once.
	Ignore      *regexp.Regexp
	AuthorName  string // required
	AuthorEmail string // required
	// Message renders the commit message for a change summary; required. It is called again
	// when a race makes the publish re-compare.
	Message func(summary string) string
	// MaxAttempts bounds push attempts when the branch keeps moving; at least 1.
	MaxAttempts int
	// FetchAttempts and FetchBackoff bound the tries to reach the remote; default 3 and 2s
	// (doubling).
	FetchAttempts int
	FetchBackoff  time.Duration
	StateDir      string // the clone lives in StateDir/git/KEY, the lock in StateDir/locks
	DryRun        bool   // compare and report, but commit and push nothing
	Env           []string
	Runner        Runner       // default an ExecRunner writing to Output
	Output        io.Writer    // the human-readable diff (and git's output with the default Runner)
	Log           *slog.Logger // default discards
	// LockWait is how often a waiting publish retries the branch lock; default 1s.
	LockWait time.Duration
	// Pushing, if set, is called with the result so far just before each push (its Pushing
	// is the commit). A caller that records it durably before git push starts can tell after
	// a crash whether the push reached the branch (Reconcile).
	Pushing func(res *Result)
	// PushGrace is how long a git push already under way may go on after ctx ends (a stop,
	// a cancel, the step's timeout) before it is stopped too. A push cut short leaves the
	// branch unknown: over a network the remote's receive-pack finishes on its own, so the
	// branch may get the commit after refreshd recorded none. Given the time, the push
	// ends and the result says what the remote answered. 0 stops it with ctx.
	PushGrace time.Duration
}

// Result is what a publish did.
type Result struct {
	Repo   string // without credentials
	Branch string
	Clone  string // the clone's directory
	Commit string // "" when unchanged or dry run
	// Pushing is the last commit handed to git push: Commit once the push succeeded.
	Pushing      string
	Changed      bool
	Summary      string // "14 upgraded, 2 added, 1 removed across 3 files" or "no change"
	Files        []FileChange
	PushAttempts int
	// Outside are the commits others pushed to the branch since this refreshd last saw it
	// that changed a pin in a published file, newest first (none in a dry run, or the first
	// time this state directory looks at the branch). OutsideNote says when the look was cut
	// short (more than MaxOutsideCommits, MaxOutsideDiffBytes or MaxOutsidePins, a rewritten
	// branch) or failed (the next publish then reads them, unless refreshd made more than
	// MaxMadeRefs commits while it kept failing: then it starts later and says so).
	Outside     []OutsideCommit
	OutsideNote string
}

// Changes lists every package change of every file.
func (r *Result) Changes() []Change {
	var out []Change
	for _, f := range r.Files {
		out = append(out, f.Changes...)
	}
	return out
}

// Publish copies the generated files into the branch and, when something meaningful
// changed, commits and pushes them. The returned Result is filled as far as the publish got,
// also on error. Errors start with "publish constraints to REPO branch BRANCH:" and then
// name the operation that failed, so callers need add nothing.
func Publish(ctx context.Context, o Options) (*Result, error) {
	res, err := publish(ctx, o)
	if err != nil {
		return res, fmt.Errorf("publish constraints to %s branch %s: %w", res.Repo, res.Branch, err)
	}
	return res, nil
}

func publish(ctx context.Context, o Options) (*Result, error) {
	if err := checkRepoRef(o.Repo, o.Branch, "branch"); err != nil {
		return &Result{Repo: RedactURLs(o.Repo), Branch: o.Branch}, err
	}
	rem, err := parseRemote(o.Repo, o.Token)
	if err != nil {
		return &Result{Repo: RedactURLs(o.Repo), Branch: o.Branch}, err
	}
	res := &Result{Repo: rem.URL, Branch: o.Branch}
	if err := o.validate(); err != nil {
		return res, err
	}
	o.defaults(rem)
	key := Key(o.Repo, o.Branch)
	res.Clone = clonePath(o.StateDir, key)
	log := o.Log.With("branch", o.Branch, "repo", rem.URL)

	unlock, err := lockBranch(ctx, lockPath(o.StateDir, key), o.LockWait, log)
	if err != nil {
		return res, err
	}
	defer unlock()

	c := &clone{
		dir: res.Clone, remote: rem, branch: o.Branch, run: o.Runner, log: log,
		env:           append(append([]string(nil), o.Env...), rem.env()...),
		fetchAttempts: o.FetchAttempts, fetchBackoff: o.FetchBackoff,
	}
	seen := c.lastSeen(ctx)
	for attempt := 1; ; attempt++ {
		raced, err := o.publishOnce(ctx, c, res, seen, attempt)
		if err != nil || !raced {
			return res, err
		}
		if attempt >= o.MaxAttempts {
			return res, fmt.Errorf("push: the branch moved on every one of %d attempts", attempt)
		}
		log.Warn("constraints branch moved during publish; fetching and re-applying", "push_attempt", attempt)
		fmt.Fprintf(o.Output, "branch %s moved on the remote; fetching and re-applying (attempt %d of %d)\n", o.Branch, attempt+1, o.MaxAttempts)
	}
}

// publishOnce is one attempt of a publish: it brings the clone to the branch's head, reads
// the sources again (a retry compares against the new head), applies them, and commits and
// pushes when something meaningful changed. raced: the branch moved between the fetch and
// the push, so the caller tries again.
func (o *Options) publishOnce(ctx context.Context, c *clone, res *Result, seen string, attempt int) (raced bool, err error) {
	head, err := c.sync(ctx)
	if err != nil {
		return false, fmt.Errorf("update the constraints clone: %w", err)
	}
	sources, err := collect(o.Workdir, o.Files)
	if err != nil {
		return false, err
	}
	looked := false
	if !o.DryRun {
		looked = o.lookOutside(ctx, c, res, seen, head, publishedPaths(o.Dir, sources))
	}
	files, err := apply(c.dir, o.Dir, sources, o.Ignore)
	if err != nil {
		return false, err
	}
	res.Files = files
	res.Changed = len(files) > 0
	res.Summary = summarize(res.Changes(), len(files))
	if attempt == 1 || !res.Changed {
		o.report(res)
	}
	if !res.Changed {
		c.log.Info("constraints unchanged", "files", len(sources))
		return false, nil
	}
	if o.DryRun {
		fmt.Fprintf(o.Output, "dry run: would commit and push to %s branch %s\n", c.remote.URL, o.Branch)
		return false, nil
	}
	return o.commitAndPush(ctx, c, res, attempt, looked)
}

// commitAndPush commits res.Files in the clone and pushes the commit (never forced).
// looked says the look at outside commits read the branch up to the commit's parent.
// raced: the branch moved since the fetch and the push was refused for it.
func (o *Options) commitAndPush(ctx context.Context, c *clone, res *Result, attempt int, looked bool) (raced bool, err error) {
	paths := make([]string, len(res.Files))
	for i, f := range res.Files {
		paths[i] = f.Path
	}
	commit, err := c.commit(ctx, paths, o.AuthorName, o.AuthorEmail, o.Message(res.Summary))
	if err != nil {
		return false, err
	}
	res.PushAttempts = attempt
	res.Pushing = commit
	// Seen before it is pushed: its parent is the head just fetched, so whether or not
	// the push lands, what is reachable from it was seen or made here. Unless the look
	// failed: then it is marked made, and the next look reads what this one could not.
	mark := c.markSeen
	if !looked {
		mark = c.markMade
	}
	if err := mark(ctx, commit); err != nil {
		return false, err
	}
	if !looked {
		note, err := c.capMade(ctx)
		if err != nil {
			return false, err
		}
		if note != "" {
			c.log.Warn("commits made outside refreshd on the constraints branch: " + note)
			fmt.Fprintf(o.Output, "commits made outside refreshd: %s\n", note)
			res.OutsideNote = addNote(res.OutsideNote, note)
		}
	}
	if o.Pushing != nil {
		o.Pushing(res)
	}
	pctx, stop := outlive(ctx, o.PushGrace)
	err = c.push(pctx)
	stop()
	switch {
	case err == nil:
		res.Commit = commit
		c.log.Info("constraints published", "commit", commit, "summary", res.Summary, "push_attempt", attempt)
		fmt.Fprintf(o.Output, "pushed %s to %s branch %s: %s\n", commit, c.remote.URL, o.Branch, res.Summary)
		return false, nil
	case errors.Is(err, errRaced):
		return true, nil
	}
	return false, err
}

// lookOutside records in res the commits others made on the branch from seen to head (see
// Result.Outside), marks head seen and reports true. A failure to read them does not fail
// the publish: it is logged and noted, nothing is marked seen (a commit this publish makes
// is marked made instead: commitAndPush), and the next publish reads them.
func (o *Options) lookOutside(ctx context.Context, c *clone, res *Result, seen, head string, paths []string) bool {
	own, err := c.made(ctx)
	var commits []OutsideCommit
	var note string
	if err == nil {
		commits, note, err = c.outside(ctx, seen, head, paths, own, time.Now())
	}
	if err != nil {
		c.log.Warn("could not read the commits others made on the constraints branch", "err", err)
		res.Outside, res.OutsideNote = nil, "could not read the commits made outside refreshd: "+err.Error()
		return false
	}
	res.Outside, res.OutsideNote = commits, note
	if note != "" {
		c.log.Warn("commits made outside refreshd on the constraints branch: "+note, "read", MaxOutsideCommits)
		fmt.Fprintf(o.Output, "commits made outside refreshd: %s\n", note)
	}
	for _, oc := range commits {
		c.log.Info("constraints changed outside refreshd", "commit", oc.Commit, "author", oc.Author, "pins", len(oc.Changes))
		fmt.Fprintf(o.Output, "outside refreshd: commit %.12s by %s changed %d pins\n", oc.Commit, oc.Author, len(oc.Changes))
		for _, ch := range oc.Changes {
			fmt.Fprintf(o.Output, "  %s: %s\n", ch.File, ch)
		}
	}
	if head != "" {
		if err := c.markSeen(ctx, head); err != nil {
			c.log.Warn("could not record the constraints branch head as seen", "err", err)
			return false
		}
	}
	if err := c.forgetMade(ctx, own); err != nil {
		c.log.Warn("could not forget the commits made while the branch was not read", "err", err)
	}
	return true
}

func (o *Options) validate() error {
	switch {
	case o.Branch == "":
		return errors.New("no branch")
	case o.StateDir == "":
		return errors.New("no state directory")
	case len(o.Files) == 0:
		return errors.New("no files pattern")
	case o.Ignore == nil:
		return errors.New("no ignore pattern")
	case o.AuthorName == "" || o.AuthorEmail == "":
		return errors.New("no commit author")
	case o.Message == nil:
		return errors.New("no commit message")
	case o.MaxAttempts < 1:
		return fmt.Errorf("max attempts %d: must be at least 1", o.MaxAttempts)
	}
	if o.Dir != "" {
		if err := checkRelative(o.Dir); err != nil {
			return fmt.Errorf("dir %q: %w", o.Dir, err)
		}
		o.Dir = filepath.Clean(o.Dir)
		if o.Dir == "." {
			o.Dir = ""
		}
	}
	return nil
}

func (o *Options) defaults(rem remote) {
	if o.FetchAttempts <= 0 {
		o.FetchAttempts = 3
	}
	if o.FetchBackoff <= 0 {
		o.FetchBackoff = 2 * time.Second
	}
	if o.Output == nil {
		o.Output = io.Discard
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Runner == nil {
		o.Runner = &ExecRunner{Output: o.Output}
	}
	o.Runner = withRedactor(o.Runner, rem)
	if o.LockWait <= 0 {
		o.LockWait = time.Second
	}
}

// report prints the package-level diff.
func (o *Options) report(res *Result) {
	if !res.Changed {
		fmt.Fprintf(o.Output, "constraints on %s: no change\n", res.Branch)
		return
	}
	fmt.Fprintf(o.Output, "constraints on %s: %s\n", res.Branch, res.Summary)
	for _, f := range res.Files {
		state := ""
		if f.New {
			state = " (new file)"
		}
		fmt.Fprintf(o.Output, "%s%s:\n", f.Path, state)
		for _, c := range f.Changes {
			fmt.Fprintf(o.Output, "  %s\n", c)
		}
		if len(f.Changes) == 0 {
			fmt.Fprintf(o.Output, "  (lines changed, no package pins)\n")
		}
	}
}

// clonePath is the clone of one repository and branch: STATE/git/KEY.
func clonePath(stateDir, key string) string { return filepath.Join(stateDir, "git", key) }

// lockPath is the lock of one repository and branch: STATE/locks/branch-KEY.lock.
func lockPath(stateDir, key string) string {
	return filepath.Join(stateDir, "locks", "branch-"+key+".lock")
}

// lockBranch takes the per-branch lock, waiting (as long as ctx allows) for another plan or
// daemon publishing the same branch.
func lockBranch(ctx context.Context, path string, every time.Duration, log *slog.Logger) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create lock directory: %w", err)
	}
	fl := flock.New(path)
	ok, err := fl.TryLock()
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if !ok {
		log.Info("waiting for the branch lock: another publish of this branch is running", "lock", path)
		ok, err = fl.TryLockContext(ctx, every)
		if err != nil {
			return nil, fmt.Errorf("wait for branch lock %s: %w", path, err)
		}
		if !ok { // flock returns the context's error when it gives up; be safe if it did not
			return nil, fmt.Errorf("wait for branch lock %s: not acquired", path)
		}
	}
	return func() { fl.Unlock() }, nil
}

// withRedactor gives an ExecRunner without its own redaction the remote's (its URL
// credentials and token, in every escaping).
func withRedactor(r Runner, rem remote) Runner {
	if er, ok := r.(*ExecRunner); ok && er.Redact == nil {
		withRedact := *er
		withRedact.Redact = rem.redactor()
		return &withRedact
	}
	return r
}

// outlive is a context that ends grace after ctx ends (with ctx's cause), or when the
// returned function is called.
func outlive(ctx context.Context, grace time.Duration) (context.Context, func()) {
	if grace <= 0 {
		return context.WithCancel(ctx)
	}
	out, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	var mu sync.Mutex
	var timer *time.Timer
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		timer = time.AfterFunc(grace, func() { cancel(context.Cause(ctx)) })
	})
	return out, func() {
		stop()
		mu.Lock()
		if timer != nil {
			timer.Stop()
		}
		mu.Unlock()
		cancel(context.Canceled)
	}
}

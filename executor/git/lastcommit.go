package git

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/refreshd/refreshd/proc"
)

// LastCommitTime returns the committer time of branch's head on repo, fetching only that
// commit into a throwaway repository. Credentials in repo are passed to git through the
// environment; env adds to git's environment (e.g. TokenEnv). procs starts the git
// processes (nil: proc's defaults). Errors never show credentials.
func LastCommitTime(ctx context.Context, procs *proc.Runner, repo, branch string, env []string) (time.Time, error) {
	if err := checkRepoRef(repo, branch, "branch"); err != nil {
		return time.Time{}, fmt.Errorf("last commit of %q on %s: %w", branch, RedactURLs(repo), err)
	}
	rem, err := parseRemote(repo, "")
	if err != nil {
		return time.Time{}, err
	}
	tmp, err := os.MkdirTemp("", "refreshd-lastcommit-")
	if err != nil {
		return time.Time{}, fmt.Errorf("last commit of %s: %w", branch, err)
	}
	defer os.RemoveAll(tmp)
	run := &ExecRunner{Redact: rem.redactor(), Proc: procs}
	env = append(append([]string(nil), env...), rem.env()...)
	if _, err := run.Git(ctx, tmp, env, "init", "--quiet", "--bare"); err != nil {
		return time.Time{}, fmt.Errorf("last commit of %s: %w", branch, err)
	}
	if _, err := run.Git(ctx, tmp, env, "fetch", "--quiet", "--no-tags", "--depth=1", "--end-of-options", rem.URL, "refs/heads/"+branch); err != nil {
		return time.Time{}, fmt.Errorf("last commit of %s on %s: %w", branch, rem.URL, err)
	}
	out, err := run.Git(ctx, tmp, env, "log", "-1", "--format=%ct", "FETCH_HEAD")
	if err != nil {
		return time.Time{}, fmt.Errorf("last commit of %s on %s: %w", branch, rem.URL, err)
	}
	sec, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("last commit of %s on %s: parse time %q: %w", branch, rem.URL, out, err)
	}
	return time.Unix(sec, 0), nil
}

package git

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/refreshd/refreshd/proc"
)

// maxBranches bounds the branches ListBranches returns.
const maxBranches = 100000

// ListBranches lists the branch names of repo (git ls-remote --heads), for a plan's
// instances_from. It runs outside any repository, with git's prompts off and only the
// transports that run no program of the remote's choosing; env adds to git's environment.
func ListBranches(ctx context.Context, procs *proc.Runner, repo string, env []string) ([]string, error) {
	if err := checkRepoRef(repo, "main", "branch"); err != nil {
		return nil, fmt.Errorf("list branches of %s: %w", RedactURLs(repo), err)
	}
	rem, err := parseRemote(repo, "")
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "refreshd-branches-")
	if err != nil {
		return nil, fmt.Errorf("list branches of %s: %w", RedactURLs(repo), err)
	}
	defer os.RemoveAll(tmp)
	run := &ExecRunner{Redact: rem.redactor(), Proc: procs}
	out, err := run.Git(ctx, tmp, append(append([]string(nil), env...), rem.env()...), "ls-remote", "--heads", "--end-of-options", rem.URL)
	if err != nil {
		return nil, fmt.Errorf("list branches of %s: %w", rem.redactor()(repo), err)
	}
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() && len(names) < maxBranches {
		_, ref, ok := strings.Cut(sc.Text(), "\t")
		if name, isHead := strings.CutPrefix(ref, "refs/heads/"); ok && isHead && name != "" {
			names = append(names, name)
		}
	}
	return names, nil
}

package executor

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/refreshd/refreshd/executor/git"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/plan"
	"github.com/refreshd/refreshd/statedir"
)

// checkout brings the step's path (its workdir by default) to the commit of the plan's ref,
// holding the path's lock so two plans (or instances of one) never check out into one
// directory at once, and records the commit as the run's source.
type checkout struct{ *plan.CheckoutAction }

func (c checkout) run(ctx context.Context, t *Tools, a *Attempt) error {
	act := c.CheckoutAction
	dir := act.Path
	if dir == "" {
		dir = a.Workdir
	}
	token := ""
	if act.Token != "" {
		v, ok := a.Secrets[act.Token]
		if !ok || v == "" {
			return fmt.Errorf("check out %s: secret %s (the token) has no value", git.RedactURLs(act.Repo), act.Token)
		}
		token = v
	}
	unlock, err := lockCheckout(ctx, a.StateDir, dir)
	if err != nil {
		return err
	}
	defer unlock()
	var env []string // the step's env, as a run step would have it (GIT_SSH_COMMAND, ...)
	if a.Instance != nil {
		for _, k := range slices.Sorted(maps.Keys(a.Instance.Env)) {
			env = append(env, k+"="+a.Instance.Env[k])
		}
	}
	res, err := git.Checkout(ctx, git.CheckoutOptions{
		Repo: act.Repo, Ref: act.Ref, Dir: dir, Token: token, Keep: act.Keep, Env: env, Log: a.Log,
		Run: &git.ExecRunner{Program: t.git(), Output: a.Output, Proc: a.Procs},
	})
	if err != nil {
		return err
	}
	if a.SetSource != nil {
		a.SetSource(history.Source{Step: a.Instance.ID, Repo: res.Repo, Ref: res.Ref, Commit: res.Commit,
			Previous: res.Previous, Changed: res.Changed, Path: dir})
	}
	what := "unchanged"
	if res.Changed {
		what = "moved from " + cmp.Or(res.Previous, "nothing (new checkout)")
	}
	fmt.Fprintf(a.Output, "checked out %s %s at %s into %s: %s\n", res.Repo, res.Ref, res.Commit, dir, what)
	return nil
}

func (c checkout) describe(t *Tools) []Op {
	act := c.CheckoutAction
	dir := act.Path
	if dir == "" {
		dir = "the workdir"
	}
	auth := "the user's git credentials (credential helpers, SSH keys)"
	if act.Token != "" {
		auth = "the token in secret " + act.Token + ", through a credential helper"
	}
	keep := ""
	if len(act.Keep) > 0 {
		keep = " except " + strings.Join(act.Keep, ", ")
	}
	return []Op{
		{Text: fmt.Sprintf("lock %s (%s)", quoteArg(dir), statedir.Dir{Root: "STATE"}.CheckoutLock(dir))},
		{Text: fmt.Sprintf("%s fetch origin %s from %s into %s (auth: %s)", t.git(), quoteArg(act.Ref), quoteArg(git.RedactURLs(act.Repo)), quoteArg(dir), auth)},
		{Text: "check out the fetched commit detached, reset --hard, clean -ffdx" + keep, Note: "records the commit: .source.commit"},
	}
}

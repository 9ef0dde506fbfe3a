package executor

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"text/template"

	"github.com/refreshd/refreshd/executor/git"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/plan"
	"github.com/refreshd/refreshd/proc"
)

// publish copies the run's generated constraints into refreshd's clone of the branch and,
// when a meaningful line changed, commits and pushes them without force. The engine runs it
// only when every step it needs succeeded in the same run, so constraints never come from a
// run whose upgrade build failed. What it did (or, in the dry run, would do) is recorded even
// when it fails half-way.
type publish struct{ *plan.PublishAction }

func (p publish) run(ctx context.Context, t *Tools, a *Attempt) error {
	act := p.PublishAction
	// The same words git starts its errors with, so every publish error reads alike.
	what := fmt.Sprintf("publish constraints to %s branch %s", git.RedactURLs(act.Repo), act.Branch)
	token := ""
	if act.Token != "" {
		v, ok := a.Secrets[act.Token]
		if !ok || v == "" {
			return fmt.Errorf("%s: secret %s (the token) has no value", what, act.Token)
		}
		token = v
	}
	set := publishSettings(act)
	msgTmpl, err := template.New("message").Funcs(plan.TemplateFuncs()).Option("missingkey=error").Parse(set.Message)
	if err != nil {
		return fmt.Errorf("%s: message template: %w", what, err)
	}
	// The plan's default message is the fallback when the plan's own fails to render.
	fallback := template.Must(template.New("default message").Parse(plan.DefaultMessage))
	var msgErr error
	data := publishData(a)
	message := func(summary string) string {
		var b strings.Builder
		data["summary"] = summary
		if err := msgTmpl.Execute(&b, data); err != nil {
			msgErr = err
			b.Reset()
			fallback.Execute(&b, data) // renders: a constant over keys always present
		}
		return b.String()
	}
	author := func(key, tmpl string) (string, error) {
		t, err := template.New(key).Option("missingkey=error").Parse(tmpl)
		if err == nil {
			var b strings.Builder
			if err = t.Execute(&b, data); err == nil {
				return b.String(), nil
			}
		}
		return "", fmt.Errorf("%s: %s template: %w", what, key, err)
	}
	if set.AuthorName, err = author("author_name", set.AuthorName); err != nil {
		return err
	}
	if set.AuthorEmail, err = author("author_email", set.AuthorEmail); err != nil {
		return err
	}
	var env []string // the step's environment, as a run step would have it (GIT_SSH_COMMAND, ...)
	if a.Instance != nil {
		for _, k := range slices.Sorted(maps.Keys(a.Instance.Env)) {
			env = append(env, k+"="+a.Instance.Env[k])
		}
	}
	// A stop (or cancel, or the step's timeout) during git push gives the push half the
	// step's kill grace to finish, and its git the other half between SIGTERM and SIGKILL:
	// the publish still ends within the grace the stop allows, and the record says what
	// the remote got instead of leaving the branch to be updated behind the record.
	var procs proc.Runner
	if a.Procs != nil {
		procs = *a.Procs
	}
	grace := cmp.Or(procs.Grace, proc.DefaultGrace)
	procs.Grace = grace / 2
	o := git.Options{
		Repo: act.Repo, Branch: act.Branch, Token: token,
		Workdir: a.Workdir, Files: []string{act.Files}, Dir: act.Dir, Ignore: set.IgnoreLines,
		AuthorName: set.AuthorName, AuthorEmail: set.AuthorEmail, Message: message,
		MaxAttempts: set.MaxAttempts, StateDir: a.StateDir, DryRun: a.DryRun, Env: env,
		Output: a.Output, Log: a.Log,
		Runner:    &git.ExecRunner{Program: t.git(), Output: a.Output, Proc: &procs},
		PushGrace: grace - procs.Grace,
		// Recorded before git push starts (in the run's journal at once, in the store with
		// the next save), so after a kill -9 the next start finds the commit to look for on
		// the branch (statedir's recovery).
		Pushing: func(res *git.Result) {
			a.Record(func(s *history.Step) { s.Publish = publishRecord(res, s.Publish) })
		},
	}
	res, err := git.Publish(ctx, o)
	if res != nil {
		a.Record(func(s *history.Step) { s.Publish = publishRecord(res, s.Publish) })
		for _, c := range res.Changes() {
			if c.Kind == git.Downgraded {
				a.Warn(fmt.Sprintf("constraints %s: %s downgraded %s -> %s", c.File, c.Package, c.Old, c.New))
			}
		}
	}
	if err != nil {
		return err // git names the repository, the branch and the operation
	}
	if msgErr != nil {
		a.Warn(fmt.Sprintf("%s: message template: %v (used the default message)", what, msgErr))
	}
	return nil
}

// publishData is what publish templates (message, author) see: the instance's template data
// (.plan, .instance, .params, .vars, matrix values), .run, and .source, the commit the run's
// checkout fetched (.source.commit, .source.ref, .source.repo), when there is one.
func publishData(a *Attempt) map[string]any {
	data := map[string]any{}
	if a.Instance != nil {
		maps.Copy(data, a.Instance.Data)
	}
	data["run"], data["plan"] = a.RunID, a.Plan.Name
	// Always present, nil without a checkout: {{ if .source }} works, and a template naming
	// .source.commit in a run without a checkout fails (missingkey=error) instead of
	// printing "<no value>".
	var source map[string]string
	if a.Source != nil {
		if src := a.Source(); src != nil {
			source = map[string]string{"commit": src.Commit, "ref": src.Ref, "repo": src.Repo}
		}
	}
	if source == nil && a.DryRun && hasCheckout(a.Plan) {
		// The dry run fetches nothing: the message shows where the commit would go.
		source = map[string]string{"commit": "(commit fetched by the checkout)", "ref": "(ref)", "repo": "(repo)"}
	}
	data["source"] = source
	return data
}

// publishSettings is the action with the plan's defaults in every setting it leaves out. A
// decoded plan has them all already; an action built in code may not, and the defaults are
// the plan package's, written down once.
func publishSettings(act *plan.PublishAction) plan.PublishConstraints {
	pc := act.PublishConstraints
	pc.Message = cmp.Or(pc.Message, plan.DefaultMessage)
	pc.AuthorName = cmp.Or(pc.AuthorName, plan.DefaultAuthorName)
	pc.AuthorEmail = cmp.Or(pc.AuthorEmail, plan.DefaultAuthorEmail)
	pc.MaxAttempts = cmp.Or(pc.MaxAttempts, plan.DefaultPublishTry)
	if pc.IgnoreLines == nil {
		pc.IgnoreLines = regexp.MustCompile(plan.DefaultIgnoreLines) // a constant known to compile
	}
	return pc
}

// publishRecord is the history form of a publish result, in place of prev, what an earlier
// attempt of the step (or this one, before its push) recorded. The commits made outside
// refreshd that prev found stay: the attempt that found them marked the branch head seen,
// so a retry of the step does not find them again.
func publishRecord(res *git.Result, prev *history.Publish) *history.Publish {
	p := &history.Publish{
		Repo: res.Repo, Branch: res.Branch, Commit: res.Commit, Pushing: res.Pushing, Changed: res.Changed,
		Summary: res.Summary, PushAttempts: res.PushAttempts,
	}
	for _, c := range res.Changes() {
		p.Changes = append(p.Changes, packageChange(c))
	}
	for _, oc := range res.Outside {
		rec := history.OutsideCommit{Commit: oc.Commit, Author: oc.Author, At: oc.At}
		for _, c := range oc.Changes {
			rec.Changes = append(rec.Changes, packageChange(c))
		}
		p.Outside = append(p.Outside, rec)
	}
	p.OutsideNote = res.OutsideNote
	if prev != nil {
		for _, oc := range prev.Outside {
			if !slices.ContainsFunc(p.Outside, func(o history.OutsideCommit) bool { return o.Commit == oc.Commit }) {
				p.Outside = append(p.Outside, oc) // older than what this attempt found
			}
		}
		p.OutsideNote = cmp.Or(p.OutsideNote, prev.OutsideNote)
		if len(p.Outside) > git.MaxOutsideCommits { // attempts that each found some
			p.Outside = p.Outside[:git.MaxOutsideCommits]
			p.OutsideNote = cmp.Or(p.OutsideNote, fmt.Sprintf("the attempts found more than %d commits: recorded the newest %d", git.MaxOutsideCommits, git.MaxOutsideCommits))
		}
	}
	return p
}

func packageChange(c git.Change) history.PackageChange {
	return history.PackageChange{File: c.File, Package: c.Package, Old: c.Old, New: c.New}
}

// preview is publish's dry run: git fetches the branch and computes the commit it would
// push (a.DryRun), changing nothing outside the state directory.
func (p publish) preview(ctx context.Context, t *Tools, a *Attempt) error {
	return p.run(ctx, t, a)
}

// describe lists what publishing does. The git commands run inside refreshd's clone with
// options of their own (credentials, quiet), so they are told as operations, with every
// value from the plan quoted as the shell would need it.
func (p publish) describe(t *Tools) []Op {
	act := p.PublishAction
	repo := git.RedactURLs(act.Repo)
	dest := "the branch root"
	if act.Dir != "" {
		dest = quoteArg(act.Dir + "/")
	}
	set := publishSettings(act)
	ignore, attempts := set.IgnoreLines.String(), set.MaxAttempts
	auth := "the user's git credentials (credential helpers, SSH keys)"
	if act.Token != "" {
		auth = "the token in secret " + act.Token
	}
	key := git.Key(act.Repo, act.Branch)
	branch := quoteArg(act.Branch)
	return []Op{
		{Text: fmt.Sprintf("lock branch %s of %s (STATE/locks/branch-%s.lock)", branch, quoteArg(repo), key)},
		{Text: fmt.Sprintf("%s fetch origin %s into STATE/git/%s, reset --hard, clean -fdx (auth: %s)", t.git(), branch, key, auth)},
		{Text: fmt.Sprintf("copy %s (relative to the workdir) flat into %s", quoteArg(act.Files), dest)},
		{Text: fmt.Sprintf("compare ignoring lines matching %s; commit only if another line changed", quoteArg(ignore))},
		{Text: fmt.Sprintf("%s push origin %s (never --force; on a race fetch, re-apply and retry, %d attempts)", t.git(), quoteArg("HEAD:refs/heads/"+act.Branch), attempts)},
	}
}

// PublishToken is the token plan p's publish_constraints steps use for repo (credentials in
// either URL ignored), read from its secret now; "" when no step pushing there has one or
// the secret cannot be read. The start-up reconciliation of interrupted publishes uses it
// (statedir.Options.Token).
func PublishToken(p *plan.Plan, repo string) string {
	for _, s := range p.Steps {
		pc := s.PublishConstraints
		if pc == nil || pc.Token == "" || git.Key(pc.Repo, "") != git.Key(repo, "") {
			continue
		}
		sec, ok := p.Secrets[pc.Token]
		if !ok {
			continue
		}
		if v, _, err := readSecret(context.Background(), sec); err == nil {
			return v
		}
	}
	return ""
}

// ReconcilePublish is the check statedir.Open runs for each publish a kill interrupted
// (statedir.Options.Reconcile): is the commit handed to git push on the branch? token
// returns the plan's token for the repository (PublishToken; nil or "": the user's git
// credentials).
func ReconcilePublish(token func(plan, repo string) string) func(ctx context.Context, stateDir, planName string, p history.Publish) (bool, error) {
	return func(ctx context.Context, stateDir, planName string, p history.Publish) (bool, error) {
		tok := ""
		if token != nil {
			tok = token(planName, p.Repo)
		}
		return git.Reconcile(ctx, git.ReconcileOptions{
			Repo: p.Repo, Branch: p.Branch, Token: tok, Commit: p.Pushing, StateDir: stateDir,
		})
	}
}

// hasCheckout reports whether p has a checkout step (the source of .source).
func hasCheckout(p *plan.Plan) bool {
	for _, s := range p.Steps {
		if s.Checkout != nil {
			return true
		}
	}
	return false
}

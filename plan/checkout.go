package plan

import (
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/refreshd/refreshd/internal/safearg"
)

// The checkout action: bring a directory to a commit of a repository. The run records the
// commit as its source (.source.commit): the steps naming .source expand once the checkout
// succeeded (checkRuntimeVars, Graph.ExtendSource).

func checkoutKind() actionKind {
	return actionKind{key: "checkout", decode: (*planDecoder).checkout,
		noMatrix: "a run has one source: use one checkout step per directory"}
}

// Checkout brings a directory to a commit of a repository: fetch Ref, reset to the fetched
// commit, clean what is untracked except Keep. The run records the commit; templates of a
// publish_constraints message see it as .source.commit (.source.ref, .source.repo).
type Checkout struct {
	Repo  string   // template; https://, ssh://, git@host:path or a local path
	Ref   string   // template: a branch, a tag or a commit id
	Path  string   // absolute; default the step's workdir (the plan's)
	Token string   // name of a plan secret holding an HTTPS token
	Keep  []string // paths relative to the checkout that clean leaves alone
}

// CheckoutAction brings Path (the instance's workdir when "") to Ref of Repo.
type CheckoutAction struct {
	Checkout
}

func (*CheckoutAction) Kind() string { return "checkout" }

// The fields of a checkout whose value reaches an argv, and their rules.
var (
	argCheckoutRepo = argField{"checkout.repo", "checkout repo", safearg.GitRepo}
	argCheckoutRef  = argField{"checkout.ref", "checkout ref", safearg.GitRef}
)

func (pd *planDecoder) checkout(n *yaml.Node, s *Step) actionSpec {
	co := &Checkout{}
	pd.fields(n, "checkout", []field{
		{"repo", func(v *yaml.Node) { co.Repo = pd.argTmpl(v, s, argCheckoutRepo) }},
		{"ref", func(v *yaml.Node) { co.Ref = pd.argTmpl(v, s, argCheckoutRef) }},
		{"path", func(v *yaml.Node) { co.Path = pd.absPath(v, "checkout path") }},
		{"token", func(v *yaml.Node) {
			co.Token = pd.name(v, "token")
			s.at["checkout.token"] = pd.pos(v)
		}},
		{"keep", func(v *yaml.Node) {
			var pos []Pos
			co.Keep, pos = pd.strList(v, "keep")
			for i, k := range co.Keep {
				clean := filepath.Clean(k)
				if k == "" || filepath.IsAbs(k) || clean == "." || clean == ".git" || slices.Contains(strings.Split(clean, "/"), "..") {
					pd.errorAt(pos[i], "keep %q must be a path inside the checkout, like files/ or .venv", k)
				}
			}
		}},
	})
	if resolve(n).Kind == yaml.MappingNode {
		if co.Repo == "" {
			pd.errorf(n, "checkout needs repo: URL (https://, ssh://, git@host:path or an absolute path)")
		}
		if co.Ref == "" {
			pd.errorf(n, "checkout needs ref: a branch, tag or commit id (a template, e.g. \"{{ .params.ref }}\")")
		}
	}
	s.Checkout = co
	return co
}

func (co *Checkout) token() string { return co.Token }

func (co *Checkout) expand(x *expander, s *Step, base *Instance, data map[string]any) {
	out := *co
	out.Repo = x.render(s, "checkout.repo", co.Repo, data)
	out.Ref = x.render(s, "checkout.ref", co.Ref, data)
	x.checkArg(s, argCheckoutRepo, co.Repo, out.Repo, data)
	x.checkArg(s, argCheckoutRef, co.Ref, out.Ref, data)
	if out.Path == "" {
		out.Path = base.Workdir
	}
	base.Action = &CheckoutAction{Checkout: out}
	x.add(base)
}

// drySource is what checkout step id is taken to fetch in a dry run (ExtendDry): its
// rendered repo and ref, at commit.
func (g *Graph) drySource(id, commit string) Source {
	for _, in := range g.Instances {
		if a, ok := in.Action.(*CheckoutAction); ok && in.Step != nil && in.Step.ID == id {
			return Source{Repo: a.Repo, Ref: a.Ref, Commit: commit}
		}
	}
	return Source{Commit: commit}
}

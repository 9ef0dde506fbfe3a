package plan

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/refreshd/refreshd/internal/safearg"
)

// The publish_constraints action: publish generated constraint files to a git branch,
// only from a run whose steps succeeded, and only after the plan's test gates (checkGates).

func publishKind() actionKind {
	return actionKind{key: "publish_constraints", decode: (*planDecoder).publish,
		doing:       "publishes constraints",
		successOnly: "constraints are published only from a run whose steps succeeded (when: success), never after a failure"}
}

// PublishConstraints publishes generated constraint files to a git branch.
type PublishConstraints struct {
	Repo        string
	Branch      string
	Files       string // glob relative to the workdir
	Dir         string // subdirectory of the branch; default the root
	IgnoreLines *regexp.Regexp
	AuthorName  string
	AuthorEmail string
	Message     string // template over .run, .plan, .summary
	Token       string // name of a plan secret holding an HTTPS token
	MaxAttempts int    // push attempts on a non-fast-forward, default 5
}

// PublishAction publishes constraint files to a branch.
type PublishAction struct {
	PublishConstraints
}

func (*PublishAction) Kind() string { return "publish_constraints" }

// The fields of a publish whose value reaches an argv, and their rules.
var (
	argPublishRepo = argField{"publish_constraints.repo", "publish_constraints repo", safearg.GitRepo}
	argBranch      = argField{"publish_constraints.branch", "branch", safearg.GitRef}
)

func (pd *planDecoder) publish(n *yaml.Node, s *Step) actionSpec {
	pc := &PublishConstraints{AuthorName: DefaultAuthorName, AuthorEmail: DefaultAuthorEmail,
		Message: DefaultMessage, MaxAttempts: DefaultPublishTry}
	pc.IgnoreLines = mustCompileDefault()
	pd.fields(n, "publish_constraints", []field{
		{"repo", func(v *yaml.Node) { pc.Repo = pd.argTmpl(v, s, argPublishRepo) }},
		{"branch", func(v *yaml.Node) { pc.Branch = pd.argTmpl(v, s, argBranch) }},
		{"files", func(v *yaml.Node) {
			pc.Files = pd.tmpl(v, "files", s, "publish_constraints.files")
			if filepath.IsAbs(pc.Files) || slices.Contains(strings.Split(pc.Files, "/"), "..") {
				pd.errorf(v, "files %q must be a glob relative to the workdir, like files/constraints-*/constraints*.txt", pc.Files)
			} else if _, err := filepath.Match(pc.Files, ""); err != nil {
				pd.errorf(v, "files %q: bad glob: %v", pc.Files, err)
			}
		}},
		{"dir", func(v *yaml.Node) {
			pc.Dir = pd.tmpl(v, "dir", s, "publish_constraints.dir")
			if filepath.IsAbs(pc.Dir) || slices.Contains(strings.Split(pc.Dir, "/"), "..") {
				pd.errorf(v, "dir %q must be a relative directory of the branch", pc.Dir)
			}
		}},
		{"ignore_lines", func(v *yaml.Node) { pc.IgnoreLines = pd.regex(v, "ignore_lines") }},
		{"author_name", func(v *yaml.Node) { pc.AuthorName = pd.messageTmpl(v, "author_name", s) }},
		{"author_email", func(v *yaml.Node) { pc.AuthorEmail = pd.messageTmpl(v, "author_email", s) }},
		{"message", func(v *yaml.Node) { pc.Message = pd.messageTmpl(v, "message", s) }},
		{"token", func(v *yaml.Node) {
			pc.Token = pd.name(v, "token")
			s.at["publish_constraints.token"] = pd.pos(v)
		}},
		{"max_attempts", func(v *yaml.Node) { pc.MaxAttempts = pd.integer(v, "max_attempts", 1, 100) }},
	})
	if resolve(n).Kind == yaml.MappingNode {
		for _, req := range []struct{ v, k string }{{pc.Repo, "repo"}, {pc.Branch, "branch"}, {pc.Files, "files"}} {
			if req.v == "" {
				pd.errorf(n, "publish_constraints needs %s:", req.k)
			}
		}
	}
	s.PublishConstraints = pc
	return pc
}

// messageTmpl reads a non-empty template rendered when the commit is made (.run, .summary).
func (pd *planDecoder) messageTmpl(v *yaml.Node, what string, s *Step) string {
	t := pd.nonEmpty(v, what)
	pd.tmpls = append(pd.tmpls, pendingTemplate{pos: pd.pos(v), text: t, kind: tmplMessage, step: s})
	return t
}

func (pc *PublishConstraints) token() string { return pc.Token }

func (pc *PublishConstraints) expand(x *expander, s *Step, base *Instance, data map[string]any) {
	out := *pc
	out.Repo = x.render(s, "publish_constraints.repo", pc.Repo, data)
	out.Branch = x.render(s, "publish_constraints.branch", pc.Branch, data)
	out.Files = x.render(s, "publish_constraints.files", pc.Files, data)
	out.Dir = x.render(s, "publish_constraints.dir", pc.Dir, data)
	x.checkArg(s, argPublishRepo, pc.Repo, out.Repo, data)
	x.checkArg(s, argBranch, pc.Branch, out.Branch, data)
	x.check(s, "publish_constraints.files", checkRelPath("files", out.Files))
	x.check(s, "publish_constraints.dir", checkRelPath("dir", out.Dir))
	base.Action = &PublishAction{PublishConstraints: out}
	x.add(base)
}

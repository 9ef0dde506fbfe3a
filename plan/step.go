package plan

import (
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/refreshd/refreshd/internal/safearg"
)

// actionKeys are the step keys of which exactly one must be present.
var actionKeys = [...]string{"run", "checkout", "buildx_cache", "publish_constraints", "verify_cache"}

func (pd *planDecoder) steps(n *yaml.Node) []*Step {
	var out []*Step
	elems, _ := pd.list(n, "steps", "steps")
	for _, e := range elems {
		if s := pd.step(e); s != nil {
			out = append(out, s)
		}
	}
	return out
}

func (pd *planDecoder) step(n *yaml.Node) *Step {
	n = resolve(n)
	s := &Step{Pos: pd.pos(n), at: make(map[string]Pos), Retry: defaultRetry(), When: WhenSuccess}
	var actions []string
	action := func(name string) { actions = append(actions, name) }
	hasID := false
	ok := pd.fields(n, "step", []field{
		{"id", func(v *yaml.Node) {
			hasID = true
			s.ID = pd.name(v, "step id")
			s.at["id"] = pd.pos(v)
			if s.ID != "" && !namePattern.MatchString(s.ID) {
				pd.errorf(v, "step id %q: use %s", s.ID, nameRule)
			}
		}},
		{"needs", func(v *yaml.Node) {
			s.Needs, s.needsPos = pd.strList(v, "needs")
		}},
		{"matrix", func(v *yaml.Node) { s.Matrix = pd.matrix(v) }},
		{"concurrency", func(v *yaml.Node) { s.Concurrency = pd.integer(v, "concurrency", 1, 1000) }},
		{"timeout", func(v *yaml.Node) { s.Timeout = pd.duration(v, "timeout") }},
		{"retry", func(v *yaml.Node) { pd.retry(v, &s.Retry) }},
		{"workdir", func(v *yaml.Node) {
			s.Workdir = pd.absPath(v, "workdir")
			s.at["workdir"] = pd.pos(v)
		}},
		{"env", func(v *yaml.Node) { s.Env = pd.env(v, s) }},
		{"builder", func(v *yaml.Node) {
			s.Builder = pd.name(v, "builder")
			s.at["builder"] = pd.pos(v)
		}},
		{"when", func(v *yaml.Node) {
			s.at["when"] = pd.pos(v)
			w := When(pd.str(v, "when"))
			switch w {
			case WhenSuccess, WhenFailure, WhenAlways:
				s.When = w
			default:
				pd.errorf(v, "when %q: want success (the default: run when every need succeeded), failure (run only after something failed or the run was cancelled) or always (cleanup: run whatever happened)", string(w))
			}
		}},
		{"secrets", func(v *yaml.Node) {
			s.at["secrets"] = pd.pos(v)
			elems, _ := pd.list(v, "secrets", "secret names")
			for i, e := range elems {
				s.Secrets = append(s.Secrets, pd.name(e, "secrets element"))
				s.at[fmt.Sprintf("secrets.%d", i)] = pd.pos(resolve(e))
			}
		}},
		{"run", func(v *yaml.Node) { action("run"); pd.run(v, s) }},
		{"checkout", func(v *yaml.Node) { action("checkout"); s.Checkout = pd.checkout(v, s) }},
		{"buildx_cache", func(v *yaml.Node) { action("buildx_cache"); s.BuildxCache = pd.buildxCache(v, s) }},
		{"publish_constraints", func(v *yaml.Node) {
			action("publish_constraints")
			s.PublishConstraints = pd.publish(v, s)
		}},
		{"outputs", func(v *yaml.Node) { s.Outputs = pd.outputs(v) }},
		{"report", func(v *yaml.Node) { s.Report = pd.report(v, s) }},
		{"expect", func(v *yaml.Node) { s.Expect = pd.expect(v, s) }},
		{"skip_if", func(v *yaml.Node) { s.at["skip_if"] = pd.pos(v); s.SkipIf = pd.skipIf(v) }},
		{"verify_cache", func(v *yaml.Node) { action("verify_cache"); s.VerifyCache = pd.verifyCache(v, s) }},
	})
	if !ok {
		return nil
	}
	if !hasID {
		pd.errorf(n, "step needs id:")
	}
	switch len(actions) {
	case 0:
		pd.errorf(n, "step %s has no action; want exactly one of %s", s.ID, strings.Join(actionKeys[:], ", "))
	case 1:
	default:
		pd.errorf(n, "step %s has %d actions (%s); want exactly one of %s", s.ID, len(actions), strings.Join(actions, ", "), strings.Join(actionKeys[:], ", "))
	}
	if s.PublishConstraints != nil && s.When != WhenSuccess {
		pd.errorAt(s.at["when"], "step %s publishes constraints with when: %s; constraints are published only from a run whose steps succeeded (when: success), never after a failure", s.ID, s.When)
	}
	if s.Report != nil && s.Run == nil && len(actions) == 1 {
		pd.errorAt(s.at["report"], "report: is for run steps (a test command writing a JUnit report); a %s step has its own record", actions[0])
	}
	if len(s.SkipIf) > 0 && s.When.Cleanup() {
		pd.errorAt(s.at["skip_if"], "step %s has skip_if and when: %s; a cleanup step runs whatever happened, so freshness cannot skip it", s.ID, s.When)
	}
	for i := range s.SkipIf {
		s.SkipIf[i].Step = s.ID
	}
	if len(s.Secrets) > 0 && s.Run == nil && len(actions) == 1 {
		pd.errorAt(s.at["secrets"], "%s", builtinSecretsMsg(actions[0], s.Secrets))
	}
	if s.BuildxCache != nil && s.Builder != "" && s.Builder != s.BuildxCache.Builder {
		pd.errorAt(s.at["builder"], "step builder %q differs from buildx_cache builder %q; a buildx_cache step uses its own builder", s.Builder, s.BuildxCache.Builder)
	}
	return s
}

// expect decodes expect: [{that, equals, why}].
func (pd *planDecoder) expect(n *yaml.Node, s *Step) []Expect {
	elems, ok := pd.list(n, "expect", "{that: TEMPLATE, equals: TEMPLATE, why: TEXT}")
	if !ok {
		return nil
	}
	var out []Expect
	for i, e := range elems {
		x := Expect{Pos: pd.pos(resolve(e))}
		pd.fields(e, "expect", []field{
			{"that", func(v *yaml.Node) { x.That = pd.tmpl(v, "that", s, fmt.Sprintf("expect.%d.that", i)) }},
			{"equals", func(v *yaml.Node) { x.Equals = pd.tmpl(v, "equals", s, fmt.Sprintf("expect.%d.equals", i)) }},
			{"why", func(v *yaml.Node) { x.Why = pd.str(v, "why") }},
		})
		if resolve(e).Kind == yaml.MappingNode && (x.That == "" || x.Equals == "") {
			pd.errorf(e, "expect needs that: and equals: (templates that must render to the same value, e.g. that: \"{{ .vars.tree_branch }}\", equals: \"{{ .instance }}\")")
			continue
		}
		out = append(out, x)
	}
	return out
}

// report decodes report: {junit: PATH}.
func (pd *planDecoder) report(v *yaml.Node, s *Step) *Report {
	r := &Report{}
	s.at["report"] = pd.pos(v)
	pd.fields(v, "report", []field{
		{"junit", func(v *yaml.Node) {
			r.JUnit = pd.tmpl(v, "junit", s, "report.junit")
			if !isTemplate(r.JUnit) {
				if msg := checkRelPath("report junit", r.JUnit); msg != "" {
					pd.errorf(v, "%s", msg)
				}
			}
		}},
	})
	if r.JUnit == "" && resolve(v).Kind == yaml.MappingNode {
		pd.errorf(v, "report needs junit: PATH (the JUnit XML the step writes, relative to its workdir, e.g. pytest --junitxml)")
	}
	return r
}

// builtinSecretsMsg says where a built-in step's credentials come from instead of
// secrets:, and what to write.
func builtinSecretsMsg(action string, secrets []string) string {
	switch action {
	case "checkout", "publish_constraints":
		if len(secrets) == 1 {
			return fmt.Sprintf("secrets: is for run steps; a %s step takes its secret as its token: remove secrets: and write token: %s in %s:", action, secrets[0], action)
		}
		return fmt.Sprintf("secrets: is for run steps; a %s step takes one secret, as its token (%s: {token: NAME}): remove secrets:", action, action)
	}
	return fmt.Sprintf("secrets: is for run steps; a %s step reads registry credentials from the daemon's docker config (DOCKER_CONFIG, as docker login writes it), never from a secret: remove secrets:", action)
}

// run decodes a step's argv: a list, never a shell string; each element a template.
func (pd *planDecoder) run(v *yaml.Node, s *Step) {
	if resolve(v).Kind == yaml.ScalarNode {
		pd.errorf(v, "run is an argv list, never a shell string: write %s", flowKey("run", strings.Fields(resolve(v).Value)))
		return
	}
	var pos []Pos
	s.Run, pos = pd.strList(v, "run")
	if len(s.Run) == 0 && resolve(v).Kind == yaml.SequenceNode {
		pd.errorf(v, "run is empty; want [program, args...]")
	}
	for i, a := range s.Run {
		key := fmt.Sprintf("run.%d", i)
		s.at[key] = pos[i]
		pd.tmpls = append(pd.tmpls, pendingTemplate{pos: pos[i], text: a, kind: tmplStep, step: s})
	}
	if len(s.Run) > 0 && s.Run[0] == "" {
		pd.errorAt(pos[0], "run's program (first element) is empty")
	}
}

func (pd *planDecoder) verifyCache(v *yaml.Node, s *Step) *VerifyCache {
	vc := &VerifyCache{}
	pd.fields(v, "verify_cache", []field{
		{"ref", func(v *yaml.Node) { vc.Ref = pd.tmpl(v, "ref", s, "verify_cache.ref") }},
	})
	if vc.Ref == "" && resolve(v).Kind == yaml.MappingNode {
		pd.errorf(v, "verify_cache needs ref: REPOSITORY:TAG (a template)")
	}
	return vc
}

// tmpl reads a non-empty string that may be a template over the step's names.
func (pd *planDecoder) tmpl(v *yaml.Node, what string, s *Step, key string) string {
	t := pd.nonEmpty(v, what)
	s.at[key] = pd.pos(v)
	pd.tmpls = append(pd.tmpls, pendingTemplate{pos: pd.pos(v), text: t, kind: tmplStep, step: s})
	return t
}

// argTmpl is tmpl for a field whose value reaches an outside program's argv: a value
// without a template is checked here, so a step that expands only at run time has its
// written values checked at load too (rendered ones are checked where they expand).
func (pd *planDecoder) argTmpl(v *yaml.Node, s *Step, f argField) string {
	t := pd.tmpl(v, f.key[strings.LastIndexByte(f.key, '.')+1:], s, f.key)
	pd.argLiteral(v, f, t)
	return t
}

// argLiteral checks a value that is not a template against f's rule.
func (pd *planDecoder) argLiteral(v *yaml.Node, f argField, value string) {
	if isTemplate(value) {
		return
	}
	if err := f.rule(value); err != nil {
		pd.errorf(v, "%s %q: %v", f.what, value, err)
	}
}

func (pd *planDecoder) matrix(n *yaml.Node) []Axis {
	pairs := pd.pairs(n, "matrix")
	if pairs == nil && resolve(n).Kind == yaml.MappingNode {
		pd.errorf(n, "matrix is empty; want axes like {python: [\"3.11\", \"3.12\"]} or {python: \"{{ .vars.python }}\"}")
	}
	var out []Axis
	for _, kv := range pairs {
		k, v := kv[0], kv[1]
		ax := Axis{Pos: pd.pos(k), Name: k.Value}
		if !identPattern.MatchString(k.Value) {
			pd.errorf(k, "matrix axis name %q: use %s (templates name it as .%s)", k.Value, identRule, k.Value)
		}
		if k.Value == "vars" || k.Value == "plan" || k.Value == "secrets" || k.Value == "params" || k.Value == "instance" {
			pd.errorf(k, "matrix axis name %q is reserved; choose another", k.Value)
		}
		switch v.Kind {
		case yaml.SequenceNode:
			vals, pos := pd.strList(v, "matrix "+k.Value)
			if len(vals) == 0 {
				pd.errorf(v, "matrix axis %s is empty; an empty matrix runs nothing", k.Value)
			}
			seen := make(map[string]bool)
			for i, val := range vals {
				if isTemplate(val) {
					if listRefPattern.MatchString(val) {
						pd.errorAt(pos[i], "matrix values are literal; to use a list var write %s: %s", k.Value, strconv.Quote(val))
					} else {
						pd.errorAt(pos[i], "matrix values are literal, not templates; a list var is named by the whole axis: %s: \"{{ .vars.NAME }}\"", k.Value)
					}
				}
				if seen[val] {
					pd.errorAt(pos[i], "matrix axis %s repeats value %q", k.Value, val)
				}
				seen[val] = true
			}
			ax.Values = vals
		case yaml.ScalarNode:
			m := listRefPattern.FindStringSubmatch(v.Value)
			if m == nil {
				pd.errorf(v, "matrix axis %s must be a list of values or exactly \"{{ .vars.NAME }}\" naming a list var, not %s", k.Value, describe(v))
			} else {
				ax.ref, ax.refPos = m[1], pd.pos(v)
			}
		default:
			pd.errorf(v, "matrix axis %s must be a list of values or \"{{ .vars.NAME }}\", not %s", k.Value, kindName(v))
		}
		out = append(out, ax)
	}
	return out
}

func (pd *planDecoder) retry(n *yaml.Node, r *Retry) {
	maxSet := false
	pd.fields(n, "retry", []field{
		{"attempts", func(v *yaml.Node) { r.Attempts = pd.integer(v, "attempts", 1, 100) }},
		{"backoff", func(v *yaml.Node) { r.Backoff = pd.duration(v, "backoff") }},
		{"max_backoff", func(v *yaml.Node) { maxSet = true; r.MaxBackoff = pd.duration(v, "max_backoff") }},
		{"jitter", func(v *yaml.Node) { r.Jitter = pd.number(v, "jitter", 0, 1) }},
		{"retry_on", func(v *yaml.Node) {
			pd.fields(v, "retry_on", []field{
				{"exit_codes", func(v *yaml.Node) {
					codes, _ := pd.list(v, "exit_codes", "exit codes (1-255)")
					for _, e := range codes {
						r.ExitCodes = append(r.ExitCodes, pd.integer(e, "exit code", 1, 255))
					}
				}},
				{"output", func(v *yaml.Node) {
					patterns, _ := pd.list(v, "output", "regular expressions")
					for _, e := range patterns {
						if re := pd.regex(e, "retry_on output"); re != nil {
							r.Output = append(r.Output, re)
						}
					}
				}},
			})
		}},
	})
	if !maxSet && r.Backoff > r.MaxBackoff {
		r.MaxBackoff = r.Backoff
	}
	if r.Backoff > r.MaxBackoff && r.MaxBackoff > 0 {
		pd.errorf(n, "retry backoff %s is longer than max_backoff %s", r.Backoff, r.MaxBackoff)
	}
}

func defaultRetry() Retry {
	return Retry{Attempts: DefaultAttempts, Backoff: DefaultBackoff, MaxBackoff: DefaultMaxBackoff, Jitter: DefaultJitter}
}

func (pd *planDecoder) buildxCache(n *yaml.Node, s *Step) *BuildxCache {
	bc := &BuildxCache{Context: "."}
	var platformsNode *yaml.Node
	pd.fields(n, "buildx_cache", []field{
		{"builder", func(v *yaml.Node) {
			bc.Builder = pd.name(v, "builder")
			s.at["buildx_cache.builder"] = pd.pos(v)
		}},
		{"context", func(v *yaml.Node) { bc.Context = pd.argTmpl(v, s, argContext) }},
		{"file", func(v *yaml.Node) { bc.File = pd.argTmpl(v, s, argFile) }},
		{"target", func(v *yaml.Node) { bc.Target = pd.argTmpl(v, s, argTarget) }},
		{"build_args", func(v *yaml.Node) {
			var pos map[string]Pos
			bc.BuildArgs, pos = pd.strMap(v, "build_args")
			for k, p := range pos {
				s.at["buildx_cache.build_args."+k] = p
				pd.tmpls = append(pd.tmpls, pendingTemplate{pos: p, text: bc.BuildArgs[k], kind: tmplStep, step: s})
				if err := safearg.Operand(k); err != nil || strings.Contains(k, "=") {
					pd.errorAt(p, "build arg name %q: want a name without \"=\", not starting with \"-\"", k)
				} else if !isTemplate(bc.BuildArgs[k]) {
					if err := argBuildArg(k).rule(bc.BuildArgs[k]); err != nil {
						pd.errorAt(p, "build arg %s %q: %v", k, bc.BuildArgs[k], err)
					}
				}
			}
		}},
		{"platforms", func(v *yaml.Node) {
			platformsNode = v
			v = resolve(v)
			if v.Kind == yaml.ScalarNode {
				if m := listRefPattern.FindStringSubmatch(v.Value); m != nil {
					bc.Platforms = []string{v.Value}
					s.at["buildx_cache.platforms.0"] = pd.pos(v)
					return
				}
			}
			var pos []Pos
			bc.Platforms, pos = pd.strList(v, "platforms")
			for i, p := range bc.Platforms {
				s.at[fmt.Sprintf("buildx_cache.platforms.%d", i)] = pos[i]
				if isTemplate(p) {
					pd.tmpls = append(pd.tmpls, pendingTemplate{pos: pos[i], text: p, kind: tmplStep, step: s})
				} else if msg := checkPlatform(p); msg != "" {
					pd.errorAt(pos[i], "%s", msg)
				}
			}
		}},
		{"ref", func(v *yaml.Node) { bc.Ref = pd.tmpl(v, "ref", s, "buildx_cache.ref") }},
	})
	if resolve(n).Kind != yaml.MappingNode {
		return bc
	}
	if bc.Builder == "" {
		pd.errorf(n, "buildx_cache needs builder: NAME (a builder of the plan)")
	}
	if bc.Ref == "" {
		pd.errorf(n, "buildx_cache needs ref: REPOSITORY (the cache tag is added per platform)")
	}
	if platformsNode == nil {
		pd.errorf(n, "buildx_cache needs platforms: [linux/amd64, ...]")
	} else if len(bc.Platforms) == 0 && resolve(platformsNode).Kind == yaml.SequenceNode {
		pd.errorf(platformsNode, "platforms is empty; want at least one, like [linux/amd64, linux/arm64]")
	}
	return bc
}

func (pd *planDecoder) checkout(n *yaml.Node, s *Step) *Checkout {
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
	return co
}

func (pd *planDecoder) publish(n *yaml.Node, s *Step) *PublishConstraints {
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
		{"author_name", func(v *yaml.Node) {
			pc.AuthorName = pd.nonEmpty(v, "author_name")
			pd.tmpls = append(pd.tmpls, pendingTemplate{pos: pd.pos(v), text: pc.AuthorName, kind: tmplMessage, step: s})
		}},
		{"author_email", func(v *yaml.Node) {
			pc.AuthorEmail = pd.nonEmpty(v, "author_email")
			pd.tmpls = append(pd.tmpls, pendingTemplate{pos: pd.pos(v), text: pc.AuthorEmail, kind: tmplMessage, step: s})
		}},
		{"message", func(v *yaml.Node) {
			pc.Message = pd.nonEmpty(v, "message")
			pd.tmpls = append(pd.tmpls, pendingTemplate{pos: pd.pos(v), text: pc.Message, kind: tmplMessage, step: s})
		}},
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
	return pc
}

// checkSteps checks what spans steps: unique ids, needs, cycles, builders, list vars of
// matrix axes and secrets named by steps.
func (pd *planDecoder) checkSteps() {
	p := pd.p
	ids := make(map[string]*Step)
	for _, s := range p.Steps {
		if s.ID == "" {
			continue
		}
		if first, dup := ids[s.ID]; dup {
			pd.errorAt(s.at["id"], "step id %q repeated (first at %s); step ids must be unique", s.ID, first.at["id"])
			continue
		}
		ids[s.ID] = s
	}
	valid := strings.Join(slices.Sorted(maps.Keys(ids)), ", ")
	for _, s := range p.Steps {
		seen := make(map[string]bool)
		for i, need := range s.Needs {
			switch {
			case need == s.ID:
				pd.errorAt(s.needsPos[i], "step %s needs itself", s.ID)
			case ids[need] == nil:
				pd.errorAt(s.needsPos[i], "step %s needs unknown step %q; steps: %s", s.ID, need, valid)
			case seen[need]:
				pd.errorAt(s.needsPos[i], "step %s needs %q twice", s.ID, need)
			}
			seen[need] = true
		}
		pd.checkBuilder(s, s.Builder, "builder")
		if s.BuildxCache != nil {
			pd.checkBuilder(s, s.BuildxCache.Builder, "buildx_cache.builder")
			pd.resolvePlatforms(s)
		}
		for i := range s.Matrix {
			ax := &s.Matrix[i]
			if ax.ref == "" {
				continue
			}
			if _, late := pd.runtime[ax.ref]; late {
				continue // values come from a step at run time (checkRuntimeVars)
			}
			v, ok := p.Vars[ax.ref]
			switch {
			case !ok:
				pd.errorAt(ax.refPos, "matrix axis %s names unknown var %q; vars: %s", ax.Name, ax.ref, scope{vars: p.Vars}.valid())
			case !v.IsList:
				pd.errorAt(ax.refPos, "matrix axis %s names var %q, which is not a list", ax.Name, ax.ref)
			case len(v.List) == 0:
				pd.errorAt(ax.refPos, "matrix axis %s: var %q is an empty list; an empty matrix runs nothing", ax.Name, ax.ref)
			default:
				ax.Values = v.List
				seen := make(map[string]bool)
				for _, val := range v.List {
					if seen[val] {
						pd.errorAt(ax.refPos, "matrix axis %s: var %q repeats value %q", ax.Name, ax.ref, val)
					}
					seen[val] = true
				}
			}
		}
		if pc := s.PublishConstraints; pc != nil && pc.Token != "" {
			if _, ok := p.Secrets[pc.Token]; !ok {
				pd.errorAt(s.at["publish_constraints.token"], "token %q is not a secret of the plan; secrets: %s", pc.Token, secretNames(p.Secrets))
			}
		}
		if co := s.Checkout; co != nil && co.Token != "" && !hasSecret(p.Secrets, co.Token) {
			pd.errorAt(s.at["checkout.token"], "token %q is not a secret of the plan; secrets: %s", co.Token, secretNames(p.Secrets))
		}
		if s.Checkout != nil && len(s.Matrix) > 0 {
			pd.errorAt(s.Pos, "checkout step %s has a matrix; a run has one source: use one checkout step per directory", s.ID)
		}
		pd.checkStepSecrets(s)
	}
	pd.checkSecretsUsed()
	if cycle := findCycle(p.Steps, ids); cycle != nil {
		pd.errorAt(ids[cycle[0]].Pos, "needs form a cycle: %s", strings.Join(cycle, " -> "))
	}
}

// checkGates warns about a publish_constraints step that does not need every test gate of
// the plan (a run step with report:), directly or not: it would publish whether or not the
// tests passed. Constraints are published only after the tests ran on what built them.
func (pd *planDecoder) checkGates() {
	ids := make(map[string]*Step, len(pd.p.Steps))
	var gates []*Step
	for _, s := range pd.p.Steps {
		ids[s.ID] = s
		if s.Report != nil {
			gates = append(gates, s)
		}
	}
	for _, s := range pd.p.Steps {
		if s.PublishConstraints == nil || len(gates) == 0 {
			continue
		}
		anc := ancestors(s, ids)
		for _, g := range gates {
			if !anc[g.ID] {
				pd.p.Warnings = append(pd.p.Warnings, &Error{Pos: s.Pos, Msg: fmt.Sprintf(
					"step %s publishes constraints but does not need test gate %s (directly or through a step it needs): it would publish whether or not the tests pass; write %s", s.ID, g.ID, needsWith(s, g.ID))})
			}
		}
	}
}

// sourceScope says whether publish templates may name .source: when exactly one checkout
// step sets the run's source (the commit it fetched), or why not.
func (pd *planDecoder) sourceScope() sourceScope {
	var ids []string
	for _, s := range pd.p.Steps {
		if s.Checkout != nil {
			ids = append(ids, s.ID)
		}
	}
	switch len(ids) {
	case 0:
		return sourceScope{why: "no checkout step sets it in this plan"}
	case 1:
		return sourceScope{ok: true}
	}
	return sourceScope{why: "checkout steps " + strings.Join(ids, ", ") + " each set one; keep one checkout step to use it"}
}

// checkStepSecrets checks the secrets a run step names, and finds a run step written for
// the old rule (every secret in every step's environment): one that reads $NAME of a plan
// secret it does not name.
func (pd *planDecoder) checkStepSecrets(s *Step) {
	p := pd.p
	named := make(map[string]bool)
	for i, name := range s.Secrets {
		pos := s.at[fmt.Sprintf("secrets.%d", i)]
		switch {
		case named[name]:
			pd.errorAt(pos, "step %s names secret %q twice", s.ID, name)
		case !hasSecret(p.Secrets, name):
			pd.errorAt(pos, "step %s names secret %q, which the plan does not declare; secrets: %s", s.ID, name, secretNames(p.Secrets))
		}
		if _, clash := s.Env[name]; clash && !named[name] {
			pd.errorAt(pos, "step %s sets env %s and names the secret %s; the secret would replace it: rename one", s.ID, name, name)
		}
		named[name] = true
	}
	if s.Run == nil {
		return
	}
	check := func(key, text string) {
		for _, name := range slices.Sorted(maps.Keys(p.Secrets)) {
			if !named[name] && shellRef(name).MatchString(text) {
				pd.errorAt(s.at[key], "step %s reads $%s, but a step's environment holds only the secrets it names: write %s", s.ID, name, flowKey("secrets", append(slices.Clone(s.Secrets), name)))
			}
		}
	}
	for i, a := range s.Run {
		check(fmt.Sprintf("run.%d", i), a)
	}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		check("env."+k, s.Env[k])
	}
}

// shellRef matches $NAME and ${NAME...} of one variable in a string.
func shellRef(name string) *regexp.Regexp {
	return regexp.MustCompile(`\$(` + name + `\b|\{` + name + `\b)`)
}

// checkSecretsUsed makes a secret that nothing receives an error. Under the old rule every
// secret reached every step's environment, so a plan written for it declares secrets its
// steps read without naming them: it now fails here, at load, rather than at run time with
// a step that cannot authenticate.
func (pd *planDecoder) checkSecretsUsed() {
	used := make(map[string]bool)
	for _, s := range pd.p.Steps {
		for _, name := range s.Secrets {
			used[name] = true
		}
		if pc := s.PublishConstraints; pc != nil && pc.Token != "" {
			used[pc.Token] = true
		}
		if co := s.Checkout; co != nil && co.Token != "" {
			used[co.Token] = true
		}
	}
	for _, t := range pd.tmpls {
		for _, m := range secretRefPattern.FindAllStringSubmatch(t.text, -1) {
			used[m[1]] = true
		}
	}
	for _, name := range slices.Sorted(maps.Keys(pd.p.Secrets)) {
		if !used[name] && !pd.badSecrets[name] {
			pd.errorAt(pd.p.Secrets[name].Pos, "secret %s is given to nothing: a run step's environment holds only the secrets it names (secrets: [%s] on the step), built-in steps take theirs through token:, webhooks through {{ .secrets.%s }}; name it where it is needed or remove it", name, name, name)
		}
	}
}

// secretRefPattern finds {{ .secrets.NAME }} references in templates.
var secretRefPattern = regexp.MustCompile(`\.secrets\.([A-Za-z_][A-Za-z0-9_]*)`)

func hasSecret(m map[string]Secret, name string) bool {
	_, ok := m[name]
	return ok
}

func secretNames(m map[string]Secret) string {
	if len(m) == 0 {
		return "none are declared"
	}
	return strings.Join(slices.Sorted(maps.Keys(m)), ", ")
}

func (pd *planDecoder) checkBuilder(s *Step, name, key string) {
	if name == "" || pd.broken[name] {
		return
	}
	if _, ok := pd.p.Builders[name]; !ok {
		valid := "none are declared; add builders: to the plan or {ref: NAME} to a shared one"
		if len(pd.p.Builders) > 0 {
			valid = "builders: " + strings.Join(slices.Sorted(maps.Keys(pd.p.Builders)), ", ")
		}
		pd.errorAt(s.at[key], "step %s uses undeclared builder %q; %s", s.ID, name, valid)
	}
}

// resolvePlatforms replaces a "{{ .vars.LIST }}" platforms value by the list and checks it.
func (pd *planDecoder) resolvePlatforms(s *Step) {
	bc := s.BuildxCache
	if len(bc.Platforms) != 1 {
		return
	}
	m := listRefPattern.FindStringSubmatch(bc.Platforms[0])
	if m == nil {
		return
	}
	pos := s.at["buildx_cache.platforms.0"]
	if _, late := pd.runtime[m[1]]; late {
		return // refused by checkRuntimeVars, which says why
	}
	v, ok := pd.p.Vars[m[1]]
	if !ok || !v.IsList {
		pd.errorAt(pos, "platforms names %q, which is not a list var; vars: %s", m[1], scope{vars: pd.p.Vars}.valid())
		return
	}
	bc.Platforms = slices.Clone(v.List)
	for i, p := range bc.Platforms {
		s.at[fmt.Sprintf("buildx_cache.platforms.%d", i)] = pos
		if msg := checkPlatform(p); msg != "" {
			pd.errorAt(pos, "%s (from var %s)", msg, m[1])
		}
	}
	if len(bc.Platforms) == 0 {
		pd.errorAt(pos, "platforms: var %q is an empty list", m[1])
	}
}

// findCycle returns the step ids of one needs cycle (first id repeated at the end), or nil.
func findCycle(steps []*Step, ids map[string]*Step) []string {
	const (
		unseen = iota
		active
		done
	)
	state := make(map[string]int)
	var stack []string
	var visit func(id string) []string
	visit = func(id string) []string {
		switch state[id] {
		case active:
			i := slices.Index(stack, id)
			return append(slices.Clone(stack[i:]), id)
		case done:
			return nil
		}
		state[id] = active
		stack = append(stack, id)
		for _, need := range ids[id].Needs {
			if ids[need] == nil || need == id {
				continue
			}
			if c := visit(need); c != nil {
				return c
			}
		}
		stack = stack[:len(stack)-1]
		state[id] = done
		return nil
	}
	for _, s := range steps {
		if ids[s.ID] != s {
			continue
		}
		if c := visit(s.ID); c != nil {
			return c
		}
	}
	return nil
}

// checkTemplates checks every template of the plan against the names it may use.
func (pd *planDecoder) checkTemplates() {
	p := pd.p
	for _, t := range pd.tmpls {
		var sc scope
		switch t.kind {
		case tmplPlan:
			sc = scope{vars: p.Vars, names: []string{"plan"}}
		case tmplStep:
			sc = scope{vars: p.Vars, names: []string{"plan"}}
			for _, ax := range t.step.Matrix {
				sc.names = append(sc.names, ax.Name)
			}
		case tmplMessage:
			sc = scope{names: []string{"plan", "run", "summary"}, source: pd.sourceScope()}
			for _, ax := range t.step.Matrix {
				sc.names = append(sc.names, ax.Name)
			}
		case tmplNotify:
			sc = scope{secrets: p.Secrets}
		case tmplWorkdir:
			sc = scope{vars: p.Vars, names: []string{"plan", "instance"}}
		}
		sc = pd.withRunData(sc, t.kind)
		for _, msg := range checkTemplate(t.text, sc) {
			pd.errorAt(t.pos, "%s", msg)
		}
	}
}

package plan

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

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
	hasID := false
	fields := []field{
		{"id", func(v *yaml.Node) { hasID = true; pd.stepID(v, s) }},
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
		{"when", func(v *yaml.Node) { pd.when(v, s) }},
		{"secrets", func(v *yaml.Node) { pd.stepSecrets(v, s) }},
	}
	for _, k := range builtinActions() {
		fields = append(fields, field{k.key, func(v *yaml.Node) {
			s.actions = append(s.actions, stepAction{kind: k, spec: k.decode(pd, v, s)})
		}})
	}
	fields = append(fields,
		field{"outputs", func(v *yaml.Node) { s.Outputs = pd.outputs(v) }},
		field{"report", func(v *yaml.Node) { s.Report = pd.report(v, s) }},
		field{"expect", func(v *yaml.Node) { s.Expect = pd.expect(v, s) }},
		field{"skip_if", func(v *yaml.Node) { s.at["skip_if"] = pd.pos(v); s.SkipIf = pd.skipIf(v) }},
	)
	if !pd.fields(n, "step", fields) {
		return nil
	}
	if !hasID {
		pd.errorf(n, "step needs id:")
	}
	pd.checkStep(n, s)
	return s
}

// stepID decodes a step's id:.
func (pd *planDecoder) stepID(v *yaml.Node, s *Step) {
	s.ID = pd.name(v, "step id")
	s.at["id"] = pd.pos(v)
	if s.ID != "" && !namePattern.MatchString(s.ID) {
		pd.errorf(v, "step id %q: use %s", s.ID, nameRule)
	}
}

// when decodes a step's when:.
func (pd *planDecoder) when(v *yaml.Node, s *Step) {
	s.at["when"] = pd.pos(v)
	w := When(pd.str(v, "when"))
	switch w {
	case WhenSuccess, WhenFailure, WhenAlways:
		s.When = w
	default:
		pd.errorf(v, "when %q: want success (the default: run when every need succeeded), failure (run only after something failed or the run was cancelled) or always (cleanup: run whatever happened)", string(w))
	}
}

// stepSecrets decodes a step's secrets: (names of plan secrets).
func (pd *planDecoder) stepSecrets(v *yaml.Node, s *Step) {
	s.at["secrets"] = pd.pos(v)
	elems, _ := pd.list(v, "secrets", "secret names")
	for i, e := range elems {
		s.Secrets = append(s.Secrets, pd.name(e, "secrets element"))
		s.at[fmt.Sprintf("secrets.%d", i)] = pd.pos(resolve(e))
	}
}

// checkStep checks what a decoded step says of itself: one action, and the keys that go
// with it and with its when:.
func (pd *planDecoder) checkStep(n *yaml.Node, s *Step) {
	keys := strings.Join(actionKeys(), ", ")
	switch len(s.actions) {
	case 0:
		pd.errorf(n, "step %s has no action; want exactly one of %s", s.ID, keys)
	case 1:
	default:
		var names []string
		for _, a := range s.actions {
			names = append(names, a.kind.key)
		}
		pd.errorf(n, "step %s has %d actions (%s); want exactly one of %s", s.ID, len(s.actions), strings.Join(names, ", "), keys)
	}
	pd.checkStepAction(s)
	if len(s.SkipIf) > 0 && s.When.Cleanup() {
		pd.errorAt(s.at["skip_if"], "step %s has skip_if and when: %s; a cleanup step runs whatever happened, so freshness cannot skip it", s.ID, s.When)
	}
	for i := range s.SkipIf {
		s.SkipIf[i].Step = s.ID
	}
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

// checkSteps checks what spans steps: unique ids, needs, cycles, builders, list vars of
// matrix axes, what each action needs of the plan and secrets named by steps.
func (pd *planDecoder) checkSteps() {
	ids := pd.stepIDs()
	valid := strings.Join(slices.Sorted(maps.Keys(ids)), ", ")
	for _, s := range pd.p.Steps {
		pd.checkNeeds(s, ids, valid)
		pd.checkBuilder(s, s.Builder, "builder")
		pd.checkActionPlan(s)
		pd.resolveAxes(s)
		pd.checkStepSecrets(s)
	}
	pd.checkSecretsUsed()
	if cycle := findCycle(pd.p.Steps, ids); cycle != nil {
		pd.errorAt(ids[cycle[0]].Pos, "needs form a cycle: %s", strings.Join(cycle, " -> "))
	}
}

// stepIDs maps each step id to its step, refusing a repeated id.
func (pd *planDecoder) stepIDs() map[string]*Step {
	ids := make(map[string]*Step)
	for _, s := range pd.p.Steps {
		if s.ID == "" {
			continue
		}
		if first, dup := ids[s.ID]; dup {
			pd.errorAt(s.at["id"], "step id %q repeated (first at %s); step ids must be unique", s.ID, first.at["id"])
			continue
		}
		ids[s.ID] = s
	}
	return ids
}

// checkNeeds checks that each need of s names another step, once; valid lists the ids.
func (pd *planDecoder) checkNeeds(s *Step, ids map[string]*Step, valid string) {
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
}

// resolveAxes gives each matrix axis of s naming a list var the var's values, checked.
// An axis over a var defined at run time gets its values when the step expands.
func (pd *planDecoder) resolveAxes(s *Step) {
	vars := pd.p.Vars
	for i := range s.Matrix {
		ax := &s.Matrix[i]
		if ax.ref == "" {
			continue
		}
		if _, late := pd.runtime[ax.ref]; late {
			continue // values come from a step at run time (checkRuntimeVars)
		}
		v, ok := vars[ax.ref]
		switch {
		case !ok:
			pd.errorAt(ax.refPos, "matrix axis %s names unknown var %q; vars: %s", ax.Name, ax.ref, scope{vars: vars}.valid())
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
	secrets := slices.Sorted(maps.Keys(p.Secrets))
	check := func(key, text string) {
		refs := shellRefs(text)
		if len(refs) == 0 {
			return
		}
		for _, name := range secrets {
			if !named[name] && refs[name] {
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

// shellRefs are the variables text names as $NAME or ${NAME...}. One scan of the text
// serves every secret: a regexp compiled per secret and string was most of a plan's load.
func shellRefs(text string) map[string]bool {
	var refs map[string]bool
	for i := strings.IndexByte(text, '$'); i >= 0; {
		rest := strings.TrimPrefix(text[i+1:], "{")
		n := 0
		for n < len(rest) && isIdentByte(rest[n], n == 0) {
			n++
		}
		if n > 0 {
			if refs == nil {
				refs = make(map[string]bool)
			}
			refs[rest[:n]] = true
		}
		j := strings.IndexByte(text[i+1:], '$')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return refs
}

// isIdentByte says whether c may stand in a shell variable's name (first: at its start).
func isIdentByte(c byte, first bool) bool {
	return c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || !first && '0' <= c && c <= '9'
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
		for _, name := range s.tokens() {
			used[name] = true
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

package plan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/template/parse"

	"gopkg.in/yaml.v3"
)

// Values from the tree at run time. A run step may define vars from what it reads in the
// checkout:
//
//	- id: python-versions
//	  run: [python3, scripts/list-pythons.py]      # prints {"python": ["3.10", ..., "3.14"]}
//	  outputs:
//	    from: stdout                                # or a file it writes: from: out/vars.json
//	    vars: { python: { pattern: '3\.[0-9]+' } }
//
// A step that uses such a var (in a matrix or a template), or needs a step that does, is
// deferred: the plan's graph is expanded in stages, and a deferred step expands once every
// step whose values it uses has succeeded and every step it needs is expanded. A stage
// boundary is therefore each var-producing step. The values are checked (below) before
// anything uses them, so a bad value fails the producing step, before any build.

// Outputs is where a step's run-time vars come from and what they must look like.
type Outputs struct {
	Pos  Pos
	From string // "stdout", or a file relative to the step's workdir
	Vars []OutputVar
}

// FromStdout is Outputs.From for JSON on the step's standard output.
const FromStdout = "stdout"

// OutputVar is one var a step defines at run time.
type OutputVar struct {
	Pos      Pos
	Name     string
	List     bool           // a list of strings (the default), else one string
	Pattern  *regexp.Regexp // every value must match it whole; nil: the safe characters only
	MaxItems int            // a list's bound
}

// Bounds of run-time values: they become argv elements, matrix instances, refs and paths.
const (
	DefaultMaxItems = 64
	maxItemsLimit   = 1000
	MaxValueLen     = 128
	maxOutputBytes  = 1 << 20
)

// valueChars is what every run-time value may hold: safe in an image ref, a branch name, a
// file path and an argv element. It cannot start with '-' (an option) or '/' (an absolute
// path); ".." segments are refused separately.
var valueChars = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+/-]*$`)

const valueRule = "letters, digits, '.', '_', '+', '-' and '/', starting with a letter or digit, no '..' segment"

// runtimeVar is a var some step defines at run time.
type runtimeVar struct {
	step *Step
	out  OutputVar
}

func (pd *planDecoder) outputs(n *yaml.Node) *Outputs {
	o := &Outputs{Pos: pd.pos(resolve(n)), From: FromStdout}
	var varsNode *yaml.Node
	pd.fields(n, "outputs", []field{
		{"from", func(v *yaml.Node) {
			o.From = pd.nonEmpty(v, "outputs from")
			if o.From != FromStdout && (filepath.IsAbs(o.From) || slices.Contains(strings.Split(o.From, "/"), "..")) {
				pd.errorf(v, "outputs from %q: want stdout or a file relative to the step's workdir, like out/vars.json", o.From)
			}
		}},
		{"vars", func(v *yaml.Node) {
			varsNode = v
			for _, kv := range pd.pairs(v, "outputs vars") {
				k, v := kv[0], kv[1]
				ov := OutputVar{Pos: pd.pos(k), Name: k.Value, List: true, MaxItems: DefaultMaxItems}
				if !identPattern.MatchString(k.Value) {
					pd.errorf(k, "var name %q: use %s (templates name it as .vars.NAME)", k.Value, identRule)
				}
				maxSet := false
				pd.fields(v, "output var", []field{
					{"type", func(v *yaml.Node) {
						switch t := pd.str(v, "type"); t {
						case "list":
						case "string":
							ov.List = false
						default:
							pd.errorf(v, "output var %s type %q: want list (of strings) or string", k.Value, t)
						}
					}},
					{"pattern", func(v *yaml.Node) {
						if re := pd.regex(v, "output var "+k.Value+" pattern"); re != nil {
							ov.Pattern = compileWhole(re.String())
						}
					}},
					{"max_items", func(v *yaml.Node) { maxSet = true; ov.MaxItems = pd.integer(v, "max_items", 1, maxItemsLimit) }},
				})
				if maxSet && !ov.List {
					pd.errorf(v, "output var %s is a string; max_items is for lists", k.Value)
				}
				o.Vars = append(o.Vars, ov)
			}
		}},
	})
	if resolve(n).Kind == yaml.MappingNode && len(o.Vars) == 0 {
		at := n
		if varsNode != nil {
			at = varsNode
		}
		pd.errorf(at, "outputs needs vars: the vars the step defines, like vars: {python: {pattern: '3\\.[0-9]+'}}")
	}
	return o
}

// collectOutputs records which step defines which run-time var, and checks the producers.
func (pd *planDecoder) collectOutputs() {
	pd.runtime = make(map[string]runtimeVar)
	for _, s := range pd.p.Steps {
		if s.Outputs == nil {
			continue
		}
		if len(s.actions) > 0 && !s.anyAction(func(k *actionKind) bool { return k.outputs }) {
			pd.errorAt(s.Outputs.Pos, "step %s: outputs is for run steps (a program that prints or writes the values)", s.ID)
		}
		if len(s.Matrix) > 0 {
			pd.errorAt(s.Outputs.Pos, "step %s has a matrix and outputs; one step instance defines the values, so outputs cannot be on a matrix step", s.ID)
		}
		for _, ov := range s.Outputs.Vars {
			if v, ok := pd.p.Vars[ov.Name]; ok {
				pd.errorAt(ov.Pos, "step %s defines var %s at run time, but vars: also sets it (%s); keep one", s.ID, ov.Name, v.Pos)
				continue
			}
			if first, dup := pd.runtime[ov.Name]; dup {
				pd.errorAt(ov.Pos, "var %s is defined by step %s too (%s); one step defines a var", ov.Name, first.step.ID, first.out.Pos)
				continue
			}
			pd.runtime[ov.Name] = runtimeVar{step: s, out: ov}
		}
	}
}

// withRunData adds what every run knows to a template scope: .instance, .params, and for
// a step's templates the vars steps define at run time.
func (pd *planDecoder) withRunData(sc scope, kind templateKind) scope {
	switch kind {
	case tmplPlan, tmplStep, tmplMessage:
		sc.names = append(sc.names, "instance")
		sc.params = pd.p.ParamNames()
		if sc.vars == nil {
			sc.vars = pd.p.Vars
		}
	}
	sc.runtime = pd.runtime
	sc.runtimeOK = kind == tmplStep || kind == tmplMessage
	switch kind {
	case tmplPlan:
		sc.source = sourceScope{why: "plan-level values are fixed before any step runs; name it in the steps after the checkout"}
	case tmplStep:
		// A step's templates may name what the checkout fetched: the step then expands once
		// the checkout succeeded (checkRuntimeVars), like one using a run-time var.
		sc.source = pd.sourceScope()
	}
	return sc
}

// renderWorkdir renders a workdir template (/srv/airflow/{{ .instance }}) when the plan
// loads: a run's directory never depends on what the run finds.
func (pd *planDecoder) renderWorkdir() {
	p := pd.p
	if !isTemplate(p.Workdir) || pd.workdirNode == nil {
		return
	}
	sc := scope{vars: p.Vars, names: []string{"plan", "instance"}}
	if msgs := checkTemplate(p.Workdir, sc); len(msgs) > 0 {
		for _, m := range msgs {
			pd.errorf(pd.workdirNode, "workdir: %s", m)
		}
		return
	}
	out, err := render(p.Workdir, map[string]any{"vars": varData(p.Vars), "plan": p.Base, "instance": p.Instance})
	if err != nil {
		pd.errorf(pd.workdirNode, "workdir: %v", err)
		return
	}
	if !filepath.IsAbs(out) || strings.Contains(out, "{{") {
		pd.errorf(pd.workdirNode, "workdir renders to %q; want an absolute path", out)
		return
	}
	p.Workdir = filepath.Clean(out)
}

// checkRuntimeVars finds the steps that use run-time vars, checks that each needs
// (directly or not) the step defining them, and marks the steps that expand at run time.
func (pd *planDecoder) checkRuntimeVars() {
	p := pd.p
	var checkout *Step
	for _, s := range p.Steps {
		if s.Checkout != nil {
			checkout = s
		}
	}
	if len(pd.runtime) == 0 && checkout == nil {
		return
	}
	pd.checkRuntimePlatforms()
	uses := pd.collectRuntimeUses(checkout)
	order, err := topoOrder(p.Steps)
	if err != nil {
		return // reported by checkSteps
	}
	ids := make(map[string]*Step, len(p.Steps))
	for _, s := range p.Steps {
		ids[s.ID] = s
	}
	for _, s := range order {
		anc := ancestors(s, ids)
		pd.waitForVars(s, anc, uses.vars[s])
		if pos, ok := uses.source[s]; ok {
			pd.waitForSource(s, checkout, anc, pos)
		}
		s.deferred = len(s.waits) > 0 || slices.ContainsFunc(s.Needs, func(n string) bool { return ids[n] != nil && ids[n].deferred })
		slices.Sort(s.waits)
	}
}

// runtimeUses is where steps name what is known only at run time, the first place each
// names it: a run-time var (vars, by step and name) or, when the plan has a checkout, .source.
type runtimeUses struct {
	vars   map[*Step]map[string]Pos
	source map[*Step]Pos
}

// collectRuntimeUses finds the run-time vars and .source that each step's templates and matrix
// axes name.
func (pd *planDecoder) collectRuntimeUses(checkout *Step) runtimeUses {
	u := runtimeUses{vars: make(map[*Step]map[string]Pos), source: make(map[*Step]Pos)}
	use := func(s *Step, name string, pos Pos) {
		if _, ok := pd.runtime[name]; !ok {
			return
		}
		if u.vars[s] == nil {
			u.vars[s] = make(map[string]Pos)
		}
		if _, seen := u.vars[s][name]; !seen {
			u.vars[s][name] = pos
		}
	}
	for _, t := range pd.tmpls {
		if t.step == nil {
			continue
		}
		for _, name := range templateVars(t.text) {
			use(t.step, name, t.pos)
		}
		if _, seen := u.source[t.step]; !seen && t.kind == tmplStep && checkout != nil && templateUsesSource(t.text) {
			u.source[t.step] = t.pos
		}
	}
	for _, s := range pd.p.Steps {
		for _, ax := range s.Matrix {
			if ax.ref != "" {
				use(s, ax.ref, ax.refPos)
			}
		}
	}
	return u
}

// checkRuntimePlatforms refuses a buildx_cache step whose platforms name a run-time var: a
// builder's nodes are provisioned for platforms the plan lists.
func (pd *planDecoder) checkRuntimePlatforms() {
	for _, s := range pd.p.Steps {
		bc := s.BuildxCache
		if bc == nil || len(bc.Platforms) != 1 {
			continue
		}
		if m := listRefPattern.FindStringSubmatch(bc.Platforms[0]); m != nil && pd.runtime[m[1]].step != nil {
			pd.errorAt(s.at["buildx_cache.platforms.0"], "platforms of step %s name var %s, which step %s defines at run time; a builder's nodes are fixed, so list the platforms in the plan", s.ID, m[1], pd.runtime[m[1]].step.ID)
		}
	}
}

// waitForVars makes step s wait for the steps defining the run-time vars it uses (where
// each is first named), which it must need (anc: every step it needs, directly or not).
func (pd *planDecoder) waitForVars(s *Step, anc map[string]bool, uses map[string]Pos) {
	for _, name := range slices.Sorted(maps.Keys(uses)) {
		prod := pd.runtime[name].step
		switch {
		case prod == s:
			pd.errorAt(uses[name], "step %s uses var %s, which it defines itself; a step's values exist only once it has succeeded", s.ID, name)
		case !anc[prod.ID]:
			pd.errorAt(uses[name], "step %s uses var %s, which step %s defines at run time; it must need %s (directly or through a step it needs): write %s", s.ID, name, prod.ID, prod.ID, needsWith(s, prod.ID))
		case !slices.Contains(s.waits, prod.ID):
			s.waits = append(s.waits, prod.ID)
		}
	}
}

// waitForSource makes step s, which names .source at pos, wait for the checkout, which it
// must need (anc: every step it needs, directly or not).
func (pd *planDecoder) waitForSource(s, checkout *Step, anc map[string]bool, pos Pos) {
	switch {
	case s == checkout:
		pd.errorAt(pos, "checkout step %s names .source, which is what it fetches; only the steps after it can use it", s.ID)
	case !anc[checkout.ID]:
		pd.errorAt(pos, "step %s names .source, which checkout step %s sets when it has fetched; it must need %s (directly or through a step it needs): write %s", s.ID, checkout.ID, checkout.ID, needsWith(s, checkout.ID))
	case !slices.Contains(s.waits, checkout.ID):
		s.waits = append(s.waits, checkout.ID)
	}
}

// ancestors is every step s needs, directly or not.
func ancestors(s *Step, ids map[string]*Step) map[string]bool {
	seen := make(map[string]bool)
	stack := slices.Clone(s.Needs)
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[id] || ids[id] == nil {
			continue
		}
		seen[id] = true
		stack = append(stack, ids[id].Needs...)
	}
	return seen
}

// templateVars lists the NAMEs of .vars.NAME a template uses.
func templateVars(text string) []string {
	var out []string
	for _, f := range templateFields(text) {
		if len(f) == 2 && f[0] == "vars" {
			out = append(out, f[1])
		}
	}
	return out
}

// templateUsesSource reports whether a template names .source.FIELD.
func templateUsesSource(text string) bool {
	return slices.ContainsFunc(templateFields(text), func(f []string) bool { return len(f) > 0 && f[0] == "source" })
}

// templateFields lists the field references (.vars.python: [vars python]) of a template.
func templateFields(text string) [][]string {
	if !isTemplate(text) {
		return nil
	}
	t, err := parseTemplate(text)
	if err != nil {
		return nil
	}
	var out [][]string
	var walk func(n parse.Node)
	walk = func(n parse.Node) {
		switch n := n.(type) {
		case *parse.ListNode:
			for _, c := range n.Nodes {
				walk(c)
			}
		case *parse.ActionNode:
			walk(n.Pipe)
		case *parse.PipeNode:
			for _, c := range n.Cmds {
				walk(c)
			}
		case *parse.CommandNode:
			for _, a := range n.Args {
				walk(a)
			}
		case *parse.FieldNode:
			out = append(out, n.Ident)
		}
	}
	walk(t.Tree.Root)
	return out
}

// ParseOutputs reads the values a step printed or wrote (a JSON object) and checks them
// against o: every declared var present, of its type, within its bounds, in the safe
// characters and matching its pattern. Names the object holds beyond o's vars are ignored
// (a tool may say more than the plan uses). The error names the var and the value at fault.
func ParseOutputs(o *Outputs, data []byte) (map[string]Var, error) {
	if len(data) > maxOutputBytes {
		return nil, fmt.Errorf("outputs are %d bytes; at most %d", len(data), maxOutputBytes)
	}
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&obj); err != nil || obj == nil {
		what := "not a JSON object"
		if err != nil {
			what += ": " + err.Error()
		}
		return nil, fmt.Errorf("outputs from %s: %s; want one object like {\"python\": [\"3.11\", \"3.12\"]}", o.From, what)
	}
	if dec.More() {
		return nil, fmt.Errorf("outputs from %s: more than one JSON value; want exactly one object", o.From)
	}
	out := make(map[string]Var, len(o.Vars))
	for _, ov := range o.Vars {
		raw, ok := obj[ov.Name]
		if !ok {
			return nil, fmt.Errorf("outputs from %s: no %q; the step must define %s", o.From, ov.Name, strings.Join(outputNames(o), ", "))
		}
		v, err := ov.parse(raw)
		if err != nil {
			return nil, fmt.Errorf("outputs from %s: var %s: %w", o.From, ov.Name, err)
		}
		out[ov.Name] = v
	}
	return out, nil
}

func outputNames(o *Outputs) []string {
	names := make([]string, len(o.Vars))
	for i, v := range o.Vars {
		names[i] = v.Name
	}
	return names
}

func (ov OutputVar) parse(raw json.RawMessage) (Var, error) {
	if !ov.List {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return Var{}, fmt.Errorf("want a string, got %s", shorten(string(raw)))
		}
		if err := ov.checkValue(s); err != nil {
			return Var{}, err
		}
		return Var{Scalar: s}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return Var{}, fmt.Errorf("want a list of strings, got %s", shorten(string(raw)))
	}
	switch {
	case len(list) == 0:
		return Var{}, fmt.Errorf("empty list; a matrix over it would run nothing")
	case len(list) > ov.MaxItems:
		return Var{}, fmt.Errorf("%d values; at most %d (max_items)", len(list), ov.MaxItems)
	}
	for i, s := range list {
		if err := ov.checkValue(s); err != nil {
			return Var{}, fmt.Errorf("value %d: %w", i+1, err)
		}
		if j := slices.Index(list, s); j < i {
			return Var{}, fmt.Errorf("value %q repeated (values %d and %d)", s, j+1, i+1)
		}
	}
	return Var{List: list, IsList: true}, nil
}

// checkValue checks one run-time value.
func (ov OutputVar) checkValue(s string) error {
	switch {
	case len(s) > MaxValueLen:
		return fmt.Errorf("%s is longer than %d bytes", shorten(fmt.Sprintf("%q", s)), MaxValueLen)
	case !valueChars.MatchString(s) || slices.Contains(strings.Split(s, "/"), "..") || strings.HasSuffix(s, "/") || strings.Contains(s, "//"):
		return fmt.Errorf("%q: use %s", s, valueRule)
	case ov.Pattern != nil && !ov.Pattern.MatchString(s):
		return fmt.Errorf("%q does not match %s", s, ov.Pattern)
	}
	return nil
}

func shorten(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

// compileWhole is an output's pattern as the decoder keeps it: matching the whole value.
func compileWhole(s string) *regexp.Regexp { return regexp.MustCompile(`^(?:` + s + `)$`) }

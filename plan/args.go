package plan

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Values become arguments of git, docker buildx and buildctl. The executor ends their options
// before every such value, and the rules of safearg refuse what would still be read as
// something else (an option, a refspec writing a local ref, a transport running a program,
// a control character). They are checked here for every instance, where the value is
// rendered: at load for what the plan writes (literals, param defaults, every value of a
// param's values list), when a run's params are resolved, and when run-time values expand
// the steps waiting for them, always before any process starts. The error names the field's
// place in the plan and where the value came from (a param, a var, a value from the tree).

// argField is one field of a step whose rendered value reaches an outside program's argv.
type argField struct {
	key  string // the step's key (positions in Step.at)
	what string // for messages: "checkout ref"
	rule func(string) error
}

// checkArg checks the value text rendered to for an argv field, and at load the values of
// every values list the template names, recording an error at the field's place.
func (x *expander) checkArg(s *Step, f argField, text, value string, data map[string]any) {
	if err := f.rule(value); err != nil {
		x.check(s, f.key, fmt.Sprintf("%s renders to %q%s: %v", f.what, value, x.origin(s, text, data, f.rule), err))
		return
	}
	if !x.everyValue || !isTemplate(text) {
		return
	}
	params, _ := data["params"].(map[string]any)
	for _, name := range templateParams(text) {
		p := x.p.param(name)
		if p == nil {
			continue
		}
		for _, v := range p.Values {
			if v == params[name] {
				continue
			}
			alt := maps.Clone(data)
			alt["params"] = maps.Clone(params)
			alt["params"].(map[string]any)[name] = v
			out, err := render(text, alt)
			if err != nil {
				continue
			}
			if err := f.rule(out); err != nil {
				x.check(s, f.key, fmt.Sprintf("%s renders to %q with param %s=%q, one of its values: %v", f.what, out, name, v, err))
				return
			}
		}
	}
}

// origin says where a rejected value came from: " (from param ref)", " (from var python, a
// value from the tree of step python-versions)", or " (as written in the plan)". Of the names
// the template uses, those whose own value breaks the rule are named; if none does alone
// (the template's text joined them into a bad value), all are.
func (x *expander) origin(s *Step, text string, data map[string]any, rule func(string) error) string {
	if !isTemplate(text) {
		return " (as written in the plan)"
	}
	var all, culprits []string
	for _, f := range templateFields(text) {
		desc, val := x.describeField(s, f, data)
		if desc == "" || slices.Contains(all, desc) {
			continue
		}
		all = append(all, desc)
		if val != "" && rule(val) != nil {
			culprits = append(culprits, desc)
		}
	}
	if len(culprits) == 0 {
		culprits = all
	}
	if len(culprits) == 0 {
		return " (as written in the plan)"
	}
	return " (from " + strings.Join(culprits, " and ") + ")"
}

// describeField names a template field for origin, with its value ("" for a list).
func (x *expander) describeField(s *Step, f []string, data map[string]any) (desc, value string) {
	str := func(v any) string { s, _ := v.(string); return s }
	switch {
	case len(f) == 2 && f[0] == "params":
		params, _ := data["params"].(map[string]any)
		return "param " + f[1], str(params[f[1]])
	case len(f) == 2 && f[0] == "vars":
		vars, _ := data["vars"].(map[string]any)
		return x.varDesc(f[1]), str(vars[f[1]])
	case len(f) == 2 && f[0] == "source":
		src, _ := data["source"].(map[string]any)
		return ".source." + f[1] + " (what the checkout fetched)", str(src[f[1]])
	case len(f) == 1 && (f[0] == "instance" || f[0] == "plan"):
		return "the " + f[0] + " name", str(data[f[0]])
	case len(f) == 1 && s != nil:
		for _, ax := range s.Matrix {
			if ax.Name != f[0] {
				continue
			}
			if ax.ref != "" {
				return "matrix value " + ax.Name + " of " + x.varDesc(ax.ref), str(data[f[0]])
			}
			return "matrix value " + ax.Name, str(data[f[0]])
		}
	}
	return "", ""
}

// varDesc is "var NAME", with the step that read it from the tree for a run-time var.
func (x *expander) varDesc(name string) string {
	if _, ok := x.p.Vars[name]; ok {
		return "var " + name
	}
	for _, st := range x.p.Steps {
		if st.Outputs == nil {
			continue
		}
		for _, ov := range st.Outputs.Vars {
			if ov.Name == name {
				return "var " + name + ", a value from the tree of step " + st.ID
			}
		}
	}
	return "var " + name
}

// templateParams lists the NAMEs of .params.NAME a template uses.
func templateParams(text string) []string {
	var out []string
	for _, f := range templateFields(text) {
		if len(f) == 2 && f[0] == "params" && !slices.Contains(out, f[1]) {
			out = append(out, f[1])
		}
	}
	return out
}

// param is the plan's param name, or nil.
func (p *Plan) param(name string) *Param {
	for i := range p.Params {
		if p.Params[i].Name == name {
			return &p.Params[i]
		}
	}
	return nil
}

// optional accepts "" (the field is left out of the argv) and checks anything else.
func optional(rule func(string) error) func(string) error {
	return func(v string) error {
		if v == "" {
			return nil
		}
		return rule(v)
	}
}

package plan

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"
)

// Param is a run parameter: a manual run may set it (refreshd run PLAN --param NAME=VALUE),
// a scheduled run uses its default. Templates read it as .params.NAME.
type Param struct {
	Pos         Pos
	Name        string
	Default     string
	Values      []string       // the allowed values; empty means any value Pattern allows
	Pattern     *regexp.Regexp // the whole value must match; nil means any value
	Description string
}

// maxParamLen bounds a parameter value: values become argv elements, refs and paths.
const maxParamLen = 256

// params decodes params: {NAME: {default, values | pattern, description}}.
func (pd *planDecoder) params(n *yaml.Node) []Param {
	var out []Param
	for _, kv := range pd.pairs(n, "params") {
		k, v := kv[0], kv[1]
		if !identPattern.MatchString(k.Value) {
			pd.errorf(k, "param name %q: use %s (templates name it as .params.NAME)", k.Value, identRule)
		}
		p := Param{Pos: pd.pos(k), Name: k.Value}
		var defNode, valuesNode *yaml.Node
		pd.fields(v, "param", []field{
			{"default", func(v *yaml.Node) { defNode = v; p.Default = pd.str(v, "param "+k.Value+" default") }},
			{"values", func(v *yaml.Node) {
				valuesNode = v
				var pos []Pos
				p.Values, pos = pd.strList(v, "param "+k.Value+" values")
				for i, val := range p.Values {
					if msg := checkParamChars(val); msg != "" {
						pd.errorAt(pos[i], "param %s value %q: %s", k.Value, val, msg)
					}
					if slices.Index(p.Values, val) < i {
						pd.errorAt(pos[i], "param %s lists value %q twice", k.Value, val)
					}
				}
				if len(p.Values) == 0 && resolve(v).Kind == yaml.SequenceNode {
					pd.errorf(v, "param %s values is empty; list the allowed values or leave values out", k.Value)
				}
			}},
			{"pattern", func(v *yaml.Node) {
				if re := pd.regex(v, "param "+k.Value+" pattern"); re != nil {
					p.Pattern = regexp.MustCompile(`^(?:` + re.String() + `)$`)
				}
			}},
			{"description", func(v *yaml.Node) { p.Description = pd.str(v, "param "+k.Value+" description") }},
		})
		if resolve(v).Kind != yaml.MappingNode {
			continue
		}
		if valuesNode != nil && p.Pattern != nil {
			pd.errorf(v, "param %s has both values and pattern; use one", k.Value)
		}
		if defNode == nil {
			pd.errorf(v, "param %s needs default: (scheduled runs use it)", k.Value)
		} else if msg := p.check(p.Default); msg != "" {
			pd.errorf(defNode, "param %s default %q: %s", k.Value, p.Default, msg)
		}
		out = append(out, p)
	}
	return out
}

// check says what is wrong with value for p, or "".
func (p *Param) check(value string) string {
	if msg := checkParamChars(value); msg != "" {
		return msg
	}
	if len(p.Values) > 0 && !slices.Contains(p.Values, value) {
		return "want one of " + strings.Join(p.Values, ", ")
	}
	if p.Pattern != nil && !p.Pattern.MatchString(value) {
		return "must match " + p.Pattern.String()
	}
	return ""
}

// checkParamChars refuses what no parameter value may hold: control characters (a newline
// would forge a log line or a commit message trailer) and more than maxParamLen bytes.
func checkParamChars(value string) string {
	if len(value) > maxParamLen {
		return fmt.Sprintf("longer than %d bytes", maxParamLen)
	}
	if i := strings.IndexFunc(value, unicode.IsControl); i >= 0 {
		return fmt.Sprintf("control character %q at byte %d", value[i], i)
	}
	return ""
}

// ParamError is a run's parameters that the plan does not accept. It names the parameter.
type ParamError struct {
	Plan string
	Msg  string
}

func (e *ParamError) Error() string { return "plan " + e.Plan + ": " + e.Msg }

// ResolveParams checks the parameters given for a run (NAME -> VALUE) and returns every
// parameter of the plan with its value: the given one, else the default. An unknown name or
// a value the plan does not allow is a *ParamError naming it and what is valid. Given values
// other than the defaults are also rendered into the steps that expand before the run
// starts: a value a step cannot take (one git or buildx would read as an option, a bad image
// reference) is a *ParamError with the step's place, before anything starts.
func (p *Plan) ResolveParams(given map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(p.Params))
	for _, name := range slices.Sorted(maps.Keys(given)) {
		i := slices.IndexFunc(p.Params, func(x Param) bool { return x.Name == name })
		if i < 0 {
			valid := "the plan has no params"
			if len(p.Params) > 0 {
				valid = "params: " + strings.Join(p.ParamNames(), ", ")
			}
			return nil, &ParamError{Plan: p.Name, Msg: fmt.Sprintf("unknown param %q; %s", name, valid)}
		}
		if msg := p.Params[i].check(given[name]); msg != "" {
			return nil, &ParamError{Plan: p.Name, Msg: fmt.Sprintf("param %s=%q: %s", name, given[name], msg)}
		}
	}
	changed := false
	for _, x := range p.Params {
		v, ok := given[x.Name]
		if !ok {
			v = x.Default
		}
		out[x.Name] = v
		changed = changed || v != x.Default
	}
	if changed {
		if _, errs := expand(p, out, false); len(errs) > 0 {
			return nil, &ParamError{Plan: p.Name, Msg: fmt.Sprintf("params %s: %v", formatParams(given), errs.err())}
		}
	}
	return out, nil
}

// defaultParams is every param with its default.
func (p *Plan) defaultParams() map[string]string {
	out := make(map[string]string, len(p.Params))
	for _, x := range p.Params {
		out[x.Name] = x.Default
	}
	return out
}

// formatParams shows given params as NAME="VALUE", sorted.
func formatParams(given map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(given)) {
		parts = append(parts, fmt.Sprintf("%s=%q", k, given[k]))
	}
	return strings.Join(parts, " ")
}

// ParamNames lists the plan's params in file order.
func (p *Plan) ParamNames() []string {
	names := make([]string, len(p.Params))
	for i, x := range p.Params {
		names[i] = x.Name
	}
	return names
}

// ParseParamArg splits one "NAME=VALUE" command-line argument.
func ParseParamArg(arg string) (name, value string, err error) {
	name, value, ok := strings.Cut(arg, "=")
	if !ok || name == "" {
		return "", "", fmt.Errorf("--param %q: want NAME=VALUE", arg)
	}
	return name, value, nil
}

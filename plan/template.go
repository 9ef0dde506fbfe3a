package plan

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"text/template/parse"
)

// Templates are Go text/template strings restricted to three forms, so that a plan cannot
// loop, branch or call anything but these two functions, and every name is checked at load:
//
//	{{ .python }}  {{ .vars.registry }}  {{ .plan }}        a scalar value
//	{{ join .vars.python " " }}                              a list var joined into one string
//	{{ platformTag .platform }}                              linux/arm/v7 -> linux-arm-v7
//
// A template always renders to exactly one string, which becomes exactly one argv element:
// nothing is split on spaces and nothing reaches a shell, so no value can inject an argument.

// templateFuncs are the only functions templates may call.
func templateFuncs() template.FuncMap {
	return template.FuncMap{
		"join":        func(list []string, sep string) string { return strings.Join(list, sep) },
		"platformTag": PlatformTag,
	}
}

// PlatformTag turns a platform into the suffix of its cache tag: linux/arm64 -> linux-arm64.
func PlatformTag(platform string) string { return strings.ReplaceAll(platform, "/", "-") }

// isTemplate reports whether s needs rendering.
func isTemplate(s string) bool { return strings.Contains(s, "{{") }

// listRefPattern matches a value that is exactly one list var: "{{ .vars.python }}".
var listRefPattern = regexp.MustCompile(`^\s*\{\{-?\s*\.vars\.([A-Za-z_][A-Za-z0-9_]*)\s*-?\}\}\s*$`)

// templateErrPrefix is text/template's "template: NAME:LINE:" prefix, which names our
// internal template, not the plan.
var templateErrPrefix = regexp.MustCompile(`^template: t:\d+:(\d+:)? ?`)

// scope is what a template may name.
type scope struct {
	vars    map[string]Var    // .vars.NAME; nil means vars are not allowed here
	secrets map[string]Secret // .secrets.NAME; nil means not allowed
	names   []string          // plain names: matrix axes, plan, run, summary
	params  []string          // .params.NAME; nil means not allowed
	// runtime are the vars steps define at run time (outputs:); runtimeOK says whether this
	// template expands late enough to use them (a step's, not the plan's).
	runtime   map[string]runtimeVar
	runtimeOK bool
	// source allows .source.commit, .source.ref and .source.repo (publish templates of a
	// plan with one checkout step).
	source sourceScope
}

// sourceScope says whether .source may be named, or why not.
type sourceScope struct {
	ok  bool
	why string // for an error when not ok; "" where .source never makes sense
}

// SourceFields are the names under .source: what the run's checkout fetched.
var SourceFields = []string{"commit", "ref", "repo"}

func (s scope) valid() string {
	var v []string
	for _, n := range s.names {
		v = append(v, "."+n)
	}
	for _, n := range slices.Sorted(maps.Keys(s.vars)) {
		v = append(v, ".vars."+n)
	}
	if s.runtimeOK {
		for _, n := range slices.Sorted(maps.Keys(s.runtime)) {
			v = append(v, ".vars."+n+" (from step "+s.runtime[n].step.ID+")")
		}
	}
	for _, n := range s.params {
		v = append(v, ".params."+n)
	}
	if s.source.ok {
		for _, n := range SourceFields {
			v = append(v, ".source."+n)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(s.secrets)) {
		v = append(v, ".secrets."+n)
	}
	if len(v) == 0 {
		return "nothing (no names are defined here)"
	}
	return strings.Join(v, ", ")
}

// parseTemplate parses s with the template functions and missing keys as errors.
func parseTemplate(s string) (*template.Template, error) {
	return template.New("t").Funcs(templateFuncs()).Option("missingkey=error").Parse(s)
}

// checkTemplate parses s and checks it uses only the allowed forms and names in sc.
// It returns the problems as messages (the caller adds the place).
func checkTemplate(s string, sc scope) []string {
	if !isTemplate(s) {
		return nil
	}
	t, err := parseTemplate(s)
	if err != nil {
		return []string{"template: " + templateErrPrefix.ReplaceAllString(err.Error(), "")}
	}
	var msgs []string
	for _, n := range t.Tree.Root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
		case *parse.ActionNode:
			msgs = append(msgs, checkAction(n, sc)...)
		default:
			msgs = append(msgs, fmt.Sprintf("template: %s is not allowed; %s", n, allowedForms))
		}
	}
	return msgs
}

const allowedForms = "use {{ .name }}, {{ join .vars.LIST \"SEP\" }} or {{ platformTag .name }}"

// checkAction checks one {{ ... }} of a template: a field, a string, join or platformTag.
func checkAction(a *parse.ActionNode, sc scope) []string {
	p := a.Pipe
	if len(p.Decl) > 0 || len(p.Cmds) != 1 {
		return []string{fmt.Sprintf("template: %s is not allowed; %s", a, allowedForms)}
	}
	args := p.Cmds[0].Args
	switch first := args[0].(type) {
	case *parse.FieldNode:
		if len(args) == 1 {
			return checkValueField(first, sc)
		}
	case *parse.StringNode:
		if len(args) == 1 {
			return nil
		}
	case *parse.IdentifierNode:
		switch first.Ident {
		case "join":
			return checkJoin(a, args, sc)
		case "platformTag":
			if msgs, ok := checkPlatformTag(a, args, sc); ok {
				return msgs
			}
		}
	}
	return []string{fmt.Sprintf("template: %s is not allowed; %s", a, allowedForms)}
}

// checkValueField checks {{ .name }}: a name of the scope holding one value.
func checkValueField(f *parse.FieldNode, sc scope) []string {
	list, msg := checkField(f.Ident, sc)
	if msg != "" {
		return []string{msg}
	}
	if list {
		return []string{fmt.Sprintf("template: %s is a list; use {{ join %s \" \" }} to make it one value", f, f)}
	}
	return nil
}

// checkJoin checks {{ join .vars.LIST "SEP" }}.
func checkJoin(a *parse.ActionNode, args []parse.Node, sc scope) []string {
	if len(args) != 3 {
		return []string{fmt.Sprintf("template: %s: join takes a list var and a separator string: {{ join .vars.LIST \" \" }}", a)}
	}
	f, ok := args[1].(*parse.FieldNode)
	if !ok {
		return []string{fmt.Sprintf("template: %s: join's first argument must be a list var like .vars.python", a)}
	}
	list, msg := checkField(f.Ident, sc)
	if msg != "" {
		return []string{msg}
	}
	if !list {
		return []string{fmt.Sprintf("template: %s: %s is not a list", a, f)}
	}
	if _, ok := args[2].(*parse.StringNode); !ok {
		return []string{fmt.Sprintf("template: %s: join's separator must be a quoted string", a)}
	}
	return nil
}

// checkPlatformTag checks {{ platformTag .platform }} (or a quoted platform); false when
// its argument is neither a field nor a string.
func checkPlatformTag(a *parse.ActionNode, args []parse.Node, sc scope) ([]string, bool) {
	if len(args) != 2 {
		return []string{fmt.Sprintf("template: %s: platformTag takes one platform: {{ platformTag .platform }}", a)}, true
	}
	switch arg := args[1].(type) {
	case *parse.StringNode:
		return nil, true
	case *parse.FieldNode:
		list, msg := checkField(arg.Ident, sc)
		if msg != "" {
			return []string{msg}, true
		}
		if list {
			return []string{fmt.Sprintf("template: %s: %s is a list, platformTag takes one platform", a, arg)}, true
		}
		return nil, true
	}
	return nil, false
}

// checkField checks a field reference and says whether it is a list.
func checkField(ident []string, sc scope) (list bool, msg string) {
	name := "." + strings.Join(ident, ".")
	unknown := func() string { return fmt.Sprintf("template: unknown name %s; valid here: %s", name, sc.valid()) }
	switch {
	case len(ident) == 2 && ident[0] == "vars" && sc.vars != nil:
		return checkVar(name, ident[1], sc, unknown)
	case len(ident) >= 1 && ident[0] == "source" && (sc.source.ok && len(ident) == 2 || sc.source.why != ""):
		return false, checkSource(name, ident, sc)
	case len(ident) == 2 && ident[0] == "params" && sc.params != nil:
		if !slices.Contains(sc.params, ident[1]) {
			return false, unknown()
		}
		return false, ""
	case len(ident) == 2 && ident[0] == "secrets" && sc.secrets != nil:
		if _, ok := sc.secrets[ident[1]]; !ok {
			return false, unknown()
		}
		return false, ""
	case len(ident) == 1 && slices.Contains(sc.names, ident[0]):
		return false, ""
	}
	return false, unknown()
}

// checkSource checks .source.FIELD (name as written): what the run's checkout fetched,
// where the scope has it, or why not.
func checkSource(name string, ident []string, sc scope) string {
	if !sc.source.ok || len(ident) != 2 {
		return fmt.Sprintf("template: %s is the commit a checkout step fetched, but %s", name, sc.source.why)
	}
	if !slices.Contains(SourceFields, ident[1]) {
		return fmt.Sprintf("template: unknown name %s; .source has .source.commit, .source.ref, .source.repo", name)
	}
	return ""
}

// checkVar checks .vars.NAME (name as written): a var of the plan, or one a step defines
// at run time where the scope may use those; unknown is the message for neither.
func checkVar(name, v string, sc scope, unknown func() string) (list bool, msg string) {
	if pv, ok := sc.vars[v]; ok {
		return pv.IsList, ""
	}
	rv, late := sc.runtime[v]
	switch {
	case late && sc.runtimeOK:
		return rv.out.List, ""
	case late:
		return false, fmt.Sprintf("template: %s is set at run time by step %s; only steps (not plan-level values) can use it", name, rv.step.ID)
	}
	return false, unknown()
}

// render executes a checked template with data. Values without "{{" are returned as is.
func render(s string, data map[string]any) (string, error) {
	if !isTemplate(s) {
		return s, nil
	}
	t, err := parseTemplate(s)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

// varData is the .vars map of template data: strings and string lists.
func varData(vars map[string]Var) map[string]any {
	m := make(map[string]any, len(vars))
	for k, v := range vars {
		if v.IsList {
			m[k] = v.List
		} else {
			m[k] = v.Scalar
		}
	}
	return m
}

// RenderURL is the webhook's URL with its template ({{ .secrets.NAME }}) executed against
// the plan's secret values, by the same engine as every other template of the plan. A
// secret without a value is an error naming it, never a URL with the reference left in.
func (w Webhook) RenderURL(secrets map[string]string) (string, error) {
	u, err := render(w.URL, map[string]any{"secrets": secrets})
	if err != nil {
		return "", fmt.Errorf("notify url at %s: %w", w.Pos, err)
	}
	return u, nil
}

// TemplateFuncs are the functions plan templates may call, for templates rendered outside
// this package (a commit message, rendered when the run knows .run and .summary).
func TemplateFuncs() template.FuncMap { return templateFuncs() }

// Render executes a template the plan loader checked (a commit message, rendered when the
// run knows .run and .summary) with data. Values without "{{" are returned as is.
func Render(text string, data map[string]any) (string, error) { return render(text, data) }

package plan

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Overlays: one plan file, run as written in production and, unchanged, against a staging
// stack (a local repository, registry and branches). An overlay is a YAML file naming the
// plan it applies to and holding the values it replaces, in the plan's own shape:
//
//	overlay: airflow
//	instances:
//	  main: { vars: { cache: localhost:5000/airflow/main/ci } }
//	steps:
//	  checkout: { checkout: { repo: /srv/staging/airflow.git } }
//
// It is laid over the plan document before the plan is decoded, so every value it sets is
// checked exactly like the plan's own, and errors in it name the overlay's file, line and
// column. A mapping is merged key by key; any other value (a string, a list) replaces the
// plan's. steps: is a mapping from step id to what to lay over that step. An overlay
// overrides, it does not add: a var, param, instance, secret, env variable, matrix axis or
// step the plan does not have is an error (a misspelt name would otherwise be a silent
// no-op on a staging run). The daemon applies the overlay files of its plans directory (at
// most one per plan); refreshd run --local, plan and validate also take --overlay FILE and
// --var NAME=VALUE. refreshd plan lists every value that came from an overlay.

// Override is one value of a plan that an overlay or a --var set.
type Override struct {
	Path  string // where in the plan: "vars.cache", "steps.checkout.checkout.repo"
	Value string // the value, in short YAML flow form
	Pos   Pos    // where the overlay sets it; File "--var" for the command line
}

// VarOverride is a --var NAME=VALUE: the value of a plan var in every instance, laid over
// the plan's, the instance's and any overlay's. A list var takes comma-separated values.
type VarOverride struct {
	Name  string
	Value string
}

// LoadOptions are what a staging run lays over the plans it loads.
type LoadOptions struct {
	// Overlays are overlay files applied after the plans directory's own, in order.
	Overlays []string
	// Vars are applied last, to every instance.
	Vars []VarOverride
	// Branches lists a remote's branches for instances_from (nil: not listed, a warning).
	Branches BranchLister
}

// ParseVarArg splits one "NAME=VALUE" --var argument.
func ParseVarArg(arg string) (VarOverride, error) {
	name, value, ok := strings.Cut(arg, "=")
	if !ok || !identPattern.MatchString(name) {
		return VarOverride{}, fmt.Errorf("--var %q: want NAME=VALUE, NAME a var of the plan", arg)
	}
	if msg := checkParamChars(value); msg != "" {
		return VarOverride{}, fmt.Errorf("--var %s: %s", name, msg)
	}
	return VarOverride{Name: name, Value: value}, nil
}

// overlayKey is the top-level key that makes a file an overlay.
const overlayKey = "overlay"

// namedMaps are the mappings whose keys are names the plan declares (not an object's
// fields): an overlay may only replace what is there.
var namedMaps = map[string]string{
	"vars": "var", "params": "param", "instances": "instance", "secrets": "secret",
	"env": "env variable", "matrix": "matrix axis",
}

// overlayTarget returns the plan name an overlay file names, and its node.
func overlayTarget(f *parsedFile) (string, *yaml.Node) {
	v := findKey(f.doc, overlayKey)
	if v == nil {
		return "", nil
	}
	v = resolve(v)
	if v.Kind != yaml.ScalarNode {
		return "", v
	}
	return v.Value, v
}

// planName returns the plan: name a plan document declares ("" when it has none usable).
func planName(doc *yaml.Node) string {
	if v := findKey(doc, "plan"); v != nil && resolve(v).Kind == yaml.ScalarNode {
		return resolve(v).Value
	}
	return ""
}

// applyOverlays returns f with the overlays laid over a copy of its document, or f itself
// when there are none. Errors go to l.errs, placed in the overlay files.
func (l *loader) applyOverlays(f *parsedFile, overlays []*parsedFile) *parsedFile {
	if len(overlays) == 0 {
		return f
	}
	out := &parsedFile{path: f.path, doc: cloneNode(f.doc), kind: f.kind, origin: map[*yaml.Node]string{}}
	for _, o := range overlays {
		m := &merger{file: o.path, origin: out.origin, plan: f.path}
		m.mapping(out.doc, o.doc, "")
		out.overrides = append(out.overrides, m.over...)
		l.errs = append(l.errs, m.errs...)
	}
	return out
}

// merger lays one overlay document over a plan document.
type merger struct {
	file   string // the overlay's path
	plan   string // the plan's path, for messages
	origin map[*yaml.Node]string
	over   []Override
	errs   ErrorList
}

func (m *merger) errorf(n *yaml.Node, format string, args ...any) {
	m.errs = append(m.errs, &Error{Pos: Pos{File: m.file, Line: n.Line, Col: n.Column}, Msg: fmt.Sprintf(format, args...)})
}

// mapping merges the overlay mapping src into the plan mapping dst at path.
func (m *merger) mapping(dst, src *yaml.Node, path string) {
	src = resolve(src)
	if src.Kind != yaml.MappingNode {
		m.errorf(src, "overlay %s must be a mapping, as in the plan, not %s", orRoot(path), kindName(src))
		return
	}
	last := path[strings.LastIndex(path, ".")+1:]
	named := namedMaps[last]
	for i := 0; i+1 < len(src.Content); i += 2 {
		k, v := src.Content[i], resolve(src.Content[i+1])
		if path == "" && k.Value == overlayKey {
			continue // a file with plan: too is a plan, never an overlay
		}
		at := k.Value
		if path != "" {
			at = path + "." + k.Value
		}
		if path == "" && k.Value == "steps" {
			m.steps(findKey(dst, "steps"), v)
			continue
		}
		j := keyIndex(dst, k.Value)
		if j < 0 {
			if named != "" {
				m.errorf(k, "overlay sets %s, but the plan (%s) has no %s %q; an overlay replaces values, it does not add them (%s: %s)",
					at, m.plan, named, k.Value, path, strings.Join(mapKeys(dst), ", "))
				continue
			}
			kc := cloneNode(k)
			m.mark(kc)
			m.mark(v)
			dst.Content = append(dst.Content, kc, v)
			m.record(at, k, v)
			continue
		}
		old := resolve(dst.Content[j+1])
		if old.Kind == yaml.MappingNode && v.Kind == yaml.MappingNode && !strings.HasSuffix(path, "vars") {
			m.mapping(old, v, at)
			continue
		}
		if strings.HasSuffix(path, "vars") && (old.Kind == yaml.SequenceNode) != (v.Kind == yaml.SequenceNode) {
			m.errorf(v, "overlay sets %s to %s, but the plan declares it as %s (%s:%d:%d)", at, kindName(v), kindName(old), m.plan, old.Line, old.Column)
			continue
		}
		m.mark(v)
		dst.Content[j+1] = v
		m.record(at, k, v)
	}
}

// steps merges the overlay's steps: {ID: {...}} into the plan's list of steps.
func (m *merger) steps(dst, src *yaml.Node) {
	if src.Kind != yaml.MappingNode {
		m.errorf(src, "overlay steps must be a mapping from step id to what to replace in that step (steps: {checkout: {checkout: {repo: ...}}}), not %s", kindName(src))
		return
	}
	var ids []string
	byID := map[string]*yaml.Node{}
	if dst != nil && resolve(dst).Kind == yaml.SequenceNode {
		for _, s := range resolve(dst).Content {
			if id := findKey(resolve(s), "id"); id != nil {
				ids = append(ids, resolve(id).Value)
				byID[resolve(id).Value] = resolve(s)
			}
		}
	}
	for i := 0; i+1 < len(src.Content); i += 2 {
		k, v := src.Content[i], src.Content[i+1]
		s, ok := byID[k.Value]
		if !ok {
			m.errorf(k, "overlay sets step %q, but the plan (%s) has no such step; steps: %s", k.Value, m.plan, strings.Join(ids, ", "))
			continue
		}
		if id := findKey(resolve(v), "id"); id != nil {
			m.errorf(id, "an overlay cannot rename step %s", k.Value)
			continue
		}
		m.mapping(s, v, "steps."+k.Value)
	}
}

// mark records every node under n as the overlay's, so the decoder places it there.
func (m *merger) mark(n *yaml.Node) {
	m.origin[n] = m.file
	for _, c := range n.Content {
		m.mark(c)
	}
}

func (m *merger) record(path string, k, v *yaml.Node) {
	m.over = append(m.over, Override{Path: path, Value: flowText(v), Pos: Pos{File: m.file, Line: k.Line, Col: k.Column}})
}

func orRoot(path string) string {
	if path == "" {
		return "file"
	}
	return path
}

func keyIndex(n *yaml.Node, key string) int {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return i
		}
	}
	return -1
}

func mapKeys(n *yaml.Node) []string {
	var keys []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		keys = append(keys, n.Content[i].Value)
	}
	if len(keys) == 0 {
		return []string{"none"}
	}
	return keys
}

// cloneNode deep-copies an alias-free tree (the loader expands aliases first).
func cloneNode(n *yaml.Node) *yaml.Node {
	cp := *n
	cp.Content = make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		cp.Content[i] = cloneNode(c)
	}
	return &cp
}

// maxOverrideText bounds a value as refreshd plan shows it.
const maxOverrideText = 200

// flowText renders a value on one line: a scalar as is, a list or mapping in flow style.
func flowText(n *yaml.Node) string {
	var s string
	if n.Kind == yaml.ScalarNode {
		s = n.Value
	} else {
		cp := cloneNode(n)
		setFlow(cp)
		b, err := yaml.Marshal(cp)
		if err != nil {
			return kindName(n)
		}
		s = strings.TrimSpace(string(b))
	}
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxOverrideText {
		s = s[:maxOverrideText] + "..."
	}
	return s
}

func setFlow(n *yaml.Node) {
	n.Style |= yaml.FlowStyle
	n.HeadComment, n.LineComment, n.FootComment = "", "", ""
	for _, c := range n.Content {
		setFlow(c)
	}
}

// overlaysFor groups the overlay files of one load by the plan they name. Two overlays of
// one plan in a directory are an error: which wins would depend on file names.
func (l *loader) overlaysFor(files []*parsedFile, plans map[string]bool, checkTargets bool) map[string][]*parsedFile {
	out := map[string][]*parsedFile{}
	for _, f := range files {
		if f.kind != kindOverlay {
			continue
		}
		name, n := overlayTarget(f)
		if n == nil || name == "" {
			if n != nil {
				l.errs = append(l.errs, &Error{Pos: Pos{File: f.path, Line: n.Line, Col: n.Column}, Msg: "overlay: must name the plan the overlay applies to (overlay: NAME)"})
			}
			continue
		}
		if checkTargets && !plans[name] {
			l.errs = append(l.errs, &Error{Pos: Pos{File: f.path, Line: n.Line, Col: n.Column},
				Msg: fmt.Sprintf("overlay for plan %q, but no plan of that name was loaded with it (plans: %s)", name, strings.Join(slices.Sorted(maps.Keys(plans)), ", "))})
			continue
		}
		prev := out[name]
		if slices.ContainsFunc(prev, func(o *parsedFile) bool { return filepath.Clean(o.path) == filepath.Clean(f.path) }) {
			continue // given with --overlay and found in the directory: applied once
		}
		if len(prev) > 0 && filepath.Dir(prev[0].path) == filepath.Dir(f.path) {
			l.errs = append(l.errs, &Error{Pos: Pos{File: f.path, Line: n.Line, Col: n.Column},
				Msg: fmt.Sprintf("a second overlay for plan %s (the first is %s); keep one overlay per plan in a directory", name, prev[0].path)})
			continue
		}
		out[name] = append(out[name], f)
	}
	return out
}

// applyVars sets the --var overrides on the decoded plan: every instance, after its own
// vars and any overlay's.
func (pd *planDecoder) applyVars(vars []VarOverride) {
	for _, o := range vars {
		base, ok := pd.p.Vars[o.Name]
		if !ok {
			known := slices.Sorted(maps.Keys(pd.p.Vars))
			msg := fmt.Sprintf("--var %s: the plan declares no var %s (vars: %s)", o.Name, o.Name, strings.Join(known, ", "))
			if rv, ok := pd.runtime[o.Name]; ok {
				msg = fmt.Sprintf("--var %s: var %s is read at run time by step %s; refreshd plan --value %s=... shows a dry run with it", o.Name, o.Name, rv.step.ID, o.Name)
			}
			pd.errorAt(Pos{File: pd.file}, "%s", msg)
			continue
		}
		v := Var{Pos: Pos{File: "--var " + o.Name}, IsList: base.IsList}
		if base.IsList {
			v.List = strings.Split(o.Value, ",")
		} else {
			v.Scalar = o.Value
		}
		pd.p.Vars[o.Name] = v
		pd.p.Overrides = append(pd.p.Overrides, Override{Path: "vars." + o.Name, Value: o.Value, Pos: Pos{File: "--var"}})
	}
}

// readOverlays reads the overlay files given on the command line.
func readOverlays(rd *fsReader, paths []string) ([]*parsedFile, error) {
	var out []*parsedFile
	for _, path := range paths {
		data, err := rd.readFile(path)
		if err != nil {
			return nil, fmt.Errorf("read overlay: %w", err)
		}
		l := newLoader()
		f := l.parse(path, data)
		if err := l.errs.err(); err != nil {
			return nil, err
		}
		if f.kind != kindOverlay {
			return nil, ErrorList{{Pos: Pos{File: path, Line: 1, Col: 1}, Msg: "not an overlay: an overlay file starts with overlay: PLAN (the name of the plan it applies to)"}}
		}
		out = append(out, f)
	}
	return out, nil
}

// unusedOverlays reports command-line overlays that named no plan of the load.
func unusedOverlays(extra []*parsedFile, names map[string]bool) ErrorList {
	var errs ErrorList
	for _, f := range extra {
		if name, n := overlayTarget(f); n != nil && !names[name] {
			errs = append(errs, &Error{Pos: Pos{File: f.path, Line: n.Line, Col: n.Column},
				Msg: fmt.Sprintf("overlay for plan %q, but no plan of that name was loaded with it (plans: %s)", name, strings.Join(slices.Sorted(maps.Keys(names)), ", "))})
		}
	}
	return errs
}

package plan

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// maxWatchedTags bounds the refs of one tags condition (a matrix typo must not make every
// run look up thousands of tags).
const maxWatchedTags = 1000

// tagsFreshness decodes skip_if tags: {refs, matrix, within}. The refs are templates
// rendered once the whole file is decoded (resolveTags): vars may come after skip_if.
func (pd *planDecoder) tagsFreshness(n *yaml.Node) *TagsFreshness {
	tf := &TagsFreshness{}
	pd.fields(n, "skip_if tags", []field{
		{"refs", func(v *yaml.Node) { tf.tmpls, tf.pos = pd.strList(v, "refs") }},
		{"matrix", func(v *yaml.Node) { tf.axes = pd.matrix(v) }},
		{"within", func(v *yaml.Node) { tf.Within = pd.duration(v, "within") }},
	})
	if resolve(n).Kind == yaml.MappingNode && (len(tf.tmpls) == 0 || tf.Within == 0) {
		pd.errorf(n, "skip_if tags needs refs (image refs with a tag, every one of which must have been pushed within the window) and within (e.g. within: 12h)")
	}
	return tf
}

// resolveTags checks every tags condition and renders its refs for each combination of its
// matrix (axes: literal lists or list vars). A condition whose refs use a var a step
// defines at run time (the Python versions read from the checkout) is decided once that
// step has succeeded (After): its refs are rendered then, by Graph.SkipTagRefs.
func (pd *planDecoder) resolveTags() {
	ids := make(map[string]*Step, len(pd.p.Steps))
	for _, s := range pd.p.Steps {
		ids[s.ID] = s
	}
	for _, c := range pd.p.SkipConditions() {
		tf := c.Tags
		if tf == nil {
			continue
		}
		ok := true
		names := []string{"plan", "instance"}
		var after []string
		for i := range tf.axes {
			ax := &tf.axes[i]
			names = append(names, ax.Name)
			if ax.ref == "" {
				continue
			}
			if rv, late := pd.runtime[ax.ref]; late && rv.out.List {
				after = append(after, rv.step.ID)
				continue
			}
			v, found := pd.p.Vars[ax.ref]
			switch {
			case !found || !v.IsList:
				pd.errorAt(ax.refPos, "matrix axis %s names %q, which is not a list var; vars: %s", ax.Name, ax.ref,
					scope{vars: pd.p.Vars, runtime: pd.runtime, runtimeOK: true}.valid())
				ok = false
			default:
				ax.Values = v.List
			}
		}
		sc := scope{vars: pd.p.Vars, names: names, runtime: pd.runtime, runtimeOK: true}
		for i, t := range tf.tmpls {
			for _, msg := range checkTemplate(t, sc) {
				pd.errorAt(tf.pos[i], "%s", msg)
				ok = false
			}
			for _, name := range templateVars(t) {
				if rv, late := pd.runtime[name]; late {
					after = append(after, rv.step.ID)
				}
			}
		}
		if !ok {
			continue
		}
		if len(after) > 0 {
			slices.Sort(after)
			tf.After = slices.Compact(after)
			if s := ids[c.Step]; s != nil {
				anc := ancestors(s, ids)
				for _, id := range tf.After {
					if !anc[id] {
						pd.errorAt(c.Pos, "skip_if of step %s uses values step %s defines at run time; the step must need %s (directly or through a step it needs), so the condition is decided before it starts: write %s", s.ID, id, id, needsWith(s, id))
					}
				}
			}
			continue
		}
		refs, errs := tf.render(c.Pos, pd.p.Vars, pd.p.Name, pd.p.Instance)
		pd.errs = append(pd.errs, errs...)
		tf.Refs = refs
	}
}

// SkipConditions are the plan's skip_if conditions, then each step's, in file order.
func (p *Plan) SkipConditions() []SkipCondition {
	out := slices.Clone(p.SkipIf)
	for _, s := range p.Steps {
		out = append(out, s.SkipIf...)
	}
	return out
}

// render renders the refs: templates for every combination of the matrix over vars, and
// checks each ref names a tag. Each ref appears once.
func (tf *TagsFreshness) render(at Pos, vars map[string]Var, planName, instance string) ([]string, ErrorList) {
	var errs ErrorList
	errorAt := func(p Pos, format string, args ...any) {
		errs = append(errs, &Error{Pos: p, Msg: fmt.Sprintf(format, args...)})
	}
	axes := slices.Clone(tf.axes)
	for i, ax := range axes {
		if ax.ref == "" {
			continue
		}
		v, ok := vars[ax.ref]
		if !ok || !v.IsList {
			errorAt(ax.refPos, "matrix axis %s: var %q has no list value", ax.Name, ax.ref)
			return nil, errs
		}
		axes[i].Values = v.List
	}
	var refs []string
	seen := map[string]bool{}
	for _, combo := range combos(axes) {
		data := map[string]any{"vars": varData(vars), "plan": planName, "instance": instance}
		for _, kv := range combo {
			data[kv.Key] = kv.Value
		}
		for i, t := range tf.tmpls {
			ref, err := render(t, data)
			if err != nil {
				errorAt(tf.pos[i], "%v", err)
				continue
			}
			switch {
			case strings.Contains(ref, "@"):
				errorAt(tf.pos[i], "skip_if tags ref %q names a digest, which never changes: name a tag", ref)
			case !hasTag(ref):
				errorAt(tf.pos[i], "skip_if tags ref renders to %q, which has no :TAG", ref)
			case checkImageRef("skip_if tags ref", ref) != "":
				errorAt(tf.pos[i], "%s", checkImageRef("skip_if tags ref", ref))
			case !seen[ref]:
				seen[ref] = true
				refs = append(refs, ref)
			}
		}
		if len(refs) > maxWatchedTags {
			errorAt(at, "skip_if tags watches more than %d refs; reduce the matrix", maxWatchedTags)
			return nil, errs
		}
	}
	return refs, errs
}

// RefPatterns are the refs of a condition decided at run time as far as the plan knows
// them: vars and names filled in, each matrix axis and run-time var shown as <NAME>
// (ghcr.io/apache/airflow/main/ci/python<python>:cache-<platform>), for the dry run.
func (tf *TagsFreshness) RefPatterns(p *Plan) (refs, axes []string) {
	vars := varData(p.Vars)
	data := map[string]any{"vars": vars, "plan": p.Name, "instance": p.Instance}
	for _, ax := range tf.axes {
		axes = append(axes, ax.Name)
		data[ax.Name] = "<" + ax.Name + ">"
	}
	for _, t := range tf.tmpls {
		for _, name := range templateVars(t) {
			if _, ok := vars[name]; !ok {
				vars[name] = "<" + name + ">"
			}
		}
		ref, err := render(t, data)
		if err != nil { // a list run-time var used joined: show the template itself
			ref = t
		}
		refs = append(refs, ref)
	}
	return refs, axes
}

// RefsIfKnown is the refs of a tags condition decided before the run (nil for tf nil).
func (tf *TagsFreshness) RefsIfKnown() []string {
	if tf == nil {
		return nil
	}
	return tf.Refs
}

// SkipTagRefs renders the refs of a tags condition decided at run time (c.Tags.After),
// with the values the steps defined so far. ready is false while a step it waits for has
// not delivered its values; an error (a ref that is not a tag, too many refs) says what
// the values made of the template.
func (g *Graph) SkipTagRefs(c SkipCondition) (refs []string, ready bool, err error) {
	tf := c.Tags
	if tf == nil || g.x == nil {
		return nil, false, nil
	}
	if len(tf.After) == 0 {
		return tf.Refs, true, nil
	}
	for _, id := range tf.After {
		if !g.x.delivered(id) {
			return nil, false, nil
		}
	}
	vars := maps.Clone(g.Plan.Vars)
	maps.Copy(vars, g.x.runtime)
	refs, errs := tf.render(c.Pos, vars, g.Plan.Name, g.Plan.Instance)
	if err := errs.err(); err != nil {
		return nil, true, fmt.Errorf("skip_if tags with the values of %s: %w", strings.Join(tf.After, ", "), err)
	}
	return refs, true, nil
}

// warnf records a warning at n: the plan stays valid.
func (pd *planDecoder) warnf(n *yaml.Node, format string, args ...any) {
	pd.p.Warnings = append(pd.p.Warnings, &Error{Pos: pd.pos(n), Msg: fmt.Sprintf(format, args...)})
}

// isCacheTag reports whether ref's tag is one a BuildKit registry cache export uses
// (refreshd's and breeze's cache-<os>-<arch>, or buildx's default "cache"): such a manifest
// has no config with a created time.
func isCacheTag(ref string) bool {
	if strings.Contains(ref, "@") || !hasTag(ref) {
		return false
	}
	tag := ref[strings.LastIndex(ref, ":")+1:]
	return tag == "cache" || strings.HasPrefix(tag, "cache-")
}

// ShortDuration prints 12h instead of 12h0m0s, and 1h30m instead of 1h30m0s.
func ShortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

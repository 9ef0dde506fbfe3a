package plan

import (
	"fmt"
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

// resolveTags renders every tags condition's refs for each combination of its matrix
// (axes: literal lists or list vars), checking the templates and the refs they make.
func (pd *planDecoder) resolveTags() {
	for _, c := range pd.p.SkipIf {
		tf := c.Tags
		if tf == nil {
			continue
		}
		ok := true
		names := []string{"plan", "instance"}
		for i := range tf.axes {
			ax := &tf.axes[i]
			names = append(names, ax.Name)
			if ax.ref == "" {
				continue
			}
			v, found := pd.p.Vars[ax.ref]
			switch {
			case !found || !v.IsList:
				pd.errorAt(ax.refPos, "matrix axis %s names %q, which is not a list var; vars: %s", ax.Name, ax.ref, scope{vars: pd.p.Vars}.valid())
				ok = false
			default:
				ax.Values = v.List
			}
		}
		for i, t := range tf.tmpls {
			for _, msg := range checkTemplate(t, scope{vars: pd.p.Vars, names: names}) {
				pd.errorAt(tf.pos[i], "%s", msg)
				ok = false
			}
		}
		if !ok {
			continue
		}
		seen := map[string]bool{}
		for _, combo := range combos(tf.axes) {
			data := map[string]any{"vars": varData(pd.p.Vars), "plan": pd.p.Name, "instance": pd.p.Instance}
			for _, kv := range combo {
				data[kv.Key] = kv.Value
			}
			for i, t := range tf.tmpls {
				ref, err := render(t, data)
				if err != nil {
					pd.errorAt(tf.pos[i], "%v", err)
					continue
				}
				switch {
				case strings.Contains(ref, "@"):
					pd.errorAt(tf.pos[i], "skip_if tags ref %q names a digest, which never changes: name a tag", ref)
				case !hasTag(ref):
					pd.errorAt(tf.pos[i], "skip_if tags ref renders to %q, which has no :TAG", ref)
				case !seen[ref]:
					seen[ref] = true
					tf.Refs = append(tf.Refs, ref)
				}
			}
			if len(tf.Refs) > maxWatchedTags {
				pd.errorAt(c.Pos, "skip_if tags watches more than %d refs; reduce the matrix", maxWatchedTags)
				return
			}
		}
	}
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

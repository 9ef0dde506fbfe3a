package plan

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// decoder walks yaml.v3 nodes instead of unmarshalling into structs, so that every value
// keeps its line and column and every problem of a file is collected, not only the first.
type decoder struct {
	file string
	errs ErrorList
	// known records, per object kind, the keys the decoder accepts. The schema test compares
	// it with the JSON Schema so the two cannot drift apart.
	known map[string][]string
	// origin names the overlay file a node came from (nil without overlays).
	origin map[*yaml.Node]string
}

func (d *decoder) pos(n *yaml.Node) Pos {
	if f, ok := d.origin[n]; ok {
		return Pos{File: f, Line: n.Line, Col: n.Column}
	}
	return Pos{File: d.file, Line: n.Line, Col: n.Column}
}

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	d.errs = append(d.errs, &Error{Pos: d.pos(n), Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) errorAt(p Pos, format string, args ...any) {
	d.errs = append(d.errs, &Error{Pos: p, Msg: fmt.Sprintf(format, args...)})
}

// resolve follows aliases, so anchors work anywhere a value is expected.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return "a scalar"
	}
	return "an unsupported YAML node"
}

// field is one key of an object: its name and what to do with its value node.
type field struct {
	key string
	set func(v *yaml.Node)
}

// fields decodes a mapping whose keys are all in fs, calling each setter with the value.
// Unknown and repeated keys are errors that list the valid keys.
func (d *decoder) fields(n *yaml.Node, kind string, fs []field) bool {
	keys := make([]string, len(fs))
	for i, f := range fs {
		keys[i] = f.key
	}
	if d.known != nil {
		d.known[kind] = keys
	}
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s must be a mapping with keys %s, not %s", kind, strings.Join(keys, ", "), kindName(n))
		return false
	}
	seen := make(map[string]*yaml.Node)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, "%s keys must be strings", kind)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, "%s key %q repeated (first at line %d)", kind, k.Value, first.Line)
			continue
		}
		seen[k.Value] = k
		found := false
		for _, f := range fs {
			if f.key == k.Value {
				found = true
				f.set(v)
				break
			}
		}
		if !found {
			d.errorf(k, "unknown key %q in %s; valid keys: %s", k.Value, kind, strings.Join(keys, ", "))
		}
	}
	return true
}

// pairs returns the key/value nodes of a free-form mapping (env, vars, ...).
func (d *decoder) pairs(n *yaml.Node, what string) [][2]*yaml.Node {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s must be a mapping, not %s", what, kindName(n))
		return nil
	}
	var out [][2]*yaml.Node
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, "%s keys must be strings", what)
			continue
		}
		if line, dup := seen[k.Value]; dup {
			d.errorf(k, "%s key %q repeated (first at line %d)", what, k.Value, line)
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, [2]*yaml.Node{k, v})
	}
	return out
}

func (d *decoder) str(n *yaml.Node, what string) string {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.errorf(n, "%s must be a string, not %s", what, kindName(n))
		return ""
	}
	return n.Value
}

func (d *decoder) nonEmpty(n *yaml.Node, what string) string {
	s := d.str(n, what)
	if s == "" && resolve(n).Kind == yaml.ScalarNode && resolve(n).Tag != "!!null" {
		d.errorf(n, "%s must not be empty", what)
	}
	return s
}

// name reads text that names something (a plan, step, builder or node, a secret a token or
// a step names): a YAML string. A YAML number or boolean is refused, with the quoted text
// to write instead: an editor checking the plan against the schema sees 1.10 as the number
// 1.1 and 1e3 as 1000, so a name spelled as a number is not the same name to both.
func (d *decoder) name(n *yaml.Node, what string) string {
	s := d.nonEmpty(n, what)
	if r := resolve(n); r.Kind == yaml.ScalarNode {
		switch r.Tag {
		case "!!int", "!!float":
			d.errorf(n, "%s %s is a YAML number, not text; write %s", what, r.Value, strconv.Quote(r.Value))
		case "!!bool":
			d.errorf(n, "%s %s is a YAML boolean, not text; write %s", what, r.Value, strconv.Quote(r.Value))
		}
	}
	return s
}

// boolean reads true or false. Like every scalar, it is read by its text, quoted or not:
// "true" is true as 4 and "4" are both 4 (YAML 1.2's spellings: true, True, TRUE).
func (d *decoder) boolean(n *yaml.Node, what string) bool {
	n = resolve(n)
	if n.Kind == yaml.ScalarNode {
		switch n.Value {
		case "true", "True", "TRUE":
			return true
		case "false", "False", "FALSE":
			return false
		}
	}
	d.errorf(n, "%s must be true or false, not %q", what, n.Value)
	return false
}

// integer reads an int in [lo, hi]: a whole number as text ("4", 4), or a YAML number
// whose value is whole (4.0, 1e3, 0x10), as an editor's JSON view of the plan reads it.
func (d *decoder) integer(n *yaml.Node, what string, lo, hi int) int {
	n = resolve(n)
	if n.Kind == yaml.ScalarNode {
		i, err := strconv.Atoi(n.Value)
		if err != nil && (n.Tag == "!!int" || n.Tag == "!!float") {
			var f float64
			if n.Decode(&f) == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
				i, err = int(f), nil
			}
		}
		if err == nil {
			if i < lo || i > hi {
				d.errorf(n, "%s must be between %d and %d, not %d", what, lo, hi, i)
				return lo
			}
			return i
		}
	}
	d.errorf(n, "%s must be a whole number between %d and %d, not %s", what, lo, hi, describe(n))
	return lo
}

func (d *decoder) number(n *yaml.Node, what string, lo, hi float64) float64 {
	n = resolve(n)
	if n.Kind == yaml.ScalarNode {
		if f, err := strconv.ParseFloat(n.Value, 64); err == nil && f >= lo && f <= hi {
			return f
		}
	}
	d.errorf(n, "%s must be a number between %g and %g, not %s", what, lo, hi, describe(n))
	return lo
}

// duration reads a positive Go duration ("90s", "30m", "2h").
func (d *decoder) duration(n *yaml.Node, what string) time.Duration {
	n = resolve(n)
	if n.Kind == yaml.ScalarNode {
		v, err := time.ParseDuration(n.Value)
		if err == nil && v > 0 {
			return v
		}
	}
	d.errorf(n, "%s must be a positive Go duration like 90s, 30m or 2h, not %s", what, describe(n))
	return 0
}

// list returns the elements of a YAML sequence; anything else is an error, "WHAT must be
// a list of OF, not KIND", and ok is false.
func (d *decoder) list(n *yaml.Node, what, of string) (elems []*yaml.Node, ok bool) {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s must be a list of %s, not %s", what, of, kindName(n))
		return nil, false
	}
	return n.Content, true
}

// strList reads a list of strings; a single scalar is not a list.
func (d *decoder) strList(n *yaml.Node, what string) ([]string, []Pos) {
	elems, ok := d.list(n, what, "strings")
	if !ok {
		return nil, nil
	}
	out := make([]string, 0, len(elems))
	pos := make([]Pos, 0, len(elems))
	for _, e := range elems {
		out = append(out, d.str(e, what+" element"))
		pos = append(pos, d.pos(resolve(e)))
	}
	return out, pos
}

func (d *decoder) strMap(n *yaml.Node, what string) (map[string]string, map[string]Pos) {
	pairs := d.pairs(n, what)
	if pairs == nil {
		return nil, nil
	}
	out := make(map[string]string, len(pairs))
	pos := make(map[string]Pos, len(pairs))
	for _, kv := range pairs {
		out[kv[0].Value] = d.str(kv[1], what+" "+kv[0].Value)
		pos[kv[0].Value] = d.pos(kv[1])
	}
	return out, pos
}

func (d *decoder) regex(n *yaml.Node, what string) *regexp.Regexp {
	s := d.str(n, what)
	re, err := regexp.Compile(s)
	if err != nil {
		d.errorf(n, "%s: bad regular expression: %v", what, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		return nil
	}
	return re
}

// describe quotes a scalar for an error message, or names the node's kind.
func describe(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		return strconv.Quote(n.Value)
	}
	return kindName(n)
}

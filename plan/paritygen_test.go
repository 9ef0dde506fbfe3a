package plan

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The parity generator: plans drawn from the JSON Schema itself (every property, every
// enum, every anyOf/oneOf branch) and from mutations of valid plans, field by field, so
// that the schema and the loader are compared on cases nobody wrote beside either.

// genCase is one generated plan.
type genCase struct {
	name string     // what made it: the base plan and the mutations, for the report
	doc  *yaml.Node // a document node
	// want is a corpus plan's verdict (its first line, "# parity: VERDICT"): ok, bad
	// (both reject it) or loader-only (ID) (explained by schemaChecks ID); "" for a
	// generated plan.
	want string
}

// schemaModel is plan/schema.json as generic JSON, with its $defs.
type schemaModel struct {
	root map[string]any
	defs map[string]any
	res  map[string]*regexp.Regexp // the schema's patterns, compiled once (nil: not RE2)
}

func loadSchemaModel(t testing.TB) *schemaModel {
	t.Helper()
	var root map[string]any
	if err := json.Unmarshal(Schema(), &root); err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	defs, _ := root["$defs"].(map[string]any)
	return &schemaModel{root: root, defs: defs, res: map[string]*regexp.Regexp{}}
}

// snode is one schema object reached at a place, with the name of the $def it came
// from (the last $ref followed), which picks sample values for patterns.
type snode struct {
	m   map[string]any
	def string
}

// flatten follows $ref and opens anyOf, oneOf and allOf: every schema object that may
// apply at a place (the nodes themselves included).
func (s *schemaModel) flatten(nodes []snode) []snode {
	return s.open(nodes, func(alts []any) []any { return alts })
}

// pick is flatten choosing one branch of each anyOf and oneOf (at random): the schema
// objects a value drawn from one alternative must satisfy.
func (s *schemaModel) pick(r *rand.Rand, nodes []snode) []snode {
	return s.open(nodes, func(alts []any) []any {
		k := r.IntN(len(alts))
		return alts[k : k+1]
	})
}

// open follows $ref, opens allOf, and opens the alternatives of anyOf and oneOf that
// choose returns.
func (s *schemaModel) open(nodes []snode, choose func(alts []any) []any) []snode {
	var out []snode
	var walk func(n snode, depth int)
	walk = func(n snode, depth int) {
		if n.m == nil || depth > 20 {
			return
		}
		out = append(out, n)
		if ref, ok := n.m["$ref"].(string); ok {
			name := strings.TrimPrefix(ref, "#/$defs/")
			if d, ok := s.defs[name].(map[string]any); ok {
				walk(snode{d, name}, depth+1)
			}
		}
		for _, k := range []string{"allOf", "anyOf", "oneOf"} {
			subs, _ := n.m[k].([]any)
			if len(subs) > 0 && k != "allOf" {
				subs = choose(subs)
			}
			for _, sub := range subs {
				if sm, ok := sub.(map[string]any); ok {
					walk(snode{sm, n.def}, depth+1)
				}
			}
		}
	}
	for _, n := range nodes {
		walk(n, 0)
	}
	return out
}

// property returns the schema nodes for key of an object at nodes.
func (s *schemaModel) property(nodes []snode, key string) []snode {
	var out []snode
	for _, n := range s.flatten(nodes) {
		props, _ := n.m["properties"].(map[string]any)
		if p, ok := props[key].(map[string]any); ok {
			out = append(out, snode{p, ""})
			continue
		}
		if ap, ok := n.m["additionalProperties"].(map[string]any); ok {
			out = append(out, snode{ap, ""})
		}
	}
	return out
}

func (s *schemaModel) items(nodes []snode) []snode {
	var out []snode
	for _, n := range s.flatten(nodes) {
		if it, ok := n.m["items"].(map[string]any); ok {
			out = append(out, snode{it, ""})
		}
	}
	return out
}

// propertyNames lists the properties the schema declares at nodes.
func (s *schemaModel) propertyNames(nodes []snode) []string {
	var out []string
	for _, n := range s.flatten(nodes) {
		props, _ := n.m["properties"].(map[string]any)
		for k := range props {
			if !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	slices.Sort(out)
	return out
}

// samples are strings the generator tries for a string whose pattern it cannot invert:
// the first few that the pattern (and length bounds) accept are used.
var samples = []string{
	"x", "a1", "main", "A_b", "k1", "constraints-main", "90s", "2h", "1h30m", ".5h", "/srv/x", "/etc/refreshd/token",
	"linux/amd64", "linux/arm64", "linux/arm/v7", "{{ .vars.L }}", "{{ .vars.python }}", "{{ .plan }}",
	"https://example.invalid/x.git", "http://hooks.example.invalid/x", "files/*.txt", "constraints", "^#",
	"0 3 * * *", "@nightly", "@every 6h", "UTC", "Europe/Berlin", "stdout", "out/vars.json", "3.11",
	"127.0.0.1:5000/x", "127.0.0.1:5000/x:cache", "unix:///var/run/docker.sock", "tcp://127.0.0.1:2375",
	"true", "4", "0.5", "skip", "queue",
}

// gen returns a value the schema at nodes allows, as far as the generator can tell (a
// pattern it has no sample for gets "x"), built to depth.
func (s *schemaModel) gen(r *rand.Rand, nodes []snode, depth int) *yaml.Node {
	flat := s.pick(r, nodes)
	var enums []any
	var types []string
	var pats []*regexp.Regexp
	minLen, minItems := 0, 0
	lo, hi := 1.0, 5.0
	hasObject := false
	for _, n := range flat {
		if e, ok := n.m["enum"].([]any); ok {
			enums = append(enums, e...)
		}
		if c, ok := n.m["const"]; ok {
			enums = append(enums, c)
		}
		switch tv := n.m["type"].(type) {
		case string:
			types = append(types, tv)
		case []any:
			for _, x := range tv {
				types = append(types, x.(string))
			}
		}
		if p, ok := n.m["pattern"].(string); ok {
			re, seen := s.res[p]
			if !seen {
				re, _ = regexp.Compile(p)
				s.res[p] = re
			}
			if re != nil {
				pats = append(pats, re)
			}
		}
		if v, ok := n.m["minLength"].(float64); ok {
			minLen = max(minLen, int(v))
		}
		if v, ok := n.m["minItems"].(float64); ok {
			minItems = max(minItems, int(v))
		}
		if v, ok := n.m["minimum"].(float64); ok {
			lo = v
		}
		if v, ok := n.m["maximum"].(float64); ok {
			hi = min(v, lo+10)
		}
		if _, ok := n.m["properties"]; ok {
			hasObject = true
		}
	}
	if len(enums) > 0 {
		return jsonNode(enums[r.IntN(len(enums))])
	}
	if len(types) == 0 && hasObject {
		types = []string{"object"}
	}
	if len(types) == 0 {
		types = []string{"string"}
	}
	switch typ := types[r.IntN(len(types))]; typ {
	case "object":
		if depth <= 0 {
			return mapping()
		}
		return s.genObject(r, flat, depth)
	case "array":
		if depth <= 0 {
			return &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		}
		seq := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for range max(minItems, 1+r.IntN(2)) {
			seq.Content = append(seq.Content, s.gen(r, s.items(flat), depth-1))
		}
		return seq
	case "integer":
		return scalar("!!int", strconv.Itoa(int(lo)+r.IntN(int(hi-lo)+1)))
	case "number":
		return scalar("!!float", strconv.FormatFloat(lo+(hi-lo)*r.Float64()/2, 'f', 2, 64))
	case "boolean":
		return scalar("!!bool", []string{"true", "false"}[r.IntN(2)])
	case "null":
		return scalar("!!null", "null")
	}
	var ok []string
	for _, c := range samples {
		if len(c) < minLen {
			continue
		}
		if !slices.ContainsFunc(pats, func(re *regexp.Regexp) bool { return !re.MatchString(c) }) {
			ok = append(ok, c)
		}
	}
	if len(ok) == 0 {
		return scalar("!!str", "x")
	}
	return scalar("!!str", ok[r.IntN(len(ok))])
}

// genObject builds an object with the required properties and some optional ones.
func (s *schemaModel) genObject(r *rand.Rand, flat []snode, depth int) *yaml.Node {
	m := mapping()
	var required []string
	for _, n := range flat {
		req, _ := n.m["required"].([]any)
		for _, k := range req {
			if !slices.Contains(required, k.(string)) {
				required = append(required, k.(string))
			}
		}
	}
	names := s.propertyNames(flat)
	r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	maxProps, minProps := len(names), 0
	for _, n := range flat {
		if v, ok := n.m["maxProperties"].(float64); ok {
			maxProps = int(v)
		}
		if v, ok := n.m["minProperties"].(float64); ok {
			minProps = int(v)
		}
	}
	for _, k := range names {
		if len(m.Content)/2 >= maxProps {
			break
		}
		if slices.Contains(required, k) || r.IntN(3) == 0 || len(m.Content)/2 < minProps {
			setKey(m, k, s.gen(r, s.property(flat, k), depth-1))
		}
	}
	if len(names) == 0 {
		// A free-form mapping (env, vars, matrix, secrets): one entry.
		setKey(m, []string{"K1", "python", "A_b"}[r.IntN(3)], s.gen(r, s.property(flat, "K1"), depth-1))
	}
	return m
}

func mapping() *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle} }

func scalar(tag, value string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value}
	if tag == "!!str" {
		n.Style = yaml.DoubleQuotedStyle
	}
	return n
}

// jsonNode makes a YAML node of a JSON value (an enum's or const's).
func jsonNode(v any) *yaml.Node {
	switch x := v.(type) {
	case string:
		return scalar("!!str", x)
	case bool:
		return scalar("!!bool", strconv.FormatBool(x))
	case float64:
		if x == float64(int64(x)) {
			return scalar("!!int", strconv.FormatInt(int64(x), 10))
		}
		return scalar("!!float", strconv.FormatFloat(x, 'g', -1, 64))
	case nil:
		return scalar("!!null", "null")
	}
	var n yaml.Node
	b, _ := json.Marshal(v)
	yaml.Unmarshal(b, &n)
	return n.Content[0]
}

// setKey sets key of mapping m to v (replacing it when present).
func setKey(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
}

// deepCopy copies a node tree, aliases resolved (a mutation must not change the base).
func deepCopy(n *yaml.Node) *yaml.Node {
	n = resolve(n)
	c := *n
	c.Anchor, c.Alias = "", nil
	c.HeadComment, c.LineComment, c.FootComment = "", "", ""
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, x := range n.Content {
		c.Content[i] = deepCopy(x)
	}
	return &c
}

// place is one value of a plan that a mutation may change: the node, its parent and key,
// and the schema there.
type place struct {
	path   string
	node   *yaml.Node
	parent *yaml.Node // the mapping or sequence holding it (nil for the document's root)
	key    string     // in a mapping
	schema []snode
}

// places lists every value of doc (a plan's root mapping) with the schema that applies.
func (s *schemaModel) places(root *yaml.Node) []place {
	var out []place
	var walk func(n, parent *yaml.Node, key, path string, sch []snode)
	walk = func(n, parent *yaml.Node, key, path string, sch []snode) {
		out = append(out, place{path, n, parent, key, sch})
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i].Value
				walk(n.Content[i+1], n, k, path+"."+k, s.property(sch, k))
			}
		case yaml.SequenceNode:
			for i, e := range n.Content {
				walk(e, n, "", fmt.Sprintf("%s.%d", path, i), s.items(sch))
			}
		}
	}
	walk(root, nil, "", "", []snode{{s.root, ""}})
	return out
}

// hostile are values a field may be given by mistake or by malice: each type where
// another is expected, numbers as strings and strings as numbers, floats for integers,
// booleans in their spellings, empty and huge values.
func hostile(r *rand.Rand) *yaml.Node {
	vals := []*yaml.Node{
		scalar("!!null", "null"), scalar("!!str", ""), scalar("!!str", "x"), scalar("!!str", " "),
		scalar("!!int", "0"), scalar("!!int", "-1"), scalar("!!int", "1"), scalar("!!int", "2"), scalar("!!int", "1000"),
		scalar("!!int", "1001"), scalar("!!int", "100001"), scalar("!!int", "99999999999"),
		scalar("!!float", "2.0"), scalar("!!float", "2.5"), scalar("!!float", "0.5"), scalar("!!float", "1e3"), scalar("!!float", "-0.5"),
		scalar("!!str", "2"), scalar("!!str", "2.0"), scalar("!!str", "+2"), scalar("!!str", "0"), scalar("!!str", "-1"), scalar("!!str", "0.5"),
		scalar("!!bool", "true"), scalar("!!bool", "false"), scalar("!!bool", "True"), scalar("!!str", "true"), scalar("!!str", "yes"),
		scalar("!!str", "--help"), scalar("!!str", "../../etc/passwd"), scalar("!!str", "/abs"), scalar("!!str", "a\nb"),
		scalar("!!str", "{{ .vars.nosuch }}"), scalar("!!str", "{{ .plan }}"), scalar("!!str", strings.Repeat("x", 300)),
		scalar("!!str", strings.Repeat("a", 20000)), scalar("!!str", "3.10"), scalar("!!float", "3.10"), scalar("!!str", "90s"),
		scalar("!!str", "é"), scalar("!!str", "0x10"),
		{Kind: yaml.SequenceNode, Style: yaml.FlowStyle},
		{Kind: yaml.SequenceNode, Style: yaml.FlowStyle, Content: []*yaml.Node{scalar("!!str", "x")}},
		{Kind: yaml.SequenceNode, Style: yaml.FlowStyle, Content: []*yaml.Node{scalar("!!int", "1"), scalar("!!bool", "true")}},
		mapping(),
		{Kind: yaml.MappingNode, Style: yaml.FlowStyle, Content: []*yaml.Node{scalar("!!str", "k"), scalar("!!str", "v")}},
	}
	return vals[r.IntN(len(vals))]
}

// crons are schedules of every shape: valid ones, descending ranges, times that never
// come, out-of-range fields, steps, names, descriptors and @every durations.
func genCron(r *rand.Rand) string {
	fixed := []string{
		"0 3 * * *", "0 3 * * 5-1", "0 3 31 2,4 *", "0 3 30 2 *", "0 3 31 4 *", "0 3 29 2 *", "0 3 31 1,4 *",
		"*/0 * * * *", "0 3 * * 7", "0 24 * * *", "60 * * * *", "0 0 0 * *", "0 0 * 0 *", "0 0 * 13 *",
		"0 3 * * mon-fri", "0 3 * * fri-mon", "0 3 * jan-dec *", "0 3 * dec-jan *", "0 30 2 * * *", "61 0 3 * * *",
		"@nightly", "@daily", "@every 6h", "@every 90m", "@every 0s", "@every 1.5s", "@every -1s", "@every 1h30m",
		"@weekly", "@reboot", "TZ=UTC 0 3 * * *", "0 3 * *", "0 3 * * * * *", "", " ", "0 3 ? * *", "0 3 1-31/2 * *",
		"0 3 5-3 * *", "5-3 * * * *", "0 23-1 * * *", "0 3 * 12-1 *", "0 3 31 */2 *", "0 3 30,31 2 *",
	}
	if r.IntN(2) == 0 {
		return fixed[r.IntN(len(fixed))]
	}
	field := func(lo, hi int) string {
		a, b := lo+r.IntN(hi-lo+1), lo+r.IntN(hi-lo+1)
		switch r.IntN(6) {
		case 0:
			return "*"
		case 1:
			return fmt.Sprintf("%d-%d", a, b) // ascending or descending
		case 2:
			return fmt.Sprintf("%d,%d", a, b)
		case 3:
			return fmt.Sprintf("*/%d", 1+r.IntN(hi-lo+1))
		case 4:
			return fmt.Sprintf("%d", lo+r.IntN(hi-lo+3)) // sometimes out of range
		}
		return fmt.Sprintf("%d", a)
	}
	return strings.Join([]string{field(0, 59), field(0, 23), field(1, 31), field(1, 12), field(0, 6)}, " ")
}

// regexes are patterns that RE2 and ECMAScript read differently, or that one rejects.
var regexes = []string{
	"^#", "3\\.[0-9]+", "(?=main)main", "(?!x)y", "(?<=a)b", "(a)\\1", "(?i)main", "(?P<n>x)", "(?<n>x)", "\\k<n>",
	"[[:alpha:]]+", "\\pL+", "\\p{Greek}", "a{2,1}", "(", "[a", "a**", "\\Qa.b\\E", "\\z", "\\Z", "x{1001}", "a++",
	"(?s).", "(?U)a+", "]", "}", "\\d+", "[^\\n]", "\\cA", "\\u0041", "\\x{41}", "a|", "",
}

// generate returns n cases drawn with r: plans built from the schema alone, then
// mutations of the base plans (each case one to three mutations).
func generate(t testing.TB, r *rand.Rand, s *schemaModel, bases []genCase, n int) []genCase {
	var out []genCase
	planSchema := []snode{{map[string]any{"$ref": "#/$defs/plan"}, ""}}
	for len(out) < n/10 {
		doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{s.genObject(r, s.pick(r, planSchema), 5)}}
		out = append(out, genCase{name: fmt.Sprintf("schema-%d", len(out)), doc: doc})
	}
	out = append(out, whenByAction(t, s, bases)...)
	for len(out) < n {
		base := bases[r.IntN(len(bases))]
		doc := deepCopy(base.doc)
		name := base.name
		for range 1 + r.IntN(3) {
			name += " " + s.mutate(r, doc.Content[0])
		}
		out = append(out, genCase{name: name, doc: doc})
	}
	return out
}

// whenByAction sets every when: value of the schema on a step of every action (the step
// of the first base plan that has one), with and without a skip_if of its own.
func whenByAction(t testing.TB, s *schemaModel, bases []genCase) []genCase {
	stepSchema := []snode{{map[string]any{"$ref": "#/$defs/step"}, ""}}
	var whens []any
	for _, n := range s.flatten(s.property(stepSchema, "when")) {
		if e, ok := n.m["enum"].([]any); ok {
			whens = append(whens, e...)
		}
	}
	var out []genCase
	for _, action := range actionKeys() {
		found := false
		for _, b := range bases {
			steps := resolve(mapValue(b.doc.Content[0], "steps"))
			for i, st := range steps.Content {
				if found || resolve(st).Kind != yaml.MappingNode || !hasKey(resolve(st), action) {
					continue
				}
				found = true
				for _, w := range whens {
					for _, skip := range []bool{false, true} {
						doc := deepCopy(b.doc)
						step := resolve(mapValue(doc.Content[0], "steps")).Content[i]
						setKey(step, "when", jsonNode(w))
						name := fmt.Sprintf("%s .steps.%d(%s).when=%v", b.name, i, action, w)
						if skip {
							var cond yaml.Node
							yaml.Unmarshal([]byte(`{image: {ref: "r.example/ci:latest", within: 1h}}`), &cond)
							setKey(step, "skip_if", &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{cond.Content[0]}})
							name += " +skip_if"
						}
						out = append(out, genCase{name: name, doc: doc})
					}
				}
			}
		}
		if !found {
			t.Fatalf("no base plan has a %s step", action)
		}
	}
	if len(out) < len(actionKeys())*len(whens)*2 {
		t.Fatalf("%d when: x action cases", len(out))
	}
	return out
}

// mapValue is the value of key in mapping m, or nil.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// mutate changes one place of root and says what it did.
func (s *schemaModel) mutate(r *rand.Rand, root *yaml.Node) string {
	ps := s.places(root)
	p := ps[r.IntN(len(ps))]
	replace := func(v *yaml.Node) {
		if p.parent == nil {
			return
		}
		for i, c := range p.parent.Content {
			if c == p.node && (p.parent.Kind == yaml.SequenceNode || i%2 == 1) {
				p.parent.Content[i] = v
			}
		}
	}
	defs := map[string]bool{}
	for _, n := range s.flatten(p.schema) {
		defs[n.def] = true
	}
	switch k := r.IntN(10); {
	case defs["schedule"] && k < 6:
		c := genCron(r)
		replace(scalar("!!str", c))
		return fmt.Sprintf("%s=%q", p.path, c)
	case defs["regex"] && k < 6:
		re := regexes[r.IntN(len(regexes))]
		replace(scalar("!!str", re))
		return fmt.Sprintf("%s=%q", p.path, re)
	case k < 3:
		v := hostile(r)
		replace(v)
		return p.path + "=" + short(v)
	case k < 6:
		v := s.gen(r, p.schema, 3)
		replace(v)
		return p.path + "=" + short(v)
	case k < 7 && p.node.Kind == yaml.MappingNode:
		// Add a property the schema declares here (or an unknown one).
		names := s.propertyNames(p.schema)
		key := "nosuch"
		if len(names) > 0 && r.IntN(8) > 0 {
			key = names[r.IntN(len(names))]
		} else if len(names) == 0 {
			key = []string{"K2", "python", "2", "a-b", "TOKEN2"}[r.IntN(5)]
		}
		v := s.gen(r, s.property(p.schema, key), 3)
		setKey(p.node, key, v)
		return fmt.Sprintf("%s.%s+=%s", p.path, key, short(v))
	case k < 8 && p.parent != nil && p.parent.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(p.parent.Content); i += 2 {
			if p.parent.Content[i+1] == p.node {
				p.parent.Content = slices.Delete(p.parent.Content, i, i+2)
				break
			}
		}
		return p.path + " removed"
	case k < 9 && p.node.Kind == yaml.SequenceNode && len(p.node.Content) > 0:
		p.node.Content = append(p.node.Content, deepCopy(p.node.Content[0]))
		return p.path + " first element repeated"
	}
	// Enums and bounds of the place, and the value written another way.
	var vs []*yaml.Node
	for _, n := range s.flatten(p.schema) {
		e, _ := n.m["enum"].([]any)
		for _, x := range e {
			vs = append(vs, jsonNode(x))
		}
		for _, b := range []string{"minimum", "maximum"} {
			if v, ok := n.m[b].(float64); ok {
				for _, d := range []float64{-1, 0, 1} {
					vs = append(vs, jsonNode(v+d), scalar("!!str", strconv.Itoa(int(v+d))), scalar("!!float", strconv.FormatFloat(v+d, 'f', 1, 64)))
				}
			}
		}
	}
	if p.node.Kind == yaml.ScalarNode {
		vs = append(vs, scalar("!!str", p.node.Value))
		if _, err := strconv.Atoi(p.node.Value); err == nil {
			vs = append(vs, scalar("!!float", p.node.Value+".0"))
		}
	}
	if len(vs) == 0 {
		v := hostile(r)
		replace(v)
		return p.path + "=" + short(v)
	}
	v := vs[r.IntN(len(vs))]
	replace(v)
	return p.path + "=" + short(v)
}

func short(v *yaml.Node) string {
	b, _ := yaml.Marshal(v)
	s := strings.TrimSpace(string(b))
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return s
}

// baseCases are the valid plans mutations start from: the shipped plans, testdata/full,
// and the plans of testdata/parity the loader accepts, each with its shared builders
// written in (a generated plan is one file).
func baseCases(t testing.TB) []genCase {
	t.Helper()
	var files []string
	for _, g := range []string{"../plans/*.yaml", "testdata/full/*.yaml", "testdata/parity/*.yaml"} {
		m, _ := filepath.Glob(g)
		files = append(files, m...)
	}
	var out []genCase
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc yaml.Node
		if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
			continue
		}
		root := resolve(doc.Content[0])
		if root.Kind != yaml.MappingNode || !hasKey(root, "plan") {
			continue
		}
		inlineSharedBuilders(t, root, filepath.Dir(f))
		d := deepCopy(&doc)
		c := genCase{name: filepath.Base(f), doc: d}
		if ok, _ := loaderVerdict("base.yaml", marshalCase(t, c)); ok {
			out = append(out, c)
		}
	}
	if len(out) < 20 {
		t.Fatalf("only %d valid base plans", len(out))
	}
	return out
}

// corpusCases are the plans of testdata/parity, each with the verdict its first line
// states: the issues' cases and the shapes worth keeping whatever the seed draws.
func corpusCases(t testing.TB) []genCase {
	t.Helper()
	files, _ := filepath.Glob("testdata/parity/*.yaml")
	var out []genCase
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(string(data), "\n")
		want, ok := strings.CutPrefix(first, "# parity: ")
		if !ok {
			t.Fatalf("%s: first line must be # parity: ok, bad or loader-only (CHECK)", f)
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, genCase{name: filepath.Base(f), doc: &doc, want: want})
	}
	if len(out) < 60 {
		t.Fatalf("only %d plans in testdata/parity", len(out))
	}
	return out
}

func hasKey(m *yaml.Node, key string) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return true
		}
	}
	return false
}

// inlineSharedBuilders replaces each {ref: NAME} builder of root by NAME's definition in
// a builders file of dir.
func inlineSharedBuilders(t testing.TB, root *yaml.Node, dir string) {
	shared := map[string]*yaml.Node{}
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	for _, f := range files {
		var v struct {
			Builders []yaml.Node `yaml:"builders"`
			Plan     string      `yaml:"plan"`
		}
		data, _ := os.ReadFile(f)
		if yaml.Unmarshal(data, &v) != nil || v.Plan != "" {
			continue
		}
		for i := range v.Builders {
			b := &v.Builders[i]
			if name := builderName(b); name != "" {
				shared[name] = b
			}
		}
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "builders" {
			continue
		}
		for j, b := range resolve(root.Content[i+1]).Content {
			b = resolve(b)
			if isRef(b) {
				for k := 0; k+1 < len(b.Content); k += 2 {
					if def := shared[b.Content[k+1].Value]; def != nil {
						resolve(root.Content[i+1]).Content[j] = def
					}
				}
			}
		}
	}
}

func marshalCase(t testing.TB, c genCase) []byte {
	b, err := yaml.Marshal(c.doc)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	return b
}

// loaderVerdict is refreshd validate's verdict on one plan file's contents: it loads (as
// one plan or one per instance) and every step instance renders; else its messages.
func loaderVerdict(file string, data []byte) (bool, []string) {
	l := newLoader()
	if f := l.parse(file, data); f != nil && f.kind == kindBuilders {
		// A shared builders file: what validating its directory checks of it.
		l.sharedBuilders([]*parsedFile{f})
		var msgs []string
		for _, e := range l.errs {
			msgs = append(msgs, e.Msg)
		}
		return len(msgs) == 0, msgs
	}
	plans, err := ParsePlans(file, data)
	for _, p := range plans {
		if err == nil {
			_, err = Expand(p)
		}
	}
	if err == nil {
		return true, nil
	}
	var msgs []string
	if list, ok := err.(ErrorList); ok {
		for _, e := range list {
			msgs = append(msgs, e.Msg)
		}
	} else {
		msgs = append(msgs, err.Error())
	}
	return false, msgs
}

// toJSON converts a YAML document to the JSON an editor's YAML support validates: keys
// are their text, scalars their YAML 1.2 value.
func toJSON(n *yaml.Node) (any, error) {
	n = resolve(n)
	switch n.Kind {
	case yaml.DocumentNode:
		return toJSON(n.Content[0])
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			v, err := toJSON(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[resolve(n.Content[i]).Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		l := []any{}
		for _, e := range n.Content {
			v, err := toJSON(e)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		return l, nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

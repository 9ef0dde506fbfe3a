package plan

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// suggestion is one thing a message tells the user to write: YAML pairs to set in the
// mapping the message points into (under the key in, when it says "in KEY:"), or a value
// to put in place of the one it points at; and keys to remove.
type suggestion struct {
	text   string
	pairs  *yaml.Node // a mapping, or nil
	value  *yaml.Node // or nil
	in     string
	remove []string
}

var (
	writeClause  = regexp.MustCompile(`\bwrite (.+)$`)
	removeClause = regexp.MustCompile(`\bremove ([a-z_]+):`)
	inClause     = regexp.MustCompile(`^(.*) in ([a-z_]+):$`)
	alternatives = regexp.MustCompile(`\}(?:, | or )\{`)
)

// suggestions extracts what a message tells the user to write ("write SNIPPET", several
// alternatives "write {a}, {b} or {c}") and to remove ("remove KEY:"); nil when it says
// neither. A snippet that is not YAML is an error.
func suggestions(t *testing.T, msg string) []suggestion {
	t.Helper()
	var remove []string
	for _, m := range removeClause.FindAllStringSubmatch(msg, -1) {
		remove = append(remove, m[1])
	}
	m := writeClause.FindStringSubmatch(msg)
	if m == nil {
		if remove == nil {
			return nil
		}
		return []suggestion{{text: "remove " + strings.Join(remove, ", "), remove: remove}}
	}
	snippet, in := m[1], ""
	if im := inClause.FindStringSubmatch(snippet); im != nil {
		snippet, in = im[1], im[2]
	}
	var alts []string
	if strings.HasPrefix(snippet, "{") {
		for i, a := range alternatives.Split(snippet, -1) {
			if i > 0 {
				a = "{" + a
			}
			if !strings.HasSuffix(a, "}") {
				a += "}"
			}
			alts = append(alts, a)
		}
	} else {
		alts = []string{snippet}
	}
	var out []suggestion
	for _, a := range alts {
		s := suggestion{text: a, in: in, remove: remove}
		var doc yaml.Node
		if strings.HasPrefix(a, "{") || strings.HasPrefix(a, "[") || strings.HasPrefix(a, `"`) {
			if err := yaml.Unmarshal([]byte(a), &doc); err != nil {
				t.Fatalf("%q suggests %q, which is not YAML: %v", msg, a, err)
			}
			s.value = doc.Content[0]
		} else {
			if err := yaml.Unmarshal([]byte("{"+a+"}"), &doc); err != nil {
				t.Fatalf("%q suggests %q, which is not YAML KEY: VALUE pairs: %v", msg, a, err)
			}
			s.pairs = doc.Content[0]
		}
		out = append(out, s)
	}
	return out
}

// apply writes s into doc at pos: the value in place of the node there, or the pairs into
// the mapping there (the node itself, or the nearest mapping around it that has the key,
// else the nearest step, else the nearest mapping).
func (s suggestion) apply(t *testing.T, doc *yaml.Node, pos Pos) {
	t.Helper()
	var chain []*yaml.Node // from the document down to the node at pos
	var find func(n *yaml.Node, path []*yaml.Node) bool
	find = func(n *yaml.Node, path []*yaml.Node) bool {
		path = append(path, n)
		if n.Line == pos.Line && n.Column == pos.Col && n.Kind != yaml.DocumentNode {
			chain = slices.Clone(path)
			return true
		}
		for i, c := range n.Content {
			if n.Kind == yaml.MappingNode && i%2 == 0 && !(c.Line == pos.Line && c.Column == pos.Col && n.Content[i+1].Line != pos.Line) {
				continue // a key: the value at the same place is the one meant
			}
			if find(c, path) {
				return true
			}
		}
		return false
	}
	if !find(doc, nil) {
		t.Fatalf("no node at %d:%d", pos.Line, pos.Col)
	}
	target := chain[len(chain)-1]
	mappingWith := func(key string) *yaml.Node {
		var nearest, step *yaml.Node
		for i := len(chain) - 1; i >= 0; i-- {
			m := chain[i]
			if m.Kind != yaml.MappingNode {
				continue
			}
			if hasKey(m, key) {
				return m
			}
			if nearest == nil {
				nearest = m
			}
			if step == nil && hasKey(m, "id") {
				step = m
			}
		}
		if step != nil {
			return step
		}
		return nearest
	}
	for _, k := range s.remove {
		m := mappingWith(k)
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == k {
				m.Content = slices.Delete(m.Content, i, i+2)
				break
			}
		}
	}
	switch {
	case s.value != nil:
		parent := chain[len(chain)-2]
		for i, c := range parent.Content {
			if c == target {
				parent.Content[i] = s.value
			}
		}
	case s.pairs != nil:
		m := mappingWith(s.pairs.Content[0].Value)
		if s.in != "" {
			outer := mappingWith(s.in)
			for i := 0; i+1 < len(outer.Content); i += 2 {
				if outer.Content[i].Value == s.in {
					m = outer.Content[i+1]
				}
			}
		}
		for i := 0; i+1 < len(s.pairs.Content); i += 2 {
			setKey(m, s.pairs.Content[i].Value, s.pairs.Content[i+1])
		}
	}
}

// suggestionTriggers are plans that each draw one message suggesting what to write.
var suggestionTriggers = []struct{ name, plan string }{
	{"name as a number", `plan: p
steps:
  - {id: 1000, run: [echo]}`},
	{"name as a boolean", `plan: true
steps:
  - {id: a, run: [echo]}`},
	{"inline secret", `plan: p
secrets: {T: abc}
steps:
  - {id: a, run: [echo], secrets: [T]}`},
	{"run as a shell string", `plan: p
steps:
  - {id: a, run: "echo hello world"}`},
	{"matrix value that names a list var", `plan: p
vars: {pythons: ["3.11", "3.12"]}
steps:
  - {id: a, matrix: {python: ["{{ .vars.pythons }}"]}, run: [echo, "{{ .python }}"]}`},
	{"a secret read but not named", `plan: p
secrets: {T: {env: T}, U: {env: U}}
steps:
  - {id: a, secrets: [U], env: {X: "$T"}, run: [sh, -c, 'echo $U']}
  - {id: b, secrets: [T], run: [echo]}`},
	{"a run-time var used without needs", `plan: p
steps:
  - {id: list, run: [echo], outputs: {vars: {pythons: {}}}}
  - {id: other, run: [echo]}
  - {id: use, needs: [other], matrix: {python: "{{ .vars.pythons }}"}, run: [echo, "{{ .python }}"]}`},
	{".source without needs", `plan: p
steps:
  - {id: co, checkout: {repo: "https://example.invalid/p.git", ref: main}}
  - {id: use, env: {C: "{{ .source.commit }}"}, run: [echo]}`},
	{"skip_if on run-time values without needs", `plan: p
steps:
  - {id: versions, run: [echo], outputs: {vars: {python: {pattern: '3\.[0-9]+'}}}}
  - id: cache
    run: [echo]
    skip_if:
      - tags: {refs: ["r.example/ci/python{{ .py }}:cache"], matrix: {py: "{{ .vars.python }}"}, within: 1h}`},
	{"a zone in the schedule", `plan: p
schedule: "CRON_TZ=Europe/Berlin 0 3 * * *"
steps:
  - {id: a, run: [echo]}`},
	{"secrets on a checkout step", `plan: p
secrets: {T: {env: T}}
steps:
  - {id: co, secrets: [T], checkout: {repo: "https://example.invalid/p.git", ref: main}}`},
	{"secrets on a publish step", `plan: p
secrets: {T: {env: T}}
steps:
  - {id: pub, secrets: [T], publish_constraints: {repo: "https://example.invalid/c.git", branch: constraints-main, files: "files/*.txt"}}`},
	{"two secrets on a checkout step", `plan: p
secrets: {T: {env: T}, U: {env: U}}
steps:
  - {id: co, secrets: [T, U], checkout: {repo: "https://example.invalid/p.git", ref: main}}
  - {id: a, secrets: [T, U], run: [echo]}`},
	{"secrets on a verify_cache step (issue 23, finding 5)", `plan: p
secrets: {T: {env: T}}
steps:
  - {id: v, secrets: [T], verify_cache: {ref: "r.example/ci:cache-linux-amd64"}}
  - {id: a, secrets: [T], run: [echo]}`},
	{"a publish step that does not need the test gate (a warning)", `plan: p
steps:
  - {id: test, run: [pytest], report: {junit: out/junit.xml}}
  - {id: pub, publish_constraints: {repo: "https://example.invalid/c.git", branch: constraints-main, files: "files/*.txt"}}`},
	{"secrets on a buildx_cache step", `plan: p
secrets: {T: {env: T}}
builders: [{name: b, nodes: [{name: b0, platform: linux/amd64}]}]
steps:
  - {id: c, secrets: [T], buildx_cache: {builder: b, platforms: [linux/amd64], ref: r.example/ci}}
  - {id: a, secrets: [T], run: [echo]}`},
}

// TestSuggestionsLoad writes what each message suggests into the plan that drew it and
// loads it: it must load. The messages come from suggestionTriggers, and every message
// of the loader's source that says "write" or "remove KEY:" must be among them.
func TestSuggestionsLoad(t *testing.T) {
	var seen []string
	for _, tt := range suggestionTriggers {
		t.Run(tt.name, func(t *testing.T) {
			plans, err := ParsePlans("p.yaml", []byte(tt.plan))
			list, ok := err.(ErrorList)
			if err == nil && len(plans) == 1 {
				list, ok = plans[0].Warnings, true // a warning suggests too
			}
			if !ok || len(list) != 1 {
				t.Fatalf("want one error or warning, got %v", err)
			}
			e := list[0]
			seen = append(seen, e.Msg)
			sugs := suggestions(t, e.Msg)
			if len(sugs) == 0 {
				t.Fatalf("%s suggests nothing to write", e)
			}
			for _, s := range sugs {
				var doc yaml.Node
				if err := yaml.Unmarshal([]byte(tt.plan), &doc); err != nil {
					t.Fatal(err)
				}
				s.apply(t, &doc, e.Pos)
				fixed, err := yaml.Marshal(&doc)
				if err != nil {
					t.Fatal(err)
				}
				if ok, msgs := loaderVerdict("p.yaml", fixed); !ok {
					t.Errorf("%s\nwriting %q (removing %v) gives a plan that does not load: %s\n%s", e, s.text, s.remove, strings.Join(msgs, "; "), fixed)
				} else if plans, _ := ParsePlans("p.yaml", fixed); len(plans[0].Warnings) > 0 {
					t.Errorf("%s\nwriting %q leaves a warning: %v", e, s.text, plans[0].Warnings)
				}
			}
		})
	}
	for _, format := range suggestingFormats(t) {
		re := regexp.MustCompile("^" + regexp.MustCompile(`%[sqvd]`).ReplaceAllString(regexp.QuoteMeta(format), ".*") + "$")
		if !slices.ContainsFunc(seen, re.MatchString) {
			t.Errorf("no trigger draws the message %q: add one to suggestionTriggers", format)
		}
	}
}

// suggestingFormats are the string literals of the loader's source that tell the user to
// write or remove something.
func suggestingFormats(t *testing.T) []string {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(af, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err == nil && (writeClause.MatchString(s) || removeClause.MatchString(s)) {
				out = append(out, s)
			}
			return true
		})
	}
	if len(out) < 8 {
		t.Fatalf("only %d suggesting messages in the loader's source", len(out))
	}
	return out
}

package plan

import (
	"strings"
	"testing"
)

// TestExtendDry: values given for a dry run expand the steps waiting for them, in rounds (a
// producer that itself waits for another producer's values), checked as the steps' outputs
// are; a step given none of its values stays pending with what waits for it.
func TestExtendDry(t *testing.T) {
	const text = `plan: p
steps:
  - id: co
    checkout: { repo: https://example.com/r.git, ref: main }
  - id: versions
    needs: [co]
    run: [list-versions, "{{ .source.commit }}"]
    outputs: { vars: { python: { pattern: '3\.[0-9]+' } } }
  - id: extras
    needs: [versions]
    run: [list-extras, '{{ join .vars.python " " }}']
    outputs: { vars: { extra: { type: string } } }
  - id: build
    needs: [extras]
    matrix: { py: "{{ .vars.python }}" }
    run: [build, "{{ .py }}", "{{ .vars.extra }}"]
  - id: other
    needs: [co]
    run: [tool]
    outputs: { vars: { tool: { type: string } } }
  - { id: after-other, needs: [other], run: [use, "{{ .vars.tool }}"] }
`
	for _, tc := range []struct {
		name    string
		given   map[string]string
		argv    string // one instance's argv that must be in the graph
		pending []string
		err     string
	}{
		{name: "every value", given: map[string]string{"python": "3.11,3.12", "extra": "x", "tool": "t", SourceCommitValue: "abc"},
			argv: "build 3.12 x"},
		{name: "the commit stands in", given: map[string]string{"python": "3.11", "extra": "x", "tool": "t"}, argv: "list-versions " + DryRunCommit},
		{name: "a producer not given stays pending", given: map[string]string{"python": "3.11", "extra": "x"}, argv: "build 3.11 x", pending: []string{"after-other"}},
		{name: "a value its step refuses", given: map[string]string{"python": "2.7"}, err: `var python: value 1: "2.7" does not match`},
		{name: "not a run-time var", given: map[string]string{"pythn": "3.11"}, err: "--value pythn: no step of plan p defines pythn at run time; values: extra, python, tool, source.commit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse("p.yaml", []byte(text))
			if err != nil {
				t.Fatal(err)
			}
			g, err := Expand(p)
			if err != nil {
				t.Fatal(err)
			}
			err = g.ExtendDry(tc.given)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, in := range g.Instances {
				if a, ok := in.Action.(*RunAction); ok && strings.Join(a.Argv, " ") == tc.argv {
					found = true
				}
			}
			if !found {
				t.Errorf("no instance runs %q", tc.argv)
			}
			var pending []string
			for _, ps := range g.Pending() {
				pending = append(pending, ps.Step.ID)
			}
			if strings.Join(pending, " ") != strings.Join(tc.pending, " ") {
				t.Errorf("pending %v, want %v", pending, tc.pending)
			}
		})
	}
}

package plan

import (
	"strings"
	"testing"
)

// TestGateWarning: a publish step that does not need the plan's test gate (directly or
// through a step it needs) is flagged: it would publish whether or not the tests pass.
func TestGateWarning(t *testing.T) {
	for _, tc := range []struct {
		name, needs string
		warn        string
	}{
		{"publish after the gate", "[check]", ""},
		{"publish beside the gate", "[generate]", "p.yaml:11:5: step publish publishes constraints but does not need test gate gate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse("p.yaml", []byte(`plan: p
steps:
  - { id: generate, run: [make, constraints] }
  - id: gate
    needs: [generate]
    run: [pytest, --junitxml=out/tests.xml, tests/always]
    report: { junit: out/tests.xml }
  - id: check
    needs: [gate]
    run: ["true"]
  - id: publish
    needs: `+tc.needs+`
    publish_constraints: { repo: /srv/c.git, branch: constraints-main, files: "out/*.txt" }
`))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range p.Warnings {
				got = append(got, w.Error())
			}
			if tc.warn == "" && len(got) > 0 || tc.warn != "" && (len(got) != 1 || !strings.HasPrefix(got[0], tc.warn)) {
				t.Errorf("warnings %q, want %q", got, tc.warn)
			}
			if act := p.Steps[1].Report; act == nil || act.JUnit != "out/tests.xml" {
				t.Errorf("report %+v", act)
			}
		})
	}
}

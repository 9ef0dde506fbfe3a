package plan

import (
	"slices"
	"strings"
	"testing"
)

// Graph.Mask renames the instances whose ids hold a secret, with the needs that name them;
// ids masking makes equal are numbered; instances a later stage adds are masked as formed,
// and their needs name the masked ids; the values the steps run with stay real.
func TestGraphMask(t *testing.T) {
	const secret = "s3cret-one"
	src := `plan: m
steps:
  - id: build
    matrix: { v: ["3.11", "` + secret + `", "pre-` + secret + `"] }
    run: [echo, "{{ .v }}"]
  - id: values
    run: [echo]
    outputs: { from: stdout, vars: { w: {} } }
  - id: use
    needs: [build, values]
    matrix: { w: "{{ .vars.w }}" }
    run: [echo, "{{ .w }}"]
`
	plans, err := ParsePlans("m.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	g, err := ExpandRun(plans[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	mask := func(s string) string {
		return strings.ReplaceAll(strings.ReplaceAll(s, secret, "***"), "pre-***", "***")
	}
	g.Mask(mask)
	out, err := ParseOutputs(plans[0].Steps[1].Outputs, []byte(`{"w": ["ok", "`+secret+`"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Extend("values", out); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, in := range g.Instances {
		ids = append(ids, in.ID+" <- "+strings.Join(in.Needs, ","))
		if strings.Contains(in.ID, secret) || slices.ContainsFunc(in.Needs, func(n string) bool { return strings.Contains(n, secret) }) {
			t.Errorf("instance %s (needs %v) names the secret", in.ID, in.Needs)
		}
	}
	want := []string{
		"build[v=3.11] <- ", "build[v=***] <- ", "build[v=***]#2 <- ", "values <- ",
		"use[w=ok] <- build[v=3.11],build[v=***],build[v=***]#2,values",
		"use[w=***] <- build[v=3.11],build[v=***],build[v=***]#2,values",
	}
	if !slices.Equal(ids, want) {
		t.Errorf("instances\n%s\nwant\n%s", strings.Join(ids, "\n"), strings.Join(want, "\n"))
	}
	if argv := g.Instances[2].Action.(*RunAction).Argv; argv[1] != "pre-"+secret {
		t.Errorf("the masked instance runs %q, want the real value", argv)
	}
}

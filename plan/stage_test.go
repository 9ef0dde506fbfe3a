package plan

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/refreshd/refreshd/internal/testkit"
)

// TestInstancesLoad: one file, one plan per instance, each with its own name, vars,
// schedule, timezone and workdir; LoadFile refuses the file naming the instances.
func TestInstancesLoad(t *testing.T) {
	plans, err := LoadPlans("testdata/full/release.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range plans {
		got = append(got, fmt.Sprintf("%s base=%s instance=%s schedule=%q tz=%s workdir=%s branch=%s",
			p.Name, p.Base, p.Instance, p.Schedule, p.Timezone, p.Workdir, p.Vars["branch"].Scalar))
	}
	want := []string{
		`release/main base=release instance=main schedule="0 2 * * *" tz=UTC workdir=/srv/release/main branch=main`,
		`release/v3-1-test base=release instance=v3-1-test schedule="0 4 * * *" tz=Europe/Berlin workdir=/srv/release-3-1 branch=v3-1-test`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("instances:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if a, b := plans[0].Params[0], plans[1].Params[0]; a.Name != "ref" || a.Default != "" || b.Default != "v3-1-test" {
		t.Errorf("param ref defaults: main %q, v3-1-test %q (the instance sets its own)", a.Default, b.Default)
	}
	if _, err := LoadFile("testdata/full/release.yaml"); err == nil || !strings.Contains(err.Error(), "declares instances (release/main, release/v3-1-test); name one") {
		t.Errorf("LoadFile of a file with instances: %v", err)
	}
	all, err := LoadDir("testdata/full")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range all {
		names = append(names, p.Name)
	}
	if want := []string{"full", "release/main", "release/v3-1-test"}; !slices.Equal(names, want) {
		t.Errorf("LoadDir names %q, want %q", names, want)
	}
}

// TestStagedExpansion: the steps using run-time values are pending until the producer's
// values arrive; Extend then expands them all, in order, with the values and the run's
// params in their templates.
func TestStagedExpansion(t *testing.T) {
	plans, err := LoadPlans("testdata/full/release.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := plans[1] // release/v3-1-test
	params, err := p.ResolveParams(map[string]string{"ref": "v3-1-test", "upgrade": "false"})
	if err != nil {
		t.Fatal(err)
	}
	g, err := ExpandRun(p, params)
	if err != nil {
		t.Fatal(err)
	}
	var pending []string
	for _, ps := range g.Pending() {
		pending = append(pending, fmt.Sprintf("%s waits %v uses %v", ps.Step.ID, ps.Waits, ps.Vars))
	}
	first := dumpGraph(g)
	out, err := ParseOutputs(p.Steps[0].Outputs, []byte(`{"python": ["3.11", "3.14"], "default": "3.14", "extra": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	added, err := g.Extend("versions", out)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, in := range added {
		ids = append(ids, in.ID)
	}
	if len(g.Pending()) != 0 {
		t.Errorf("still pending after the values: %v", g.Pending())
	}
	got := "before:\n" + first + "pending:\n  " + strings.Join(pending, "\n  ") + "\nadded: " + strings.Join(ids, " ") + "\nafter:\n" + dumpGraph(g)
	testkit.Golden(t, "testdata/expand-release-stages.golden", got)
}

// TestExtendRefusesAndKeepsGraph: values that would make too many instances fail the
// stage with an error naming the producer, and leave the graph as it was.
func TestExtendRefusesAndKeepsGraph(t *testing.T) {
	plans, err := LoadPlans("testdata/full/release.yaml")
	if err != nil {
		t.Fatal(err)
	}
	g, err := Expand(plans[0])
	if err != nil {
		t.Fatal(err)
	}
	n := len(g.Instances)
	huge := make([]string, MaxInstances+1)
	for i := range huge {
		huge[i] = fmt.Sprintf("3.%d", i)
	}
	_, err = g.Extend("versions", map[string]Var{"python": {List: huge, IsList: true}, "default": {Scalar: "3.1"}})
	if err == nil || !strings.Contains(err.Error(), "expand the steps that use the values of versions") || !strings.Contains(err.Error(), "more than 10000 instances") {
		t.Fatalf("Extend with %d values: %v", len(huge), err)
	}
	if len(g.Instances) != n || len(g.Pending()) != 4 {
		t.Errorf("graph changed by a refused stage: %d instances (was %d), %d pending", len(g.Instances), n, len(g.Pending()))
	}
	if _, err := g.Extend("versions", map[string]Var{"python": {List: []string{"3.12"}, IsList: true}, "default": {Scalar: "3.12"}}); err != nil {
		t.Fatalf("a good stage after a refused one: %v", err)
	}
}

func TestParseOutputs(t *testing.T) {
	o := &Outputs{From: "stdout", Vars: []OutputVar{
		{Name: "python", List: true, MaxItems: 3, Pattern: mustPattern(`3\.[0-9]+`)},
		{Name: "branch", MaxItems: DefaultMaxItems},
	}}
	for _, tc := range []struct{ in, err string }{
		{`{"python": ["3.10", "3.14"], "branch": "constraints-3-1"}`, ""},
		{`{"python": ["3.10"], "branch": "a/b"}`, ""},
		{``, "not a JSON object"},
		{`["3.10"]`, "not a JSON object"},
		{`{"python": ["3.10"], "branch": "x"} {}`, "more than one JSON value"},
		{`{"branch": "x"}`, `no "python"; the step must define python, branch`},
		{`{"python": "3.10", "branch": "x"}`, "var python: want a list of strings"},
		{`{"python": [], "branch": "x"}`, "var python: empty list"},
		{`{"python": ["3.1", "3.2", "3.3", "3.4"], "branch": "x"}`, "4 values; at most 3"},
		{`{"python": ["3.10", "3.10"], "branch": "x"}`, `value "3.10" repeated`},
		{`{"python": ["3.10", "2.7"], "branch": "x"}`, `value 2: "2.7" does not match`},
		{`{"python": ["3.10"], "branch": "--force"}`, `var branch: "--force": use letters`},
		{`{"python": ["3.10"], "branch": "../etc"}`, `var branch: "../etc": use letters`},
		{`{"python": ["3.10"], "branch": "a b"}`, `var branch: "a b": use letters`},
		{`{"python": ["3.10"], "branch": "a\nb"}`, `use letters`},
		{`{"python": ["3.10"], "branch": "` + strings.Repeat("a", 129) + `"}`, "longer than 128 bytes"},
		{`{"python": ["3.10"], "branch": ["x"]}`, "var branch: want a string"},
		{strings.Repeat(" ", maxOutputBytes+1), "at most"},
	} {
		_, err := ParseOutputs(o, []byte(tc.in))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%.40q: %v", tc.in, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%.40q: error %v, want %q", tc.in, err, tc.err)
		}
	}
}

func mustPattern(s string) *regexp.Regexp { return compileWhole(s) }

func TestResolveParams(t *testing.T) {
	plans, err := LoadPlans("testdata/full/release.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := plans[0]
	for _, tc := range []struct {
		given map[string]string
		want  string
	}{
		{nil, "ref= upgrade=true"},
		{map[string]string{"upgrade": "false"}, "ref= upgrade=false"},
		{map[string]string{"ref": "v3-1-test"}, "ref=v3-1-test upgrade=true"},
		{map[string]string{"upgrade": "maybe"}, `plan release/main: param upgrade="maybe": want one of true, false`},
		{map[string]string{"ref": "a b"}, `plan release/main: param ref="a b": must match ^(?:([A-Za-z0-9._/-]+)?)$`},
		{map[string]string{"reff": "x"}, `plan release/main: unknown param "reff"; params: ref, upgrade`},
		{map[string]string{"ref": "a\x1bb"}, `control character`},
	} {
		got, err := p.ResolveParams(tc.given)
		var s string
		if err != nil {
			var pe *ParamError
			if !errors.As(err, &pe) {
				t.Errorf("%v: error %T is not a *ParamError", tc.given, err)
			}
			s = err.Error()
		} else {
			s = fmt.Sprintf("ref=%s upgrade=%s", got["ref"], got["upgrade"])
		}
		if !strings.Contains(s, tc.want) {
			t.Errorf("ResolveParams(%v) = %q, want %q", tc.given, s, tc.want)
		}
	}
}

package plan

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// hostileArgs are values that, handed to git or buildx unchecked, would run a command, write
// a local ref, or forge a log line.
var hostileArgs = []struct{ name, value, why string }{
	{"upload-pack", "--upload-pack=id > /tmp/x; git-upload-pack", `starts with "-"`},
	{"short option", "-oProxyCommand=id", `starts with "-"`},
	{"refspec", ":refs/heads/evil", `holds ":"`},
	{"refspec src:dst", "main:refs/heads/evil", `holds ":"`},
	{"forced refspec", "+main", `starts with "+"`},
	{"negative refspec", "^main", "one of ~^?*[\\"},
	{"newline", "main\nrefreshd: run succeeded", "control character"},
}

// argsPlan is a plan whose checkout ref and buildx context come from a param without a
// pattern (the README's own shape), with the given extra param lines.
func argsPlan(t *testing.T, ref, params string) string {
	t.Helper()
	return writePlan(t, t.TempDir(), "p.yaml", fmt.Sprintf(`plan: p
workdir: /srv/p
params:
  ref: { default: %q }
%sbuilders:
  - { name: b, driver: remote, nodes: [{ name: n0, endpoint: "tcp://127.0.0.1:1", platform: linux/amd64 }] }
steps:
  - id: checkout
    checkout: { repo: /srv/upstream.git, ref: "{{ .params.ref }}" }
  - id: cache
    needs: [checkout]
    buildx_cache: { builder: b, context: "{{ .params.ref }}", platforms: [linux/amd64], ref: registry.example/ci/x }
`, ref, params))
}

// TestParamBecomesNoOption: a run's param that git or buildx would read as an option or a
// refspec is refused when the params are resolved, before anything starts, naming the
// param, the field and its place; the README's pattern-less ref param keeps working for
// every ordinary ref.
func TestParamBecomesNoOption(t *testing.T) {
	p, err := LoadFile(argsPlan(t, "main", ""))
	if err != nil {
		t.Fatal(err)
	}
	for _, ok := range []string{"main", "v3-1-test", "refs/pull/12/head", "0123456789abcdef0123456789abcdef01234567"} {
		if _, err := p.ResolveParams(map[string]string{"ref": ok}); err != nil {
			t.Errorf("ref=%q refused: %v", ok, err)
		}
	}
	for _, h := range hostileArgs {
		t.Run(h.name, func(t *testing.T) {
			_, err := p.ResolveParams(map[string]string{"ref": h.value})
			var pe *ParamError
			if !errors.As(err, &pe) {
				t.Fatalf("ref=%q: %v, want a *ParamError", h.value, err)
			}
			msg := err.Error()
			if h.why == "control character" { // refused by every param's own rule first
				if !strings.Contains(msg, "control character") {
					t.Errorf("ref=%q: %s", h.value, msg)
				}
				return
			}
			for _, want := range []string{"p.yaml:9:", "checkout ref renders to", "(from param ref)", h.why} {
				if !strings.Contains(msg, want) {
					t.Errorf("ref=%q: error lacks %q:\n%s", h.value, want, msg)
				}
			}
			if strings.HasPrefix(h.value, "-") && !strings.Contains(msg, "buildx_cache context renders to") {
				t.Errorf("ref=%q: the buildx context it also reaches is not named:\n%s", h.value, msg)
			}
		})
	}
}

// TestArgsAtLoad: what the plan writes (a literal, a param's default, a value of its values
// list) is refused when the plan loads, naming its source.
func TestArgsAtLoad(t *testing.T) {
	tests := []struct {
		name, path string
		want       []string
	}{
		{"default", argsPlan(t, "--upload-pack=touch /tmp/x", ""),
			[]string{"p.yaml:9:", `checkout ref renders to "--upload-pack=touch /tmp/x" (from param ref)`}},
		{"values list of a param no argv names", argsPlan(t, "main", "  other: { default: a, values: [a, \":refs/heads/evil\"] }\n"),
			nil},
		{"literal", writePlan(t, t.TempDir(), "p.yaml", "plan: p\nworkdir: /srv/p\nsteps:\n  - id: c\n    checkout: { repo: \"ext::sh -c touch% /tmp/x\", ref: main }\n"),
			[]string{"p.yaml:5:", `checkout repo "ext::sh -c touch% /tmp/x": it names git's remote helper "ext"`}},
		{"literal host option", writePlan(t, t.TempDir(), "p.yaml", "plan: p\nworkdir: /srv/p\nsteps:\n  - id: c\n    checkout: { repo: \"ssh://-oProxyCommand=id/x\", ref: main }\n"),
			[]string{"p.yaml:5:", `its host "-oProxyCommand=id" starts with "-"`}},
		{"branch", writePlan(t, t.TempDir(), "p.yaml", "plan: p\nworkdir: /srv/p\nparams:\n  b: { default: x, values: [x, \"--force\"] }\nsteps:\n  - id: pub\n    publish_constraints: { repo: /srv/c.git, branch: \"{{ .params.b }}\", files: \"*.txt\" }\n"),
			[]string{"p.yaml:7:", `branch renders to "--force" with param b="--force", one of its values: it starts with "-"`}},
		{"values list reaches ref", writePlan(t, t.TempDir(), "p.yaml", "plan: p\nworkdir: /srv/p\nparams:\n  ref: { default: main, values: [main, \":refs/heads/evil\"] }\nsteps:\n  - id: c\n    checkout: { repo: /srv/u.git, ref: \"{{ .params.ref }}\" }\n"),
			[]string{"p.yaml:7:", `checkout ref renders to ":refs/heads/evil" with param ref=":refs/heads/evil", one of its values: it holds ":"`}},
		{"endpoint", writePlan(t, t.TempDir(), "p.yaml", "plan: p\nbuilders:\n  - { name: b, nodes: [{ name: n0, endpoint: \"--config=/tmp/x\", platform: linux/amd64 }] }\nsteps:\n  - id: s\n    run: [true]\n"),
			[]string{"p.yaml:3:", `endpoint "--config=/tmp/x": it starts with "-"`}},
		{"build arg name", writePlan(t, t.TempDir(), "p.yaml", "plan: p\nbuilders:\n  - { name: b, driver: remote, nodes: [{ name: n0, endpoint: \"tcp://h:1\", platform: linux/amd64 }] }\nsteps:\n  - id: s\n    buildx_cache: { builder: b, platforms: [linux/amd64], ref: r.example/x, build_args: { \"A=B\": c } }\n"),
			[]string{"p.yaml:6:", `build arg name "A=B"`}},
		{"skip_if branch", writePlan(t, t.TempDir(), "p.yaml", "plan: p\nskip_if:\n  - branch: { repo: /srv/c.git, branch: \"--all\", within: 1h }\nsteps:\n  - id: s\n    run: [true]\n"),
			[]string{"p.yaml:3:", `skip_if branch "--all": it starts with "-"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadFile(tt.path)
			if tt.want == nil { // a values list of a param no argv field names: nothing to refuse
				if err != nil {
					t.Fatalf("load: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("%s loads", filepath.Base(tt.path))
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestArgsFromTheTree: a value rendered at run time (a run-time var joined with the plan's
// text) is refused when the steps using it expand, naming the var and the step that read it.
func TestArgsFromTheTree(t *testing.T) {
	p, err := LoadFile(writePlan(t, t.TempDir(), "p.yaml", `plan: p
workdir: /srv/p
steps:
  - id: read
    run: [cat, refs.json]
    outputs: { vars: { branch: { type: string } } }
  - id: c
    needs: [read]
    checkout: { repo: /srv/u.git, ref: "-{{ .vars.branch }}" }
`))
	if err != nil {
		t.Fatal(err)
	}
	g, err := Expand(p)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := ParseOutputs(p.Steps[0].Outputs, []byte(`{"branch": "main"}`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.Extend("read", vals)
	for _, want := range []string{"p.yaml:9:", `checkout ref renders to "-main" (from var branch, a value from the tree of step read)`, `starts with "-"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Extend: %v, want it to name %q", err, want)
		}
	}
}

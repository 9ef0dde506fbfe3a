package plan

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestTagsConditionRefs(t *testing.T) {
	p, err := Parse("p.yaml", []byte(`plan: p
vars:
  python: ["3.11", "3.12"]
  platforms: [linux/amd64, linux/arm64]
skip_if:
  - tags:
      refs: ["reg/ci/python{{ .python }}:cache-{{ platformTag .platform }}", "reg/ci/base:{{ .plan }}"]
      matrix: { python: "{{ .vars.python }}", platform: "{{ .vars.platforms }}" }
      within: 12h
steps:
  - { id: a, run: ["true"] }
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"reg/ci/python3.11:cache-linux-amd64", "reg/ci/base:p", "reg/ci/python3.11:cache-linux-arm64",
		"reg/ci/python3.12:cache-linux-amd64", "reg/ci/python3.12:cache-linux-arm64",
	}
	if got := p.SkipIf[0].Tags.Refs; !slices.Equal(got, want) {
		t.Errorf("refs %q, want %q (each once, first axis slowest)", got, want)
	}
	if len(p.Warnings) != 0 {
		t.Errorf("warnings: %v", p.Warnings)
	}
}

// TestWarnNeverChecked: an image condition on a BuildKit cache tag can never be checked
// (no created time): the plan loads, with a warning at the ref that says what to use.
func TestWarnNeverChecked(t *testing.T) {
	for _, tc := range []struct {
		ref  string
		warn bool
	}{
		{"ghcr.io/apache/airflow/main/ci/python3.10:cache-linux-amd64", true},
		{"reg/ci:cache", true},
		{"reg/ci/python3.10:latest", false},
		{"reg/cache-images/python:3.10", false},
	} {
		p, err := Parse("p.yaml", []byte("plan: p\nskip_if:\n  - image: { ref: \""+tc.ref+"\", within: 12h }\nsteps:\n  - { id: a, run: [\"true\"] }\n"))
		if err != nil {
			t.Fatal(err)
		}
		if got := len(p.Warnings) > 0; got != tc.warn {
			t.Errorf("%s: warnings %v, want a warning: %v", tc.ref, p.Warnings, tc.warn)
			continue
		}
		if tc.warn {
			w := p.Warnings.Error()
			if !strings.HasPrefix(w, "p.yaml:3:19: skip_if image "+tc.ref) || !strings.Contains(w, "can never be checked") || !strings.Contains(w, "tags: {refs: ["+tc.ref+"], within: 12h}") {
				t.Errorf("warning %q", w)
			}
		}
	}
}

// TestTagsConditionFromRunValues: a tags condition over a var a step defines at run time is
// not ready until that step delivered; then its refs are rendered from the values, within
// the bound on watched refs.
func TestTagsConditionFromRunValues(t *testing.T) {
	p, err := Parse("late.yaml", []byte(`plan: late
vars: { platforms: [linux/amd64, linux/arm64] }
skip_if:
  - tags:
      refs: ["127.0.0.1:5000/{{ .plan }}/python{{ .python }}:cache-{{ platformTag .platform }}"]
      matrix: { python: "{{ .vars.python }}", platform: "{{ .vars.platforms }}" }
      within: 12h
steps:
  - id: versions
    run: [cat, versions.json]
    outputs: { vars: { python: { max_items: 1000 } } }
  - { id: build, needs: [versions], matrix: { python: "{{ .vars.python }}" }, run: [echo, "{{ .python }}"] }
`))
	if err != nil {
		t.Fatal(err)
	}
	c := p.SkipIf[0]
	if !slices.Equal(c.Tags.After, []string{"versions"}) || len(c.Tags.Refs) != 0 {
		t.Fatalf("condition after %v with refs %v; want after [versions], no refs before the run", c.Tags.After, c.Tags.Refs)
	}
	tests := []struct {
		name    string
		python  []string
		want    []string
		wantErr string // and the place it names
		wantAt  string
	}{
		{"two versions", []string{"3.12", "3.13"}, []string{
			"127.0.0.1:5000/late/python3.12:cache-linux-amd64", "127.0.0.1:5000/late/python3.12:cache-linux-arm64",
			"127.0.0.1:5000/late/python3.13:cache-linux-amd64", "127.0.0.1:5000/late/python3.13:cache-linux-arm64",
		}, "", ""},
		{"more refs than the bound", manyVersions(501), nil, "skip_if tags watches more than 1000 refs", "late.yaml:4:5"},
		{"a value that makes no image ref", []string{"3.12", "UPPER"}, nil, `"127.0.0.1:5000/late/pythonUPPER:cache-linux-amd64", which is not an image reference`, "late.yaml:5:14"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := Expand(p)
			if err != nil {
				t.Fatal(err)
			}
			if refs, ready, err := g.SkipTagRefs(c); ready || refs != nil || err != nil {
				t.Fatalf("before versions delivered: %v, ready %v, %v", refs, ready, err)
			}
			if _, err := g.Extend("versions", map[string]Var{"python": {List: tt.python, IsList: true}}); err != nil {
				t.Fatal(err)
			}
			refs, ready, err := g.SkipTagRefs(c)
			switch {
			case !ready:
				t.Fatal("not ready after versions delivered")
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), tt.wantAt) {
					t.Errorf("err %v; want %q at %s", err, tt.wantErr, tt.wantAt)
				}
			case err != nil || !slices.Equal(refs, tt.want):
				t.Errorf("refs %q, %v; want %q", refs, err, tt.want)
			}
		})
	}
}

func manyVersions(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "3." + strconv.Itoa(i)
	}
	return out
}

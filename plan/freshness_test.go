package plan

import (
	"slices"
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

package statedir

import (
	"strings"
	"testing"
)

func TestSafeName(t *testing.T) {
	keep := []string{"build", "build-ci.images_3.11", "demo-20261130T220000.000Z-ab12"}
	for _, s := range keep {
		if got := SafeName(s); got != s {
			t.Errorf("SafeName(%q) = %q, want it kept", s, got)
		}
	}
	// Names that one character map would merge, and names that are not safe components.
	distinct := []string{"a b", "a_b", "a/b", "a\\b", "a\x00b", "", ".", "..", "../x",
		"build[python=3.11]", "build[python=3_11]", strings.Repeat("x", 300), strings.Repeat("x", 301)}
	seen := map[string]string{}
	for _, s := range distinct {
		got := SafeName(s)
		if prev, dup := seen[got]; dup {
			t.Errorf("SafeName(%q) = SafeName(%q) = %q", s, prev, got)
		}
		seen[got] = s
		if got == "." || got == ".." || got == "" || strings.ContainsAny(got, "/\x00") || len(got) > 230 {
			t.Errorf("SafeName(%q) = %q is not a safe file name component", s, got)
		}
	}
}

package plan

import (
	"math/rand/v2"
	"regexp"
	"testing"
)

// TestShellRefsMatchRegexp holds shellRefs to the rule it replaced, a regexp per name
// (`\$(NAME\b|\{NAME\b)`), on random strings built from the bytes that matter.
func TestShellRefsMatchRegexp(t *testing.T) {
	const alphabet = "${}_AB1a -\"'\\"
	names := []string{"A", "AB", "A1", "_", "a", "B_1", "AB1a"}
	res := make(map[string]*regexp.Regexp, len(names))
	for _, n := range names {
		res[n] = regexp.MustCompile(`\$(` + n + `\b|\{` + n + `\b)`)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := make([]byte, r.IntN(12))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		text := string(b)
		refs := shellRefs(text)
		for _, n := range names {
			if want := res[n].MatchString(text); refs[n] != want {
				t.Fatalf("shellRefs(%q)[%q] = %v, the regexp says %v", text, n, refs[n], want)
			}
		}
	}
}

package plan

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Messages that tell the user what to write say it as "write SNIPPET", SNIPPET being YAML
// that, put where the message points, fixes the problem as it stands: KEY: VALUE pairs
// (flow style, comma-separated) set in the mapping there, or a value replacing the one
// there. TestSuggestionsLoad writes each into the plan and loads it. These helpers build
// the snippets.

// plainScalar is text YAML reads as the same string when written unquoted.
var plainScalar = regexp.MustCompile(`^[A-Za-z_/][A-Za-z0-9_./-]*$`)

// yamlText writes s as a YAML scalar that reads back as the string s.
func yamlText(s string) string {
	switch strings.ToLower(s) {
	case "true", "false", "null", "yes", "no", "on", "off":
		return strconv.Quote(s)
	}
	if plainScalar.MatchString(s) {
		return s
	}
	return strconv.Quote(s)
}

// flowKey writes "KEY: [a, b]".
func flowKey(key string, elems []string) string {
	quoted := make([]string, len(elems))
	for i, e := range elems {
		quoted[i] = yamlText(e)
	}
	return key + ": [" + strings.Join(quoted, ", ") + "]"
}

// needsWith writes the needs: of s with id added.
func needsWith(s *Step, id string) string {
	return flowKey("needs", append(slices.Clone(s.Needs), id))
}

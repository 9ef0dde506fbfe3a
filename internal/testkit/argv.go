package testkit

import (
	"fmt"
	"slices"
	"strings"
)

// EndsOptions checks the shape every argv refreshd builds from values must have: argv[0] the
// program, then only fixed words (subcommands and flags: a word "--flag=" stands for its flag
// with the value bound, "--flag=VALUE", which no program splits), then marker
// (--end-of-options, --), then exactly operands. A value anywhere else could be read as an
// option; the error says where. marker "" means the argv has no operands.
func EndsOptions(argv, fixed []string, marker string, operands ...string) error {
	if len(argv) == 0 {
		return fmt.Errorf("empty argv")
	}
	for i, a := range argv[1:] {
		if marker != "" && a == marker {
			if rest := argv[i+2:]; !slices.Equal(rest, operands) {
				return fmt.Errorf("%q: after %s comes %q, want exactly %q", argv, marker, rest, operands)
			}
			return nil
		}
		if !slices.ContainsFunc(fixed, func(f string) bool { return a == f || strings.HasSuffix(f, "=") && strings.HasPrefix(a, f) }) {
			return fmt.Errorf("%q: element %d (%q) is in option position but is none of the fixed words %q", argv, i+1, a, fixed)
		}
	}
	if marker != "" {
		return fmt.Errorf("%q: no %s before the operands %q", argv, marker, operands)
	}
	return nil
}

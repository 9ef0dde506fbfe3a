package main

import (
	"bytes"
	"strings"
	"testing"
)

// Every subcommand answers --help with its usage on stderr and exit 0, and an unknown flag
// with exit 2: operators and scripts rely on both.
func TestHelpOfEveryCommand(t *testing.T) {
	for _, c := range commands() {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := dispatch([]string{c.name, "--help"}, &out, &errb); code != 0 {
				t.Fatalf("%s --help: exit %d, stderr:\n%s", c.name, code, errb.String())
			}
			if !strings.Contains(errb.String(), "Usage: refreshd "+c.name) {
				t.Errorf("%s --help does not start with a usage line:\n%s", c.name, errb.String())
			}
			errb.Reset()
			if code := dispatch([]string{c.name, "--no-such-flag"}, &out, &errb); code != 2 {
				t.Errorf("%s --no-such-flag: exit %d, want 2", c.name, code)
			}
		})
	}
}

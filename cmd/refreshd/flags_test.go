package main

import (
	"io"
	"slices"
	"testing"
)

func TestParseFlagsInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		wantOut  string
		wantArgs []string
		wantCode int
		wantDone bool
	}{
		{[]string{"RUN"}, "text", []string{"RUN"}, 0, false},
		{[]string{"-o", "json", "RUN", "STEP"}, "json", []string{"RUN", "STEP"}, 0, false},
		{[]string{"RUN", "-o", "json"}, "json", []string{"RUN"}, 0, false},
		{[]string{"RUN", "-o", "json", "STEP"}, "json", []string{"RUN", "STEP"}, 0, false},
		{[]string{"--", "-o", "json"}, "text", []string{"-o", "json"}, 0, false},
		{[]string{"RUN", "--", "-x"}, "text", []string{"RUN", "-x"}, 0, false},
		{[]string{"RUN", "--help"}, "text", nil, 0, true},
		{[]string{"RUN", "--nope"}, "text", nil, 2, true},
	} {
		fs := newFlagSet("t", "Usage: t", io.Discard)
		out := outputFlag(fs)
		code, done := parseFlags(fs, tc.args)
		if code != tc.wantCode || done != tc.wantDone {
			t.Errorf("%q: code %d done %v, want %d %v", tc.args, code, done, tc.wantCode, tc.wantDone)
			continue
		}
		if done {
			continue
		}
		if *out != tc.wantOut || !slices.Equal(fs.Args(), tc.wantArgs) {
			t.Errorf("%q: -o %q args %q, want %q %q", tc.args, *out, fs.Args(), tc.wantOut, tc.wantArgs)
		}
	}
}

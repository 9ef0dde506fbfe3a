package main

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/refreshd/refreshd/daemon/control"
)

func TestParseFlagsInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		wantOut  string
		wantArgs []string
		wantCode int // exit code of the error; 0 with no error
	}{
		{[]string{"RUN"}, "text", []string{"RUN"}, 0},
		{[]string{"-o", "json", "RUN", "STEP"}, "json", []string{"RUN", "STEP"}, 0},
		{[]string{"RUN", "-o", "json"}, "json", []string{"RUN"}, 0},
		{[]string{"RUN", "-o", "json", "STEP"}, "json", []string{"RUN", "STEP"}, 0},
		{[]string{"--", "-o", "json"}, "text", []string{"-o", "json"}, 0},
		{[]string{"RUN", "--", "-x"}, "text", []string{"RUN", "-x"}, 0},
		{[]string{"RUN", "--help"}, "text", nil, 0},
		{[]string{"RUN", "--nope"}, "text", nil, 2},
		{[]string{"RUN", "-o", "yaml"}, "text", nil, 2},
		{[]string{}, "text", nil, 2},
		{[]string{"RUN", "STEP", "EXTRA"}, "text", nil, 2},
	} {
		fs := newFlagSet("t", "RUN [STEP]", "")
		out := outputFlag(fs)
		err := parseFlags(fs, tc.args)
		var outb, errb bytes.Buffer
		if code := exitCode(&outb, &errb, err); code != tc.wantCode {
			t.Errorf("%q: exit %d (%v), want %d", tc.args, code, err, tc.wantCode)
			continue
		}
		if err != nil {
			continue
		}
		if *out != tc.wantOut || !slices.Equal(fs.Args(), tc.wantArgs) {
			t.Errorf("%q: -o %q args %q, want %q %q", tc.args, *out, fs.Args(), tc.wantOut, tc.wantArgs)
		}
	}
}

// TestExitCode: every command's error is printed in one place, with one "refreshd: " prefix
// on each line, and mapped to one exit code.
func TestExitCode(t *testing.T) {
	fs := newFlagSet("t", "FILE", "")
	for _, tc := range []struct {
		name   string
		err    error
		code   int
		stdout string
		stderr string
	}{
		{"success", nil, 0, "", ""},
		{"failure", errors.New("read store: boom"), 1, "", "refreshd: read store: boom\n"},
		{"several lines", errors.New("a.yaml:1:2: x\na.yaml:3:4: y"), 1, "", "refreshd: a.yaml:1:2: x\nrefreshd: a.yaml:3:4: y\n"},
		{"usage with the usage text", usage(fs, "t needs a FILE"), 2, "", "refreshd: t needs a FILE\n\nUsage: refreshd t FILE\n"},
		{"bad value", usageErrorf("--x %q: want y", "z"), 2, "", "refreshd: --x \"z\": want y\n"},
		{"help on stdout", &helpRequest{fs}, 0, "Usage: refreshd t FILE\n", ""},
		{"status already printed", exitWith(130), 130, "", ""},
		{"code and message", &exitError{code: 2, err: errors.New("plan invalid")}, 2, "", "refreshd: plan invalid\n"},
		{"no daemon", control.Errorf(control.ErrUnreachable, "%w on /x.sock", control.ErrNoDaemon), 3, "", "refreshd: no daemon listening on /x.sock\n"},
		{"refused param", fmt.Errorf("trigger: %w", &control.APIError{Code: 400, Message: "param nope: not declared"}), 2, "", "refreshd: trigger: param nope: not declared\n"},
		{"no such plan", &control.APIError{Code: 404, Message: `no such plan: "x"`}, 2, "", "refreshd: no such plan: \"x\"\n"},
		{"already running", &control.APIError{Code: 409, Message: "plan is already running"}, 4, "", "refreshd: plan is already running\n"},
		{"stopping", &control.APIError{Code: 503, Message: "scheduler stopped"}, 3, "", "refreshd: scheduler stopped\n"},
		{"daemon failed", &control.APIError{Code: 500, Message: "read run: disk"}, 1, "", "refreshd: read run: disk\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var outb, errb bytes.Buffer
			if code := exitCode(&outb, &errb, tc.err); code != tc.code || errb.String() != tc.stderr || outb.String() != tc.stdout {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, outb.String(), errb.String(), tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}

// TestFlagsAfterArguments: daemon and run --local parse flags like every other command,
// after positional arguments too, and report a bad one with the usage and exit 2.
func TestFlagsAfterArguments(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		// --dry-run after the file is parsed (so the missing file is the error, exit 2).
		{[]string{"run", "--local", "testdata/no-such-plan.yaml", "--dry-run", "--kill-grace", "5s"}, 2, "no-such-plan.yaml"},
		{[]string{"run", "--local", "testdata/x.yaml", "--kill-grace", "-1s"}, 2, "refreshd: --kill-grace -1s: must not be negative"},
		{[]string{"run", "--local", "testdata/x.yaml", "--no-such-flag"}, 2, "refreshd: flag provided but not defined: -no-such-flag"},
		{[]string{"daemon", "--plans", "/nonexistent", "extra", "--kill-grace", "-1s"}, 2, "refreshd: daemon takes no arguments; got \"extra\""},
		{[]string{"daemon", "--log-level", "loud"}, 2, "refreshd: --log-level \"loud\": want debug, info, warn or error"},
		{[]string{"daemon", "--watch-tags", "10s"}, 2, "refreshd: --watch-tags 10s: want 0 (off) or at least 1m"},
		{[]string{"plan"}, 2, "refreshd: plan needs FILE"},
		{[]string{"nope"}, 2, "refreshd: unknown command \"nope\""},
	} {
		var out, errb bytes.Buffer
		code := dispatch(tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(errb.String(), tc.stderr) {
			t.Errorf("%q: exit %d, stderr:\n%s\nwant %d and %q", tc.args, code, errb.String(), tc.code, tc.stderr)
		}
		if n := strings.Count(errb.String(), "refreshd: refreshd"); n > 0 {
			t.Errorf("%q: doubled prefix:\n%s", tc.args, errb.String())
		}
	}
}

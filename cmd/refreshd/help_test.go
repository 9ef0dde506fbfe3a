package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// One CLI shape: `CMD --help` and `help CMD` print the command's usage on stdout and exit
// 0; a bad flag or an extra argument exits 2 with the usage on stderr; the synopsis names
// every flag the flag list does, written the same way (--name, -o).
func TestHelpOfEveryCommand(t *testing.T) {
	flagLine := regexp.MustCompile(`(?m)^  (--?[a-z][a-z0-9-]*)`)
	for _, c := range commands() {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := dispatch([]string{c.name, "--help"}, &out, &errb); code != 0 || errb.Len() != 0 {
				t.Fatalf("%s --help: exit %d, stderr:\n%s", c.name, code, errb.String())
			}
			help := out.String()
			usageLine, _, _ := strings.Cut(help, "\n")
			if !strings.HasPrefix(usageLine, "Usage: refreshd "+c.name) {
				t.Errorf("%s --help does not start with its usage line:\n%s", c.name, help)
			}
			for _, m := range flagLine.FindAllStringSubmatch(help, -1) {
				if !strings.Contains(usageLine, "["+m[1]+" ") && !strings.Contains(usageLine, "["+m[1]+"]") {
					t.Errorf("%s: the synopsis omits %s:\n%s", c.name, m[1], usageLine)
				}
			}
			if strings.Contains(help, "\n  -"+"-") == false && strings.Count(help, "\n  -") > 1 {
				t.Errorf("%s: flags written -name, not --name:\n%s", c.name, help)
			}
			out.Reset()
			if code := dispatch([]string{"help", c.name}, &out, &errb); code != 0 || out.String() != help {
				t.Errorf("help %s: exit %d, stdout differs from %s --help:\n%s", c.name, code, c.name, out.String())
			}
			errb.Reset()
			if code := dispatch([]string{c.name, "--no-such-flag"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "Usage: refreshd "+c.name) {
				t.Errorf("%s --no-such-flag: exit %d, stderr:\n%s", c.name, code, errb.String())
			}
		})
	}
}

func TestTopLevelHelp(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		code       int
		onStdout   bool
		wantStderr string
	}{
		{nil, 2, false, "Usage: refreshd COMMAND"},
		{[]string{"--help"}, 0, true, ""},
		{[]string{"-h"}, 0, true, ""},
		{[]string{"help"}, 0, true, ""},
		{[]string{"help", "run", "extra"}, 2, false, "help takes at most one COMMAND"},
		{[]string{"nope"}, 2, false, `unknown command "nope"`},
	} {
		var out, errb bytes.Buffer
		code := dispatch(tc.args, &out, &errb)
		where := errb.String()
		if tc.onStdout {
			where = out.String()
		}
		if code != tc.code || !strings.Contains(where, "Usage: refreshd COMMAND") && tc.wantStderr == "" || !strings.Contains(errb.String(), tc.wantStderr) {
			t.Errorf("%q: exit %d\nstdout:\n%s\nstderr:\n%s", tc.args, code, out.String(), errb.String())
		}
		if tc.onStdout && errb.Len() > 0 || !tc.onStdout && out.Len() > 0 {
			t.Errorf("%q: usage on the wrong stream\nstdout:\n%s\nstderr:\n%s", tc.args, out.String(), errb.String())
		}
	}
}

// One exit code per kind of failure across commands (docs/operations.md's table): every command
// refuses extra arguments with 2, every plan-reading command a missing or invalid plan with
// 2, every command that talks to the daemon a named socket nobody listens on with 3.
func TestExitCodesAcrossCommands(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("plan: bad\nsteps: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.yaml")
	nosock := filepath.Join(dir, "nobody.sock")
	t.Setenv("REFRESHD_SOCKET", "")
	tests := []struct {
		args []string
		code int
	}{
		// usage: extra arguments
		{[]string{"status", "extra"}, 2},
		{[]string{"reload", "extra"}, 2},
		{[]string{"version", "extra"}, 2},
		{[]string{"schema", "extra"}, 2},
		{[]string{"daemon", "extra"}, 2},
		{[]string{"cancel", "r1", "r2"}, 2},
		{[]string{"history", "p1", "p2"}, 2},
		{[]string{"logs", "r", "s", "extra"}, 2},
		{[]string{"plan", bad, "extra"}, 2},
		{[]string{"run", "p", "extra"}, 2},
		{[]string{"run", "--local", bad, "extra"}, 2},
		// usage: missing arguments
		{[]string{"cancel"}, 2},
		{[]string{"logs"}, 2},
		{[]string{"validate"}, 2},
		{[]string{"run"}, 2},
		// invalid: a plan file missing or invalid
		{[]string{"validate", missing}, 2},
		{[]string{"validate", bad}, 2},
		{[]string{"plan", missing}, 2},
		{[]string{"plan", bad}, 2},
		{[]string{"run", "--local", "--state", dir, missing}, 2},
		{[]string{"run", "--local", "--state", dir, bad}, 2},
		// unreachable: a named socket nobody listens on
		{[]string{"status", "--socket", nosock}, 3},
		{[]string{"reload", "--socket", nosock}, 3},
		{[]string{"cancel", "--socket", nosock, "r"}, 3},
		{[]string{"run", "--socket", nosock, "p"}, 3},
		{[]string{"history", "--socket", nosock}, 3},
		{[]string{"logs", "--socket", nosock, "r"}, 3},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		if code := dispatch(tt.args, &out, &errb); code != tt.code {
			t.Errorf("%q: exit %d, want %d\n%s%s", tt.args, code, tt.code, out.String(), errb.String())
		}
		covered[tt.args[0]] = true
	}
	for _, c := range commands() {
		if !covered[c.name] {
			t.Errorf("command %s has no exit code case", c.name)
		}
	}
}

// history and logs with no daemon on the default socket say which store they read; with
// a socket named by --socket, no daemon there is an error, never a read of another store.
func TestHistorySaysWhatItReads(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("REFRESHD_SOCKET", "")
	var out, errb bytes.Buffer
	code := dispatch([]string{"history", "--socket", filepath.Join(dir, "nobody.sock"), "--state", dir}, &out, &errb)
	if code != 3 || !strings.Contains(errb.String(), "no daemon listening on "+filepath.Join(dir, "nobody.sock")) || out.Len() > 0 {
		t.Errorf("history --socket NOBODY: exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
}

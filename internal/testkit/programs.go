package testkit

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// RequireStackEnv is the environment variable CI sets so that a test which cannot run for
// want of a program fails instead of skipping: a CI run never passes by skipping.
const RequireStackEnv = "REFRESHD_REQUIRE_STACK"

// Need returns the paths of the named programs on PATH, or ends the test when it cannot use
// them: under -short it skips (the fast tier runs no program from outside the tree); when
// one is missing it skips with the reason, or fails when REFRESHD_REQUIRE_STACK is set.
// The POSIX shell and its utilities (sh, sleep, true) count as part of the system.
func Need(t testing.TB, names ...string) []string {
	t.Helper()
	SkipShort(t, "needs "+strings.Join(names, ", "))
	paths, missing := lookPaths(names)
	if len(missing) > 0 {
		SkipOrFail(t, "missing: "+strings.Join(missing, ", ")+" (run scripts/install-stack.sh)")
	}
	return paths
}

// Optional is Need for the part of a test that needs one program: it returns the program's
// path, or "" (with a log line saying what was left out) where Need would skip, so the rest
// of the test still runs. It fails the test as Need does.
func Optional(t testing.TB, name, part string) string {
	t.Helper()
	if testing.Short() {
		t.Logf("left out under -short: %s (needs %s)", part, name)
		return ""
	}
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv(RequireStackEnv) != "" {
			t.Fatalf("%s is set: %s missing for %s", RequireStackEnv, name, part)
		}
		t.Logf("left out: %s (%s missing; %s=1 makes this fail)", part, name, RequireStackEnv)
		return ""
	}
	return path
}

// SkipShort skips the test under -short, saying what it needs that the fast tier leaves out.
func SkipShort(t testing.TB, why string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("-short: %s", why)
	}
}

// SkipOrFail ends a test that cannot run for reason (a missing program, not running as
// root): it fails when REFRESHD_REQUIRE_STACK is set and skips otherwise.
func SkipOrFail(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv(RequireStackEnv) != "" {
		t.Fatalf("%s is set: %s", RequireStackEnv, reason)
	}
	t.Skip(reason)
}

func lookPaths(names []string) (paths, missing []string) {
	for _, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			missing = append(missing, n)
			continue
		}
		paths = append(paths, p)
	}
	return paths, missing
}

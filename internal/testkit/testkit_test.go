package testkit

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// helperEnv names the program TestNeedHelper asks Need for; the test binary re-runs itself
// with it set, so the outcome (pass, skip, fail) is read from a real test run.
const helperEnv = "TESTKIT_NEED_PROGRAM"

func TestNeedHelper(t *testing.T) {
	name := os.Getenv(helperEnv)
	if name == "" {
		t.Skip("helper for TestNeedRule")
	}
	Need(t, name)
	t.Log("ran")
}

func TestNeedRule(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		program string
		short   bool
		require bool
		want    string // the helper's verdict line
	}{
		{"present", "sh", false, false, "--- PASS"},
		{"present, -short", "sh", true, false, "--- SKIP"},
		{"missing", "refreshd-no-such-program", false, false, "--- SKIP"},
		{"missing, required", "refreshd-no-such-program", false, true, "--- FAIL"},
		{"missing, required, -short", "refreshd-no-such-program", true, true, "--- SKIP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := []string{"-test.run=^TestNeedHelper$", "-test.v"}
			if tt.short {
				args = append(args, "-test.short")
			}
			cmd := exec.Command(os.Args[0], args...)
			cmd.Env = append(os.Environ(), helperEnv+"="+tt.program, RequireStackEnv+"=")
			if tt.require {
				cmd.Env = append(cmd.Env, RequireStackEnv+"=1")
			}
			out, _ := cmd.CombinedOutput()
			if !strings.Contains(string(out), tt.want+": TestNeedHelper") {
				t.Errorf("want %s; the helper said:\n%s", tt.want, out)
			}
			if tt.want != "--- PASS" && strings.Contains(string(out), "ran") {
				t.Errorf("the test went on after Need:\n%s", out)
			}
		})
	}
}

func TestNotifySocketCollectsDatagrams(t *testing.T) {
	t.Parallel()
	n := NotifySocket(t)
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.Path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, msg := range []string{"READY=1\nSTATUS=up", "STOPPING=1"} {
		if _, err := conn.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	WaitFor(t, "two datagrams", 5*time.Second, func() bool { return len(n.Messages()) == 2 })
	if got := n.Messages(); got[0] != "READY=1\nSTATUS=up" || got[1] != "STOPPING=1" {
		t.Errorf("messages %q", got)
	}
	// Sync returns every datagram sent before it, with no wait in the test: the last of
	// many sent at once is among them, and Sync's own marker is not.
	for round := 1; round <= 3; round++ {
		for i := range 100 {
			if _, err := conn.Write([]byte(fmt.Sprintf("STATUS=%d/%d", round, i))); err != nil {
				t.Fatal(err)
			}
		}
		got := n.Sync(t)
		if len(got) != 2+100*round || got[len(got)-1] != fmt.Sprintf("STATUS=%d/99", round) {
			t.Fatalf("round %d: Sync returned %d messages, the last %q; want %d ending with STATUS=%d/99", round, len(got), got[len(got)-1], 2+100*round, round)
		}
	}
}

func TestGoldenMatches(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "x.golden")
	if err := os.WriteFile(path, []byte("same\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	Golden(t, path, "same\n")
}

// goldenEnv names the golden file TestGoldenHelper compares "new\n" with.
const goldenEnv = "TESTKIT_GOLDEN_FILE"

func TestGoldenHelper(t *testing.T) {
	path := os.Getenv(goldenEnv)
	if path == "" {
		t.Skip("helper for TestGoldenDiffersAndUpdate")
	}
	Golden(t, path, "new\n")
}

// A golden file that differs fails the test and names the file; -update rewrites it, and
// then it matches.
func TestGoldenDiffersAndUpdate(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "x.golden")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestGoldenHelper$", "-test.v"}, args...)...)
		cmd.Env = append(os.Environ(), goldenEnv+"="+path)
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	if out := run(); !strings.Contains(out, "--- FAIL: TestGoldenHelper") || !strings.Contains(out, path+" differs") {
		t.Errorf("a differing golden file did not fail naming it:\n%s", out)
	}
	if out := run("-update"); !strings.Contains(out, "--- PASS: TestGoldenHelper") {
		t.Errorf("-update:\n%s", out)
	}
	if b, _ := os.ReadFile(path); string(b) != "new\n" {
		t.Errorf("after -update the file holds %q", b)
	}
	if out := run(); !strings.Contains(out, "--- PASS: TestGoldenHelper") {
		t.Errorf("after -update:\n%s", out)
	}
}

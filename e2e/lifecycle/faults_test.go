package lifecycle

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/refreshd/refreshd/internal/testkit"
)

// TestCorruptStoreDoesNotCrashLoop garbles the history store of a stopped daemon, then:
// `refreshd history --state` on it prints an error (no panic, exit 1), and the daemon
// started on it comes up (under Restart=on-failure a panic would be a crash loop), keeps
// the damaged file aside, says so in status and as a metric, and records new runs.
func TestCorruptStoreDoesNotCrashLoop(t *testing.T) {
	testkit.SkipShort(t, "starts the refreshd binary")
	t.Parallel()
	e := newEnv(t)
	e.writePlan("quick", "plan: quick\nsteps:\n  - id: say\n    run: [\"true\"]\n")
	d := e.start(nil)
	if out, errOut, code := e.cli("run", "--wait", "quick"); code != 0 {
		t.Fatalf("run --wait quick: exit %d\n%s%s", code, out, errOut)
	}
	d.Stop(syscall.SIGTERM, 10*time.Second)

	db := filepath.Join(e.state, "history.db")
	f, err := os.OpenFile(db, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Garbage over everything after the two meta pages: the root bucket's pages included.
	junk := make([]byte, 64<<10)
	for i := range junk {
		junk[i] = byte(i*7 + 13)
	}
	if _, err := f.WriteAt(junk, int64(2*os.Getpagesize())); err != nil {
		t.Fatal(err)
	}
	f.Close()

	out, errOut, code := e.cli("history", "--state", e.state)
	if code != 1 || !strings.Contains(errOut, "corrupt") || strings.Contains(errOut, "panic") {
		t.Errorf("history --state on a corrupt store: exit %d\n%s%s", code, out, errOut)
	}

	addr := testkit.FreeAddr(t)
	e.start(nil, "--metrics-addr", addr)
	out, errOut, code = e.cli("status")
	if !strings.Contains(out, "History store was corrupt") || !strings.Contains(out, "history.db.corrupt-") {
		t.Errorf("status does not report the recovery (exit %d):\n%s%s", code, out, errOut)
	}
	moved, _ := filepath.Glob(db + ".corrupt-*")
	if len(moved) != 1 {
		t.Errorf("corrupt store kept as %v, want one file", moved)
	}
	if !regexp.MustCompile(`(?m)^refreshd_history_store_recovered_timestamp_seconds [1-9]`).MatchString(scrape(t, addr)) {
		t.Error("no recovery metric")
	}
	if out, errOut, code := e.cli("run", "--wait", "quick"); code != 0 {
		t.Fatalf("run after recovery: exit %d\n%s%s", code, out, errOut)
	}
	if runs := e.runs("quick"); len(runs) != 1 {
		t.Errorf("%d runs after recovery, want the new one", len(runs))
	}
}

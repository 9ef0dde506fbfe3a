package executor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/testkit"
)

// TestFullDiskFailsTheAttempt puts the attempt logs on a 256 KiB tmpfs and runs a step that
// prints a megabyte: the attempt, and so the run, fail with an error naming the log file and
// the free space, instead of succeeding with the log cut.
func TestFullDiskFailsTheAttempt(t *testing.T) {
	testkit.SkipShort(t, "mounts a tmpfs")
	e := newEngineT(t, 0)
	logs := filepath.Join(e.dir, "logs")
	if err := os.MkdirAll(logs, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", logs, "tmpfs", 0, "size=256k"); err != nil {
		testkit.SkipOrFail(t, "mount a tmpfs (needs root): "+err.Error())
	}
	t.Cleanup(func() { syscall.Unmount(logs, syscall.MNT_DETACH) })

	flood := step("flood", "sh", "-c", `i=0; while [ $i -lt 10000 ]; do echo "line $i of a step that fills the disk with its output.........................................."; i=$((i+1)); done`)
	after := needs(step("after", "true"), "flood")
	r := e.run(t, context.Background(), graph(nil, flood, after))
	if r.Status != history.StatusFailed {
		t.Errorf("run %s, want failed", r.Status)
	}
	st := stepOf(t, r, "flood")
	if st.Status != history.StatusFailed || len(st.Attempts) == 0 {
		t.Fatalf("flood step %s with %d attempts, want failed", st.Status, len(st.Attempts))
	}
	msg := st.Attempts[len(st.Attempts)-1].Error
	for _, want := range []string{"write attempt log", logs, "no space left on device", "bytes free"} {
		if !strings.Contains(msg, want) {
			t.Errorf("attempt error %q does not say %q", msg, want)
		}
	}
	if got := stepOf(t, r, "after"); got.Status != history.StatusSkipped {
		t.Errorf("dependent step %s, want skipped", got.Status)
	}
}

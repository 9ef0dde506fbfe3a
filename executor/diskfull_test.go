package executor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/testkit"
	"github.com/refreshd/refreshd/statedir"
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

// TestUnrecordableEndKeptInOutcome closes the store while a run goes on, so that the run's
// end cannot be recorded: the engine keeps it in the run's outcome file, and the recovery at
// the next start records the run as it really ended, not as a crash.
func TestUnrecordableEndKeptInOutcome(t *testing.T) {
	e := newEngineT(t, 0)
	started := filepath.Join(e.dir, "started")
	s := step("work", "sh", "-c", "touch "+started+"; sleep 0.5")
	go func() {
		testkit.WaitFor(t, "the step to start", 10*time.Second, func() bool { _, err := os.Stat(started); return err == nil })
		e.store.Close()
	}()
	r, err := e.Run(context.Background(), graph(nil, s), RunSpec{Trigger: history.TriggerManual})
	if err == nil || !strings.Contains(err.Error(), "record the end of run") {
		t.Fatalf("Run error = %v, want the store's failure", err)
	}
	if r.Status != history.StatusSucceeded {
		t.Fatalf("run %s, want succeeded", r.Status)
	}

	store, err := history.Open(filepath.Join(e.dir, "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if got, _ := store.Run(r.ID); got == nil || got.Status != history.StatusRunning {
		t.Fatalf("stored before recovery: %+v, want running (the end was not recorded)", got)
	}
	ids, err := statedir.Dir{Root: e.dir}.Recover(context.Background(), store, statedir.Options{})
	if err != nil || len(ids) != 0 {
		t.Fatalf("Recover = %v, %v; want no run left to interrupt", ids, err)
	}
	got, err := store.Run(r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != history.StatusSucceeded || !strings.Contains(got.Reason, "outcome.json") || got.End.IsZero() {
		t.Errorf("after recovery: %s %q, want succeeded with a note naming the outcome file", got.Status, got.Reason)
	}
}

package lifecycle

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/testkit"
)

// TestCleanupStepRunsOnDaemonStop: systemctl stop (SIGTERM to the daemon) in the middle of
// a build still runs the plan's when: always step (stop the remote ARM machine) before the
// daemon exits, within the stop budget; the run is recorded interrupted, the cleanup step
// succeeded with what it ran after, and the step that needed the build never started.
func TestCleanupStepRunsOnDaemonStop(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	started, stopped := filepath.Join(e.dir, "started"), filepath.Join(e.dir, "stopped")
	e.writePlan("arm", fmt.Sprintf(`plan: arm
kill_grace: 1s
steps:
  - id: build
    run: [sh, -c, "touch %s; sleep 60"]
  - id: publish
    needs: [build]
    run: ["true"]
  - id: stop-arm-node
    when: always
    timeout: 10s
    run: [sh, -c, "sleep 0.5; touch %s"]
`, started, stopped))
	d := e.start(nil, "--stop-timeout", "20s")
	out, _, code := e.cli("run", "arm")
	if code != 0 {
		t.Fatalf("run arm: exit %d", code)
	}
	runID := strings.TrimSpace(out)
	testkit.WaitFor(t, "the build to start", 20*time.Second, func() bool {
		_, err := os.Stat(started)
		return err == nil
	})
	took := d.Stop(syscall.SIGTERM, 25*time.Second)
	if d.Err() != nil {
		t.Errorf("daemon exit: %v, want 0", d.Err())
	}
	if _, err := os.Stat(stopped); err != nil {
		t.Errorf("the always step did not run before the daemon exited: %v", err)
	}
	runs := e.storeRuns("arm")
	if len(runs) != 1 || runs[0].ID != runID || runs[0].Status != history.StatusInterrupted {
		t.Fatalf("runs after SIGTERM: %+v, want %s interrupted", runs, runID)
	}
	for _, s := range runs[0].Steps {
		switch s.Instance {
		case "stop-arm-node":
			if s.Status != history.StatusSucceeded || s.When != "always" || !strings.HasPrefix(s.After, "the run ended: ") {
				t.Errorf("stop-arm-node: %s when=%q after=%q, want succeeded after the run ended", s.Status, s.When, s.After)
			}
		case "publish":
			if s.Status != history.StatusInterrupted || len(s.Attempts) != 0 {
				t.Errorf("publish: %s with %d attempts, want interrupted before it started", s.Status, len(s.Attempts))
			}
		}
	}
	t.Logf("daemon exited %s after SIGTERM, the cleanup step included", took.Round(time.Millisecond))
}

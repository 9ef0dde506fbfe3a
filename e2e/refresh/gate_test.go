package refresh

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/testkit"
)

// gatePlan is a release plan with a gate before publishing, an always-run cleanup step and
// a failure-only notification holding the one secret; every step dumps its environment.
const gatePlan = `plan: gated
workdir: %[1]s
secrets:
  HOOK_TOKEN: { file: %[2]s }
steps:
  - id: generate
    run: [sh, -c, 'env > env-generate.txt; mkdir -p files/constraints-3.11 && printf "# generated\nattrs==%[3]s\n" > files/constraints-3.11/constraints-3.11.txt']
  - id: check-constraints      # the gate: no pin may be a pre-release
    needs: [generate]
    run: [sh, -c, 'env > env-gate.txt; ! grep -q "rc" files/constraints-3.11/constraints-3.11.txt']
  - id: publish
    needs: [check-constraints]
    publish_constraints:
      repo: %[4]s
      branch: constraints-main
      files: "files/constraints-*/constraints*.txt"
      author_name: Release Bot
      author_email: release-bot@example.org
  - id: stop-arm-node
    when: always
    timeout: 30s
    run: [sh, -c, 'env > env-cleanup.txt; touch stopped']
  - id: notify
    when: failure
    secrets: [HOOK_TOKEN]
    run: [sh, -c, 'env > env-notify.txt']
`

// TestGateCleanupAndSecrets drives the real binary (run --local) on a real bare repository:
// a failing gate publishes nothing (the branch's refs are unchanged) with a reason naming
// the gate, the always step runs, the failure step runs; when the gate passes, the branch
// gets the commit, the always step still runs and the failure step does not. In both, only
// the step that names the secret has it in its environment: the others' env dumps hold
// neither the variable nor the value.
func TestGateCleanupAndSecrets(t *testing.T) {
	testkit.Need(t, "git")
	const secret = "hook-s3cret-value"
	for _, tc := range []struct {
		name   string
		pin    string
		passes bool
	}{
		{name: "gate fails", pin: "25.1.0rc1"},
		{name: "gate passes", pin: "25.1.0", passes: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			work := filepath.Join(dir, "work")
			bare := seedBareRepo(t, dir)
			secretFile := filepath.Join(dir, "hook-token")
			if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			planFile := filepath.Join(dir, "plan.yaml")
			if err := os.WriteFile(planFile, []byte(fmt.Sprintf(gatePlan, work, secretFile, tc.pin, bare)), 0o644); err != nil {
				t.Fatal(err)
			}
			os.MkdirAll(work, 0o755)
			before := gitOut(t, "--git-dir", bare, "for-each-ref")
			state := filepath.Join(dir, "state")
			out, _ := exec.Command(refreshd.Path(t), "run", "--local", "--state", state, planFile).CombinedOutput()
			r := lastRun(t, state)
			after := gitOut(t, "--git-dir", bare, "for-each-ref")
			pub, cleanup, notify := step(t, r, "publish"), step(t, r, "stop-arm-node"), step(t, r, "notify")
			if tc.passes {
				if r.Status != history.StatusSucceeded || after == before || pub.Publish == nil || pub.Publish.Commit == "" {
					t.Fatalf("run %s %q, refs %q -> %q; want a published commit\n%s", r.Status, r.Reason, before, after, out)
				}
				if notify.Status != history.StatusSkipped || len(notify.Attempts) != 0 {
					t.Errorf("notify ran although nothing failed: %+v", notify)
				}
			} else {
				if r.Status != history.StatusFailed || !strings.Contains(r.Reason, "step check-constraints failed") {
					t.Errorf("run %s %q, want failed naming the gate\n%s", r.Status, r.Reason, out)
				}
				if after != before {
					t.Errorf("the branch moved although the gate failed:\nbefore %s\nafter  %s", before, after)
				}
				if pub.Status != history.StatusSkipped || len(pub.Attempts) != 0 || !strings.Contains(pub.Reason, "needs check-constraints which failed") {
					t.Errorf("publish %s %q (%d attempts), want skipped naming the gate", pub.Status, pub.Reason, len(pub.Attempts))
				}
				if notify.Status != history.StatusSucceeded || notify.After != "check-constraints failed" {
					t.Errorf("notify %s after %q, want succeeded after the gate failed", notify.Status, notify.After)
				}
			}
			if cleanup.Status != history.StatusSucceeded || cleanup.When != "always" {
				t.Errorf("stop-arm-node %s when=%q, want succeeded, recorded as always", cleanup.Status, cleanup.When)
			}
			if _, err := os.Stat(filepath.Join(work, "stopped")); err != nil {
				t.Errorf("the always step did not run: %v", err)
			}
			dumps := map[string]bool{"generate": false, "gate": false, "cleanup": false, "notify": true}
			for name, named := range dumps {
				data, err := os.ReadFile(filepath.Join(work, "env-"+name+".txt"))
				if err != nil {
					if name == "notify" && tc.passes {
						continue // it did not run
					}
					t.Fatalf("env dump of %s: %v", name, err)
				}
				hasVar := strings.Contains(string(data), "HOOK_TOKEN="+secret+"\n")
				if hasVar != named || !named && strings.Contains(string(data), secret) {
					t.Errorf("%s's environment holds the secret: %v, want %v", name, hasVar, named)
				}
			}
		})
	}
}

// TestCleanupAfterSIGTERM: SIGTERM to refreshd run --local in the middle of a long step
// stops it, records the run interrupted, and still runs the always step, recorded with what
// it ran after.
func TestCleanupAfterSIGTERM(t *testing.T) {
	testkit.Need(t, "git") // the e2e tier: the real binary
	dir := t.TempDir()
	work := filepath.Join(dir, "work")
	os.MkdirAll(work, 0o755)
	planFile := filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(planFile, []byte(`plan: stopped
workdir: `+work+`
kill_grace: 2s
steps:
  - id: build
    run: [sh, -c, 'touch started; sleep 60']
  - id: publish
    needs: [build]
    run: [touch, published]
  - id: stop-arm-node
    when: always
    timeout: 20s
    run: [touch, stopped]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	cmd := exec.Command(refreshd.Path(t), "run", "--local", "--state", state, planFile)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "the build step to start", 20*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(work, "started"))
		return err == nil
	})
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("run --local did not end within 30s of SIGTERM\n%s", out.String())
	}
	r := lastRun(t, state)
	if r.Status != history.StatusInterrupted {
		t.Errorf("run %s %q, want interrupted\n%s", r.Status, r.Reason, out.String())
	}
	if s := step(t, r, "publish"); s.Status != history.StatusInterrupted || len(s.Attempts) != 0 {
		t.Errorf("publish %+v, want interrupted before it started", s)
	}
	s := step(t, r, "stop-arm-node")
	if s.Status != history.StatusSucceeded || !strings.HasPrefix(s.After, "the run ended: ") {
		t.Errorf("stop-arm-node %s after %q, want succeeded after the run ended", s.Status, s.After)
	}
	for name, want := range map[string]bool{"stopped": true, "published": false} {
		if _, err := os.Stat(filepath.Join(work, name)); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", name, err == nil, want)
		}
	}
}

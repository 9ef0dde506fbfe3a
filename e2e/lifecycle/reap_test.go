package lifecycle

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/testkit"
)

// A step that detaches a child into a session of its own (setsid): the child outlives the
// step and its group, is reparented to the daemon (a subreaper) and, when it exits, is
// reaped there. No zombie stays under the daemon.
func TestDetachedChildIsReaped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pidFile := filepath.Join(e.dir, "detached.pid")
	// The step waits until the child left the group: else the group kill at the step's end
	// could still reach it, and nothing would be left to reap.
	e.writePlan("detach", fmt.Sprintf(`plan: detach
steps:
  - id: detach
    run: [sh, -c, 'setsid sh -c "echo \$\$ > %[1]s; exec sleep 0.5" >/dev/null 2>&1 </dev/null & while [ ! -s %[1]s ]; do sleep 0.01; done']
`, pidFile))
	d := e.start(nil)
	out, _, code := e.cli("run", "detach")
	if code != 0 {
		t.Fatalf("run detach: exit %d", code)
	}
	if r := e.waitRun("detach", strings.TrimSpace(out), 10*time.Second); r.Status != history.StatusSucceeded {
		t.Fatalf("run: %s %s", r.Status, r.Reason)
	}
	detached := e.readPID(pidFile)
	if ppid := parentOf(detached); ppid != 0 && ppid != d.Pid() {
		t.Fatalf("detached child %d has parent %d, not the daemon %d: the test no longer reproduces an orphan of the daemon", detached, ppid, d.Pid())
	}
	// It exits 0.5 s after it started; then it must be gone, not a zombie of the daemon.
	testkit.WaitFor(t, fmt.Sprintf("detached child %d to be reaped", detached), 5*time.Second, func() bool {
		_, err := os.Stat("/proc/" + strconv.Itoa(detached))
		return err != nil
	})
	if z := zombieChildren(d.Pid()); len(z) > 0 {
		t.Errorf("zombie children of the daemon: %v", z)
	}
}

// parentOf is pid's parent from /proc/PID/stat, 0 if pid is gone.
func parentOf(pid int) int {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// zombieChildren lists pid's children in state Z.
func zombieChildren(pid int) []string {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var z []string
	for _, task := range tasks {
		data, _ := os.ReadFile(task)
		for _, c := range strings.Fields(string(data)) {
			stat, err := os.ReadFile("/proc/" + c + "/stat")
			if s := string(stat); err == nil && strings.HasPrefix(s[strings.LastIndexByte(s, ')')+1:], " Z") {
				z = append(z, c+": "+s[:strings.LastIndexByte(s, ')')+1])
			}
		}
	}
	return z
}

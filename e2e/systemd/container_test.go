package systemd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/refreshd/refreshd/internal/testkit"
)

// rootfs is the Debian 12 tree scripts/install-stack.sh debootstraps (cached; never written:
// the container boots it with --volatile=overlay, its writes going to a tmpfs).
const rootfs = "/var/cache/refreshd-stack/sysd-rootfs-bookworm"

// needContainer skips (or fails, under REFRESHD_REQUIRE_STACK) a test that boots a container
// where it cannot: not root, or no root filesystem.
func needContainer(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		testkit.SkipOrFail(t, "booting a container needs root")
	}
	if _, err := os.Stat(filepath.Join(rootfs, "usr/lib/systemd/systemd")); err != nil {
		testkit.SkipOrFail(t, "no Debian root filesystem at "+rootfs+" (run scripts/install-stack.sh)")
	}
}

// container is a systemd-nspawn container whose PID 1 is systemd, on its own network
// namespace (loopback only) and in a cgroup of its own.
type container struct {
	t      *testing.T
	name   string
	cgroup string // below each cgroup hierarchy root
	nspawn *exec.Cmd
	exited chan struct{}
	leader int // host pid of the container's PID 1
	log    *testkit.Buffer
}

// boot starts the container with binds ("HOST:CONTAINER", read-only unless rw says so) and
// waits until its systemd reports the system running. Cleanup powers it off and removes its
// cgroups; a container that does not power off in 30 s is killed.
func boot(t *testing.T, binds, rwBinds []string) *container {
	t.Helper()
	// A machine name of its own per process and test: two tests never share one.
	sum := sha256.Sum256([]byte(t.Name()))
	name := fmt.Sprintf("refreshd-e2e-%d-%x", os.Getpid(), sum[:4])
	c := &container{t: t, name: name, log: &testkit.Buffer{}}
	c.cgroup = c.name
	// nspawn without a host systemd (--keep-unit --register=no) splits the cgroup it starts
	// in into payload/ and supervisor/: it must be one of its own, not the test's.
	var procs []string
	for _, h := range []string{"systemd", "unified"} {
		dir := filepath.Join("/sys/fs/cgroup", h, c.cgroup)
		if _, err := os.Stat(filepath.Dir(dir)); err != nil {
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatalf("cgroup for the container: %v", err)
		}
		procs = append(procs, filepath.Join(dir, "cgroup.procs"))
	}
	args := []string{"-D", rootfs, "--volatile=overlay", "-M", c.name, "-b", "--register=no", "--keep-unit",
		"--private-network", "--console=passive"}
	for _, b := range binds {
		args = append(args, "--bind-ro="+b)
	}
	for _, b := range rwBinds {
		args = append(args, "--bind="+b)
	}
	// The shell moves itself into the new cgroup, then becomes systemd-nspawn.
	script := ""
	for _, p := range procs {
		script += "echo $$ >" + p + " && "
	}
	script += `exec systemd-nspawn "$@"`
	c.nspawn = exec.Command("sh", append([]string{"-c", script, "sh"}, args...)...)
	// Unified cgroups inside, as a stock Debian 12 boots: in hybrid mode the v1 controllers
	// are read-only in the container and buildkitd's runc cannot create its cgroups.
	c.nspawn.Env = append(os.Environ(), "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1")
	c.nspawn.Stdout, c.nspawn.Stderr = c.log, c.log
	c.nspawn.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := c.nspawn.Start(); err != nil {
		t.Fatalf("start systemd-nspawn: %v", err)
	}
	c.exited = make(chan struct{})
	go func() { c.nspawn.Wait(); close(c.exited) }()
	t.Cleanup(c.down)

	deadline := time.Now().Add(60 * time.Second)
	for {
		// nspawn forks an outer child that forks PID 1 and exits: look until it is systemd.
		c.leader = childOf(c.nspawn.Process.Pid)
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", c.leader)); c.leader != 0 && strings.TrimSpace(string(comm)) == "systemd" {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			out, _ := exec.CommandContext(ctx, "nsenter", "-t", strconv.Itoa(c.leader), "-a", "systemctl", "is-system-running").Output()
			cancel()
			if s := strings.TrimSpace(string(out)); s == "running" || s == "degraded" {
				return c
			}
		}
		select {
		case <-c.exited:
			t.Fatalf("systemd-nspawn exited while booting:\n%s", c.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("container not running after 60s:\n%s", c.log)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// childOf is the first child of pid (systemd-nspawn's child is the container's PID 1).
func childOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(f[0])
	return n
}

func (c *container) down() {
	select {
	case <-c.exited:
	default:
		if c.leader != 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			exec.CommandContext(ctx, "nsenter", "-t", strconv.Itoa(c.leader), "-a", "systemctl", "poweroff", "--no-block").Run()
			cancel()
		}
		select {
		case <-c.exited:
		case <-time.After(30 * time.Second):
			c.t.Errorf("container did not power off in 30s; killing it")
			syscall.Kill(-c.nspawn.Process.Pid, syscall.SIGKILL)
			<-c.exited
		}
	}
	// The container's processes are in their own session: only the cgroup knows them all.
	// Killing its PID 1 ends its pid namespace, and with it everything the test started.
	if c.leader != 0 {
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", c.leader)); strings.TrimSpace(string(comm)) == "systemd" {
			c.t.Errorf("the container's systemd (pid %d) outlived systemd-nspawn; killing it", c.leader)
			syscall.Kill(c.leader, syscall.SIGKILL)
		}
	}
	for _, h := range []string{"systemd", "unified"} {
		removeCgroup(filepath.Join("/sys/fs/cgroup", h, c.cgroup))
	}
}

// removeCgroup removes a cgroup directory tree, deepest first (a cgroup is removed with
// rmdir, once empty); the kernel may need a moment after the last process exited.
func removeCgroup(dir string) {
	for range 50 {
		var dirs []string
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		if len(dirs) == 0 {
			return
		}
		for i := len(dirs) - 1; i >= 0; i-- {
			os.Remove(dirs[i])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// exec runs argv in the container (all of PID 1's namespaces), bounded by timeout, and
// returns its combined output.
func (c *container) exec(timeout time.Duration, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"-t", strconv.Itoa(c.leader), "-a", "--"}, argv...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "HOME=/root"}
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%v: timed out after %s", argv, timeout)
	}
	return out.String(), err
}

// sh runs a bash script in the container (set -euo pipefail) and returns its output.
func (c *container) sh(timeout time.Duration, script string) (string, error) {
	return c.exec(timeout, "bash", "-euo", "pipefail", "-c", script)
}

// must is sh that fails the test on an error.
func (c *container) must(timeout time.Duration, script string) string {
	c.t.Helper()
	out, err := c.sh(timeout, script)
	if err != nil {
		c.t.Fatalf("in the container: %s: %v\n%s", script, err, out)
	}
	return out
}

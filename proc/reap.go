package proc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// owned is this process's table of children whose exit status an exec.Cmd waits for.
// It is package state because what it describes is: a process has one set of children,
// whoever started them, and the reaper must see every Cmd's pid to leave it alone.
var owned = childTable{pids: map[int]int{}}

type childTable struct {
	// starting is held for reading while a child is being started and entered, and for
	// writing while the reaper decides: it never sees a child between fork and entry.
	starting sync.RWMutex
	mu       sync.Mutex
	pids     map[int]int // pid -> number of entries (a pid reused before its disown)
}

// startOwned starts cmd and enters its pid in the table before the reaper can look.
func startOwned(cmd *exec.Cmd) error {
	owned.starting.RLock()
	defer owned.starting.RUnlock()
	if err := cmd.Start(); err != nil {
		return err
	}
	owned.mu.Lock()
	owned.pids[cmd.Process.Pid]++
	owned.mu.Unlock()
	return nil
}

// disown removes pid once its exec.Cmd has waited for it.
func disown(pid int) {
	owned.mu.Lock()
	defer owned.mu.Unlock()
	if owned.pids[pid]--; owned.pids[pid] <= 0 {
		delete(owned.pids, pid)
	}
}

func isOwned(pid int) bool {
	owned.mu.Lock()
	defer owned.mu.Unlock()
	return owned.pids[pid] > 0
}

// BecomeSubreaper makes orphaned descendants of this process (the grandchildren of a
// killed step, a process that daemonised with setsid) its children instead of PID 1's, so
// they can be reaped here: under a PID 1 that does not reap (many containers), they would
// otherwise stay zombies forever.
func BecomeSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", err)
	}
	return nil
}

// orphanSweepEvery is the reaper's backstop period; SIGCHLD normally wakes it at once.
const orphanSweepEvery = 10 * time.Second

// ReapOrphans reaps, until ctx ends, every child of this process that exited and that no
// exec.Cmd started through this package waits for: orphans reparented here because this
// process is a subreaper, including processes that left their step's group (setsid), which
// the group reaping in Run never sees. It wakes on SIGCHLD (and every few seconds, in case a
// signal was coalesced away).
//
// Only a process whose every child starts through this package may call it: a child started
// with os/exec directly is not in the table, and its exit status would be taken from under
// its Cmd. refreshd's main process qualifies (the daemon and run --local); test binaries,
// which start helpers of their own, do not.
func ReapOrphans(ctx context.Context, log *slog.Logger) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGCHLD)
	defer signal.Stop(sig)
	t := time.NewTicker(orphanSweepEvery)
	defer t.Stop()
	for {
		reapUnowned(log)
		select {
		case <-ctx.Done():
			return
		case <-sig:
		case <-t.C:
		}
	}
}

// reapUnowned reaps every exited child not in the table. Holding starting for writing, no
// child can be between fork and entry: a pid not in the table is nobody's Cmd.
//
// Every step's exit sends SIGCHLD, almost always for a child its Cmd reaps itself, so the
// reaper first asks the kernel which child has exited (peekExited, which reaps nothing):
// none, and there is nothing to do; one not in the table, and it is reaped and the kernel
// asked again. Only when the exited child it names is a Cmd's, which may hide others
// behind it, are all children listed from /proc (children), as every time before.
func reapUnowned(log *slog.Logger) {
	owned.starting.Lock()
	defer owned.starting.Unlock()
	for {
		pid := peekExited()
		if pid == 0 {
			return
		}
		if pid < 0 || isOwned(pid) || !reapOne(log, pid) {
			break
		}
	}
	for _, pid := range children() {
		if !isOwned(pid) {
			reapOne(log, pid)
		}
	}
}

// reapOne reaps child pid if it has exited, and says whether it did.
func reapOne(log *slog.Logger, pid int) bool {
	var ws syscall.WaitStatus
	got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
	if got != pid || err != nil {
		return false
	}
	if log != nil {
		log.Debug("reaped an orphaned process", "pid", pid, "status", ws.ExitStatus(), "signal", signalName(ws))
	}
	return true
}

// childInfo is the start of the siginfo_t waitid fills in for a child: si_signo, si_errno
// and si_code, then (in a union aligned for a pointer) si_pid.
type childInfo struct {
	signo, errno, code int32
	_                  [unsafe.Sizeof(uintptr(0)) / 8]int32
	pid                int32
}

// peekExited returns the pid of a child that has exited and is not reaped yet, leaving it
// so (WNOWAIT: its Cmd, if it has one, still gets its exit status), or 0 if there is none.
// The kernel names the first it finds, so while that one stays unreaped others that exited
// are not seen; an error is said as "maybe one" (-1): the caller then lists them all.
func peekExited() int {
	var si unix.Siginfo
	info := (*childInfo)(unsafe.Pointer(&si))
	for {
		info.pid = 0 // POSIX leaves it unspecified when nothing has exited
		err := unix.Waitid(unix.P_ALL, 0, &si, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		switch {
		case err == nil:
			return int(info.pid)
		case errors.Is(err, syscall.ECHILD):
			return 0 // no child at all
		case errors.Is(err, syscall.EINTR):
			continue
		}
		return -1
	}
}

func signalName(ws syscall.WaitStatus) string {
	if ws.Signaled() {
		return ws.Signal().String()
	}
	return ""
}

// children lists this process's children from /proc/self/task/*/children (each thread's
// own), or, on a kernel without that file, by scanning /proc for processes whose parent is
// this one.
func children() []int {
	// The task directory's names, then each thread's file: a glob would also list every
	// thread's directory to find "children" in it.
	tasks := readDirNames("/proc/self/task")
	var pids []int
	found := false
	for _, tid := range tasks {
		data, err := os.ReadFile("/proc/self/task/" + tid + "/children")
		if err != nil {
			continue
		}
		found = true
		for _, s := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(s); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	if found {
		return pids
	}
	self := os.Getpid()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(pid); err == nil && st.ppid == self {
			pids = append(pids, pid)
		}
	}
	return pids
}

// readDirNames lists the names in dir, nil if it cannot be read.
func readDirNames(dir string) []string {
	f, err := os.Open(dir)
	if err != nil {
		return nil
	}
	defer f.Close()
	names, _ := f.Readdirnames(-1)
	return names
}

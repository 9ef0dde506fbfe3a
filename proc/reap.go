package proc

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

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
func reapUnowned(log *slog.Logger) {
	owned.starting.Lock()
	defer owned.starting.Unlock()
	for _, pid := range children() {
		if isOwned(pid) {
			continue
		}
		var ws syscall.WaitStatus
		if got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); got == pid && err == nil && log != nil {
			log.Debug("reaped an orphaned process", "pid", pid, "status", ws.ExitStatus(), "signal", signalName(ws))
		}
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
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	var pids []int
	found := false
	for _, f := range tasks {
		data, err := os.ReadFile(f)
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

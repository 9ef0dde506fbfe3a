package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/refreshd/refreshd/history"
)

// InterruptedReason is the reason recorded on runs an earlier refreshd left running.
const InterruptedReason = "refreshd stopped while the run was running (crash, kill -9 or power loss)"

// recoverGrace is the time between SIGTERM and SIGKILL for groups left by a dead refreshd.
// It is shorter than a step's kill_grace: nothing waits for these steps any more, and the
// new refreshd should not start its own runs while they still push.
const recoverGrace = 5 * time.Second

// procGroup identifies a process group across pid reuse: its id (the leader's pid), the
// leader's start time in clock ticks since boot, and the boot.
type procGroup struct {
	PGID       int
	StartTicks uint64
	BootID     string
}

// RecoverInterrupted is what refreshd does at start-up, holding the state directory lock
// (LockState), before it runs anything: it stops the process groups of attempts an earlier
// refreshd left running (it was killed with kill -9, or crashed; Pdeathsig killed only each
// step's leader), then marks those runs interrupted. It returns the ids of the runs marked.
//
// A recorded group is signalled only when it is still the same group, and the check is
// conservative about pid reuse:
//   - recorded on another boot: never (everything died with it);
//   - the leader (pid == pgid) is alive: only if its start time matches the record;
//   - the leader is gone: only if some process is still in that group and started no
//     earlier than the leader did. The kernel does not hand out a pid while it is still some
//     group's id, so such members are the old leader's descendants.
//
// The group gets SIGTERM, then SIGKILL after a short grace. Failing to stop a group is
// logged, not returned: the runs are marked interrupted regardless.
func RecoverInterrupted(ctx context.Context, store *history.Store, logger *slog.Logger) ([]string, error) {
	runs, err := store.Runs("", 0)
	if err != nil {
		return nil, fmt.Errorf("find runs left running: %w", err)
	}
	boot := bootID()
	for _, r := range runs {
		if r.Status != history.StatusRunning {
			continue
		}
		for _, s := range r.Steps {
			for _, a := range s.Attempts {
				if a.PGID <= 0 || !a.End.IsZero() {
					continue
				}
				g := procGroup{PGID: a.PGID, StartTicks: a.StartTicks, BootID: a.BootID}
				log := logger.With("plan", r.Plan, "run", r.ID, "step", s.Instance, "attempt", a.N, "pgid", g.PGID)
				why := sameGroup(g, boot)
				if why == "" {
					log.Debug("process group left by an earlier refreshd is gone")
					continue
				}
				log.Warn("stopping process group left running by an earlier refreshd", "found", why, "grace", recoverGrace)
				if err := stopGroup(ctx, g.PGID, recoverGrace); err != nil {
					log.Error("stop process group left running by an earlier refreshd", "err", err)
				}
			}
		}
	}
	ids, err := store.InterruptRunning(InterruptedReason)
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// sameGroup says why group g (recorded on boot boot) is still alive and still the one
// recorded, or "" if it is gone or cannot be told apart from a newer one.
func sameGroup(g procGroup, boot string) string {
	if g.BootID == "" || g.StartTicks == 0 || g.BootID != boot {
		return ""
	}
	if leader, err := readProcGroup(g.PGID); err == nil {
		if leader.PGID == g.PGID && leader.StartTicks == g.StartTicks {
			return "leader alive"
		}
		// The pid is another process now: the recorded group is empty, or the kernel
		// would not have reused its id.
		return ""
	}
	if n := countMembers(g); n > 0 {
		return strconv.Itoa(n) + " members, leader gone"
	}
	return ""
}

// countMembers counts live (not zombie) processes in group g.PGID that started no earlier
// than its leader.
func countMembers(g procGroup) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err != nil || st.state == "Z" || st.pgid != g.PGID || st.startTicks < g.StartTicks {
			continue
		}
		n++
	}
	return n
}

// stopGroup sends SIGTERM to group pgid, then SIGKILL after grace, and waits (bounded) for
// its members to die. They are not this process's children, so nothing reaps them here:
// a zombie counts as dead.
func stopGroup(ctx context.Context, pgid int, grace time.Duration) error {
	if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return fmt.Errorf("SIGTERM process group %d: %w", pgid, err)
	}
	if waitGroupDead(ctx, pgid, grace) {
		return nil
	}
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("SIGKILL process group %d: %w", pgid, err)
	}
	if waitGroupDead(ctx, pgid, killWait) {
		return nil
	}
	return fmt.Errorf("process group %d still alive %s after SIGKILL", pgid, killWait)
}

// waitGroupDead polls until no live member of group pgid is left, for at most d.
func waitGroupDead(ctx context.Context, pgid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if liveMembers(pgid) == 0 {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func liveMembers(pgid int) int {
	if !groupAlive(pgid) {
		return 0
	}
	return countMembers(procGroup{PGID: pgid})
}

// readProcGroup reads the identity of the group whose leader is pid.
func readProcGroup(pid int) (procGroup, error) {
	st, err := readStat(pid)
	if err != nil {
		return procGroup{}, err
	}
	return procGroup{PGID: st.pgid, StartTicks: st.startTicks, BootID: bootID()}, nil
}

type procStat struct {
	state      string
	pgid       int
	startTicks uint64
}

// readStat parses /proc/PID/stat. The command name (field 2) may hold spaces and
// parentheses, so the fields are counted from its last ')'.
func readStat(pid int) (procStat, error) {
	path := filepath.Join("/proc", strconv.Itoa(pid), "stat")
	data, err := os.ReadFile(path)
	if err != nil {
		return procStat{}, err
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("parse %s: no command name", path)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("parse %s: %d fields", path, len(f)+2)
	}
	pgid, err := strconv.Atoi(f[5-3])
	if err != nil {
		return procStat{}, fmt.Errorf("parse %s: pgrp: %w", path, err)
	}
	ticks, err := strconv.ParseUint(f[22-3], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("parse %s: starttime: %w", path, err)
	}
	return procStat{state: f[0], pgid: pgid, startTicks: ticks}, nil
}

func bootID() string {
	data, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

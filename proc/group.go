package proc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Group identifies a process group across pid reuse: its id (the leader's pid), the
// leader's start time in clock ticks since boot (field 22 of /proc/PID/stat), and the boot
// (/proc/sys/kernel/random/boot_id).
type Group struct {
	PGID       int
	StartTicks uint64
	BootID     string
}

// ReadGroup reads the identity of the group whose leader is pid.
func ReadGroup(pid int) (Group, error) {
	st, err := readStat(pid)
	if err != nil {
		return Group{}, err
	}
	return Group{PGID: st.pgid, StartTicks: st.startTicks, BootID: BootID()}, nil
}

// Left says why group g, recorded by an earlier refreshd, is still alive and still the
// one recorded, or "" if it is gone or cannot be told apart from a newer one. boot is
// BootID(). The check is conservative about pid reuse:
//   - recorded on another boot: never (everything died with it);
//   - the leader (pid == pgid) is alive: only if its start time matches the record;
//   - the leader is gone: only if some process is still in that group and started no
//     earlier than the leader did. The kernel does not hand out a pid while it is still
//     some group's id, so such members are the old leader's descendants.
func (g Group) Left(boot string) string {
	if g.PGID <= 0 || g.BootID == "" || g.StartTicks == 0 || g.BootID != boot {
		return ""
	}
	if leader, err := ReadGroup(g.PGID); err == nil {
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

// StopGroup sends SIGTERM to group pgid, then SIGKILL after grace, and waits (bounded) for
// its members to die. It is for groups this process did not start (left by an earlier
// refreshd): a zombie counts as dead, since whoever is its parent reaps it.
func StopGroup(ctx context.Context, pgid int, grace time.Duration) error {
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

// LiveMembers counts the live (not zombie) processes in group pgid.
func LiveMembers(pgid int) int {
	if !groupAlive(pgid) {
		return 0
	}
	return countMembers(Group{PGID: pgid})
}

// waitGroupDead polls until no live member of group pgid is left, for at most d.
func waitGroupDead(ctx context.Context, pgid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if LiveMembers(pgid) == 0 {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// countMembers counts live (not zombie) processes in group g.PGID that started no earlier
// than its leader.
func countMembers(g Group) int {
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

// Stat is what refreshd reads of a process in /proc/PID/stat.
type Stat struct {
	State      string // "R", "S", "Z"...
	PPID, PGID int
	StartTicks uint64
}

// ReadStat reads /proc/PID/stat.
func ReadStat(pid int) (Stat, error) {
	st, err := readStat(pid)
	return Stat{State: st.state, PPID: st.ppid, PGID: st.pgid, StartTicks: st.startTicks}, err
}

type procStat struct {
	state      string
	ppid, pgid int
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
	ppid, err := strconv.Atoi(f[4-3])
	if err != nil {
		return procStat{}, fmt.Errorf("parse %s: ppid: %w", path, err)
	}
	pgid, err := strconv.Atoi(f[5-3])
	if err != nil {
		return procStat{}, fmt.Errorf("parse %s: pgrp: %w", path, err)
	}
	ticks, err := strconv.ParseUint(f[22-3], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("parse %s: starttime: %w", path, err)
	}
	return procStat{state: f[0], ppid: ppid, pgid: pgid, startTicks: ticks}, nil
}

// BootID identifies the running boot; "" if unreadable.
func BootID() string { return bootID() }

// bootID reads the boot's id once per process (every step's group is recorded with it): a
// process lives within one boot, so what it holds never changes.
var bootID = sync.OnceValue(readBootID)

func readBootID() string {
	data, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

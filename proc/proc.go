// Package proc starts every child process of refreshd: plan steps, git and the docker
// buildx / buildctl commands. One rule set for all of them:
//
//   - argv is executed directly, never through a shell, in a process group of its own;
//   - the leader gets Pdeathsig (SIGKILL): if refreshd dies (kill -9, OOM killer), the kernel
//     kills it at once;
//   - the new group is handed to Runner.Started before Run waits for it, so the caller can
//     record it where the next refreshd finds it and stops what is left (StopGroup);
//   - cancelling ctx stops the whole group: SIGTERM, then SIGKILL after the grace period;
//     members still alive when the leader exits (background children it did not wait for)
//     are stopped the same way, so a process never outlives its Run;
//   - output is read until every holder of the pipe is gone, or until nothing has arrived for
//     a while after the group ended (a member that left the group with setsid);
//   - every child is entered in this process's child table while its exec.Cmd owns it, so
//     the orphan reaper (ReapOrphans) never takes an exit status os/exec waits for.
package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// DefaultGrace is the time between SIGTERM and SIGKILL when the Runner sets none.
const DefaultGrace = 10 * time.Second

// Cmd is one process to run.
type Cmd struct {
	Argv []string // Argv[0] is looked up in Env's PATH (relative entries against Dir)
	Dir  string   // "" is this process's working directory
	// Env is the complete environment ("K=V"); nil means this process's own.
	Env []string
	// Stdout, if set, receives standard output alone (output that is parsed). Otherwise
	// standard output goes to Output with standard error.
	Stdout io.Writer
	// Output receives standard error, and standard output when Stdout is nil, through one
	// pipe so lines keep the order the process wrote them in; nil discards.
	Output io.Writer
}

// Runner holds what all processes of one caller share: the kill rule, the logger and the
// hook that records each new group. The zero value (and a nil *Runner) is usable.
type Runner struct {
	// Grace is the time between SIGTERM to the group and SIGKILL; DefaultGrace if zero.
	Grace time.Duration
	Log   *slog.Logger // default discards
	// Started, if set, is called with each new process group before Run waits for it. It
	// must make the record durable before it returns: from then on a kill -9 of refreshd
	// leaves the group to the next start (see StopGroup).
	Started func(Group)
}

// Status is how a process ended.
type Status struct {
	Code   int    // -1 if killed by a signal or not started
	Signal string // signal name if killed
}

func (s Status) String() string {
	if s.Signal != "" {
		return "killed by signal " + s.Signal
	}
	return fmt.Sprintf("exit status %d", s.Code)
}

// pipeDrainWait bounds how long the output pipe is read after the process group is gone
// while nothing arrives. Only a process that left the group (setsid, or a daemonising
// double fork that also changes its group) can still hold it; its output is then no longer
// read. The wait counts only time spent waiting for data, never time spent handing data to
// a slow writer: what the group wrote is read to the end, however long the writer takes.
const pipeDrainWait = 2 * time.Second

// killWait bounds the wait for a SIGKILLed group to disappear (a process in uninterruptible
// sleep, D state, cannot die before its I/O ends).
const killWait = 10 * time.Second

// Run starts c and waits for it and its whole group. The error is about starting the
// process or handing its output on; how it ended is the Status (a non-zero exit or a kill is
// not an error). When ctx ends the group is stopped (SIGTERM, grace, SIGKILL); the caller
// tells a cancelled run by ctx.Err().
//
// The limit: a descendant that moves itself out of the group (setsid, setpgid) escapes the
// group kill. ReapOrphans reaps it when it exits; under systemd the unit's cgroup holds it
// and KillMode=mixed SIGKILLs whatever is left when the daemon stops.
func (r *Runner) Run(ctx context.Context, c Cmd) (Status, error) {
	cmd, readers, err := start(c)
	if err != nil {
		return Status{Code: -1}, err
	}
	pgid := cmd.Process.Pid
	log := r.log()
	if r != nil && r.Started != nil {
		g, err := ReadGroup(pgid)
		if err != nil {
			// The leader may already have exited; what it left is stopped below anyway.
			log.Debug("read the new process group's identity", "pgid", pgid, "err", err)
			g = Group{PGID: pgid}
		}
		r.Started(g)
	}
	termDeadline := r.wait(ctx, cmd, log)
	clearGroup(log, pgid, r.grace(), termDeadline)

	var werr error
	for _, pr := range readers {
		if !pr.drain(pipeDrainWait) {
			log.Warn("output pipe still held after the process group ended (a process left the group with setsid?); its output is no longer read", "pgid", pgid, "argv0", c.Argv[0])
		}
		if err := pr.err(); err != nil && werr == nil {
			werr = fmt.Errorf("hand on the output of %s: %w", c.Argv[0], err)
		}
	}
	return exitStatus(cmd.ProcessState), werr
}

// start starts c in a group of its own, its output pipes read from now on.
func start(c Cmd) (*exec.Cmd, []*pipeReader, error) {
	if len(c.Argv) == 0 {
		return nil, nil, errors.New("empty command")
	}
	env := c.Env
	if env == nil {
		env = os.Environ()
	}
	if c.Dir != "" {
		// exec reports a missing directory as the program's: "fork/exec /usr/bin/sh: no
		// such file or directory". Say which it is.
		if fi, err := os.Stat(c.Dir); err != nil {
			return nil, nil, fmt.Errorf("working directory of %s: %w", c.Argv[0], err)
		} else if !fi.IsDir() {
			return nil, nil, fmt.Errorf("working directory of %s: %s is not a directory", c.Argv[0], c.Dir)
		}
	}
	path, err := LookPath(c.Argv[0], c.Dir, env)
	if err != nil {
		return nil, nil, err
	}
	out, err := newPipeReader(c.Output)
	if err != nil {
		return nil, nil, err
	}
	readers := []*pipeReader{out}
	cmd := &exec.Cmd{
		Path: path, Args: c.Argv, Dir: c.Dir, Env: env,
		// *os.File ends, so exec starts no copying goroutine of its own.
		Stdout: out.w, Stderr: out.w,
		// Pdeathsig: if refreshd dies without stopping its children (kill -9, OOM killer),
		// the kernel kills each leader at once, so no build keeps pushing and no git push
		// goes on for a refreshd that is gone. Killing the docker CLI ends the buildx plugin
		// too (it watches the CLI's socket). The signal reaches the leader only: the rest of
		// the group is stopped by the next start from the group recorded through Started.
		// The signal fires when the forking OS thread exits; Go only retires a thread whose
		// goroutine locked it, and refreshd never locks one.
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL},
	}
	if c.Stdout != nil {
		so, err := newPipeReader(c.Stdout)
		if err != nil {
			out.abort()
			return nil, nil, err
		}
		readers = append(readers, so)
		cmd.Stdout = so.w
	}
	if err := startOwned(cmd); err != nil {
		for _, pr := range readers {
			pr.abort()
		}
		return nil, nil, fmt.Errorf("start %s: %w", c.Argv[0], err)
	}
	for _, pr := range readers {
		pr.start() // the children hold the write ends now; EOF when the last of them exits
	}
	return cmd, readers, nil
}

// wait waits for cmd's leader. When ctx ends first, the group gets SIGTERM, and SIGKILL
// after the grace period. It returns the end of the grace SIGTERM started (zero if none
// was sent), for clearGroup.
func (r *Runner) wait(ctx context.Context, cmd *exec.Cmd, log *slog.Logger) (termDeadline time.Time) {
	pgid := cmd.Process.Pid
	waited := make(chan struct{})
	go func() {
		cmd.Wait()
		disown(pgid)
		close(waited)
	}()
	select {
	case <-waited:
		return time.Time{}
	case <-ctx.Done():
	}
	grace := r.grace()
	log.Debug("stopping process group", "pgid", pgid, "grace", grace)
	syscall.Kill(-pgid, syscall.SIGTERM)
	termDeadline = time.Now().Add(grace)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-waited:
	case <-t.C:
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-waited
	}
	return termDeadline
}

func (r *Runner) grace() time.Duration {
	if r == nil || r.Grace <= 0 {
		return DefaultGrace
	}
	return r.Grace
}

func (r *Runner) log() *slog.Logger {
	if r == nil || r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

// clearGroup stops and reaps what is left of group pgid after its leader was reaped:
// SIGTERM (unless already sent, at termDeadline minus grace), SIGKILL once the grace period
// is over, reaping orphaned members as they die (this process is their subreaper). It must
// not run before the leader is reaped: waiting on -pgid would take the leader's exit status
// from exec.Cmd.Wait.
func clearGroup(log *slog.Logger, pgid int, grace time.Duration, termDeadline time.Time) {
	reapGroup(pgid)
	if !groupAlive(pgid) {
		return
	}
	if termDeadline.IsZero() {
		log.Info("stopping processes left behind in the process group", "pgid", pgid)
		syscall.Kill(-pgid, syscall.SIGTERM)
		termDeadline = time.Now().Add(grace)
	}
	var killDeadline time.Time
	for {
		time.Sleep(5 * time.Millisecond)
		reapGroup(pgid)
		if !groupAlive(pgid) {
			return
		}
		now := time.Now()
		switch {
		case killDeadline.IsZero() && now.After(termDeadline):
			syscall.Kill(-pgid, syscall.SIGKILL)
			killDeadline = now.Add(killWait)
		case !killDeadline.IsZero() && now.After(killDeadline):
			log.Error("process group still alive after SIGKILL", "pgid", pgid)
			return
		}
	}
}

// groupAlive reports whether any process (zombies included) is in group pgid.
func groupAlive(pgid int) bool {
	err := syscall.Kill(-pgid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// reapGroup collects every exited child of this process in group pgid: members orphaned
// by the group's death and reparented here. No exec.Cmd owns them (each Cmd's leader has a
// group of its own and is reaped before this runs).
func reapGroup(pgid int) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-pgid, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

func exitStatus(ps *os.ProcessState) Status {
	if ps == nil {
		return Status{Code: -1}
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return Status{Code: -1, Signal: ws.Signal().String()}
	}
	return Status{Code: ps.ExitCode()}
}

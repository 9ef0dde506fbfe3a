package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// process is one process to run as a step (or part of a built-in action): argv executed
// directly, never through a shell, in its own process group.
type process struct {
	argv  []string
	dir   string
	env   []string // complete environment, "K=V"
	out   io.Writer
	grace time.Duration // SIGTERM to SIGKILL
	log   *slog.Logger
	// started, if set, is called with the new process group before run waits for it.
	started func(procGroup)
}

// pipeDrainWait bounds the wait for the output pipe to close once the process group is
// gone. Only a process that left the group (setsid, or a daemonising double fork that also
// changes its group) can still hold it; its output is then no longer read.
const pipeDrainWait = 2 * time.Second

// killWait bounds the wait for a SIGKILLed group to disappear (a process in uninterruptible
// sleep, D state, cannot die before its I/O ends).
const killWait = 10 * time.Second

// run starts the process and waits for it. When ctx is done the whole group gets SIGTERM,
// and SIGKILL after the grace period. When the leader exits, members of its group still
// alive (background children it did not wait for) are stopped the same way: a step's
// processes never outlive it. Orphaned members are reaped by this process, a child
// subreaper (see becomeSubreaper), so no zombie remains even under a PID 1 that never reaps.
//
// The limit: a descendant that moves itself out of the group (setsid, setpgid) escapes the
// group kill; under systemd the unit's cgroup still holds them, and KillMode=mixed in the
// shipped unit SIGKILLs whatever is left in it when the daemon stops. If refreshd itself
// dies (kill -9), the leader gets Pdeathsig and the rest of the group is stopped by the
// next refreshd's RecoverInterrupted, from the group recorded through started.
func (p *process) run(ctx context.Context) (ExitStatus, error) {
	path, err := lookPath(p.argv[0], p.dir, p.env)
	if err != nil {
		return ExitStatus{Code: -1}, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return ExitStatus{Code: -1}, fmt.Errorf("create output pipe: %w", err)
	}
	// Stdout and stderr share one pipe (an *os.File, so exec starts no copying goroutine
	// of its own): lines keep the order the process wrote them in.
	cmd := &exec.Cmd{
		Path:   path,
		Args:   p.argv,
		Dir:    p.dir,
		Env:    p.env,
		Stdout: pw,
		Stderr: pw,
		// Pdeathsig: if refreshd dies without stopping its steps (kill -9, OOM killer), the
		// kernel kills each step's leader at once, so no build keeps running and pushing for
		// a daemon that is gone. Killing the docker CLI ends the buildx plugin too (it
		// watches the CLI's socket). The signal reaches the leader only: its background
		// children live on, and the next start stops them from the group recorded in the
		// history (started, RecoverInterrupted). The signal fires when the forking OS thread
		// exits; Go only retires a thread whose goroutine locked it, and refreshd never
		// locks one.
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL},
	}
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return ExitStatus{Code: -1}, fmt.Errorf("start %s: %w", p.argv[0], err)
	}
	pw.Close() // the children hold the write end now; EOF when the last of them exits
	read := make(chan struct{})
	go func() {
		defer close(read)
		io.Copy(p.out, pr) // stops at EOF or when pr is closed below
	}()
	pgid := cmd.Process.Pid
	if p.started != nil {
		g, err := readProcGroup(pgid)
		if err != nil {
			// The leader may already have exited; what it left is stopped below anyway.
			p.log.Debug("read the new process group's identity", "pgid", pgid, "err", err)
			g = procGroup{PGID: pgid}
		}
		p.started(g)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	var termDeadline time.Time // zero until the group got SIGTERM
	select {
	case <-waited:
	case <-ctx.Done():
		p.log.Debug("stopping process group", "pgid", pgid, "grace", p.grace)
		syscall.Kill(-pgid, syscall.SIGTERM)
		termDeadline = time.Now().Add(p.grace)
		t := time.NewTimer(p.grace)
		select {
		case <-waited:
			t.Stop()
		case <-t.C:
			syscall.Kill(-pgid, syscall.SIGKILL)
			<-waited
		}
	}
	p.clearGroup(pgid, termDeadline)

	select {
	case <-read:
	case <-time.After(pipeDrainWait):
		p.log.Warn("output pipe still held after the step's process group ended (a process left the group with setsid?); its output is no longer read", "pgid", pgid)
		pr.Close()
		<-read
	}
	pr.Close()
	return exitStatus(cmd.ProcessState), nil
}

// clearGroup stops and reaps what is left of the group after its leader was reaped:
// SIGTERM (unless already sent, at termDeadline minus grace), SIGKILL once the grace period
// is over, reaping orphaned members as they die. It must not run before the leader is
// reaped: waiting on -pgid would take the leader's exit status from exec.Cmd.Wait.
func (p *process) clearGroup(pgid int, termDeadline time.Time) {
	reapGroup(pgid)
	if !groupAlive(pgid) {
		return
	}
	if termDeadline.IsZero() {
		p.log.Info("stopping processes the step left behind", "pgid", pgid)
		syscall.Kill(-pgid, syscall.SIGTERM)
		termDeadline = time.Now().Add(p.grace)
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
			p.log.Error("process group still alive after SIGKILL", "pgid", pgid)
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
// by the group's death and reparented here.
func reapGroup(pgid int) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-pgid, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER from <linux/prctl.h>.
const prSetChildSubreaper = 36

// becomeSubreaper makes orphaned descendants of this process (a step's grandchildren whose
// parent died) its children instead of PID 1's, so the engine can reap them. Under a PID 1
// that does not reap (many containers), they would otherwise stay zombies forever.
func becomeSubreaper() error {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		return fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", errno)
	}
	return nil
}

func exitStatus(ps *os.ProcessState) ExitStatus {
	if ps == nil {
		return ExitStatus{Code: -1}
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return ExitStatus{Code: -1, Signal: ws.Signal().String()}
	}
	return ExitStatus{Code: ps.ExitCode()}
}

// lookPath finds argv0 in the step's PATH (not refreshd's): a name with a slash is taken as
// it is, relative to dir.
func lookPath(argv0, dir string, env []string) (string, error) {
	if argv0 == "" {
		return "", errors.New("empty command")
	}
	if strings.Contains(argv0, "/") {
		return argv0, nil
	}
	pathEnv := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathEnv = v
		}
	}
	for _, d := range filepath.SplitList(pathEnv) {
		if d == "" {
			d = "."
		}
		if !filepath.IsAbs(d) {
			d = filepath.Join(dir, d)
		}
		f := filepath.Join(d, argv0)
		if fi, err := os.Stat(f); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return f, nil
		}
	}
	return "", fmt.Errorf("%s: executable not found in the step's PATH (%s)", argv0, pathEnv)
}

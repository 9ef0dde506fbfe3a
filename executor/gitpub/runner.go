package gitpub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Runner runs one git command. Publishing goes through it so that the caller decides how
// processes are started and where their output goes, and tests can step in between two
// commands (for example push from another clone just before refreshd pushes).
type Runner interface {
	// Git runs `git args...` in dir with the process environment plus env ("K=V") and
	// returns its standard output. A non-zero exit is an *ExitError carrying stderr.
	Git(ctx context.Context, dir string, env []string, args ...string) (stdout []byte, err error)
}

// ExitError is a git command that ran and failed.
type ExitError struct {
	Args   []string // redacted
	Code   int
	Stderr string // redacted
}

func (e *ExitError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = "no output"
	}
	return fmt.Sprintf("git %s: exit status %d: %s", strings.Join(e.Args, " "), e.Code, msg)
}

// ExecRunner runs the real git CLI, each command in its own process group so a cancelled
// publish stops git and any remote helper it started. Command lines and output are copied,
// redacted, to Output.
type ExecRunner struct {
	Program string    // path of git; default "git"
	Output  io.Writer // receives "$ git ..." and the command's output, redacted; nil discards
	// Redact scrubs secrets from everything written to Output and from errors.
	// Publish sets it from the repository URL and token when it is nil.
	Redact func(string) string
	// Grace is the time between SIGTERM to the process group and SIGKILL; default 10s.
	Grace time.Duration
}

// Git implements Runner.
func (r *ExecRunner) Git(ctx context.Context, dir string, env []string, args ...string) ([]byte, error) {
	redact := r.Redact
	if redact == nil {
		redact = RedactURLs
	}
	bin := r.Program
	if bin == "" {
		bin = "git"
	}
	shown := make([]string, len(args))
	for i, a := range args {
		shown[i] = redact(a)
	}
	out := &lineWriter{w: r.Output, redact: redact}
	if r.Output != nil {
		fmt.Fprintf(r.Output, "$ git %s\n", strings.Join(shown, " "))
	}

	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), baseEnv()...)
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = io.MultiWriter(&stderr, out)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// SIGTERM lets git remove its lock files; WaitDelay then SIGKILLs what is left.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = r.Grace
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = 10 * time.Second
	}
	err := cmd.Run()
	out.Flush()
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("git %s: %w", strings.Join(shown, " "), ctx.Err())
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return stdout.Bytes(), &ExitError{Args: shown, Code: ee.ExitCode(), Stderr: redact(stderr.String())}
		}
		return nil, fmt.Errorf("git %s: %s", strings.Join(shown, " "), redact(err.Error()))
	}
	return stdout.Bytes(), nil
}

// baseEnv makes git fail instead of prompting for a credential nobody will type, and keeps
// its messages in the language the rejection checks parse.
func baseEnv() []string {
	return []string{"GIT_TERMINAL_PROMPT=0", "LC_ALL=C", "LANGUAGE=C"}
}

// lineWriter copies complete lines, redacted, to w; git's progress output ends lines with
// CR, which counts as a line end too.
type lineWriter struct {
	mu     sync.Mutex
	w      io.Writer
	redact func(string) string
	buf    []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	if l.w == nil {
		return len(p), nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexAny(l.buf, "\r\n")
		if i < 0 {
			break
		}
		line := string(l.buf[:i])
		l.buf = l.buf[i+1:]
		if strings.TrimSpace(line) == "" {
			continue
		}
		if _, err := io.WriteString(l.w, l.redact(line)+"\n"); err != nil {
			return len(p), err
		}
	}
	return len(p), nil
}

// Flush writes an unterminated last line.
func (l *lineWriter) Flush() {
	if l.w == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(bytes.TrimSpace(l.buf)) > 0 {
		io.WriteString(l.w, l.redact(string(l.buf))+"\n")
	}
	l.buf = nil
}

package git

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/refreshd/refreshd/internal/safearg"
	"github.com/refreshd/refreshd/proc"
)

// Runner runs one git command. Publishing goes through it so that the caller decides how
// processes are started and where their output goes, and tests can step in between two
// commands (for example push from another clone just before refreshd pushes).
type Runner interface {
	// Git runs `git args...` in dir with the process environment plus env ("K=V") and
	// returns its standard output. A non-zero exit is an *ExitError carrying stderr.
	Git(ctx context.Context, dir string, env []string, args ...string) (stdout []byte, err error)
	// GitBounded is Git keeping at most limit bytes of standard output: a command that
	// writes more is stopped, and the error wraps ErrOutputLimit, with what was kept.
	GitBounded(ctx context.Context, dir string, env []string, limit int, args ...string) (stdout []byte, err error)
}

// ErrOutputLimit is the error of a command stopped because its standard output went past
// the limit GitBounded was given.
var ErrOutputLimit = errors.New("standard output past its limit")

// MaxStderrKept bounds what an ExitError keeps of git's stderr, at each end: a remote or
// hook that prints megabytes (pre-receive's "remote:" lines) costs the daemon at most three
// times this while git runs and twice this in the error, which still has the last lines:
// they say why git failed.
const MaxStderrKept = 64 << 10

// ExitError is a git command that ran and failed.
type ExitError struct {
	Args   []string // redacted
	Code   int
	Stderr string // redacted; its first and last MaxStderrKept bytes (proc.HeadTail)
}

func (e *ExitError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = "no output"
	}
	return fmt.Sprintf("git %s: exit status %d: %s", strings.Join(e.Args, " "), e.Code, msg)
}

// ExecRunner runs the real git CLI through proc: each command in its own process group
// (a cancelled publish stops git and any remote helper it started, SIGTERM first so git
// removes its lock files), with Pdeathsig, its group handed to Proc.Started for the
// recovery after a kill -9 of the caller. Command lines and output are copied, redacted, to
// Output.
type ExecRunner struct {
	Program string    // path of git; default "git"
	Output  io.Writer // receives "$ git ..." and the command's output, redacted; nil discards
	// Redact scrubs secrets from everything written to Output and from errors.
	// Publish sets it from the repository URL and token when it is nil.
	Redact func(string) string
	// Proc starts the processes: kill grace (default proc.DefaultGrace), log, and the hook
	// that records each group. nil is a proc.Runner with its defaults.
	Proc *proc.Runner
}

// Git implements Runner.
func (r *ExecRunner) Git(ctx context.Context, dir string, env []string, args ...string) ([]byte, error) {
	return r.GitBounded(ctx, dir, env, 0, args...)
}

// GitBounded implements Runner; limit 0 keeps everything.
func (r *ExecRunner) GitBounded(ctx context.Context, dir string, env []string, limit int, args ...string) ([]byte, error) {
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
	output := r.Output
	if output == nil {
		output = io.Discard
	}
	fmt.Fprintf(output, "$ git %s\n", strings.Join(shown, " "))
	// Progress output ends lines with CR: a line end too. Blank lines are dropped.
	lines := &proc.Lines{CR: true, Line: func(b []byte) {
		if len(bytes.TrimSpace(b)) > 0 {
			io.WriteString(output, redact(string(b))+"\n")
		}
	}}
	stderr := &proc.HeadTail{Head: MaxStderrKept, Tail: MaxStderrKept}
	gctx, stop := context.WithCancel(ctx)
	defer stop()
	stdout := &boundedBuffer{limit: limit, stop: stop}
	st, err := r.Proc.Run(gctx, proc.Cmd{
		Argv: append([]string{bin}, args...), Dir: dir,
		Env:    append(append(os.Environ(), baseEnv()...), env...),
		Stdout: stdout, Output: io.MultiWriter(stderr, lines),
	})
	lines.Flush()
	failed := err != nil || st.Code != 0 || st.Signal != ""
	switch {
	case stdout.over && ctx.Err() == nil:
		return stdout.buf.Bytes(), fmt.Errorf("git %s: %w (%d bytes)", strings.Join(shown, " "), ErrOutputLimit, limit)
	case !failed:
		return stdout.buf.Bytes(), nil
	case ctx.Err() != nil:
		return nil, fmt.Errorf("git %s: %w", strings.Join(shown, " "), ctx.Err())
	case err != nil:
		return nil, fmt.Errorf("git %s: %s", strings.Join(shown, " "), redact(err.Error()))
	}
	return stdout.buf.Bytes(), &ExitError{Args: shown, Code: st.Code, Stderr: redact(stderr.String())}
}

// boundedBuffer keeps a command's standard output up to limit bytes (0: all of it); past
// it, it calls stop once (which stops the command) and drops the rest.
type boundedBuffer struct {
	buf   bytes.Buffer
	limit int
	over  bool
	stop  func()
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if b.limit > 0 && b.buf.Len()+len(p) > b.limit {
		b.buf.Write(p[:b.limit-b.buf.Len()])
		if !b.over {
			b.over = true
			b.stop()
		}
		return len(p), nil
	}
	return b.buf.Write(p)
}

// baseEnv makes git fail instead of prompting for a credential nobody will type, keeps
// its messages in the language the rejection checks parse, and allows only the transports
// that run no program of the remote's choosing (no ext::, fd:: or other remote helper, even
// where the user's configuration would allow one).
func baseEnv() []string {
	return []string{"GIT_TERMINAL_PROMPT=0", "LC_ALL=C", "LANGUAGE=C", "GIT_ALLOW_PROTOCOL=" + safearg.GitProtocols}
}

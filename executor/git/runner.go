package git

import (
	"bytes"
	"context"
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
	var stdout, stderr bytes.Buffer
	st, err := r.Proc.Run(ctx, proc.Cmd{
		Argv: append([]string{bin}, args...), Dir: dir,
		Env:    append(append(os.Environ(), baseEnv()...), env...),
		Stdout: &stdout, Output: io.MultiWriter(&stderr, lines),
	})
	lines.Flush()
	failed := err != nil || st.Code != 0 || st.Signal != ""
	switch {
	case !failed:
		return stdout.Bytes(), nil
	case ctx.Err() != nil:
		return nil, fmt.Errorf("git %s: %w", strings.Join(shown, " "), ctx.Err())
	case err != nil:
		return nil, fmt.Errorf("git %s: %s", strings.Join(shown, " "), redact(err.Error()))
	}
	return stdout.Bytes(), &ExitError{Args: shown, Code: st.Code, Stderr: redact(stderr.String())}
}

// baseEnv makes git fail instead of prompting for a credential nobody will type, keeps
// its messages in the language the rejection checks parse, and allows only the transports
// that run no program of the remote's choosing (no ext::, fd:: or other remote helper, even
// where the user's configuration would allow one).
func baseEnv() []string {
	return []string{"GIT_TERMINAL_PROMPT=0", "LC_ALL=C", "LANGUAGE=C", "GIT_ALLOW_PROTOCOL=" + safearg.GitProtocols}
}

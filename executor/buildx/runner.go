// Package buildx drives the real `docker buildx` CLI and `buildctl`: it reads builder state
// (`docker buildx ls --format json`), makes a builder match a declaration (create, --append,
// --leave, rm), bootstraps it and requires every node running, guards against emulation by
// comparing each node's pinned platform with its worker's native one, and builds per-platform
// registry caches. It knows nothing of plans: callers translate into its option structs.
package buildx

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Runner runs one command (argv[0] is the program) with extra environment ("K=V") on top of
// the process's own. When stdout is non-nil the command's standard output is written there
// (queries whose output is parsed); otherwise it is the runner's to stream or log. A non-zero
// exit is an error that should carry the end of the command's stderr.
type Runner func(ctx context.Context, argv []string, env []string, stdout io.Writer) error

// ExecRunner runs commands with os/exec, each in its own process group that is killed as a
// whole when ctx ends. Output not captured goes to out (nil discards it); stderr is also kept
// (its last 4 KiB) for the error.
func ExecRunner(out io.Writer) Runner {
	return func(ctx context.Context, argv []string, env []string, stdout io.Writer) error {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = append(cmd.Environ(), env...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = 5 * time.Second
		var stderr tailBuffer
		if out == nil {
			out = io.Discard
		}
		cmd.Stdout = out
		if stdout != nil {
			cmd.Stdout = stdout
		}
		cmd.Stderr = io.MultiWriter(out, &stderr)
		if err := cmd.Run(); err != nil {
			if msg := strings.TrimSpace(stderr.String()); msg != "" {
				return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, msg)
			}
			return fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
		}
		return nil
	}
}

// tailBuffer keeps the last 4 KiB written to it.
type tailBuffer struct{ b bytes.Buffer }

const tailMax = 4096

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b.Write(p)
	if t.b.Len() > 2*tailMax {
		keep := append([]byte(nil), t.b.Bytes()[t.b.Len()-tailMax:]...)
		t.b.Reset()
		t.b.Write(keep)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	b := t.b.Bytes()
	if len(b) > tailMax {
		b = b[len(b)-tailMax:]
	}
	return string(b)
}

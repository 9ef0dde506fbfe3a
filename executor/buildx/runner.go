// Package buildx drives the real `docker buildx` CLI and `buildctl`: it reads builder state
// (`docker buildx ls --format json`), makes a builder match a declaration (create, --append,
// --leave, rm), bootstraps it and requires every node running, guards against emulation by
// comparing each node's pinned platform with its worker's native one, and builds per-platform
// registry caches. It knows nothing of plans: callers translate into its option structs.
package buildx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/refreshd/refreshd/proc"
)

// Runner runs one command (argv[0] is the program) with extra environment ("K=V") on top of
// the process's own. When stdout is non-nil the command's standard output is written there
// (queries whose output is parsed); otherwise it is the runner's to stream or log. A non-zero
// exit is an error that should carry the end of the command's stderr.
type Runner func(ctx context.Context, argv []string, env []string, stdout io.Writer) error

// ExecRunner runs commands through procs (nil: proc's defaults): each in its own process
// group, stopped as a whole when ctx ends (SIGTERM, grace, SIGKILL), with Pdeathsig, its
// group handed to procs.Started for the recovery after a kill -9 of the caller. The
// environment is this process's plus env. Output not captured goes to out (nil discards it);
// stderr is also kept (its last 4 KiB, proc.HeadTail) for the error.
func ExecRunner(procs *proc.Runner, out io.Writer) Runner {
	return func(ctx context.Context, argv []string, env []string, stdout io.Writer) error {
		if out == nil {
			out = io.Discard
		}
		stderr := &proc.HeadTail{Tail: 4 << 10}
		c := proc.Cmd{Argv: argv, Env: append(os.Environ(), env...), Output: io.MultiWriter(out, stderr)}
		if stdout != nil {
			c.Stdout = stdout
		}
		st, err := procs.Run(ctx, c)
		if err == nil && (st.Code != 0 || st.Signal != "") {
			err = errors.New(st.String())
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%s)", ctx.Err(), err)
		}
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, msg)
		}
		return fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
}

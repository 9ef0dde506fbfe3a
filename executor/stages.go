package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/plan"
)

// A run's graph grows in stages (plan.Graph.Extend): a step with outputs: defines vars from
// what it read in the checkout, and the steps using them are expanded once it succeeded,
// before any of them starts. The values are checked when the step ends: a bad value fails
// that step, so nothing downstream (no build, no publish) runs.

// outputLimit bounds what a step's stdout capture keeps; more is an error (plan.ParseOutputs).
const outputLimit = 1<<20 + 1

// capture is a step's standard output, kept up to outputLimit bytes.
type capture struct {
	buf       bytes.Buffer
	truncated bool
}

func (c *capture) Write(p []byte) (int, error) {
	room := outputLimit - c.buf.Len()
	if len(p) > room {
		c.buf.Write(p[:max(room, 0)])
		c.truncated = true
		return len(p), nil
	}
	return c.buf.Write(p)
}

// wantsStdout reports whether inst is a run step whose values come on its stdout.
func wantsStdout(inst *plan.Instance) bool {
	_, run := inst.Action.(*plan.RunAction)
	return run && inst.Step != nil && inst.Step.Outputs != nil && inst.Step.Outputs.From == plan.FromStdout
}

// readOutputs reads and checks the values a succeeded step defined, records them on the
// run and returns them, for the graph's next stage (they travel to the scheduling goroutine
// with the instance's end). out gets the captured stdout, so the attempt's log shows what
// the step printed.
func (rs *runState) readOutputs(ctx context.Context, inst *plan.Instance, workdir string, stdout *capture, out io.Writer) (map[string]plan.Var, error) {
	o := inst.Step.Outputs
	var data []byte
	if o.From == plan.FromStdout {
		data = stdout.buf.Bytes()
		out.Write(data)
		if len(data) > 0 && data[len(data)-1] != '\n' {
			out.Write([]byte{'\n'})
		}
		if stdout.truncated {
			return nil, fmt.Errorf("outputs from stdout: more than %d bytes", outputLimit-1)
		}
	} else {
		var err error
		if data, err = readOutputsFile(ctx, workdir, o.From); err != nil {
			return nil, fmt.Errorf("outputs: the step succeeded but %w", err)
		}
	}
	vals, err := plan.ParseOutputs(o, data)
	if err != nil {
		return nil, err
	}
	recorded := make([]history.RunVar, 0, len(o.Vars))
	for _, ov := range o.Vars {
		v := vals[ov.Name]
		// The record shows a value equal to a secret, or holding one, masked, as the
		// instance ids formed from it are (Graph.Mask); the run uses the real values.
		list := make([]string, len(v.List))
		for i, e := range v.List {
			list[i] = rs.red.String(e)
		}
		if v.List == nil {
			list = nil
		}
		recorded = append(recorded, history.RunVar{Name: ov.Name, Step: inst.Step.ID, Value: rs.red.String(v.Scalar), Values: list, List: v.IsList})
	}
	rs.rec.addVars(recorded...)
	var shown []string
	for _, ov := range o.Vars {
		v := vals[ov.Name]
		if v.IsList {
			shown = append(shown, fmt.Sprintf("%s=[%s]", ov.Name, strings.Join(v.List, " ")))
		} else {
			shown = append(shown, fmt.Sprintf("%s=%s", ov.Name, v.Scalar))
		}
	}
	fmt.Fprintf(out, "refreshd: step %s defined %s\n", inst.Step.ID, strings.Join(shown, ", "))
	return vals, nil
}

// outputsReadTimeout bounds the read of an outputs file (a file on a hung network file
// system); the step's and the run's timeouts and a cancel end it sooner.
const outputsReadTimeout = 5 * time.Second

// readOutputsFile reads the outputs file name (relative to workdir) by the rules of secret
// files (readBounded: a regular file, at most outputLimit-1 bytes, read with a timeout) and
// only inside the workdir: openat2 with RESOLVE_BENEATH refuses a path or a symlink that
// leaves it (to /dev/zero, another user's file), and O_NONBLOCK keeps a FIFO from blocking
// the open.
func readOutputsFile(ctx context.Context, workdir, name string) ([]byte, error) {
	dir, err := os.Open(workdir)
	if err != nil {
		return nil, fmt.Errorf("its workdir cannot be opened: %w", err)
	}
	defer dir.Close()
	fd, err := unix.Openat2(int(dir.Fd()), name, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_NONBLOCK | unix.O_CLOEXEC | unix.O_NOCTTY,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	})
	if errors.Is(err, unix.ENOSYS) { // Linux before 5.6: resolve, check, open
		fd, err = openBeneath(workdir, name)
	}
	switch {
	case errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ELOOP):
		return nil, fmt.Errorf("%s cannot be read: it leaves the workdir %s (a symlink out of it); outputs are read only inside it", name, workdir)
	case err != nil:
		return nil, fmt.Errorf("%s cannot be read: %w", name, err)
	}
	data, _, err := readBounded(ctx, os.NewFile(uintptr(fd), name), name, "outputs", outputLimit-1, outputsReadTimeout)
	return data, err
}

// openBeneath is openat2's RESOLVE_BENEATH for kernels without it: the path with its
// symlinks resolved must lie in the workdir (EXDEV when it does not).
func openBeneath(workdir, name string) (int, error) {
	root, err := filepath.EvalSymlinks(workdir)
	if err != nil {
		return -1, err
	}
	path, err := filepath.EvalSymlinks(filepath.Join(workdir, name))
	if err != nil {
		return -1, err
	}
	if rel, err := filepath.Rel(root, path); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return -1, unix.EXDEV
	}
	return unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
}

// extend expands the steps waiting for step's values (vals, nil for a checkout:
// plan.Graph.Extend) or for the source it fetched, and adds their instances to the run's
// record. It returns how many were added. It runs on the scheduling goroutine, the only one
// that reads the graph's instance list while a run goes on.
func (sc *scheduler) extend(st *plan.Step, vals map[string]plan.Var) (int, error) {
	step := st.ID
	var added []*plan.Instance
	var err error
	if st.Checkout != nil {
		// What it fetched: the steps whose templates name .source expand now.
		if src := sc.rec.source(); src != nil {
			if added, err = sc.g.ExtendSource(step, plan.Source{Repo: src.Repo, Ref: src.Ref, Commit: src.Commit}); err != nil {
				return 0, err
			}
		}
	}
	if st.Outputs != nil && vals != nil {
		more, err := sc.g.Extend(step, vals)
		if err != nil {
			return 0, err
		}
		added = append(added, more...)
	}
	for _, inst := range added {
		sc.idx[inst.ID] = sc.rec.appendStep(history.Step{Instance: inst.ID, Status: history.StatusWaiting})
	}
	if len(added) > 0 {
		ids := make([]string, len(added))
		for i, in := range added {
			ids[i] = in.ID
		}
		sc.env.log.Info("steps expanded from run-time values", "from", step, "instances", len(added), "ids", strings.Join(ids, " "))
	}
	return len(added), nil
}

// recordPending records the steps that never expanded (their producer failed, was skipped,
// or the run ended first) as skipped, one record per step, with why.
func (sc *scheduler) recordPending(why string) {
	for _, ps := range sc.g.Pending() {
		reason := sc.g.PendingReason(ps)
		if why != "" {
			reason = why
		}
		i := sc.rec.appendStep(history.Step{Instance: ps.Step.ID, Status: history.StatusSkipped, Reason: reason})
		sc.idx[ps.Step.ID] = i
		sc.rec.update(i, func(*history.Step) {})
	}
}

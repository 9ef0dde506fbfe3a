package executor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/refreshd/refreshd/executor/junit"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/plan"
)

// command is a run step: its argv, executed directly (never through a shell) in the step's
// process group. With a JUnit report (report: junit:) it is a test gate (gate).
type command struct{ *plan.RunAction }

func (c command) run(ctx context.Context, _ *Tools, a *Attempt) error {
	if c.JUnit != "" {
		// A report left by an earlier run must never stand for this one's tests.
		if err := os.Remove(filepath.Join(a.Workdir, c.JUnit)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove the previous test report: %w", err)
		}
	}
	st, err := a.Exec(ctx, "", c.Argv)
	if err != nil {
		return err
	}
	var exitErr error
	switch {
	case st.Signal != "":
		exitErr = fmt.Errorf("killed by signal %s", st.Signal)
	case st.Code != 0:
		exitErr = fmt.Errorf("exit code %d", st.Code)
	}
	if c.JUnit == "" || st.Signal != "" {
		return exitErr
	}
	return c.gate(a, exitErr)
}

// gateNames is how many failing tests a gate's error (the step's and the run's reason, the
// webhook's text) names; the step's record keeps up to junit.MaxFailed.
const gateNames = 10

// gate reads the step's JUnit report, records the tests' outcome on the step, and decides
// the attempt: it fails when any test failed or errored, whatever the exit code (a test
// command run with "|| true" passes nothing), when the report holds no test (an empty
// selection is no gate), and when there is no report to read (no evidence is no pass).
func (c command) gate(a *Attempt, exitErr error) error {
	path := filepath.Join(a.Workdir, c.JUnit)
	rep, err := readReport(a.Workdir, c.JUnit)
	if err != nil {
		if exitErr != nil {
			return fmt.Errorf("test gate: %w; no test report: %v", exitErr, err)
		}
		return fmt.Errorf("test gate: exit code 0 but no test report to show it (report: junit: %s): %v", c.JUnit, err)
	}
	a.Record(func(s *history.Step) {
		s.Tests = &history.Tests{Report: path, Total: rep.Tests, Failures: rep.Failures, Errors: rep.Errors, Skipped: rep.Skipped, Failed: rep.Failed}
	})
	switch {
	case rep.Bad() > 0:
		if exitErr == nil {
			exitErr = errors.New("exit code 0")
		}
		return fmt.Errorf("test gate: %s (%v)", rep.Summary(gateNames), exitErr)
	case exitErr != nil:
		return fmt.Errorf("test gate: %w, though the report counts no failing test (%s)", exitErr, rep.Summary(0))
	case rep.Tests == rep.Skipped:
		return fmt.Errorf("test gate: the report %s ran no test (%d, all skipped): an empty selection passes nothing", c.JUnit, rep.Tests)
	}
	a.Log.Info("test gate passed", "tests", rep.Tests, "skipped", rep.Skipped)
	return nil
}

// readReport parses the report at rel inside workdir; it cannot name a file outside it,
// through .. or a symbolic link (os.Root).
func readReport(workdir, rel string) (*junit.Report, error) {
	root, err := os.OpenRoot(workdir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.Open(rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return junit.Parse(f)
}

func (c command) describe(*Tools) []Op {
	ops := []Op{{Argv: c.Argv}}
	if c.JUnit != "" {
		ops = append(ops, Op{Text: "test gate: read " + c.JUnit + " (JUnit XML); fail on any failing or erroring test, on no test, or on no report"})
	}
	return ops
}

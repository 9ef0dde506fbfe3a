package executor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/plan"
)

// TestTestGate: a run step with report: junit: between generation and publish. The step's
// record carries the tests' outcome; any failing test, no test, or no report fails it,
// whatever its exit code, and the run's reason names the failing tests; the publish step
// that needs the gate never runs unless it passed. A report left by an earlier run never
// stands for this one.
func TestTestGate(t *testing.T) {
	t.Parallel()
	pytestXML, err := os.ReadFile("junit/testdata/pytest.xml")
	if err != nil {
		t.Fatal(err)
	}
	const passing = `<testsuites><testsuite><testcase classname="tests.core" name="test_a"/><testcase classname="tests.core" name="test_b"/></testsuite></testsuites>`
	for _, tc := range []struct {
		name    string
		report  string // written by the step before it exits; "" writes none
		stale   string // left in the workdir before the run
		exit    int
		status  history.Status
		reason  string // substring of the run's reason
		tests   *history.Tests
		publish bool
	}{
		{name: "tests pass", report: passing, status: history.StatusSucceeded, publish: true,
			tests: &history.Tests{Total: 2}},
		{name: "tests fail", report: string(pytestXML), exit: 1, status: history.StatusFailed,
			reason: "step test-gate failed: attempt 1 of 1: test gate: 3 of 7 tests failed: tests.test_gate::test_fails, tests.test_gate.TestProviders::test_pins[3.14], tests.test_gate::test_error (exit code 1)",
			tests:  &history.Tests{Total: 7, Failures: 2, Errors: 1, Skipped: 1, Failed: []string{"tests.test_gate::test_fails", "tests.test_gate.TestProviders::test_pins[3.14]", "tests.test_gate::test_error"}}},
		{name: "failures behind exit 0", report: string(pytestXML), status: history.StatusFailed,
			reason: "3 of 7 tests failed: tests.test_gate::test_fails, ", tests: &history.Tests{Total: 7, Failures: 2, Errors: 1, Skipped: 1}},
		{name: "no report", exit: 0, status: history.StatusFailed, reason: "test gate: exit code 0 but no test report to show it (report: junit: out/report.xml)"},
		{name: "stale report of an earlier run", stale: passing, exit: 0, status: history.StatusFailed, reason: "no test report"},
		{name: "exit 1 without a report", exit: 1, status: history.StatusFailed, reason: "test gate: exit code 1; no test report"},
		{name: "exit 1, no failure in the report", report: passing, exit: 1, status: history.StatusFailed, reason: "test gate: exit code 1, though the report counts no failing test (2 tests passed (0 skipped))",
			tests: &history.Tests{Total: 2}},
		{name: "nothing ran", report: `<testsuite><testcase name="a"><skipped/></testcase></testsuite>`, status: history.StatusFailed, reason: "ran no test (1, all skipped)",
			tests: &history.Tests{Total: 1, Skipped: 1}},
		{name: "not a report", report: "collected 0 items / no tests ran", exit: 5, status: history.StatusFailed, reason: "no test report: not a JUnit report"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEngineT(t, time.Second)
			work := t.TempDir()
			if err := os.MkdirAll(filepath.Join(work, "out"), 0o755); err != nil {
				t.Fatal(err)
			}
			if tc.stale != "" {
				if err := os.WriteFile(filepath.Join(work, "out/report.xml"), []byte(tc.stale), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			src := filepath.Join(t.TempDir(), "src.xml")
			script := "exit " + string(rune('0'+tc.exit))
			if tc.report != "" {
				if err := os.WriteFile(src, []byte(tc.report), 0o644); err != nil {
					t.Fatal(err)
				}
				script = `cp "$1" out/report.xml; ` + script
			}
			p, err := plan.Parse(filepath.Join(work, "plan.yaml"), []byte(`plan: gate
workdir: "`+work+`"
steps:
  - { id: generate, run: [touch, generated] }
  - id: test-gate
    needs: [generate]
    run: [sh, -c, '`+script+`', sh, "`+src+`"]
    report: { junit: out/report.xml }
  - { id: publish, needs: [test-gate], run: [touch, published] }
`))
			if err != nil {
				t.Fatal(err)
			}
			g, err := plan.Expand(p)
			if err != nil {
				t.Fatal(err)
			}
			r := e.run(t, t.Context(), g)
			if r.Status != tc.status || !strings.Contains(r.Reason, tc.reason) {
				t.Errorf("run %s %q, want %s with %q", r.Status, r.Reason, tc.status, tc.reason)
			}
			gate := stepOf(t, r, "test-gate")
			switch {
			case tc.tests == nil && gate.Tests != nil:
				t.Errorf("tests recorded %+v without a report", gate.Tests)
			case tc.tests != nil && gate.Tests == nil:
				t.Errorf("no tests recorded, want %+v", tc.tests)
			case tc.tests != nil:
				got := *gate.Tests
				if got.Total != tc.tests.Total || got.Failures != tc.tests.Failures || got.Errors != tc.tests.Errors || got.Skipped != tc.tests.Skipped ||
					tc.tests.Failed != nil && strings.Join(got.Failed, " ") != strings.Join(tc.tests.Failed, " ") || got.Report != filepath.Join(work, "out/report.xml") {
					t.Errorf("tests recorded %+v, want %+v", got, *tc.tests)
				}
			}
			_, err = os.Stat(filepath.Join(work, "published"))
			if published := err == nil; published != tc.publish {
				t.Errorf("published %v, want %v (publish %s %q)", published, tc.publish, stepOf(t, r, "publish").Status, stepOf(t, r, "publish").Reason)
			}
		})
	}
}

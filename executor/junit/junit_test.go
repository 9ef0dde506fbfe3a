package junit

import (
	"encoding/xml"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/refreshd/refreshd/internal/testkit"
)

// suiteCounts are a <testsuite>'s own counters, as the tool that wrote the report counted.
type suiteCounts struct {
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
	Errors   int `xml:"errors,attr"`
	Skipped  int `xml:"skipped,attr"`
}

func pytestCounts(t *testing.T, data []byte) suiteCounts {
	t.Helper()
	var doc struct {
		Suites []suiteCounts `xml:"testsuite"`
	}
	if err := xml.Unmarshal(data, &doc); err != nil || len(doc.Suites) != 1 {
		t.Fatalf("pytest's report: %v (%d suites)", err, len(doc.Suites))
	}
	return doc.Suites[0]
}

// TestPytestReport: the report pytest 7.2 wrote for testdata/test_gate.py
// (pytest-3 -q -p no:cacheprovider --junitxml=report.xml tests): a failure, a failing
// parametrized case in a class, a fixture error, a skip. Parse counts what pytest counted.
func TestPytestReport(t *testing.T) {
	data, err := os.ReadFile("testdata/pytest.xml")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Parse(strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	want := pytestCounts(t, data)
	if got := (suiteCounts{r.Tests, r.Failures, r.Errors, r.Skipped}); got != want {
		t.Errorf("counts %+v, pytest's %+v", got, want)
	}
	failed := []string{"tests.test_gate::test_fails", "tests.test_gate.TestProviders::test_pins[3.14]", "tests.test_gate::test_error"}
	if !slices.Equal(r.Failed, failed) {
		t.Errorf("failed %q, want %q", r.Failed, failed)
	}
	if got, want := r.Summary(2), "3 of 7 tests failed: tests.test_gate::test_fails, tests.test_gate.TestProviders::test_pins[3.14] (and 1 more)"; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
}

// TestAgainstPytest runs real pytest on a generated test module whose every test passes,
// fails, errors in a fixture or is skipped at random, and checks that Parse finds exactly
// the tests the generator made fail, with pytest's own counts.
func TestAgainstPytest(t *testing.T) {
	pytest := testkit.Need(t, "pytest-3")[0]
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	dir := t.TempDir()
	var src strings.Builder
	src.WriteString("import pytest\n\n@pytest.fixture\ndef broken():\n    raise RuntimeError('x')\n\n")
	var wantFailed []string
	n := 20 + rng.IntN(60)
	skipped := 0
	for i := range n {
		name := fmt.Sprintf("test_%d", i)
		switch rng.IntN(4) {
		case 0:
			fmt.Fprintf(&src, "def %s():\n    pass\n\n", name)
		case 1:
			fmt.Fprintf(&src, "def %s():\n    assert %d == -1\n\n", name, i)
			wantFailed = append(wantFailed, "test_gen::"+name)
		case 2:
			fmt.Fprintf(&src, "def %s(broken):\n    pass\n\n", name)
			wantFailed = append(wantFailed, "test_gen::"+name)
		case 3:
			fmt.Fprintf(&src, "@pytest.mark.skip(reason='no')\ndef %s():\n    pass\n\n", name)
			skipped++
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "test_gen.py"), []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(dir, "report.xml")
	cmd := exec.CommandContext(t.Context(), pytest, "-q", "-p", "no:cacheprovider", "--junitxml="+report, "test_gen.py")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("pytest: %v\n%s", err, out)
	}
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	r, err := Parse(strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := (suiteCounts{r.Tests, r.Failures, r.Errors, r.Skipped}), pytestCounts(t, data); got != want || r.Tests != n || r.Skipped != skipped {
		t.Errorf("counts %+v, pytest's %+v, generated %d tests, %d skipped", got, want, n, skipped)
	}
	if !slices.Equal(r.Failed, wantFailed[:min(len(wantFailed), MaxFailed)]) {
		t.Errorf("failed %q, want %q", r.Failed, wantFailed)
	}
}

func TestParse(t *testing.T) {
	many := strings.Repeat(`<testcase classname="c" name="t"><failure/></testcase>`, MaxFailed+5)
	for _, tc := range []struct {
		name, doc string
		want      Report
		err       string
	}{
		{name: "one suite root", doc: `<testsuite><testcase name="a"/><testcase name="b"><error/></testcase></testsuite>`,
			want: Report{Tests: 2, Errors: 1, Failed: []string{"b"}}},
		{name: "nested suites", doc: `<testsuites><testsuite><testsuite><testcase classname="m" name="x"><failure/><system-out>log</system-out></testcase></testsuite></testsuite><testsuite><testcase name="y"><skipped/></testcase></testsuite></testsuites>`,
			want: Report{Tests: 2, Failures: 1, Skipped: 1, Failed: []string{"m::x"}}},
		{name: "suite counters are not trusted", doc: `<testsuites><testsuite tests="0" failures="0"><testcase name="a"><failure/></testcase></testsuite></testsuites>`,
			want: Report{Tests: 1, Failures: 1, Failed: []string{"a"}}},
		{name: "ids cannot forge lines", doc: "<testsuite><testcase name=\"a&#10;FAILED forged&#13;\"><failure/></testcase></testsuite>",
			want: Report{Tests: 1, Failures: 1, Failed: []string{"a FAILED forged "}}},
		{name: "ids cannot read reversed", doc: "<testsuite><testcase name=\"test_ok\u202e&#x2066;dellif\"><failure/></testcase></testsuite>",
			want: Report{Tests: 1, Failures: 1, Failed: []string{"test_ok  dellif"}}},
		{name: "long id cut", doc: `<testsuite><testcase name="` + strings.Repeat("é", 400) + `"><failure/></testcase></testsuite>`,
			want: Report{Tests: 1, Failures: 1, Failed: []string{strings.Repeat("é", 150) + "..."}}},
		{name: "failing ids kept bounded, all counted", doc: `<testsuites><testsuite>` + many + `</testsuite></testsuites>`,
			want: Report{Tests: MaxFailed + 5, Failures: MaxFailed + 5, Failed: slices.Repeat([]string{"c::t"}, MaxFailed)}},
		{name: "empty suite", doc: `<testsuites/>`, want: Report{}},
		{name: "not XML", doc: "collected 0 items", err: "not a JUnit report: no <testsuites>"},
		{name: "broken XML", doc: `<testsuites><testcase name="a">`, err: "not JUnit XML"},
		{name: "other root", doc: `<html><testcase name="a"/></html>`, err: "its root is <html>"},
		{name: "entities are not expanded", doc: `<!DOCTYPE t [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]><testsuite><testcase name="&b;"/></testsuite>`, err: "not JUnit XML"},
		{name: "empty", doc: "", err: "no <testsuites>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse(strings.NewReader(tc.doc))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Tests != tc.want.Tests || r.Failures != tc.want.Failures || r.Errors != tc.want.Errors || r.Skipped != tc.want.Skipped || !slices.Equal(r.Failed, tc.want.Failed) {
				t.Errorf("got %+v, want %+v", *r, tc.want)
			}
		})
	}
}

// TestParseTooLarge: a report past MaxSize is refused after reading MaxSize+1 bytes, never
// read whole.
func TestParseTooLarge(t *testing.T) {
	r := io.MultiReader(strings.NewReader("<testsuites><testsuite><testcase name=\""), endless{})
	_, err := Parse(r)
	if err == nil || !strings.Contains(err.Error(), "larger than 64 MiB") {
		t.Fatalf("err = %v", err)
	}
}

type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}

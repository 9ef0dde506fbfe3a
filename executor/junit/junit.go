// Package junit reads the outcome of a test run from a JUnit XML report (pytest
// --junitxml, JUnit, go-junit-report, ...): how many tests ran, failed, errored and were
// skipped, and the ids of the failing ones. It counts the <testcase> elements themselves,
// never a suite's own counters, which a report may leave out or get wrong.
package junit

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/refreshd/refreshd/internal/safearg"
)

// Limits on what a report may cost: its size, the failing ids kept, and an id's length.
const (
	MaxSize   = 64 << 20
	MaxFailed = 100
	maxID     = 300
)

// Report is the outcome of the tests of one report.
type Report struct {
	Tests    int // test cases
	Failures int // with a <failure>
	Errors   int // with an <error> (and no <failure>)
	Skipped  int // with a <skipped>
	// Failed are the ids of the failing and erroring tests (CLASSNAME::NAME, as the report
	// names them; pytest's classname is the module path with dots), at most MaxFailed, in
	// report order.
	Failed []string
}

// Bad is the number of tests that did not pass: failures and errors.
func (r *Report) Bad() int { return r.Failures + r.Errors }

type testcase struct {
	Classname string    `xml:"classname,attr"`
	Name      string    `xml:"name,attr"`
	Failure   *struct{} `xml:"failure"`
	Error     *struct{} `xml:"error"`
	Skipped   *struct{} `xml:"skipped"`
}

// Parse reads a report: a <testsuites> or <testsuite> root, suites nested at any depth.
// More than MaxSize bytes, a document that is not XML, or one with no test suite root is
// an error.
func Parse(r io.Reader) (*Report, error) {
	lr := &io.LimitedReader{R: r, N: MaxSize + 1}
	d := xml.NewDecoder(lr)
	rep := &Report{}
	root := ""
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if lr.N <= 0 {
				return nil, fmt.Errorf("report larger than %d MiB", MaxSize>>20)
			}
			return nil, fmt.Errorf("not JUnit XML: %w", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if root == "" {
			root = se.Name.Local
			if root != "testsuites" && root != "testsuite" {
				return nil, fmt.Errorf("not a JUnit report: its root is <%s>, want <testsuites> or <testsuite>", root)
			}
			continue
		}
		if se.Name.Local != "testcase" {
			continue
		}
		var tc testcase
		if err := d.DecodeElement(&tc, &se); err != nil {
			if lr.N <= 0 {
				return nil, fmt.Errorf("report larger than %d MiB", MaxSize>>20)
			}
			return nil, fmt.Errorf("not JUnit XML: %w", err)
		}
		rep.Tests++
		switch {
		case tc.Failure != nil:
			rep.Failures++
		case tc.Error != nil:
			rep.Errors++
		case tc.Skipped != nil:
			rep.Skipped++
			continue
		default:
			continue
		}
		if len(rep.Failed) < MaxFailed {
			rep.Failed = append(rep.Failed, id(tc))
		}
	}
	if root == "" {
		return nil, errors.New("not a JUnit report: no <testsuites> or <testsuite> element")
	}
	return rep, nil
}

// id is a test's id as the report names it, made safe for a log line or a message: no
// control or format characters (a newline would forge a line, a bidi override make it
// read other than it is: safearg.Hidden), at most maxID bytes.
func id(tc testcase) string {
	s := tc.Name
	if tc.Classname != "" {
		s = tc.Classname + "::" + tc.Name
	}
	s = strings.Map(func(r rune) rune {
		if safearg.Hidden(r) {
			return ' '
		}
		return r
	}, s)
	if len(s) > maxID {
		s = strings.ToValidUTF8(s[:maxID], "") + "..."
	}
	return s
}

// Summary says what failed in one line: "2 of 120 tests failed: a, b", naming at most
// names tests and counting the rest.
func (r *Report) Summary(names int) string {
	if r.Bad() == 0 {
		return fmt.Sprintf("%d tests passed (%d skipped)", r.Tests-r.Skipped, r.Skipped)
	}
	shown := r.Failed[:min(names, len(r.Failed))]
	s := fmt.Sprintf("%d of %d tests failed: %s", r.Bad(), r.Tests, strings.Join(shown, ", "))
	if more := r.Bad() - len(shown); more > 0 {
		s += fmt.Sprintf(" (and %d more)", more)
	}
	return s
}

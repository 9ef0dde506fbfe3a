package executor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"regexp"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/refreshd/refreshd/internal/redact"
	"github.com/refreshd/refreshd/proc"
)

// lineWriter is the attempt's output: proc.Lines splitting it into lines (long ones broken,
// never inside a secret), each redacted and handed to emit. It also remembers whether any
// line matched the retry patterns, so the retry decision does not need the output kept in
// memory.
type lineWriter struct {
	proc.Lines
	red      *redact.Redactor
	emit     func(line string)
	patterns []*regexp.Regexp

	mu        sync.Mutex
	matched   string // the first line that matched a retry pattern
	errorLine string // the first line that says what went wrong (errorLinePattern)
}

// errorLinePattern recognises an output line that says what went wrong, so that a failed
// step's reason names it ("exit code 1: ERROR: ... 401 Unauthorized") rather than only the
// exit code: buildx/BuildKit "ERROR:" lines, git "fatal:"/"error:", "failed"/"denied"
// messages, HTTP error statuses from registries and the usual system errors.
var errorLinePattern = regexp.MustCompile(`(?i)(^\s*(error|fatal|failed|failure|panic)\b|\berror:|\b(unauthorized|forbidden|access denied|permission denied|authentication required|not found|no such file|connection refused|i/o timeout|no space left)\b|\b[45]\d\d (unauthorized|forbidden|not found|too many requests|internal server error|bad gateway|service unavailable)\b)`)

// maxErrorLine bounds the error line quoted in a reason.
const maxErrorLine = 300

func newLineWriter(red *redact.Redactor, patterns []*regexp.Regexp, emit func(line string)) *lineWriter {
	w := &lineWriter{red: red, emit: emit, patterns: patterns}
	w.Lines.SafeCut = red.SafeCut
	w.Lines.Line = w.line
	return w
}

// line is called by proc.Lines, one line at a time.
func (w *lineWriter) line(b []byte) {
	raw := string(b)
	w.mu.Lock()
	if w.errorLine == "" && errorLinePattern.MatchString(raw) {
		// Redacted whole, then cut: cutting first could split a secret past the redactor.
		w.errorLine = w.red.String(raw)
		if len(w.errorLine) > maxErrorLine {
			w.errorLine = strings.ToValidUTF8(w.errorLine[:maxErrorLine], "") + "..."
		}
	}
	if w.matched == "" {
		for _, re := range w.patterns {
			if re.MatchString(raw) {
				w.matched = w.red.String(raw)
				break
			}
		}
	}
	w.mu.Unlock()
	w.emit(w.red.String(raw))
}

// Matched returns the first output line (redacted) that matched a retry pattern, or "".
func (w *lineWriter) Matched() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.matched
}

// attemptLog is an attempt's log file. The first write that fails (a full disk) is kept
// and every later line is dropped, so the attempt ends with an error naming the file and
// its file system instead of a success with its output cut.
type attemptLog struct {
	f    *os.File
	path string

	mu  sync.Mutex
	err error
}

func (l *attemptLog) write(line string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return nil // reported once
	}
	if _, err := l.f.WriteString(line + "\n"); err != nil {
		l.err = diskError("write attempt log", l.path, err)
		return l.err
	}
	return nil
}

// close closes the file and returns the first write or close error.
func (l *attemptLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.f.Close(); err != nil && l.err == nil && !errors.Is(err, os.ErrClosed) {
		l.err = diskError("close attempt log", l.path, err)
	}
	return l.err
}

// diskError names the file and the free space of its file system.
func diskError(doing, path string, err error) error {
	var st unix.Statfs_t
	if unix.Statfs(filepath.Dir(path), &st) == nil {
		return fmt.Errorf("%s %s: %w (its file system has %d bytes free; output from here on is lost)",
			doing, path, err, st.Bavail*uint64(st.Bsize))
	}
	return fmt.Errorf("%s %s: %w (output from here on is lost)", doing, path, err)
}

// ErrorLine returns the first output line (redacted, at most maxErrorLine bytes) that says
// what went wrong, or "".
func (w *lineWriter) ErrorLine() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.errorLine
}

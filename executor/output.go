package executor

import (
	"regexp"
	"sync"

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

	mu      sync.Mutex
	matched string // the first line that matched a retry pattern
}

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

package executor

import (
	"bytes"
	"regexp"
	"strings"
	"sync"

	"github.com/refreshd/refreshd/internal/redact"
)

// maxLine is the longest line kept whole; longer ones (a progress bar without newlines, a
// minified file cat'ed by mistake) are broken into pieces of at most this size.
const maxLine = 64 << 10

// lineWriter splits a process's output into lines, redacts each, and hands it to emit.
// It also remembers whether any line matched the retry patterns, so the retry decision does
// not need the output kept in memory.
type lineWriter struct {
	red      *redact.Redactor
	emit     func(line string)
	patterns []*regexp.Regexp

	mu      sync.Mutex
	buf     []byte
	matched string // the first line that matched a retry pattern
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.line(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	for len(w.buf) >= maxLine {
		cut := w.red.SafeCut(w.buf[:maxLine])
		if cut == 0 {
			cut = maxLine
		}
		w.line(w.buf[:cut])
		w.buf = w.buf[cut:]
	}
	// Compact so a long stream of short lines does not grow the backing array forever.
	if cap(w.buf) > 4*maxLine && len(w.buf) < maxLine {
		w.buf = append([]byte(nil), w.buf...)
	}
	return len(p), nil
}

// Flush emits a final line without a newline.
func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.line(w.buf)
		w.buf = nil
	}
}

func (w *lineWriter) line(b []byte) {
	raw := strings.TrimSuffix(string(b), "\r")
	if w.matched == "" {
		for _, re := range w.patterns {
			if re.MatchString(raw) {
				w.matched = w.red.String(raw)
				break
			}
		}
	}
	w.emit(w.red.String(raw))
}

// Matched returns the first output line (redacted) that matched a retry pattern, or "".
func (w *lineWriter) Matched() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.matched
}

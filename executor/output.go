package executor

import (
	"bytes"
	"encoding/base64"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
)

const redacted = "***"

// redactor replaces every secret value, and the encodings it is likely to appear in (URL
// query and path escaping, base64 as in HTTP basic auth and docker config.json), with ***.
// It is applied to every line of output before it is logged or written, and to every error,
// reason and warning before it is recorded.
type redactor struct {
	r        *strings.Replacer
	variants []string // longest first
}

func newRedactor(secrets map[string]string) *redactor {
	seen := map[string]bool{}
	var variants []string
	add := func(v string) {
		if v != "" && !seen[v] {
			seen[v] = true
			variants = append(variants, v)
		}
	}
	for _, v := range secrets {
		add(v)
		add(url.QueryEscape(v))
		add(url.PathEscape(v))
		add(base64.StdEncoding.EncodeToString([]byte(v)))
		add(strings.TrimRight(base64.StdEncoding.EncodeToString([]byte(v)), "="))
		add(base64.URLEncoding.EncodeToString([]byte(v)))
	}
	// Longest first: strings.Replacer prefers earlier pairs at the same position, so a value
	// containing another secret is replaced whole.
	slices.SortFunc(variants, func(a, b string) int { return len(b) - len(a) })
	pairs := make([]string, 0, 2*len(variants))
	for _, v := range variants {
		pairs = append(pairs, v, redacted)
	}
	return &redactor{r: strings.NewReplacer(pairs...), variants: variants}
}

func (r *redactor) String(s string) string {
	if len(r.variants) == 0 {
		return s
	}
	return r.r.Replace(s)
}

// safeCut returns where a forced break of buf (a line longer than the limit) may fall so
// that no secret is split across the two pieces: before any suffix of buf that is a proper
// prefix of a secret variant.
func (r *redactor) safeCut(buf []byte) int {
	cut := len(buf)
	for _, v := range r.variants {
		for n := min(len(v)-1, len(buf)); n > 0; n-- {
			if bytes.HasSuffix(buf, []byte(v[:n])) {
				cut = min(cut, len(buf)-n)
				break
			}
		}
	}
	return cut
}

// maxLine is the longest line kept whole; longer ones (a progress bar without newlines, a
// minified file cat'ed by mistake) are broken into pieces of at most this size.
const maxLine = 64 << 10

// lineWriter splits a process's output into lines, redacts each, and hands it to emit.
// It also remembers whether any line matched the retry patterns, so the retry decision does
// not need the output kept in memory.
type lineWriter struct {
	red      *redactor
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
		cut := w.red.safeCut(w.buf[:maxLine])
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

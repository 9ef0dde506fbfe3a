package proc

import (
	"bytes"
	"sync"
)

// MaxLine is the longest line Lines keeps whole; longer ones (a progress bar without
// newlines, a minified file cat'ed by mistake) are broken into pieces of at most this size.
const MaxLine = 64 << 10

// Continued ends every piece of a line longer than MaxLine but the last: the line goes on
// in the next line handed on. Every byte of the line is kept, in order, and nothing else is
// added: a reader joins a line ending in Continued with the next, without the marker.
const Continued = "\u21a9" // ↩

// Lines splits a process's output into lines and hands each to Line, without its line end
// ("\n", "\r\n"). A line longer than MaxLine is handed on in pieces, each but the last
// ending in Continued. It is safe for concurrent writers.
type Lines struct {
	Line func(line []byte) // the slice is only valid during the call
	// SafeCut, if set, says where to break a line longer than MaxLine (e.g. not inside a
	// secret, so masking still sees it whole); 0 means at MaxLine.
	SafeCut func(b []byte) int
	// CR makes a lone "\r" end a line too (git's progress output).
	CR bool

	mu    sync.Mutex
	buf   []byte
	piece []byte // a piece of a long line with Continued, reused
}

func (w *Lines) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	ends := "\n"
	if w.CR {
		ends = "\r\n"
	}
	for {
		i := bytes.IndexAny(w.buf, ends)
		if i >= 0 && i <= MaxLine {
			w.line(w.buf[:i])
			w.buf = w.buf[i+1:]
			continue
		}
		if len(w.buf) <= MaxLine {
			break
		}
		// More than MaxLine without a line end: break it.
		cut := 0
		if w.SafeCut != nil {
			cut = w.SafeCut(w.buf[:MaxLine])
		}
		if cut <= 0 || cut > MaxLine {
			cut = MaxLine
		}
		// Every byte kept (a "\r" before the cut is output, not a line end), and marked.
		w.piece = append(append(w.piece[:0], w.buf[:cut]...), Continued...)
		w.Line(w.piece)
		w.buf = w.buf[cut:]
	}
	// Compact so a long stream of short lines does not grow the backing array forever.
	if cap(w.buf) > 4*MaxLine && len(w.buf) < MaxLine {
		w.buf = append([]byte(nil), w.buf...)
	}
	return len(p), nil
}

// Flush hands on a last line that has no line end.
func (w *Lines) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.line(w.buf)
		w.buf = nil
	}
}

func (w *Lines) line(b []byte) {
	w.Line(bytes.TrimSuffix(b, []byte("\r")))
}

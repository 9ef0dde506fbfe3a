package proc

import (
	"bytes"
	"fmt"
)

// HeadTail keeps the first Head and the last Tail bytes written to it (a command's stderr
// kept for its error): a command, hook or remote that writes megabytes costs at most
// Head+2*(Tail+1) bytes while it runs, and String returns at most Head+Tail of them and a
// marker line: the first lines (what was started) and the last ones (usually why it
// failed). Not safe for concurrent writers.
type HeadTail struct {
	Head, Tail int

	head  []byte
	tail  []byte // the last bytes written: Tail of them plus the one before, up to twice that
	total int64
}

// Write keeps what fits in the head, then the tail; it never fails.
func (h *HeadTail) Write(p []byte) (int, error) {
	h.total += int64(len(p))
	q := p
	if n := min(h.Head-len(h.head), len(q)); n > 0 {
		h.head = append(h.head, q[:n]...)
		q = q[n:]
	}
	if len(q) == 0 || h.Tail <= 0 {
		return len(p), nil
	}
	// One byte more than Tail tells String whether the tail starts a line.
	keep := h.Tail + 1
	if len(q) >= keep {
		h.tail = append(h.tail[:0], q[len(q)-keep:]...)
		return len(p), nil
	}
	h.tail = append(h.tail, q...)
	if len(h.tail) > 2*keep {
		h.tail = append(h.tail[:0], h.tail[len(h.tail)-keep:]...)
	}
	return len(p), nil
}

// String is the head and the tail, with a line "[... N bytes left out ...]" between them
// when bytes were dropped. Around the gap, only whole lines are kept (a line longer than
// the head or tail excepted): the cut never splits a line, so a secret on it is either left
// out or masked whole by what redacts the result.
func (h *HeadTail) String() string {
	if int64(len(h.head)+len(h.tail)) == h.total {
		return string(h.head) + string(h.tail)
	}
	head := h.head
	if i := bytes.LastIndexByte(head, '\n'); i >= 0 {
		head = head[:i+1]
	}
	// Bytes were dropped, so h.tail holds Tail bytes and the one before them.
	tail := h.tail[len(h.tail)-min(len(h.tail), h.Tail+1):]
	if i := bytes.IndexByte(tail, '\n'); i >= 0 && i+1 < len(tail) {
		tail = tail[i+1:]
	} else if len(tail) > h.Tail {
		tail = tail[1:]
	}
	dropped := h.total - int64(len(head)+len(tail))
	var b bytes.Buffer
	b.Write(head)
	if len(head) > 0 && head[len(head)-1] != '\n' {
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "[... %d bytes left out ...]\n", dropped)
	b.Write(tail)
	return b.String()
}

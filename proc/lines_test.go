package proc

import (
	"fmt"
	"strings"
	"testing"
)

func TestLines(t *testing.T) {
	for _, tt := range []struct {
		name  string
		cr    bool
		cut   func([]byte) int
		input []string
		want  []string
	}{
		{"lines and a last one without newline", false, nil, []string{"a\nb", "c\r\nd"}, []string{"a", "bc", "d"}},
		{"CR kept inside a line unless CR is set", false, nil, []string{"10%\r20%\n"}, []string{"10%\r20%"}},
		{"CR ends a line", true, nil, []string{"10%\r20%\r\ndone\n"}, []string{"10%", "20%", "", "done"}},
		{"long line broken at MaxLine", false, nil, []string{strings.Repeat("x", MaxLine+5) + "\n"}, []string{strings.Repeat("x", MaxLine) + Continued, "xxxxx"}},
		{"long line broken where SafeCut says", false, func([]byte) int { return 10 }, []string{strings.Repeat("y", MaxLine+1)}, []string{strings.Repeat("y", 10) + Continued, strings.Repeat("y", MaxLine-9)}},
		{"a CR at the cut is output, kept", false, nil, []string{strings.Repeat("z", MaxLine-1) + "\r" + "tail\n"}, []string{strings.Repeat("z", MaxLine-1) + "\r" + Continued, "tail"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			w := &Lines{CR: tt.cr, SafeCut: tt.cut, Line: func(b []byte) { got = append(got, string(b)) }}
			for _, in := range tt.input {
				w.Write([]byte(in))
			}
			w.Flush()
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("lines %q, want %q", abbreviate(got), abbreviate(tt.want))
			}
		})
	}
}

// TestLongLinesKeepTheirBytes: lines longer than MaxLine (several times, with and without a
// final newline, written in odd chunks) come out as pieces that, joined without the
// Continued marker, are the input exactly: no byte lost, none added.
func TestLongLinesKeepTheirBytes(t *testing.T) {
	long := func(n int) string {
		var b strings.Builder
		for i := 0; b.Len() < n; i++ {
			fmt.Fprintf(&b, "%d,\r", i) // digits and lone CRs, never a newline
		}
		return b.String()[:n]
	}
	for _, tt := range []struct {
		name, input string
		cut         func([]byte) int
	}{
		{"one line past the buffer, newline", long(MaxLine+1) + "\n", nil},
		{"one line past the buffer, no newline", long(MaxLine + 1), nil},
		{"three buffers and a bit, newline", long(3*MaxLine+17) + "\n", nil},
		{"three buffers and a bit, no newline", long(3*MaxLine + 17), nil},
		{"short, long, short", "a\n" + long(2*MaxLine+5) + "\nb", nil},
		{"cut early where it is safe", long(2*MaxLine) + "\n", func(b []byte) int { return len(b) - 3 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			w := &Lines{SafeCut: tt.cut, Line: func(b []byte) { got = append(got, string(b)) }}
			for in := tt.input; len(in) > 0; {
				n := min(len(in), 7919) // odd chunks: pieces never line up with writes
				w.Write([]byte(in[:n]))
				in = in[n:]
			}
			w.Flush()
			var joined strings.Builder
			for i, l := range got {
				piece, more := strings.CutSuffix(l, Continued)
				if len(piece) > MaxLine {
					t.Errorf("line %d is %d bytes, more than MaxLine", i, len(piece))
				}
				joined.WriteString(piece)
				if !more && i < len(got)-1 {
					joined.WriteString("\n")
				}
			}
			want := strings.TrimSuffix(tt.input, "\n")
			if joined.String() != want {
				t.Errorf("joined pieces differ from the input: %d bytes, want %d", joined.Len(), len(want))
			}
			if strings.Count(strings.Join(got, ""), Continued) != len(got)-1-strings.Count(want, "\n") {
				t.Errorf("%d lines, %d markers, %d newlines in the input", len(got), strings.Count(strings.Join(got, ""), Continued), strings.Count(want, "\n"))
			}
		})
	}
}

func abbreviate(s []string) []string {
	out := make([]string, len(s))
	for i, l := range s {
		if len(l) > 20 {
			l = l[:10] + "..." + l[len(l)-5:]
		}
		out[i] = l
	}
	return out
}

package proc

import (
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
		{"long line broken at MaxLine", false, nil, []string{strings.Repeat("x", MaxLine+5) + "\n"}, []string{strings.Repeat("x", MaxLine), "xxxxx"}},
		{"long line broken where SafeCut says", false, func([]byte) int { return 10 }, []string{strings.Repeat("y", MaxLine+1)}, []string{strings.Repeat("y", 10), strings.Repeat("y", MaxLine-9)}},
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

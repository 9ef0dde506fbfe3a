package proc

import (
	"strings"
	"testing"
)

func TestHeadTail(t *testing.T) {
	line := func(i int) string { return strings.Repeat("x", 9) + string(rune('a'+i%26)) + "\n" } // 11 bytes
	lines := func(from, to int) string {
		var b strings.Builder
		for i := from; i < to; i++ {
			b.WriteString(line(i))
		}
		return b.String()
	}
	for _, tc := range []struct {
		name       string
		head, tail int
		writes     []string
		want       string
	}{
		{name: "fits", head: 16, tail: 16, writes: []string{"one\n", "two\n"}, want: "one\ntwo\n"},
		{name: "fits exactly", head: 11, tail: 11, writes: []string{lines(0, 2)}, want: lines(0, 2)},
		{name: "one write, whole lines", head: 22, tail: 22, writes: []string{lines(0, 100)},
			want: lines(0, 2) + "[... 1056 bytes left out ...]\n" + lines(98, 100)},
		{name: "many writes, tail compacted", head: 22, tail: 22, writes: strings.SplitAfter(lines(0, 100), "\n"),
			want: lines(0, 2) + "[... 1056 bytes left out ...]\n" + lines(98, 100)},
		{name: "cut inside lines", head: 15, tail: 15, writes: []string{lines(0, 10)},
			want: lines(0, 1) + "[... 88 bytes left out ...]\n" + lines(9, 10)},
		{name: "tail only", head: 0, tail: 11, writes: []string{lines(0, 3)},
			want: "[... 22 bytes left out ...]\n" + lines(2, 3)},
		{name: "one long line", head: 4, tail: 4, writes: []string{"abcdefghijkl"},
			want: "abcd\n[... 4 bytes left out ...]\nijkl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &HeadTail{Head: tc.head, Tail: tc.tail}
			for _, w := range tc.writes {
				if n, err := h.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if got := h.String(); got != tc.want {
				t.Errorf("got:\n%q\nwant:\n%q", got, tc.want)
			}
			if len(h.head) > tc.head || len(h.tail) > 2*(tc.tail+1) {
				t.Errorf("kept %d+%d bytes for a head of %d and a tail of %d", len(h.head), len(h.tail), tc.head, tc.tail)
			}
		})
	}
}

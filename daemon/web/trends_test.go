package web

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
)

// A step's chart has a point per run it ran in, its timeout line, and a flag when its
// last duration grew past the documented threshold or came near its timeout.
func TestChartFlags(t *testing.T) {
	m := time.Minute
	tests := []struct {
		name    string
		ds      []time.Duration
		timeout time.Duration
		flag    string // substring; "" for none
		points  int
	}{
		{"steady", []time.Duration{10 * m, 11 * m, 10 * m, 9 * m, 10 * m, 11 * m}, time.Hour, "", 6},
		{"grew", []time.Duration{10 * m, 11 * m, 10 * m, 9 * m, 10 * m, 16 * m}, time.Hour, "grew: 16m0s against a median of 10m0s", 6},
		{"grew but too few runs", []time.Duration{10 * m, 11 * m, 10 * m, 16 * m}, time.Hour, "", 4},
		{"grew by less than a minute", []time.Duration{10e9, 11e9, 10e9, 9e9, 10e9, 30e9}, time.Hour, "", 6},
		{"near its timeout", []time.Duration{40 * m, 41 * m, 49 * m}, time.Hour, "near its timeout: 49m0s of 1h", 3},
		{"gaps", []time.Duration{-1, 10 * m, -1, 10 * m}, 0, "", 2},
		{"never ran", []time.Duration{-1, -1}, 0, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			window := make([]*history.Run, len(tt.ds))
			for i := range window {
				window[i] = &history.Run{ID: fmt.Sprintf("r%d", i+1)} // newest first: r1
			}
			st := chart("build", tt.ds, tt.timeout, window, len(tt.ds))
			if tt.flag == "" && st.Flag != "" || tt.flag != "" && !strings.Contains(st.Flag, tt.flag) {
				t.Errorf("flag %q, want %q", st.Flag, tt.flag)
			}
			if st.Points != tt.points || len(st.Dots) != tt.points || len(strings.Fields(st.Line)) != tt.points {
				t.Errorf("%d points, %d dots, line %q; want %d", st.Points, len(st.Dots), st.Line, tt.points)
			}
			if (tt.timeout > 0) != (st.TimeoutY >= 0) {
				t.Errorf("timeout line at %v for timeout %s", st.TimeoutY, tt.timeout)
			}
			for _, d := range st.Dots {
				if d.Y < 0 || d.Y > chartH || d.X < 0 || d.X > chartW {
					t.Errorf("dot %+v outside the chart", d)
				}
			}
			if tt.points > 0 && !strings.HasPrefix(st.Dots[len(st.Dots)-1].Title, "r1:") {
				t.Errorf("the last dot is %q, want the newest run r1", st.Dots[len(st.Dots)-1].Title)
			}
		})
	}
}

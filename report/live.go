package report

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/refreshd/refreshd/history"
)

// Live is the terminal view of one run: a table of step instances (waiting, running with
// elapsed time and last output line, done, failed, skipped) redrawn in place. It is an
// executor.Observer; log records written to it (as an io.Writer for a slog handler) are
// printed above the table. Start and Stop bound its redraw goroutine.
type Live struct {
	w     io.Writer
	width int

	mu      sync.Mutex
	steps   []history.Step
	idx     map[string]int
	last    map[string]string // last output line per running instance
	drawn   int               // lines of the table on screen
	stop    chan struct{}
	stopped chan struct{}
}

// NewLive makes a view writing to a terminal of width columns.
func NewLive(w io.Writer, width int) *Live {
	if width <= 20 {
		width = 80
	}
	return &Live{w: w, width: width, idx: map[string]int{}, last: map[string]string{}}
}

// Start redraws the table every interval until Stop, so elapsed times move.
func (l *Live) Start(interval time.Duration) {
	l.stop, l.stopped = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(l.stopped)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				l.mu.Lock()
				l.redraw()
				l.mu.Unlock()
			case <-l.stop:
				return
			}
		}
	}()
}

// Stop ends the redraws and leaves the final table on screen.
func (l *Live) Stop() {
	if l.stop != nil {
		close(l.stop)
		<-l.stopped
	}
	l.mu.Lock()
	l.redraw()
	l.mu.Unlock()
}

// RunStarted implements executor.Observer.
func (l *Live) RunStarted(r *history.Run) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.steps = append([]history.Step(nil), r.Steps...)
	for i, s := range l.steps {
		l.idx[s.Instance] = i
	}
	l.redraw()
}

// StepChanged implements executor.Observer.
func (l *Live) StepChanged(_ string, s *history.Step) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i, ok := l.idx[s.Instance]; ok {
		l.steps[i] = *s
	} else {
		// A step expanded at run time (from a step's values) joins the view when it first
		// changes.
		l.idx[s.Instance] = len(l.steps)
		l.steps = append(l.steps, *s)
	}
	l.redraw()
}

// RunFinished implements executor.Observer.
func (l *Live) RunFinished(r *history.Run) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.steps = append([]history.Step(nil), r.Steps...)
	l.redraw()
}

// NodeDown implements executor.Observer: nothing to draw, the run's warning about the node
// is logged, and log records already come through the view.
func (l *Live) NodeDown(string, history.NodeDown) {}

// Line implements executor.Observer.
func (l *Live) Line(_, instance, line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Control characters (colours, carriage returns of progress bars) would break the
	// table's layout.
	l.last[instance] = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, line)
}

// Write prints p (log records) above the table.
func (l *Live) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.clear()
	l.w.Write(p)
	l.drawn = 0
	l.redraw()
	return len(p), nil
}

// clear moves to the table's first line and erases to the end of the screen.
func (l *Live) clear() {
	if l.drawn > 0 {
		fmt.Fprintf(l.w, "\x1b[%dA\r\x1b[J", l.drawn)
	}
}

func (l *Live) redraw() {
	var b strings.Builder
	for _, s := range l.steps {
		line := fmt.Sprintf("%s %-9s %s", symbol(s.Status), s.Status, s.Instance)
		switch s.Status {
		case history.StatusRunning:
			line += fmt.Sprintf("  %s", time.Since(s.Start).Round(time.Second))
			if n := len(s.Attempts); n > 1 {
				line += fmt.Sprintf(" (attempt %d)", n)
			}
			if out := l.last[s.Instance]; out != "" {
				line += "  " + out
			}
		case history.StatusSucceeded, history.StatusFailed, history.StatusInterrupted:
			if !s.End.IsZero() {
				line += "  " + duration(s.Start, s.End)
			}
			if s.Reason != "" {
				line += "  " + oneLine(s.Reason)
			}
		case history.StatusSkipped:
			line += "  " + oneLine(s.Reason)
		}
		b.WriteString(truncate(line, l.width-1) + "\n")
	}
	l.clear()
	io.WriteString(l.w, b.String())
	l.drawn = len(l.steps)
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

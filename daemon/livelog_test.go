package daemon

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// gatedWriter collects lines; after the line numbered gateAt (0-based) it tells the test
// and waits until released, so the test can add lines while the follower is busy.
type gatedWriter struct {
	mu      sync.Mutex
	lines   []string
	gateAt  int
	reached chan struct{}
	release chan struct{}
}

func (w *gatedWriter) WriteLine(line string) error {
	w.mu.Lock()
	w.lines = append(w.lines, line)
	n := len(w.lines)
	w.mu.Unlock()
	if n-1 == w.gateAt {
		close(w.reached)
		<-w.release
	}
	return nil
}

// TestLogsFollowPastBuffer follows a run whose output outgrows the live buffer: the
// follower keeps receiving new lines, and when it fell behind it is told how many lines it
// missed and continues from the oldest line still kept.
func TestLogsFollowPastBuffer(t *testing.T) {
	const run = "r1"
	lines := func(from, to int) []string {
		var out []string
		for i := from; i < to; i++ {
			out = append(out, fmt.Sprintf("s | l%d", i))
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		before int // lines in the stream when the follower attaches
		gateAt int // the follower stalls after writing this many lines + 1
		during int // lines added while it stalls
		want   []string
	}{
		{
			name: "caught up at a full buffer", before: 3, gateAt: 2, during: 2,
			want: lines(0, 5),
		},
		{
			name: "fell behind the buffer", before: 2, gateAt: 0, during: 8,
			want: slices.Concat(lines(0, 2), []string{"(5 lines skipped; see refreshd logs r1)"}, lines(7, 10)),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &Daemon{streams: newStreams(3)}
			for i := range tc.before {
				d.streams.line(run, "s", fmt.Sprintf("l%d", i))
			}
			w := &gatedWriter{gateAt: tc.gateAt, reached: make(chan struct{}), release: make(chan struct{})}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			errc := make(chan error, 1)
			go func() { errc <- d.Logs(ctx, run, "", true, w) }()
			select {
			case <-w.reached:
			case <-ctx.Done():
				t.Fatal("follower wrote nothing")
			}
			for i := tc.before; i < tc.before+tc.during; i++ {
				d.streams.line(run, "s", fmt.Sprintf("l%d", i))
			}
			close(w.release)
			// The follower must reach the new lines while the run still goes on.
			want := len(tc.want)
			deadline := time.After(5 * time.Second)
			for got := 0; got < want; {
				select {
				case <-deadline:
					w.mu.Lock()
					t.Fatalf("follower stuck: got %q, want %q", w.lines, tc.want)
				case <-time.After(10 * time.Millisecond):
				}
				w.mu.Lock()
				got = len(w.lines)
				w.mu.Unlock()
			}
			d.streams.finish(run)
			if err := <-errc; err != nil {
				t.Fatalf("Logs: %v", err)
			}
			if !slices.Equal(w.lines, tc.want) {
				t.Errorf("lines:\n got %q\nwant %q", w.lines, tc.want)
			}
		})
	}
}

// TestLiveBufferBoundedInBytes feeds a run's stream the way a step that prints without
// newlines does (64 KiB pieces): the buffer stays within its byte bound, keeps the newest
// piece, and counts what it dropped.
func TestLiveBufferBoundedInBytes(t *testing.T) {
	s := newStreams(1000)
	s.maxBytes = 1 << 20
	piece := strings.Repeat("x", 64<<10)
	const n = 200 // 12.5 MiB
	for i := range n {
		s.line("r", "flood", fmt.Sprintf("%03d", i)+piece)
	}
	st := s.get("r")
	held := 0
	for _, l := range st.lines {
		held += len(l.text) + len(l.instance)
	}
	if held != st.bytes || held > s.maxBytes {
		t.Errorf("buffer holds %d bytes (counted %d), bound %d", held, st.bytes, s.maxBytes)
	}
	if last := st.lines[len(st.lines)-1].text; !strings.HasPrefix(last, fmt.Sprintf("%03d", n-1)) {
		t.Errorf("newest piece not kept: %.8q", last)
	}
	if st.dropped+len(st.lines) != n {
		t.Errorf("dropped %d + held %d != %d written", st.dropped, len(st.lines), n)
	}
}

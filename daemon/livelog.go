package daemon

import (
	"sync"
	"time"
)

// streams keeps the live output of started runs for `logs -f` and `run --wait`: the latest
// lines (at most max per run) and the followers waiting for more. Followers address lines by
// their absolute number in the run, so one that falls behind the buffer learns how many it
// missed rather than waiting on a position the buffer never reaches again.
type streams struct {
	max      int // lines kept per run
	maxBytes int // bytes of text kept per run: lines are cut at 64 KiB, not short
	mu       sync.Mutex
	runs     map[string]*stream
}

type stream struct {
	lines   []streamLine
	dropped int // lines dropped from the front; lines[0] is line number dropped
	bytes   int // text held in lines
	done    bool
	wake    chan struct{} // closed and replaced on each new line or at the end
}

type streamLine struct{ instance, text string }

// defaultMaxBuffered and defaultMaxBufferedBytes bound memory per run, whichever comes
// first: output without newlines arrives as 64 KiB pieces, so a count of lines alone would
// let one run hold a gigabyte. The whole output is in the attempt log files, which
// `refreshd logs RUN` streams; a follower that falls behind the buffer is told how many
// lines it missed.
const (
	defaultMaxBuffered      = 20000
	defaultMaxBufferedBytes = 8 << 20
)

func newStreams(max int) *streams {
	if max <= 0 {
		max = defaultMaxBuffered
	}
	return &streams{max: max, maxBytes: defaultMaxBufferedBytes, runs: map[string]*stream{}}
}

func (s *streams) open(id string) *stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.runs[id]
	if st == nil {
		st = &stream{wake: make(chan struct{})}
		s.runs[id] = st
	}
	return st
}

func (s *streams) get(id string) *stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs[id]
}

func (s *streams) line(id, instance, text string) {
	st := s.open(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	st.lines = append(st.lines, streamLine{instance, text})
	st.bytes += len(text) + len(instance)
	for len(st.lines) > 1 && (len(st.lines) > s.max || st.bytes > s.maxBytes) {
		// Zero the dropped entry so its strings can be collected before append reallocates.
		st.bytes -= len(st.lines[0].text) + len(st.lines[0].instance)
		st.lines[0] = streamLine{}
		st.lines = st.lines[1:]
		st.dropped++
	}
	close(st.wake)
	st.wake = make(chan struct{})
}

// finish marks a run's stream ended; it is forgotten a minute later, when every follower
// has had time to read the end.
func (s *streams) finish(id string) {
	st := s.open(id)
	s.mu.Lock()
	if !st.done {
		st.done = true
		close(st.wake)
		st.wake = make(chan struct{})
	}
	s.mu.Unlock()
	time.AfterFunc(time.Minute, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.runs[id] == st {
			delete(s.runs, id)
		}
	})
}

// chunk is what one read of a stream returns.
type chunk struct {
	lines   []streamLine
	skipped int  // lines before the first returned one that are no longer buffered
	next    int  // absolute line number to read from next
	done    bool // the run has ended and every line up to next has been returned
	more    <-chan struct{}
}

// read returns the lines from absolute line number from on, how many of the lines asked for
// were already dropped from the buffer, whether the stream has ended, and a channel closed
// when there is more.
func (s *streams) read(st *stream, from int) chunk {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := chunk{done: st.done, more: st.wake}
	if from < st.dropped {
		c.skipped = st.dropped - from
		from = st.dropped
	}
	i := min(from-st.dropped, len(st.lines))
	c.lines = append([]streamLine(nil), st.lines[i:]...)
	c.next = st.dropped + len(st.lines)
	return c
}

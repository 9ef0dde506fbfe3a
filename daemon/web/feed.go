package web

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/refreshd/refreshd/history"
)

// A feed is the live output of one run, or one step of it, read once for every follower:
// one goroutine reads the daemon's stream (Source.Logs) and, for a step, watches the step
// end; followers read the lines it keeps, each from its own position, and never touch the
// source. Thirty-two followers of one step cost one reader, not thirty-two, and none of
// them re-reads the run's record.
//
// The feed keeps the latest feedLines lines (at most feedBytes): a follower that falls
// behind them is dropped rather than waited for, so a follower that stops reading costs
// neither the feed nor the others anything.
type feed struct {
	key feedKey

	mu      sync.Mutex
	lines   []string
	dropped int // lines dropped from the front: lines[0] is line number dropped
	bytes   int
	ended   bool
	end     string        // the text of the end event
	wake    chan struct{} // closed and replaced on each line and at the end
	refs    int
	cancel  context.CancelFunc
}

type feedKey struct{ run, step string }

const (
	feedLines = 5000
	feedBytes = 2 << 20
)

// feeds are the feeds being followed, one per run and step.
type feeds struct {
	src Source
	log *slog.Logger
	mu  sync.Mutex
	m   map[feedKey]*feed
}

func newFeeds(src Source, log *slog.Logger) *feeds {
	return &feeds{src: src, log: log, m: map[feedKey]*feed{}}
}

// subscribe is the feed of run id's step ("" for the whole run), started for the first
// follower. Each subscribe is matched by one unsubscribe.
func (fs *feeds) subscribe(id, step string) *feed {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	k := feedKey{id, step}
	f := fs.m[k]
	if f == nil {
		ctx, cancel := context.WithCancel(context.Background())
		f = &feed{key: k, wake: make(chan struct{}), cancel: cancel}
		fs.m[k] = f
		go fs.run(ctx, f)
	}
	f.refs++
	return f
}

// unsubscribe lets go of f; its last follower stops it.
func (fs *feeds) unsubscribe(f *feed) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f.refs--; f.refs > 0 {
		return
	}
	f.cancel()
	if fs.m[f.key] == f {
		delete(fs.m, f.key)
	}
}

// stepPoll is how often a feed of a step looks whether the step has ended: one look per
// feed, at one stored step (Source.RunStep), whatever the number of followers.
const stepPoll = 500 * time.Millisecond

// run reads the feed's stream until it ends: the run's output ends (or the run has
// ended: its log files are read), or, for a step, the step ends, after which what the
// stream holds of it and was not read yet is read without following.
func (fs *feeds) run(ctx context.Context, f *feed) {
	id, step := f.key.run, f.key.step
	follow, stopFollow := context.WithCancel(ctx)
	defer stopFollow()
	ended := make(chan string, 1)
	if step != "" {
		go fs.watchStep(follow, id, step, ended, stopFollow)
	}
	w := &feedWriter{f: f}
	err := fs.src.Logs(follow, id, step, true, w)
	end := "the run's output has ended"
	if ctx.Err() == nil && follow.Err() != nil {
		end = <-ended
		err = fs.src.Logs(ctx, id, step, false, &skipLines{w: w, skip: w.n})
	}
	switch {
	case ctx.Err() != nil:
		end = "nobody follows this stream any more"
	case err != nil:
		fs.log.Warn("live log stream", "run", id, "step", step, "err", err)
		end = "the stream failed: " + err.Error()
	}
	f.finish(end)
}

// watchStep looks at the step every stepPoll until it is no longer running (or ctx
// ends), then says how it ended and calls stop.
func (fs *feeds) watchStep(ctx context.Context, id, step string, ended chan<- string, stop func()) {
	t := time.NewTicker(stepPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, st, err := fs.src.RunStep(ctx, id, step)
		if err != nil {
			continue // not started yet, or a passing error: the run's end still ends the stream
		}
		if st != nil && st.Status != history.StatusRunning && st.Status != history.StatusWaiting {
			ended <- "the step " + string(st.Status)
			stop()
			return
		}
	}
}

// feedWriter appends the stream's lines to the feed.
type feedWriter struct {
	f *feed
	n int // lines written
}

func (w *feedWriter) WriteLine(line string) error {
	w.f.add(line)
	w.n++
	return nil
}

func (f *feed) add(line string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lines = append(f.lines, line)
	f.bytes += len(line)
	for len(f.lines) > 1 && (len(f.lines) > feedLines || f.bytes > feedBytes) {
		f.bytes -= len(f.lines[0])
		f.lines[0] = ""
		f.lines = f.lines[1:]
		f.dropped++
	}
	close(f.wake)
	f.wake = make(chan struct{})
}

func (f *feed) finish(end string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ended, f.end = true, end
	close(f.wake)
	f.wake = make(chan struct{})
}

// feedChunk is what one read of a feed gives a follower.
type feedChunk struct {
	lines   []string
	skipped int // lines before from that the feed no longer holds
	next    int
	ended   bool // every line is in lines (or was read before) and the feed has ended
	end     string
	more    <-chan struct{}
}

// errBehind is a follower that fell behind the lines a feed keeps.
var errBehind = errors.New("fell behind the live output")

// read returns the lines from line number from on (at most feedLines).
func (f *feed) read(from int) feedChunk {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := feedChunk{ended: f.ended, end: f.end, more: f.wake}
	if from < f.dropped {
		c.skipped = f.dropped - from
		from = f.dropped
	}
	i := min(from-f.dropped, len(f.lines))
	c.lines = append([]string(nil), f.lines[i:]...)
	c.next = f.dropped + len(f.lines)
	return c
}
